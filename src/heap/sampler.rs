//! The heap sampler: what the allocator wrapper calls on every allocation and free.
//!
//! # Layering rule
//!
//! Everything reachable from [`on_alloc`] and [`on_free`] runs inside `GlobalAlloc`. It
//! must not allocate, must not take a lock that may already be held on this thread, must
//! not format or log. Concretely:
//!
//! - Thread state lives in `const`-initialized thread-locals without destructors, which
//!   stay usable while a thread starts, exits, or runs TLS destructors.
//! - A per-thread re-entrancy flag (`IN_PROFILER`) is set before the one lock is taken, so
//!   neither an allocation made by our own bookkeeping nor one made by a signal handler
//!   that interrupted us can try to take it again on the same thread: such allocations
//!   pass through unrecorded.
//! - The lock is a spin lock (no parking, whose thread data is allocated lazily); it
//!   guards only short, allocation-free table updates. Stacks are captured before it is
//!   taken, so two threads sampling at once walk their stacks in parallel.
//! - Stacks are captured into a fixed array on the stack, no allocation, by the shared
//!   stack-capture module (`sys::stack::capture_here`: framehop over the copied unwind
//!   sections with a cache claimed lock-free from the pool, and libgcc's unwinder when
//!   the fast walk cannot go).
//! - The tables are allocated once, from an ordinary thread, when sampling is first
//!   enabled, as anonymous memory mappings (zero pages that become resident only when
//!   touched, never through any allocator), and are never freed: their size is fixed and
//!   reported.
//!
//! # Sampling
//!
//! Like Go and tcmalloc: each thread counts down bytes from a number drawn from an
//! exponential distribution with mean `rate`; the allocation that crosses zero is sampled
//! and a new countdown is drawn. An allocation of `s` bytes is therefore sampled with
//! probability `1 - exp(-s / rate)`, which [`scale`] undoes. `rate == 1` samples every
//! allocation. Samples are aggregated per (stack, size) bucket; a sampled object's address
//! goes into a live table so that its free is matched and in-use stays right. The free
//! gate (`heap/filter.rs`: a size gate, then an address filter that grows with the live
//! samples) keeps the cost of a free of an unsampled object (nearly all of them) at one
//! load, and its false positives rare however large the live heap.
//!
//! # Rate changes
//!
//! Changing the rate (to 0 = off, or to a different rate) clears the tables: samples taken
//! at different rates cannot be unbiased together, and frees are not tracked while off.
//! The fast path is one thread-local decrement, so a thread notices a rate change only on
//! the slow path; it takes that path at least once per `CHECK_EVERY` (64 KiB) allocated,
//! and then draws a fresh countdown at the new rate (the exponential is memoryless, so
//! starting afresh biases nothing). At most 64 KiB per thread goes unsampled after a
//! change; none on the thread that made the change.

use std::cell::{Cell, UnsafeCell};
use std::hint::spin_loop;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::filter::{self, Filters, Gate};
use super::mapped::zeroed;

/// Deepest stack recorded (frames beyond are cut off).
pub(crate) const MAX_DEPTH: usize = crate::sys::stack::MAX_DEPTH;
/// (stack, size) buckets.
pub(crate) const MAX_BUCKETS: usize = 1 << 14;
/// Slots in the bucket index (power of two, twice the buckets).
const BUCKET_INDEX_SLOTS: usize = MAX_BUCKETS * 2;
/// Slots in the live-object table (power of two); at most half are used.
const LIVE_SLOTS: usize = 1 << 18;
/// Live sampled objects tracked at once.
pub(crate) const MAX_LIVE: usize = LIVE_SLOTS / 2;

/// Keeps a value read on every allocation or free alone in its cache lines (128 bytes:
/// adjacent-line prefetch pairs lines), so that writes to neighbouring statics by other
/// cores never invalidate it.
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Nonzero while anything is to be done on the slow path: sampling is on (`ENABLED`), or
/// an installation probe runs (multiples of `PROBE`). The fast path does not read it.
static CONTROL: CacheLine<AtomicUsize> = CacheLine(AtomicUsize::new(0));
const ENABLED: usize = 1;
const PROBE: usize = 2;

