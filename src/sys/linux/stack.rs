//! Stack capture, for every kind: one walker (the loaded objects' unwind sections,
//! copied once and shared), one lock-free pool of rule caches, and two ways in:
//!
//! - [`Walker::walk`]: an interrupted thread's stack, from inside its signal handler (the
//!   CPU sampler, thread dumps, wall-clock profiles);
//! - [`capture_here`]: the calling thread's own stack (heap samples inside the
//!   allocator, contention events, thread creation), through the walker published by
//!   [`prepare_here`], falling back to libgcc's unwinder ([`capture_slow`]) where the
//!   fast walk cannot go.
//!
//! # Layering rule
//!
//! [`Walker::walk`] and [`capture_here`] run in signal handlers that may have interrupted
//! any code, and inside `GlobalAlloc`: they must not allocate, take a lock, format or log,
//! or read a loaded object's memory (a concurrent `dlclose` may unmap it). They read only
//! the copies made when the walker was built and the thread's own stack (bounded by the
//! writable mapping that holds its stack pointer). framehop evaluates CFI with the
//! `MustNotAllocateDuringUnwind` policy in a [`Cache`] claimed from the pool by CAS (its
//! entries carry framehop's process-wide module generation, so one cache serves every
//! walker). Everything else here runs on ordinary threads.
//!
//! # The published walker
//!
//! ```text
//!   capture_here:  claim a cache (FREE → CLAIMED); w = HERE; walk w; release (→ FREE)
//!   prepare_here:  old = HERE.swap(new); for each cache: wait until seen not CLAIMED; free old
//! ```
//!
//! The claimed cache is the capture's hazard mark: a capture that could still hold the
//! old walker claimed its cache before it read `HERE` (both `SeqCst`), so the
//! publisher, which swapped `HERE` first, sees the claim and waits. No counter is
//! shared between capturing threads (two threads sampling at once touch only their own
//! cache's line and read `HERE`).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use std::sync::{Arc, Weak};

use framehop::{FrameAddress, Unwinder};
use nix::libc;

use super::objects;

/// The deepest stack a signal-context walk records; deeper ones are cut (marked
/// incomplete).
pub(crate) const MAX_FRAMES: usize = 128;

/// The deepest stack [`capture_here`] records (heap samples and contention events keep
/// a stack per bucket in fixed tables).
pub(crate) const MAX_DEPTH: usize = 64;

/// Whether this architecture can walk stacks from a signal context.
pub(crate) const SUPPORTED: bool = arch::SUPPORTED;

/// framehop's rule cache and CFI evaluation space: one per concurrent walk.
pub(crate) type Cache = arch::Cache;

#[cfg(target_arch = "x86_64")]
mod arch {
    use framehop::MustNotAllocateDuringUnwind;
    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use nix::libc;

    pub(super) const SUPPORTED: bool = true;
    pub(super) type Unwinder = UnwinderX86_64<Vec<u8>, MustNotAllocateDuringUnwind>;
    pub(super) type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;
    pub(super) type Regs = UnwindRegsX86_64;

    /// The interrupted context's (pc, sp, unwind registers).
    ///
    /// # Safety
    ///
    /// `uc` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
    pub(super) unsafe fn context(uc: *const libc::ucontext_t) -> Option<(u64, u64, Regs)> {
        // SAFETY: per the function's contract, `uc` is valid for reads.
        let g = unsafe { &(*uc).uc_mcontext.gregs };
        let reg = |r: libc::c_int| g[r as usize] as u64;
        let (ip, sp, bp) = (reg(libc::REG_RIP), reg(libc::REG_RSP), reg(libc::REG_RBP));
        Some((ip, sp, UnwindRegsX86_64::new(ip, sp, bp)))
    }

