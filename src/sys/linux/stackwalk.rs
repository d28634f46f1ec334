//! Walking an interrupted thread's stack from inside its signal handler: the module list
//! (copied unwind sections of every loaded object), the stack bounds, and the walk itself.
//! Shared by the capture core (thread dumps, wall-clock profiles) and the CPU sampler.
//!
//! # Layering rule
//!
//! [`Walker::walk`] runs in signal handlers that may have interrupted any code: it must
//! not allocate, take a lock, format or log, or read a loaded object's memory (a
//! concurrent `dlclose` may unmap it). It reads only the copies made by [`Walker::new`]
//! and the interrupted thread's stack, inside the writable mapping holding its stack
//! pointer. framehop evaluates CFI with the `MustNotAllocateDuringUnwind` policy in the
//! caller's [`Cache`]. Everything else here runs on ordinary threads.

use std::sync::Arc;

use framehop::{FrameAddress, Unwinder};
use nix::libc;

use super::objects;

/// The deepest stack recorded; deeper ones are cut (marked incomplete).
pub(crate) const MAX_FRAMES: usize = 128;

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
    /// mappings. Ordinary threads only: allocates, takes the loader's lock.
    pub(crate) fn new() -> Walker {
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
        // The mapping holding the stack pointer bounds every read.
        let i = self.writable.partition_point(|&(start, _)| start <= sp);
        let (lo, hi) = match i.checked_sub(1).map(|i| self.writable[i]) {
            Some((lo, hi)) if sp < hi => (lo, hi),
            _ => (0, 0),
        };
        let mut read_stack = |addr: u64| {
            if addr < lo || addr.saturating_add(8) > hi || !addr.is_multiple_of(8) {
                return Err(());
            }
            // SAFETY: an aligned address inside the readable, writable mapping that holds
            // this thread's stack (listed after the thread existed; a live thread's stack
            // stays mapped while it runs this handler).
            Ok(unsafe { (addr as *const u64).read_volatile() })
        };
        let mut iter = self.unwinder.iter_frames(pc, regs, cache, &mut read_stack);
        let mut len = 0;
        loop {
            match iter.next() {
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