/// The sampling rate in bytes; 0 = off.
static RATE: AtomicUsize = AtomicUsize::new(0);
/// Bumped on every rate change, so threads redraw their countdowns.
static GENERATION: AtomicUsize = AtomicUsize::new(0);
/// The slow path has run while a probe was on: the wrapper is installed.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Seeds for the per-thread random generators.
static SEED: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);

/// What every free reads: the size gate and the address filter of the live samples.
static GATE: Gate = Gate::new();

thread_local! {
    /// Inside the profiler's own code on this thread: allocations pass through.
    static IN_PROFILER: Cell<bool> = const { Cell::new(false) };
    /// Bytes left before this thread next looks at the slow path (at most `CHECK_EVERY`).
    static COUNTDOWN: Cell<u64> = const { Cell::new(0) };
    /// Bytes of the drawn countdown beyond `COUNTDOWN`.
    static REMAINDER: Cell<u64> = const { Cell::new(0) };
    /// The GENERATION the countdown was drawn for (0 = never drawn).
    static DRAWN_FOR: Cell<usize> = const { Cell::new(0) };
    /// xorshift state (0 = not seeded yet).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A thread takes the slow path at least once per this many bytes allocated, so that a
/// rate change reaches it soon even if its countdown was drawn for a huge rate.
const CHECK_EVERY: u64 = 64 << 10;

/// Sets this thread's countdown to `left` bytes, in pieces of at most `CHECK_EVERY`.
fn set_countdown(left: u64) {
    let now = left.min(CHECK_EVERY);
    COUNTDOWN.set(now);
    REMAINDER.set(left - now);
}

/// Called by the wrapper before every allocation of `size` bytes: charges this thread's
/// countdown and says whether the allocation, once made, must go to [`on_alloc_slow`]
/// (the countdown ran out, was never drawn, or a probe asked for it).
///
/// One thread-local decrement and branch, sampling on or off, and the wrapper then
/// tail-calls the allocator it wraps. While sampling is off the countdown runs in pieces
/// of `CHECK_EVERY` bytes; the slow path at the end of each is where a thread sees that
/// sampling started (or a probe).
#[inline(always)]
pub(crate) fn charge(size: usize) -> bool {
    // One access to the thread-local (where the compiler does not inline its accessor,
    // one call of it instead of two).
    COUNTDOWN.with(
        #[inline(always)]
        |countdown| {
            let left = countdown.get();
            if (size as u64) < left {
                countdown.set(left - size as u64);
                false
            } else {
                true
            }
        },
    )
}

/// [`charge`], then [`on_alloc_slow`] if it says so: for callers that hold the pointer
/// already (the unit tests).
#[cfg(test)]
fn on_alloc(ptr: *mut u8, size: usize) {
    if charge(size) {
        on_alloc_slow(ptr, size);
    }
}

/// Called by the wrapper before every free of a `size`-byte block: whether some live
/// sample has this size's class, so that [`may_be_sampled`] must be asked. One load (the
/// size gate is zero whenever sampling is off); inlined into every free, so the rest of
/// the check is out of line, in the wrapper's cold path.
#[inline(always)]
pub(crate) fn size_has_samples(size: usize) -> bool {
    GATE.size_may_hold(size)
}

/// After [`size_has_samples`]: whether the block at `ptr` may be a live sample (its bit in
/// the address filter), so that [`on_free_slow`] must see its free.
#[inline(always)] // into the wrapper's cold functions
pub(crate) fn may_be_sampled(ptr: *mut u8) -> bool {
    GATE.filter_has(ptr as usize)
}

/// [`size_has_samples`] and [`may_be_sampled`], then [`on_free_slow`] if they say so (the
/// unit tests).
#[cfg(test)]
fn on_free(ptr: *mut u8, size: usize) {
    if size_has_samples(size) && may_be_sampled(ptr) {
        on_free_slow(ptr);
    }
}

/// The countdown ran out (or was never drawn): sample this allocation (`ptr`, null if
/// the allocator refused), or (re)start the countdown if sampling is off or the countdown
/// was drawn for an older rate.
#[cold]
#[inline(never)]
pub(crate) fn on_alloc_slow(ptr: *mut u8, size: usize) {
    let control = CONTROL.load(Ordering::Relaxed);
    if control >= PROBE && !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    let rate = RATE.load(Ordering::Relaxed);
    if control & ENABLED == 0 || rate == 0 {
        // Off: look again after another piece.
        set_countdown(CHECK_EVERY);
        return;
    }
    // The profiler's own work (symbolizing) is not the program's heap; a refused
    // allocation is nothing. The countdown stays run out: the next allocation looks again.
    if ptr.is_null() || IN_PROFILER.get() || crate::sys::untracked::active() {
        return;
    }
    let generation = GENERATION.load(Ordering::Relaxed);
    let left = if DRAWN_FOR.get() == generation {
        // This allocation crossed a CHECK_EVERY piece (or the real end) of the countdown.
        COUNTDOWN.get() + REMAINDER.get()
    } else {
        // The first countdown at this rate on this thread (an older one is dropped: the
        // exponential is memoryless, so starting afresh biases nothing).
        DRAWN_FOR.set(generation);
        draw(rate)
    };
    if rate != 1 && (size as u64) < left {
        set_countdown(left - size as u64);
        return;
    }
    set_countdown(draw(rate));
    IN_PROFILER.set(true);
    record(ptr as usize, size);
    IN_PROFILER.set(false);
}

/// A free of a block that may be a live sample: matched against the live table. Returns
/// what [`restore`] needs to put the sample back if the block was one (a reallocation
/// that fails leaves the block with its caller).
#[cold]
#[inline(never)]
pub(crate) fn on_free_slow(ptr: *mut u8) -> Option<Taken> {
    locked_from_allocator(|inner| inner.free(ptr as usize)).flatten()
}

/// A live sample that [`on_free_slow`] took out of the tables: its bucket, and the tables'
/// clears when it was taken (a bucket index means nothing after a clear).
#[derive(Clone, Copy)]
pub(crate) struct Taken {
    bucket: usize,
    clears: u64,
}

/// Puts back the sample at `ptr` that [`on_free_slow`] took, undoing its free: the
/// reallocation it was taken for failed, so the block is still live at `ptr` (and no other
/// block can be there). Nothing if the tables were cleared since.
#[cold]
#[inline(never)]
pub(crate) fn restore(ptr: *mut u8, taken: Taken) {
    locked_from_allocator(|inner| inner.restore(ptr as usize, taken));
}

/// Runs `f` on the tables with their lock held, from a free or a reallocation: `None`
/// if this thread is in the profiler already (its allocator calls pass through
/// unrecorded, so the lock is never requested twice on one thread) or no tables exist.
#[inline(always)] // into the cold functions above
fn locked_from_allocator<R>(f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    if IN_PROFILER.get() {
        return None;
    }
    IN_PROFILER.set(true);
    let r = TABLES.get().map(|t| {
        let _lock = t.lock();
        // SAFETY: the lock is held.
        f(unsafe { &mut *t.inner.get() })
    });
    IN_PROFILER.set(false);
    r
}

/// A countdown drawn from an exponential distribution with mean `rate`.
fn draw(rate: usize) -> u64 {
    if rate <= 1 {
        return 0;
    }
    let mut x = RNG.get();
    if x == 0 {
        // splitmix64 of a global counter: distinct, well-mixed seeds per thread.
        let mut z = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x = (z ^ (z >> 31)) | 1;
    }
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    RNG.set(x);
    let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11; // 53 random bits
    let u = (bits as f64 + 0.5) / (1u64 << 53) as f64; // in (0, 1)
    (-u.ln() * rate as f64) as u64
}

fn hash_stack(stack: &[u64], size: usize) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ size as u64;
    for &pc in stack {
        h = (h ^ pc).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    h
}

/// A (stack, size) bucket. All-zero is a valid empty value.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Bucket {
    pub hash: u64,
    pub size: u64,
    pub depth: u64,
    pub allocs: u64,
    pub frees: u64,
    pub stack: [u64; MAX_DEPTH],
}