    /// The current frame's (pc, sp, unwind registers); inlined into its caller, whose
    /// frame they describe.
    #[inline(always)]
    pub(super) fn here() -> (u64, u64, Regs) {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers; no memory is touched, no flags changed.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        (ip, sp, UnwindRegsX86_64::new(ip, sp, bp))
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use framehop::MustNotAllocateDuringUnwind;
    use framehop::aarch64::{CacheAarch64, UnwindRegsAarch64, UnwinderAarch64};
    use nix::libc;

    pub(super) const SUPPORTED: bool = true;
    pub(super) type Unwinder = UnwinderAarch64<Vec<u8>, MustNotAllocateDuringUnwind>;
    pub(super) type Cache = CacheAarch64<MustNotAllocateDuringUnwind>;
    pub(super) type Regs = UnwindRegsAarch64;

    /// The interrupted context's (pc, sp, unwind registers).
    ///
    /// # Safety
    ///
    /// `uc` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
    pub(super) unsafe fn context(uc: *const libc::ucontext_t) -> Option<(u64, u64, Regs)> {
        // SAFETY: per the function's contract, `uc` is valid for reads.
        let m = unsafe { &(*uc).uc_mcontext };
        let (pc, sp, fp, lr) = (m.pc, m.sp, m.regs[29], m.regs[30]);
        Some((pc, sp, UnwindRegsAarch64::new(lr, sp, fp)))
    }

    /// The current frame's (pc, sp, unwind registers); inlined into its caller, whose
    /// frame they describe.
    #[inline(always)]
    pub(super) fn here() -> (u64, u64, Regs) {
        let (pc, sp, fp, lr): (u64, u64, u64, u64);
        // SAFETY: reads four registers; no memory is touched, no flags changed.
        unsafe {
            std::arch::asm!(
                "adr {pc}, .",
                "mov {sp}, sp",
                "mov {fp}, x29",
                "mov {lr}, x30",
                pc = out(reg) pc,
                sp = out(reg) sp,
                fp = out(reg) fp,
                lr = out(reg) lr,
                options(nomem, nostack, preserves_flags),
            );
        }
        (pc, sp, UnwindRegsAarch64::new(lr, sp, fp))
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    use framehop::MustNotAllocateDuringUnwind;
    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use nix::libc;

    pub(super) const SUPPORTED: bool = false;
    pub(super) type Unwinder = UnwinderX86_64<Vec<u8>, MustNotAllocateDuringUnwind>;
    pub(super) type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;
    pub(super) type Regs = UnwindRegsX86_64;

    /// Never called: no capturer is created on this architecture.
    pub(super) unsafe fn context(_uc: *const libc::ucontext_t) -> Option<(u64, u64, Regs)> {
        None
    }

    /// Never called: `capture_here` checks `SUPPORTED` first.
    pub(super) fn here() -> (u64, u64, Regs) {
        (0, 0, UnwindRegsX86_64::new(0, 0, 0))
    }
}

/// The interrupted instruction's address.
///
/// # Safety
///
/// As for [`Walker::walk`].
pub(crate) unsafe fn interrupted_pc(uc: *const libc::ucontext_t) -> Option<u64> {
    // SAFETY: per the function's contract.
    unsafe { arch::context(uc) }.map(|(pc, _, _)| pc)
}

/// The loaded objects' unwind information and the process's writable mappings, as of
/// when it was built or refreshed. Immutable while handlers use it.
pub(crate) struct Walker {
    /// Shared by walkers that differ only in their writable mappings (the CPU sampler
    /// re-reads those whenever threads start; the sections are copied only when objects
    /// are loaded or unloaded).
    unwinder: Arc<arch::Unwinder>,
    /// The loader generation the module list was built for.
    generation: (u64, u64),
    /// Sorted readable and writable mappings (where stacks live).
    writable: Vec<(u64, u64)>,
}

impl Walker {
    /// Lists the loaded objects (copying their unwind sections) and the writable
    /// mappings. Ordinary threads only: allocates, takes the loader's lock. (Callers use
    /// [`walker`], which shares the copies.)
    fn build() -> Walker {
        let generation = objects::generation();
        let mut unwinder = arch::Unwinder::new();
        for m in objects::list(true)
            .into_iter()
            .filter_map(objects::module_copied)
        {
            unwinder.add_module(m);
        }
        let mut walker = Walker {
            unwinder: Arc::new(unwinder),
            generation,
            writable: Vec::new(),
        };
        walker.refresh_writable();
        walker
    }

    /// The same modules with the writable mappings re-read now.
    pub(crate) fn with_fresh_writable(&self) -> Walker {
        Walker {
            unwinder: self.unwinder.clone(),
            generation: self.generation,
            writable: writable_mappings(),
        }
    }

    /// Whether no object was loaded or unloaded since the module list was built.
    pub(crate) fn is_current(&self) -> bool {
        objects::generation() == self.generation
    }

    /// Re-reads the writable mappings from /proc/self/maps: call it after the threads to
    /// walk were created (their stacks are mapped then and stay mapped while they live).
    pub(crate) fn refresh_writable(&mut self) {
        self.writable = writable_mappings();
    }

    /// Walks the stack of the interrupted context `uc` into `out`: the interrupted
    /// instruction first, then return addresses. Returns how many frames were written and
    /// whether the walk reached the outermost frame (false: unknown code, no unwind
    /// information, or more frames than `out` holds).
    ///
    /// # Safety
    ///
    /// `uc` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler running on
    /// the interrupted thread (so its stack is this thread's).
    pub(crate) unsafe fn walk(
        &self,
        cache: &mut Cache,
        uc: *const libc::ucontext_t,
        out: &mut [u64],
    ) -> (usize, bool) {
        // SAFETY: per the function's contract.
        let Some((pc, sp, regs)) = (unsafe { arch::context(uc) }) else {
            return (0, false);
        };
        self.walk_from(cache, pc, sp, regs, 0, out)
    }

    /// Walks the calling thread's own stack into `out`: return addresses, from the
    /// caller of this function, less its first `skip` frames. Returns (frames written,
    /// reached the outermost frame).
    #[inline(never)]
    pub(crate) fn walk_here(
        &self,
        cache: &mut Cache,
        skip: usize,
        out: &mut [u64],
    ) -> (usize, bool) {
        let (pc, sp, regs) = arch::here();
        // Skip this function's own frame too (the first, its instruction pointer).
        self.walk_from(cache, pc, sp, regs, 1 + skip, out)
    }

    /// The walk from (pc, sp, regs), skipping the first `skip` frames.
    fn walk_from(
        &self,
        cache: &mut Cache,
        pc: u64,
        sp: u64,
        regs: arch::Regs,
        skip: usize,
        out: &mut [u64],
    ) -> (usize, bool) {
        // The mapping holding the stack pointer bounds every read.
        let i = self.writable.partition_point(|&(start, _)| start <= sp);
        let (lo, hi) = match i.checked_sub(1).map(|i| self.writable[i]) {
            Some((lo, hi)) if sp < hi => (lo, hi),
            // Our own stack, mapped after the walker listed the mappings (a thread
            // created since): the frames above this one, up to 256 MiB, as the unwind
            // rules point into them (the walk ends at the thread's outermost frame).
            _ if skip > 0 => (sp, sp.saturating_add(256 << 20)),
            _ => (0, 0),
        };
        let mut read_stack = |addr: u64| {
            if addr < lo || addr.saturating_add(8) > hi || !addr.is_multiple_of(8) {
                return Err(());
            }
            // SAFETY: an aligned address inside the readable, writable mapping that holds
            // this thread's stack (listed after the thread existed; a live thread's stack
            // stays mapped while it runs this handler), or, for the calling thread's own
            // walk of a stack mapped since, above the current frame, where its callers'
            // frames are (the rules read only saved registers there).
            Ok(unsafe { (addr as *const u64).read_volatile() })
        };
        let mut iter = self.unwinder.iter_frames(pc, regs, cache, &mut read_stack);
        let (mut len, mut skipped) = (0, 0);
        loop {
            match iter.next() {
                Ok(Some(_)) if skipped < skip => skipped += 1,
                Ok(Some(frame)) => {
                    let Some(slot) = out.get_mut(len) else {
                        return (len, false);
                    };
                    *slot = match frame {
                        FrameAddress::InstructionPointer(a) => a,
                        FrameAddress::ReturnAddress(a) => a.get(),
                    };
                    len += 1;
                }
                Ok(None) => return (len, true),
                Err(_) => return (len, false),
            }
        }
    }
}

/// The readable and writable mappings of this process, sorted.
fn writable_mappings() -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        if let Some((a, b)) = range.split_once('-')
            && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            out.push((a, b));
        }
    }
    out.sort_unstable();
    out
}