/// A live sampled object. `ptr == 0`: empty slot.
#[derive(Clone, Copy)]
#[repr(C)]
struct Live {
    ptr: u64,
    bucket: u64,
}

struct Inner {
    buckets: &'static mut [Bucket],
    used_buckets: usize,
    /// Bucket index + 1 per slot, 0 = empty; open addressing on the bucket hash.
    index: &'static mut [u32],
    live: &'static mut [Live],
    live_count: usize,
    /// The free gate's writer side: every live object is in it.
    filters: Filters,
    /// Samples not recorded because a table was full.
    dropped: u64,
    /// Samples whose stack the fast unwinder could not walk (libgcc's was used).
    slow_captures: u64,
    /// How many times the tables were cleared (a [`Taken`] is for one of them).
    clears: u64,
}

/// The tables, made once; everything in `inner` is accessed with `lock` held.
struct Tables {
    lock: AtomicBool,
    inner: UnsafeCell<Inner>,
}

// SAFETY: `inner` is only accessed while `lock` is held (see `Tables::lock`), which makes
// the accesses of different threads ordered.
unsafe impl Sync for Tables {}

static TABLES: OnceLock<Tables> = OnceLock::new();

struct LockGuard<'a>(&'a AtomicBool);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Tables {
    /// Takes the lock. Every caller has set `IN_PROFILER` on its thread first, so nothing
    /// that interrupts it on this thread (a signal handler's allocation) can wait for it.
    fn lock(&self) -> LockGuard<'_> {
        debug_assert!(IN_PROFILER.get());
        let mut spins = 0u32;
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 100 {
                spin_loop();
            } else {
                // The holder may have been descheduled: let it run.
                std::thread::yield_now();
            }
        }
        LockGuard(&self.lock)
    }
}