/// The loaded objects' copied unwind sections, shared by every walker built for the same
/// loader generation (the CPU sampler's, the capture core's, `capture_here`'s). Weak: the
/// copies go when the last walker does.
static MODULES: parking_lot::Mutex<Option<SharedModules>> = parking_lot::Mutex::new(None);

/// The shared copies and the loader generation they were made for.
type SharedModules = (Weak<arch::Unwinder>, (u64, u64));

/// A walker for the objects loaded now, with the writable mappings read now: the shared
/// copies when they are current, else freshly copied ones (then shared). Ordinary threads
/// only.
pub(crate) fn walker() -> Walker {
    let _ = super::fork::register(super::fork::Slot::Stack, &FORK_HANDLERS);
    let mut modules = MODULES.lock();
    let generation = objects::generation();
    if let Some((weak, at)) = modules.as_ref()
        && *at == generation
        && let Some(unwinder) = weak.upgrade()
    {
        return Walker {
            unwinder,
            generation,
            writable: writable_mappings(),
        };
    }
    let walker = Walker::build();
    *modules = Some((Arc::downgrade(&walker.unwinder), walker.generation));
    walker
}

/// Caches for concurrent walks, claimed by CAS (signal handlers and `capture_here`
/// alike).
struct CachePool {
    caches: Box<[(AtomicU8, UnsafeCell<Cache>)]>,
}

/// A pool cache's states.
const FREE: u8 = 0;
const CLAIMED: u8 = 1;
/// Claimed by a walk on a thread a forked child does not have: never used again there
/// (the walk may have left it half updated), never waited for.
const RETIRED: u8 = 2;

// SAFETY: a cache is used only by the walk that moved its state from FREE to CLAIMED,
// until it stores FREE again.
unsafe impl Sync for CachePool {}

/// Allocated once, kept for the process's life.
static CACHES: AtomicPtr<CachePool> = AtomicPtr::new(std::ptr::null_mut());

/// A cache claimed from the pool; released when dropped.
pub(crate) struct Claimed {
    state: &'static AtomicU8,
    cache: *mut Cache,
}

impl Claimed {
    /// The cache, ours until this is dropped.
    pub(crate) fn cache(&mut self) -> &mut Cache {
        // SAFETY: we moved the state from FREE to CLAIMED: no other walk uses the cache
        // until `drop` stores false.
        unsafe { &mut *self.cache }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.state.store(FREE, Ordering::Release);
    }
}

/// A free cache from the pool (None: no pool yet, or every cache in use). `hint` (a tid,
/// a stack address) picks where the search starts, so threads rarely collide. Lock-free,
/// no allocation.
pub(crate) fn claim_cache(hint: i32) -> Option<Claimed> {
    // SAFETY: CACHES is set once and never freed.
    let pool = unsafe { CACHES.load(Ordering::Acquire).as_ref() }?;
    let n = pool.caches.len();
    let first = hint as usize;
    (0..n).find_map(|i| {
        let (state, cache) = &pool.caches[(first + i) % n];
        // SeqCst: the claim `prepare_here` waits for is made before `HERE` is read.
        let claimed = state
            .compare_exchange(FREE, CLAIMED, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        claimed.then(|| Claimed {
            state,
            cache: cache.get(),
        })
    })
}

/// Allocates the cache pool once per process: two caches per CPU and four more, at most
/// 64 (a walk holds one for a few microseconds; with none free a signal walk records the
/// leaf only and `capture_here` uses libgcc's unwinder).
pub(crate) fn ensure_caches() {
    if !CACHES.load(Ordering::Acquire).is_null() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    let pool = Box::new(CachePool {
        caches: (0..(2 * cpus + 4).min(64))
            .map(|_| (AtomicU8::new(FREE), UnsafeCell::new(Cache::new_in())))
            .collect(),
    });
    let raw = Box::into_raw(pool);
    if CACHES
        .compare_exchange(
            std::ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        // SAFETY: ours, never published.
        drop(unsafe { Box::from_raw(raw) });
    }
}

/// The walker `capture_here` uses (null: none yet, every capture is libgcc's).
static HERE: AtomicPtr<Walker> = AtomicPtr::new(std::ptr::null_mut());
/// Serializes `prepare_here` (publishers).
static PREPARING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Makes `capture_here` fast for the objects loaded now: publishes a current walker
/// unless one is (rebuilt when objects were loaded or unloaded since: a library loaded
/// later ends a fast walk, which then falls back to libgcc's unwinder). Ordinary threads
/// only (allocates, may wait for captures in flight).
pub(crate) fn prepare_here() {
    let _one = PREPARING.lock();
    ensure_caches();
    // SAFETY: a non-null HERE is freed only by a publisher, and publishers are serialized
    // by PREPARING, which we hold.
    if unsafe { HERE.load(Ordering::SeqCst).as_ref() }.is_some_and(Walker::is_current) {
        return;
    }
    let old = HERE.swap(Box::into_raw(Box::new(walker())), Ordering::SeqCst);
    // Wait until no capture can still hold the old walker: every cache claimed before the
    // swap is released (seen free once; a capture that claims it after the swap reads
    // the new walker).
    // SAFETY: CACHES is set (ensure_caches above) and never freed.
    if let Some(pool) = unsafe { CACHES.load(Ordering::Acquire).as_ref() } {
        for (state, _) in pool.caches.iter() {
            while state.load(Ordering::SeqCst) == CLAIMED {
                std::thread::yield_now();
            }
        }
    }
    if !old.is_null() {
        // SAFETY: from Box::into_raw above; unreachable by captures after the grace period.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// Captures the calling thread's stack (return addresses, the caller of this function
/// first) into `out`. Returns the depth and whether the fast walker did it (false:
/// libgcc's unwinder, because no walker was prepared, every cache was busy, or the walk
/// met code it has no rules for). Does not allocate or lock; see the layering rule.
#[inline(never)]
pub(crate) fn capture_here(out: &mut [u64; MAX_DEPTH]) -> (usize, bool) {
    if SUPPORTED {
        // Where the search for a free cache starts: this thread's stack region (no
        // system call; threads' stacks are megabytes apart).
        let hint = (out.as_ptr() as usize >> 20) as i32;
        let mut walked = None;
        if let Some(mut claimed) = claim_cache(hint)
            // SAFETY: our claimed cache is the hazard mark `prepare_here` waits for
            // before it frees a walker it replaced: this one stays alive until the
            // claim is dropped.
            && let Some(walker) = unsafe { HERE.load(Ordering::SeqCst).as_ref() }
        {
            // Called directly (no closure between): the walk's first return address is
            // into this function, which it skips.
            walked = match walker.walk_here(claimed.cache(), 1, out) {
                (n, true) => Some(n),
                // Cut at MAX_DEPTH: as deep as the tables keep.
                (n, false) if n == MAX_DEPTH => Some(n),
                _ => None,
            };
        }
        if let Some(n) = walked {
            return (n, true);
        }
    }
    (capture_slow(out), false)
}

/// Captures the current stack's addresses with libgcc's unwinder: the fallback of
/// [`capture_here`]. The first frames are the unwinder's own (`backtrace::`, trimmed by
/// name when profiles are built). Does not allocate.
#[inline(never)]
pub(crate) fn capture_slow(stack: &mut [u64; MAX_DEPTH]) -> usize {
    let mut n = 0;
    // SAFETY: trace_unsynchronized is unsafe only because it does not take backtrace's
    // global lock; we never call it concurrently with something that needs that lock to
    // be held (we do not symbolize here), and the callback does not unwind.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as u64;
            if ip == 0 {
                return false; // past the outermost frame
            }
            stack[n] = ip;
            n += 1;
            n < MAX_DEPTH
        });
    }
    n
}