/// `fork()`: the forking thread holds the lock across the fork, so the tables are
/// consistent on both sides and the child's lock is free (see `sys::fork`). A child keeps
/// sampling at the parent's rate, and its heap profile keeps the sampled objects it
/// inherited (they are in its heap too).
static FORK_HANDLERS: crate::sys::fork::Handlers = crate::sys::fork::Handlers {
    prepare: fork_prepare,
    parent: fork_release,
    child: fork_release,
};

thread_local! {
    /// `IN_PROFILER` as it was before `fork_prepare` set it.
    static FORK_WAS_IN_PROFILER: Cell<bool> = const { Cell::new(false) };
}

fn fork_prepare() {
    // Allocations by later prepare handlers on this thread pass through unrecorded,
    // rather than wait for the lock this thread holds.
    FORK_WAS_IN_PROFILER.set(IN_PROFILER.replace(true));
    if let Some(t) = TABLES.get() {
        std::mem::forget(t.lock());
    }
}

fn fork_release() {
    if let Some(t) = TABLES.get() {
        t.lock.store(false, Ordering::Release);
    }
    IN_PROFILER.set(FORK_WAS_IN_PROFILER.get());
}

/// Bytes reserved by the tables (most of it untouched, hence not resident, until used).
pub(crate) fn reserved_bytes() -> usize {
    MAX_BUCKETS * size_of::<Bucket>()
        + BUCKET_INDEX_SLOTS * size_of::<u32>()
        + LIVE_SLOTS * size_of::<Live>()
        + filter::RESERVED_BYTES
}

impl Inner {
    /// Empty tables (fresh anonymous mappings), whose live objects `gate` shows to frees.
    fn new(gate: &'static Gate) -> Inner {
        Inner {
            buckets: zeroed(MAX_BUCKETS),
            used_buckets: 0,
            index: zeroed(BUCKET_INDEX_SLOTS),
            live: zeroed(LIVE_SLOTS),
            live_count: 0,
            filters: Filters::new(gate),
            dropped: 0,
            slow_captures: 0,
            clears: 0,
        }
    }