/// `fork()`: a child finds `MODULES` or `PREPARING` held by a thread it does not have,
/// and caches claimed by walks that were running on such threads: the locks are freed,
/// the caches retired (the published walker stays: it is complete, and the child's
/// objects are the parent's).
static FORK_HANDLERS: super::fork::Handlers = super::fork::Handlers {
    prepare: super::fork::nothing,
    parent: super::fork::nothing,
    child: || {
        super::fork::release_in_child(&MODULES);
        super::fork::release_in_child(&PREPARING);
        // SAFETY: CACHES is never freed once set.
        if let Some(pool) = unsafe { CACHES.load(Ordering::Acquire).as_ref() } {
            for (state, _) in pool.caches.iter() {
                let _ =
                    state.compare_exchange(CLAIMED, RETIRED, Ordering::SeqCst, Ordering::Relaxed);
            }
        }
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn captured_here(fast: bool) -> (Vec<u64>, bool) {
        let mut out = [0u64; MAX_DEPTH];
        let (n, was_fast) = if fast {
            capture_here(&mut out)
        } else {
            (capture_slow(&mut out), false)
        };
        (out[..n].to_vec(), was_fast)
    }

    /// The fast walk and libgcc's agree on the caller's stack (return addresses, the
    /// caller of the capture first), and the fast one is used once prepared.
    #[test]
    fn fast_and_slow_captures_agree() {
        prepare_here();
        // One call site for both (the frames above it are the same).
        let mut got = Vec::new();
        for fast in [true, false] {
            got.push(captured_here(fast));
        }
        let ((fast, was_fast), (slow, _)) = (&got[0], &got[1]);
        assert!(was_fast, "the prepared walker was not used");
        assert!(fast.len() >= 3, "{fast:x?}");
        // Above `captured_here` (the fast walk's first frame; libgcc's first ones are
        // the unwinder's own and its call site), the same stack.
        assert!(slow.ends_with(&fast[1..]), "fast {fast:x?}\nslow {slow:x?}");
        assert!(slow.len() > fast.len(), "fast {fast:x?}\nslow {slow:x?}");
    }

    /// A walker built again for the same objects shares their copied sections.
    #[test]
    fn walkers_share_the_copied_sections() {
        let a = walker();
        let b = walker();
        assert!(Arc::ptr_eq(&a.unwinder, &b.unwinder));
    }

    /// Captures from many threads at once, with more threads than caches: every fast
    /// capture of one call site gives the same stack, and a slow one (no cache free) the
    /// same above its unwinder's own frames.
    #[test]
    fn concurrent_captures_agree() {
        prepare_here();
        let threads: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(|| {
                    let mut seen = std::collections::HashSet::new();
                    for _ in 0..2000 {
                        let (stack, fast) = captured_here(true);
                        seen.insert((stack, fast));
                    }
                    seen
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for t in threads {
            all.extend(t.join().unwrap());
        }
        let fast: Vec<_> = all.iter().filter(|(_, f)| *f).map(|(s, _)| s).collect();
        assert!(!fast.is_empty(), "no capture was fast");
        // Every thread runs the same code from the same spawn: one stack.
        assert_eq!(fast.len(), 1, "{fast:x?}");
        for (slow, _) in all.iter().filter(|(_, f)| !*f) {
            assert!(slow.ends_with(&fast[0][1..]), "{slow:x?} vs {:x?}", fast[0]);
        }
    }
}