    fn bucket_for(&mut self, stack: &[u64], size: usize) -> Option<usize> {
        let hash = hash_stack(stack, size);
        let mask = BUCKET_INDEX_SLOTS - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.index[slot] {
                0 => break,
                n => {
                    let b = &self.buckets[n as usize - 1];
                    if b.hash == hash
                        && b.size == size as u64
                        && b.stack[..b.depth as usize] == *stack
                    {
                        return Some(n as usize - 1);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        if self.used_buckets == MAX_BUCKETS {
            return None;
        }
        let i = self.used_buckets;
        self.used_buckets += 1;
        let b = &mut self.buckets[i];
        b.hash = hash;
        b.size = size as u64;
        b.depth = stack.len() as u64;
        b.stack[..stack.len()].copy_from_slice(stack);
        self.index[slot] = i as u32 + 1;
        Some(i)
    }

    fn record(&mut self, ptr: usize, size: usize, stack: &[u64]) {
        if self.live_count >= MAX_LIVE {
            self.dropped += 1;
            return;
        }
        let Some(bucket) = self.bucket_for(stack, size) else {
            self.dropped += 1;
            return;
        };
        self.buckets[bucket].allocs += 1;
        self.link(ptr, bucket);
    }

    /// Puts back a sample [`Self::free`] took (its free undone), if no clear came between.
    fn restore(&mut self, ptr: usize, taken: Taken) {
        if taken.clears != self.clears {
            return;
        }
        if self.live_count >= MAX_LIVE {
            // Full since: the free stands (as if the block had been freed untracked).
            self.dropped += 1;
            return;
        }
        self.buckets[taken.bucket].frees -= 1;
        self.link(ptr, taken.bucket);
    }

    /// Enters a live sample of `bucket` at `ptr` in the live table and the free gate.
    fn link(&mut self, ptr: usize, bucket: usize) {
        let size = self.buckets[bucket].size as usize;
        let live = &*self.live;
        self.filters
            .make_room(|| live.iter().filter(|l| l.ptr != 0).map(|l| l.ptr as usize));
        let mask = LIVE_SLOTS - 1;
        let mut slot = live_slot(ptr);
        while self.live[slot].ptr != 0 {
            if self.live[slot].ptr == ptr as u64 {
                // A stale entry for a block freed while untracked; reuse it.
                let stale = self.live[slot];
                self.unlink(ptr, stale.bucket as usize);
                self.live_count -= 1;
                break;
            }
            slot = (slot + 1) & mask;
        }
        self.live[slot] = Live {
            ptr: ptr as u64,
            bucket: bucket as u64,
        };
        self.live_count += 1;
        self.filters.insert(ptr, size);
    }

    /// Takes a live object out of the free gate.
    fn unlink(&mut self, ptr: usize, bucket: usize) {
        self.filters.remove(ptr, self.buckets[bucket].size as usize);
    }

    /// The free of the block at `ptr`: if it is a live sample, its bucket counts the free
    /// and it leaves the live table and the gate (returned, for [`Self::restore`]).
    fn free(&mut self, ptr: usize) -> Option<Taken> {
        let mask = LIVE_SLOTS - 1;
        let mut slot = live_slot(ptr);
        loop {
            let e = self.live[slot];
            if e.ptr == 0 {
                return None; // not sampled: a filter false positive
            }
            if e.ptr == ptr as u64 {
                self.buckets[e.bucket as usize].frees += 1;
                self.unlink(ptr, e.bucket as usize);
                self.live_count -= 1;
                self.remove_slot(slot);
                return Some(Taken {
                    bucket: e.bucket as usize,
                    clears: self.clears,
                });
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Linear-probing deletion by backward shift: no tombstones, probes stay short.
    fn remove_slot(&mut self, mut hole: usize) {
        let mask = LIVE_SLOTS - 1;
        let mut next = (hole + 1) & mask;
        loop {
            let e = self.live[next];
            if e.ptr == 0 {
                break;
            }
            let home = live_slot(e.ptr as usize);
            // Move `e` into the hole if its home is not in (hole, next].
            let in_range = if hole <= next {
                home > hole && home <= next
            } else {
                home > hole || home <= next
            };
            if !in_range {
                self.live[hole] = e;
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.live[hole] = Live { ptr: 0, bucket: 0 };
    }

    /// Empties the tables, writing only what was used (untouched pages stay
    /// non-resident).
    fn clear(&mut self) {
        if self.used_buckets > 0 {
            self.buckets[..self.used_buckets].fill(Bucket::EMPTY);
            self.index.fill(0);
            self.used_buckets = 0;
        }
        // Backward-shift deletion leaves no residue: with no live entry, it is all zero.
        if self.live_count > 0 {
            self.live.fill(Live { ptr: 0, bucket: 0 });
            self.live_count = 0;
        }
        self.filters.clear();
        self.dropped = 0;
        self.slow_captures = 0;
        self.clears += 1;
    }
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        hash: 0,
        size: 0,
        depth: 0,
        allocs: 0,
        frees: 0,
        stack: [0; MAX_DEPTH],
    };
}

fn live_slot(ptr: usize) -> usize {
    ((ptr as u64).wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) as usize & (LIVE_SLOTS - 1)
}

/// Captures the stack (outside the lock: the walk is lock-free) and records a sample.
fn record(ptr: usize, size: usize) {
    if let Some(t) = TABLES.get() {
        let mut stack = [0u64; MAX_DEPTH];
        let (depth, fast) = crate::sys::stack::capture_here(&mut stack);
        let _lock = t.lock();
        // SAFETY: the lock is held.
        let inner = unsafe { &mut *t.inner.get() };
        if !fast {
            inner.slow_captures += 1;
        }
        inner.record(ptr, size, &stack[..depth]);
    }
}

/// Runs `f` with this thread's allocations passing through unrecorded (the profiler's
/// own work on an ordinary thread: making tables, copying a snapshot).
fn unrecorded<R>(f: impl FnOnce() -> R) -> R {
    let was = IN_PROFILER.replace(true);
    let r = f();
    IN_PROFILER.set(was);
    r
}

/// Whether the wrapper is the global allocator: probes with one allocation.
pub(crate) fn installed() -> bool {
    if INSTALLED.load(Ordering::Relaxed) {
        return true;
    }
    CONTROL.fetch_add(PROBE, Ordering::SeqCst);
    // Make this thread's next allocation take the slow path, where the probe is seen.
    let left = COUNTDOWN.replace(0);
    let probe = std::hint::black_box(Box::new(0u64));
    COUNTDOWN.set(left);
    drop(probe);
    CONTROL.fetch_sub(PROBE, Ordering::SeqCst);
    INSTALLED.load(Ordering::Relaxed)
}

/// The current rate (0 = off).
pub(crate) fn rate() -> usize {
    RATE.load(Ordering::Relaxed)
}

/// Serializes rate changes.
static SETTING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
/// Some code set the rate (to anything, 0 included): a default must not override it.
static EVER_SET: AtomicBool = AtomicBool::new(false);

/// Sets the rate; returns the previous one. The caller has checked `installed()` for a
/// nonzero rate. A change clears the tables (see the module docs).
pub(crate) fn set_rate(rate: usize) -> usize {
    let _one_at_a_time = SETTING.lock();
    EVER_SET.store(true, Ordering::Relaxed);
    set_rate_locked(rate)
}

/// Starts sampling at `rate` if the wrapper is installed and no code has ever set a rate
/// (Go samples the heap by default; the HTTP endpoints call this). Returns whether it
/// did.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn default_rate_if_never_set(rate: usize) -> bool {
    let _one_at_a_time = SETTING.lock();
    if EVER_SET.load(Ordering::Relaxed) || RATE.load(Ordering::Relaxed) != 0 || !installed() {
        return false;
    }
    set_rate_locked(rate);
    true
}

fn set_rate_locked(rate: usize) -> usize {
    let previous = RATE.load(Ordering::Relaxed);
    if previous == rate {
        return previous;
    }
    let tables = unrecorded(|| {
        TABLES.get_or_init(|| {
            // A fork while another thread holds the lock would leave it held in the child.
            let _ = crate::sys::fork::register(crate::sys::fork::Slot::Heap, &FORK_HANDLERS);
            Tables {
                lock: AtomicBool::new(false),
                inner: UnsafeCell::new(Inner::new(&GATE)),
            }
        })
    });
    // A walker for the objects loaded now (kept if none was loaded or unloaded since:
    // its rule caches stay warm).
    if rate != 0 {
        unrecorded(crate::sys::stack::prepare_here);
    }
    // Stop sampling, clear, then start again at the new rate.
    CONTROL.fetch_and(!ENABLED, Ordering::SeqCst);
    RATE.store(rate, Ordering::SeqCst);
    GENERATION.fetch_add(1, Ordering::SeqCst);
    unrecorded(|| {
        let _lock = tables.lock();
        // SAFETY: the lock is held.
        unsafe { &mut *tables.inner.get() }.clear();
    });
    if rate != 0 {
        CONTROL.fetch_or(ENABLED, Ordering::SeqCst);
    }
    // This thread starts on the new rate at once (others within CHECK_EVERY bytes).
    COUNTDOWN.set(0);
    REMAINDER.set(0);
    DRAWN_FOR.set(0);
    previous
}

/// The tables' counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub live: usize,
    pub buckets: usize,
    pub dropped: u64,
    pub slow_captures: u64,
    /// The tables exist (their memory is reserved).
    pub allocated: bool,
}

pub(crate) fn counters() -> Counters {
    let Some(t) = TABLES.get() else {
        return Counters::default();
    };
    unrecorded(|| {
        let _lock = t.lock();
        // SAFETY: the lock is held.
        let inner = unsafe { &*t.inner.get() };
        Counters {
            live: inner.live_count,
            buckets: inner.used_buckets,
            dropped: inner.dropped,
            slow_captures: inner.slow_captures,
            allocated: true,
        }
    })
}

/// A copy of the tables' contents.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // read by the Linux backend
pub(crate) struct Snapshot {
    pub rate: usize,
    pub buckets: Vec<Bucket>,
    pub dropped: u64,
}

/// Copies the buckets (with this thread's allocations unrecorded while the lock is held).
pub(crate) fn snapshot() -> Snapshot {
    let rate = rate();
    let Some(t) = TABLES.get() else {
        return Snapshot {
            rate,
            buckets: Vec::new(),
            dropped: 0,
        };
    };
    unrecorded(|| {
        let _lock = t.lock();
        // SAFETY: the lock is held.
        let inner = unsafe { &*t.inner.get() };
        Snapshot {
            rate,
            buckets: inner.buckets[..inner.used_buckets].to_vec(),
            dropped: inner.dropped,
        }
    })
}

/// Go's `scaleHeapSample`: the unbiased (count, bytes) of `count` sampled objects totalling
/// `bytes`, each sampled with probability `1 - exp(-avg / rate)`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the Linux backend
pub(crate) fn scale(count: u64, bytes: u64, rate: usize) -> (i64, i64) {
    if count == 0 || bytes == 0 {
        return (0, 0);
    }
    if rate <= 1 {
        return (count as i64, bytes as i64);
    }
    let avg = bytes as f64 / count as f64;
    let scale = 1.0 / (1.0 - (-avg / rate as f64).exp());
    ((count as f64 * scale) as i64, (bytes as f64 * scale) as i64)
}

#[cfg(test)]
mod tests {
    /// The docs quote `CHECK_EVERY`: they change with it.
    #[test]
    fn the_docs_quote_check_every() {
        let quoted = format!("`CHECK_EVERY` ({} KiB)", super::CHECK_EVERY >> 10);
        for (name, text) in [
            (
                "docs/architecture.md",
                include_str!("../../docs/architecture.md"),
            ),
            ("src/heap/sampler.rs", include_str!("sampler.rs")),
        ] {
            assert!(text.contains(&quoted), "{name} does not say {quoted}");
        }
    }

    use super::*;

    #[test]
    fn scale_matches_go() {
        // rate 512 KiB, 4 KiB objects: p = 1 - exp(-1/128).
        let (n, b) = scale(32, 32 * 4096, 512 * 1024);
        let p = 1.0 - (-4096.0f64 / (512.0 * 1024.0)).exp();
        assert_eq!(n, (32.0 / p) as i64);
        assert_eq!(b, (32.0 * 4096.0 / p) as i64);
        assert_eq!(scale(0, 0, 512 * 1024), (0, 0));
        assert_eq!(scale(5, 0, 512 * 1024), (0, 0));
        assert_eq!(scale(7, 700, 1), (7, 700), "rate 1 is not scaled");
        // Objects far larger than the rate are always sampled: scale ~1.
        assert_eq!(scale(3, 3 << 30, 512 * 1024), (3, 3 << 30));
    }

    #[test]
    fn draws_have_the_requested_mean() {
        let rate = 512 * 1024;
        let n = 200_000;
        let sum: f64 = (0..n).map(|_| draw(rate) as f64).sum();
        let mean = sum / n as f64;
        // Standard error of the mean: rate / sqrt(n) ≈ 0.22% of rate.
        assert!((mean / rate as f64 - 1.0).abs() < 0.01, "mean {mean}");
        assert_eq!(draw(1), 0);
    }

    #[test]
    fn sampling_path_does_not_allocate() {
        // The unit tests' global allocator is the counting one, not the wrapper, so only
        // the calls below reach the sampler. Rate 1: every allocation is sampled, so the
        // whole path runs (countdown, stack capture, lock, tables).
        let previous = set_rate(1);
        let fake = 0x7000_0000_1230usize as *mut u8;
        let before = crate::test_alloc::allocations();
        on_alloc(fake, 48);
        on_free(fake, 48);
        on_alloc(fake, 48);
        let after = crate::test_alloc::allocations();
        assert_eq!(after - before, 0, "the sampling path allocated");
        let snap = snapshot();
        // Two call sites: two stacks, two buckets of size 48.
        let ours: Vec<&Bucket> = snap.buckets.iter().filter(|b| b.size == 48).collect();
        assert_eq!(ours.len(), 2, "the samples were recorded");
        let allocs: u64 = ours.iter().map(|b| b.allocs).sum();
        let frees: u64 = ours.iter().map(|b| b.frees).sum();
        assert_eq!((allocs, frees), (2, 1));
        assert!(ours.iter().all(|b| b.depth > 3), "stacks were captured");
        on_free(fake, 48);
        set_rate(previous);
    }

    #[test]
    fn live_table_insert_free_and_backward_shift() {
        let mut inner = Inner::new(Box::leak(Box::new(Gate::new())));
        let stack = [0x1000, 0x2000];
        // Many pointers, some colliding in the live table, then free every other one.
        let ptrs: Vec<usize> = (1..=5000).map(|i| i * 16).collect();
        for &p in &ptrs {
            inner.record(p, 16, &stack);
        }
        assert_eq!(inner.used_buckets, 1, "one (stack, size) bucket");
        assert_eq!(inner.buckets[0].allocs, 5000);
        for &p in ptrs.iter().step_by(2) {
            inner.free(p);
        }
        assert_eq!(inner.buckets[0].frees, 2500);
        assert_eq!(inner.live_count, 2500);
        // Every remaining pointer is still found after the shifts.
        for &p in ptrs.iter().skip(1).step_by(2) {
            inner.free(p);
        }
        assert_eq!(inner.buckets[0].frees, 5000);
        assert_eq!(inner.live_count, 0);
        assert!(inner.live.iter().all(|l| l.ptr == 0));
        assert_eq!(
            inner.filters.level(),
            1,
            "5 000 live samples grew the filter"
        );
        assert!(inner.filters.is_empty());
        // Freeing an unknown pointer changes nothing.
        inner.free(12345);
        assert_eq!(inner.buckets[0].frees, 5000);
        // A different size from the same stack is another bucket.
        inner.record(0x99990, 32, &stack);
        assert_eq!(inner.used_buckets, 2);
    }

    #[test]
    fn a_taken_sample_is_restored_unless_the_tables_were_cleared() {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new()));
        let mut inner = Inner::new(gate);
        let stack = [0x1000, 0x2000];
        inner.record(0x5000, 64, &stack);
        let taken = inner.free(0x5000).expect("a live sample");
        assert_eq!((inner.live_count, inner.buckets[0].frees), (0, 1));
        assert!(!gate.size_may_hold(64), "out of the gate");
        inner.restore(0x5000, taken);
        assert_eq!((inner.live_count, inner.buckets[0].frees), (1, 0));
        assert_eq!(inner.buckets[0].allocs, 1, "not a second allocation");
        assert!(
            gate.size_may_hold(64) && gate.filter_has(0x5000),
            "back in the gate"
        );
        // Freed for good later: found again.
        let taken = inner.free(0x5000).expect("restored");
        // A clear between the take and the restore: the bucket is gone, nothing is put back.
        inner.clear();
        inner.record(0x7000, 128, &[0x3000]);
        inner.restore(0x5000, taken);
        assert_eq!(inner.live_count, 1);
        assert_eq!(inner.buckets[0].frees, 0);
        assert!(inner.free(0x5000).is_none());
        assert!(inner.free(12345).is_none(), "not a sample");
    }
}
