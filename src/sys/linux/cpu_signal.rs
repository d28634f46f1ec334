//! The CPU sampler's signal side: the SIGPROF handler that per-thread CPU timers fire,
//! the lock-free buffer it writes samples into, and the shared state it reads.
//!
//! # Layering rule
//!
//! [`handler`] runs on whichever thread's timer fired, at any instruction — inside
//! `malloc`, the dynamic loader, a lock holder, the heap profiler: it must not allocate,
//! take a lock, format or log. It uses atomics, `gettid`, `prctl(PR_GET_NAME)`,
//! `clock_gettime`, one `Arc` increment (the thread's labels), a [`Walker`] (copied
//! unwind sections, bounded stack reads) with a cache claimed from a pool by CAS, and a
//! slot of the ring claimed by CAS. No handler waits for another: two threads sampling at
//! once each get their own ring slot and cache.
//!
//! # Shared state and its lifetime
//!
//! ```text
//!   handler:  e = EPOCH & 1; READERS[e] += 1; if ENABLED { read WALKER, RING } READERS[e] -= 1
//!   manager:  publish(new walker): old = WALKER.swap(new); EPOCH += 1; wait READERS[old e] == 0; free old
//!   stop:     ENABLED = false; quiesce (both parities drained); free RING and WALKER
//! ```
//!
//! A two-counter grace period (userspace RCU): a handler that could still hold the old
//! walker counted itself in the old parity before the flip; one that counts itself after
//! the flip reads the new pointer.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use nix::libc;

use super::sigsafe::{monotonic_nanos, thread_cpu_nanos, timespec, xorshift};
use super::stack::{self, MAX_FRAMES, Walker};
use crate::labels::{self, LabelSet};

/// One sample as the handler writes it.
pub(crate) struct Sample {
    pub tid: i32,
    /// The periods of CPU time this sample stands for (sampling points passed; see
    /// `own_timer`).
    pub weight: u32,
    /// `weight` × the period: what `cpu/nanoseconds` adds up.
    pub nanos: u64,
    /// When it was taken (CLOCK_MONOTONIC, nanoseconds).
    pub at_nanos: u64,
    /// Taken by the process-wide timer on a thread without its own timer yet.
    pub untimed: bool,
    pub len: u32,
    /// False when the walk stopped early (or no cache was free: leaf only).
    pub complete: bool,
    /// The thread's name (`comm`), NUL-padded.
    pub name: [u8; 16],
    /// The thread's labels, one reference (from `labels::acquire_current`), or null.
    pub labels: *const LabelSet,
    /// Leaf first; the first is the exact interrupted instruction.
    pub frames: [u64; MAX_FRAMES],
}

struct Slot {
    /// Vyukov's bounded-queue sequence: `pos` free for the producer of `pos`, `pos + 1`
    /// written, `pos + capacity` free again for the next lap.
    seq: AtomicUsize,
    sample: UnsafeCell<Sample>,
}

/// A bounded multi-producer, single-consumer queue of samples (Vyukov's): producers claim
/// a slot with one CAS on `head` and publish it with one store; a full queue is reported
/// to the producer, which counts the sample as lost.
pub(crate) struct Ring {
    slots: Box<[Slot]>,
    mask: usize,
    head: AtomicUsize,
    /// The consumer's position (only the manager thread moves it).
    tail: AtomicUsize,
}

// SAFETY: a slot's sample is written only by the producer that claimed it (CAS on head)
// and read only by the one consumer after the producer's release store of `seq`.
unsafe impl Sync for Ring {}

impl Ring {
    /// A ring of `capacity` (rounded up to a power of two) samples.
    pub(crate) fn new(capacity: usize) -> Ring {
        let capacity = capacity.next_power_of_two();
        let slots = (0..capacity)
            .map(|i| Slot {
                seq: AtomicUsize::new(i),
                sample: UnsafeCell::new(Sample {
                    tid: 0,
                    weight: 0,
                    nanos: 0,
                    at_nanos: 0,
                    untimed: false,
                    len: 0,
                    complete: false,
                    name: [0; 16],
                    labels: std::ptr::null(),
                    frames: [0; MAX_FRAMES],
                }),
            })
            .collect();
        Ring {
            slots,
            mask: capacity - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Claims a free slot (producer side); `None` when the ring is full.
    fn reserve(&self) -> Option<(usize, &Slot)> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            match (seq as isize).wrapping_sub(pos as isize) {
                0 => match self.head.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((pos, slot)),
                    Err(now) => pos = now,
                },
                d if d < 0 => return None,
                _ => pos = self.head.load(Ordering::Relaxed),
            }
        }
    }

    /// Takes the samples written so far, in order, up to the first one still being
    /// written (consumer side: the manager thread only).
    pub(crate) fn drain(&self, mut f: impl FnMut(&Sample)) {
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            if slot.seq.load(Ordering::Acquire) != pos + 1 {
                break;
            }
            // SAFETY: seq == pos + 1: the producer finished writing (release store) and
            // no producer reuses the slot before we store the next lap's sequence.
            f(unsafe { &*slot.sample.get() });
            slot.seq.store(pos + self.mask + 1, Ordering::Release);
            pos += 1;
        }
        self.tail.store(pos, Ordering::Relaxed);
    }
}

/// Set while sampling; the handler does nothing when clear.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Numbers sampling sessions (from 1): a thread's cached identity is for one session.
static SESSION: AtomicU64 = AtomicU64::new(0);
/// The threads that have their own timer, with their timer's slot in `TIMERS`: a
/// lock-free open-addressing set of tids that only the manager thread writes and the
/// handler reads.
pub(crate) mod timed {
    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

    const SLOTS: usize = 8192;
    const EMPTY: i32 = 0;
    const REMOVED: i32 = -1;
    /// More members than this and the set reports itself full (probes stay short).
    pub(crate) const CAPACITY: usize = SLOTS / 2;

    static TABLE: [AtomicI32; SLOTS] = [const { AtomicI32::new(EMPTY) }; SLOTS];
    /// The timer slot of the tid at the same index (written before the tid).
    static TIMER_SLOT: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
    static MEMBERS: AtomicUsize = AtomicUsize::new(0);
    static TOMBSTONES: AtomicUsize = AtomicUsize::new(0);

    fn start(tid: i32) -> usize {
        (tid as u32).wrapping_mul(0x9e37_79b9) as usize % SLOTS
    }

    /// `tid`'s timer slot if it is in the set (handler side: loads only, bounded
    /// probes).
    pub(crate) fn slot_of(tid: i32) -> Option<usize> {
        let first = start(tid);
        for i in 0..SLOTS {
            let at = (first + i) % SLOTS;
            match TABLE[at].load(Ordering::Acquire) {
                EMPTY => return None,
                t if t == tid => return Some(TIMER_SLOT[at].load(Ordering::Relaxed)),
                _ => {}
            }
        }
        None
    }

    /// Adds `tid` with its timer slot (manager only); false if the set is full.
    pub(crate) fn insert(tid: i32, timer_slot: usize) -> bool {
        if MEMBERS.load(Ordering::Relaxed) >= CAPACITY {
            return false;
        }
        if TOMBSTONES.load(Ordering::Relaxed) > SLOTS / 4 {
            rebuild();
        }
        let first = start(tid);
        for i in 0..SLOTS {
            let slot = &TABLE[(first + i) % SLOTS];
            match slot.load(Ordering::Relaxed) {
                t if t == tid => {
                    TIMER_SLOT[(first + i) % SLOTS].store(timer_slot, Ordering::Relaxed);
                    return true;
                }
                EMPTY => {
                    TIMER_SLOT[(first + i) % SLOTS].store(timer_slot, Ordering::Relaxed);
                    slot.store(tid, Ordering::Release);
                    MEMBERS.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Removes `tid` (manager only).
    pub(crate) fn remove(tid: i32) {
        let first = start(tid);
        for i in 0..SLOTS {
            let slot = &TABLE[(first + i) % SLOTS];
            match slot.load(Ordering::Relaxed) {
                EMPTY => return,
                t if t == tid => {
                    slot.store(REMOVED, Ordering::Release);
                    MEMBERS.fetch_sub(1, Ordering::Relaxed);
                    TOMBSTONES.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                _ => {}
            }
        }
    }

    /// Empties the set (manager only, when sampling stops).
    pub(crate) fn clear() {
        for slot in &TABLE {
            slot.store(EMPTY, Ordering::Release);
        }
        MEMBERS.store(0, Ordering::Relaxed);
        TOMBSTONES.store(0, Ordering::Relaxed);
    }

    /// Rewrites the table without tombstones. A handler looking up meanwhile may miss a
    /// member: at worst one process-timer sample is kept for a thread that has a timer.
    fn rebuild() {
        let members: Vec<(i32, usize)> = TABLE
            .iter()
            .zip(&TIMER_SLOT)
            .map(|(s, t)| (s.load(Ordering::Relaxed), t.load(Ordering::Relaxed)))
            .filter(|&(t, _)| t != EMPTY && t != REMOVED)
            .collect();
        clear();
        for (tid, slot) in members {
            insert(tid, slot);
        }
    }
}

static EPOCH: AtomicUsize = AtomicUsize::new(0);
static READERS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static WALKER: AtomicPtr<Walker> = AtomicPtr::new(std::ptr::null_mut());
static RING: AtomicPtr<Ring> = AtomicPtr::new(std::ptr::null_mut());
/// What the handler counted since the last [`reset_stats`].
pub(crate) struct Stats {
    /// Timer signals handled while enabled that counted CPU (weight > 0).
    pub signals: AtomicU64,
    /// Σ weight and Σ CPU nanoseconds of samples lost because the ring was full.
    pub lost: AtomicU64,
    pub lost_nanos: AtomicU64,
    /// Samples recorded with the leaf only because every cache was in use.
    pub no_cache: AtomicU64,
    /// Σ nanoseconds spent in the handler, and Σ frames walked.
    pub handler_nanos: AtomicU64,
    pub frames: AtomicU64,
    /// Samples by time in the handler: bucket i counts [i, i+1) × `HISTOGRAM_STEP_NANOS`,
    /// the last one everything longer (a preempted handler's time is wall time).
    pub histogram: [AtomicU64; HISTOGRAM_BUCKETS],
}

/// Width of a handler-time histogram bucket.
pub(crate) const HISTOGRAM_STEP_NANOS: u64 = 250;
/// Buckets: 0..16 µs, then one for longer.
pub(crate) const HISTOGRAM_BUCKETS: usize = 65;

pub(crate) static STATS: Stats = Stats {
    signals: AtomicU64::new(0),
    lost: AtomicU64::new(0),
    lost_nanos: AtomicU64::new(0),
    no_cache: AtomicU64::new(0),
    handler_nanos: AtomicU64::new(0),
    frames: AtomicU64::new(0),
    histogram: [const { AtomicU64::new(0) }; HISTOGRAM_BUCKETS],
};

pub(crate) fn reset_stats() {
    for c in [
        &STATS.signals,
        &STATS.lost,
        &STATS.lost_nanos,
        &STATS.no_cache,
        &STATS.handler_nanos,
        &STATS.frames,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    for c in &STATS.histogram {
        c.store(0, Ordering::Relaxed);
    }
}

/// The SIGPROF handler. See the layering rule in the module docs.
pub(crate) extern "C" fn handler(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
) {
    // SAFETY: this thread's errno, saved and restored around our syscalls.
    let errno = unsafe { *libc::__errno_location() };
    let e = EPOCH.load(Ordering::SeqCst) & 1;
    READERS[e].fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let info = unsafe { &*info };
    if ENABLED.load(Ordering::SeqCst) {
        let period = PERIOD_NANOS.load(Ordering::Relaxed);
        let mut untimed = false;
        let taken = match info.si_code {
            // This thread's own CPU timer: the periods of CPU time measured since the
            // thread's previous sample; the timer is re-armed with a random delay (see
            // `own_timer`).
            libc::SI_TIMER => {
                // SAFETY: a timer signal's siginfo has this field.
                let slot = unsafe { info.si_value().sival_ptr } as usize;
                match own_timer(slot, period) {
                    0 => None, // its time is carried to the thread's next sample
                    periods => Some((periods, u64::from(periods) * period)),
                }
            }
            // The process-wide ITIMER_PROF, which covers threads in the few milliseconds
            // before the manager gives them a timer (and threads that end before). On a
            // thread that has one, the untimed part of the stretch is carried to the next
            // process-timer signal on an untimed thread, and the signal serves as one
            // more of the thread's own (its schedule's points passed so far): on a busy
            // machine its own come seldom (see `Collected::add_tail` in cpu.rs).
            libc::SI_KERNEL => {
                let elapsed = process_elapsed();
                match timed::slot_of(thread_identity().0) {
                    Some(slot) => {
                        UNTIMED_CARRY.fetch_add(elapsed as i64, Ordering::Relaxed);
                        // Its timer is whole once its id is published.
                        let ready = TIMERS
                            .get(slot)
                            .is_some_and(|t| t.id.load(Ordering::Acquire) != 0);
                        // Even with no point passed, a sample of weight 0 tells the
                        // manager where the thread is, for its tail if it exits before
                        // its next signal (the manager adds no zero rows to the profile).
                        ready
                            .then(|| own_timer(slot, period))
                            .map(|periods| (periods, u64::from(periods) * period))
                    }
                    None => {
                        untimed = true;
                        let periods = process_timer(period, elapsed);
                        Some((periods, u64::from(periods) * period))
                    }
                }
            }
            // A `kill -PROF`, or the process timer on a thread with its own.
            _ => None,
        };
        if let Some((weight, nanos)) = taken {
            // SAFETY: `uc` is this handler's context; counted in READERS, so WALKER and
            // RING stay alive until we leave.
            unsafe { sample(weight, nanos, untimed, uc.cast()) };
        }
    }
    READERS[e].fetch_sub(1, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Records one sample.
///
/// # Safety
///
/// Called from [`handler`] with its context, while counted in `READERS`.
unsafe fn sample(weight: u32, nanos: u64, untimed: bool, uc: *const libc::ucontext_t) {
    let start = monotonic_nanos();
    if weight > 0 {
        // Signals that counted CPU; the weight-0 ones only say where a thread is.
        STATS.signals.fetch_add(1, Ordering::Relaxed);
    }
    let ring = RING.load(Ordering::SeqCst);
    let walker = WALKER.load(Ordering::SeqCst);
    // SAFETY: non-null pointers here are alive while we are counted in READERS.
    let (Some(ring), walker) = (unsafe { ring.as_ref() }, unsafe { walker.as_ref() }) else {
        return;
    };
    let Some((pos, slot)) = ring.reserve() else {
        STATS.lost.fetch_add(u64::from(weight), Ordering::Relaxed);
        STATS.lost_nanos.fetch_add(nanos, Ordering::Relaxed);
        return;
    };
    // SAFETY: the slot is ours until we publish it (we won the CAS on head).
    let s = unsafe { &mut *slot.sample.get() };
    (s.tid, s.name) = thread_identity();
    s.weight = weight;
    s.nanos = nanos;
    s.at_nanos = start;
    s.untimed = untimed;
    s.labels = labels::acquire_current();
    let (len, complete) = match (walker, stack::claim_cache(s.tid)) {
        (Some(walker), Some(mut claimed)) => {
            // SAFETY: `uc` is the handler's context.
            unsafe { walker.walk(claimed.cache(), uc, &mut s.frames) }
        }
        _ => {
            // No walker yet or every cache busy: the interrupted instruction alone.
            STATS.no_cache.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `uc` is the handler's context.
            match unsafe { stack::interrupted_pc(uc) } {
                Some(pc) => {
                    s.frames[0] = pc;
                    (1, false)
                }
                None => (0, false),
            }
        }
    };
    s.len = len as u32;
    s.complete = complete;
    slot.seq.store(pos + 1, Ordering::Release);
    if weight == 0 {
        // Not a sample of CPU (only where the thread is): kept out of the counts and
        // costs the profile reports per sample.
        return;
    }
    STATS.frames.fetch_add(len as u64, Ordering::Relaxed);
    let nanos = monotonic_nanos().saturating_sub(start);
    STATS.handler_nanos.fetch_add(nanos, Ordering::Relaxed);
    let bucket = ((nanos / HISTOGRAM_STEP_NANOS) as usize).min(HISTOGRAM_BUCKETS - 1);
    STATS.histogram[bucket].fetch_add(1, Ordering::Relaxed);
}

/// The per-thread timers, by the slot number each timer's signal carries (its
/// `sigev_value`): the kernel id of the timer and the thread's CPU time when it was made.
/// The manager fills a slot before arming the timer and empties it before deleting it.
pub(crate) struct TimerSlot {
    /// The timer id + 1 (kernel timer ids start at 0); 0 for none.
    pub id: AtomicUsize,
    /// The thread's CPU time at which the timer's first expiry was set.
    pub first_expiry_cpu_nanos: AtomicU64,
    /// The thread's CPU time counted so far by its timer's samples: when the timer was
    /// made (from there on its own timer, not the process timer, counts the thread), then
    /// at each of its signals. What the thread used after it is its *tail*, which the
    /// manager counts when the thread exits or sampling stops (see `Timers::tail`).
    pub reported_cpu_nanos: AtomicU64,
}

/// How many per-thread timers can exist at once (threads beyond it are sampled by the
/// process-wide timer only).
pub(crate) const MAX_TIMERS: usize = 8192;

pub(crate) static TIMERS: [TimerSlot; MAX_TIMERS] = [const {
    TimerSlot {
        id: AtomicUsize::new(0),
        first_expiry_cpu_nanos: AtomicU64::new(0),
        reported_cpu_nanos: AtomicU64::new(0),
    }
}; MAX_TIMERS];

/// The sampling period in nanoseconds (set by `enable`).
static PERIOD_NANOS: AtomicU64 = AtomicU64::new(10_000_000);

/// This thread's sampling schedule: for the timer in slot `slot` of session `session`,
/// the thread CPU time of the next sampling point; and its random-number state.
#[derive(Clone, Copy)]
struct CpuMark {
    session: u64,
    slot: usize,
    next_cpu_nanos: u64,
    rng: u64,
}

thread_local! {
    static MARK: Cell<CpuMark> = const {
        Cell::new(CpuMark {
            session: 0,
            slot: usize::MAX,
            next_cpu_nanos: 0,
            rng: 0,
        })
    };
}

/// The process's CPU time at the previous process-timer signal, on any thread.
static PROCESS_MARK: AtomicU64 = AtomicU64::new(0);
/// The CPU time of threads without their own timer not yet counted by a process-timer
/// sample: process CPU since the session began, less what timed threads have reported
/// of theirs (each at its own-timer signals), less what process-timer samples counted.
/// Signed: a timed thread reports its CPU at its next signal, so until then its time is
/// in here, and the reports that follow take it out again.
static UNTIMED_CARRY: AtomicI64 = AtomicI64::new(0);

/// For every process-timer signal: the process CPU time since the previous one (each
/// signal stands for that stretch, whichever thread it lands on).
fn process_elapsed() -> u64 {
    let now = super::sigsafe::clock_nanos(libc::CLOCK_PROCESS_CPUTIME_ID);
    now.saturating_sub(PROCESS_MARK.swap(now, Ordering::Relaxed))
}

/// For a process-timer signal on a thread without its own timer yet: the periods it
/// stands for — the untimed threads' CPU not yet counted (`UNTIMED_CARRY`, to which
/// `elapsed`, the process CPU since the previous process-timer signal, is added first) in
/// whole periods, the remainder carried to the next.
///
/// Why the process's time and not the thread's: ITIMER_PROF expires after each period of
/// the *process's* CPU and its signal goes to the thread running at that tick, so the
/// thread it lands on is a sample, drawn in proportion to CPU use, of where that stretch
/// of process CPU went (a 2 ms thread is hit in about one of five 10 ms stretches, and
/// then counts the whole stretch). Counting instead the receiving thread's own CPU since
/// its previous process-timer sample (as before) gave nothing to threads younger than half
/// a period (0.00 of the CPU of 2 ms threads, 0.60 of 20 ms ones); and at rates above the
/// tick, where one signal comes per tick for several periods, the stretch counts them all.
///
/// Why the untimed threads' CPU and not the whole stretch: on a busy machine the signal
/// often does not land on the thread that was running — preempted at the very tick that
/// expired the timer, it is still waiting for a CPU when it exits, and the kernel hands
/// the signal to another thread, typically one that has its own timer (the one that
/// joins it) — and meanwhile the further expiries are merged into the pending signal (26
/// signals for 2.1 s of CPU at 100 Hz, measured under four busy loops on two cores).
/// Dropping the stretches that landed on timed threads lost 40% of short threads' CPU
/// there. So the stretch is split: timed threads' CPU is theirs to count (they subtract
/// it as they report it), the rest waits in the carry for a signal on an untimed thread,
/// and no CPU is lost or counted twice, only possibly charged to a later untimed thread.
/// `nanos` of a timed thread's CPU were counted by its own samples (or its tail): not the
/// process timer's to count.
pub(crate) fn untimed_reported(nanos: u64) {
    UNTIMED_CARRY.fetch_sub(nanos.min(i64::MAX as u64) as i64, Ordering::Relaxed);
}

/// The untimed CPU no sample has counted (see `UNTIMED_CARRY`; read when sampling has
/// stopped, after the tails).
pub(crate) fn untimed_uncounted() -> i64 {
    UNTIMED_CARRY.load(Ordering::Relaxed)
}

fn process_timer(period: u64, elapsed: u64) -> u32 {
    let period = period.max(1) as i64;
    let total = UNTIMED_CARRY.fetch_add(elapsed as i64, Ordering::Relaxed) + elapsed as i64;
    if total < period {
        return 0;
    }
    let periods = total / period;
    UNTIMED_CARRY.fetch_sub(periods * period, Ordering::Relaxed);
    periods.min(i64::from(u32::MAX)) as u32
}

/// For a signal from this thread's own timer (in `slot`): how many sampling points of
/// the thread's schedule have passed (the periods this sample stands for), with the timer
/// re-armed for the next point.
///
/// The schedule: points in the thread's CPU time separated by independent random gaps,
/// uniform in 0.75..1.25 periods (mean: one period), the first drawn by the manager from
/// the matching equilibrium distribution. (Gaps of 0.5..1.5 periods decorrelate faster
/// but made counts 2× noisier: a 1.5 s thread at 100 Hz was off by up to 3%.) Counting the points passed is a renewal count, so
/// over any stretch of CPU time its expectation is that time / period exactly — for short
/// threads too — however late the kernel delivers (it checks CPU timers at ticks only: at
/// 1000 Hz with a 250 Hz tick, about four points pass per signal, the part Go's
/// `1 + overrun` plays).
///
/// Why random gaps: a timer firing at fixed CPU intervals samples on a fixed grid, and a
/// program whose phases keep step with the period (30 ms in one function, 10 ms in
/// another, at 100 Hz) is then sampled at the same points of every cycle: hot_three at
/// 50% or 99% instead of 75% in some runs of `examples/cpu.rs`, measured. Random gaps
/// decorrelate the samples from any rhythm. Re-arming from the thread itself is safe: a
/// signal of this timer still pending (when called for a process-timer signal) may be
/// dropped by the re-arm, but the points it would have counted are counted here or at the
/// next signal (re-arming from the manager thread, without counting, lost 20% of the
/// samples).
fn own_timer(slot: usize, period: u64) -> u32 {
    let now = thread_cpu_nanos();
    let session = SESSION.load(Ordering::Relaxed);
    let Some(timer) = TIMERS.get(slot) else {
        return 1;
    };
    let period = period.max(1);
    let mut mark = MARK.with(Cell::get);
    if mark.session != session || mark.slot != slot {
        mark.session = session;
        mark.slot = slot;
        mark.next_cpu_nanos = timer.first_expiry_cpu_nanos.load(Ordering::Relaxed);
        mark.rng = now | 1;
    }
    // This thread's CPU since its previous report is counted by its timer, not by the
    // process timer's samples (see `process_timer`). Only this thread writes the slot
    // while the timer exists.
    let reported = timer.reported_cpu_nanos.load(Ordering::Relaxed);
    if now > reported {
        untimed_reported(now - reported);
        timer.reported_cpu_nanos.store(now, Ordering::Relaxed);
    }
    let gap = |rng: &mut u64| schedule_gap(period, rng);
    let mut points = 0u64;
    if now >= mark.next_cpu_nanos {
        // Far behind (the signal was blocked for long): count the whole stretch at the
        // mean rate, then continue the schedule from here.
        let behind = now - mark.next_cpu_nanos;
        if behind > 64 * period {
            points += behind / period;
            mark.next_cpu_nanos = now;
        }
        while mark.next_cpu_nanos <= now {
            points += 1;
            mark.next_cpu_nanos += gap(&mut mark.rng);
        }
    }
    MARK.with(|c| c.set(mark));
    if let Some(id) = timer.id.load(Ordering::Acquire).checked_sub(1) {
        let spec = libc::itimerspec {
            it_interval: timespec(period),
            it_value: timespec((mark.next_cpu_nanos - now).max(1)),
        };
        // SAFETY: timer_settime is async-signal-safe; `id` is a timer the manager made and
        // has not deleted (a deleted id fails with EINVAL, which changes nothing).
        unsafe { libc::timer_settime(id as libc::timer_t, 0, &spec, std::ptr::null_mut()) };
    }
    points.min(u64::from(u32::MAX)) as u32
}

/// One gap of a thread's sampling schedule: uniform in 0.75..1.25 periods (see
/// `own_timer`).
fn schedule_gap(period: u64, rng: &mut u64) -> u64 {
    period - period / 4 + xorshift(rng) % (period / 2).max(1)
}

/// This thread's cached id and name: (session, tid, name, samples since the name was
/// read). Const-initialized, no destructor: usable in the handler.
#[derive(Clone, Copy)]
struct Identity {
    session: u64,
    tid: i32,
    name: [u8; 16],
    age: u32,
}

thread_local! {
    static IDENTITY: Cell<Identity> = const {
        Cell::new(Identity { session: 0, tid: 0, name: [0; 16], age: 0 })
    };
}

/// Samples between two reads of a thread's name (a thread that renames itself shows the
/// new name within this many samples).
const NAME_REFRESH: u32 = 64;

/// The calling thread's id and name, with a system call (~0.2 and ~0.35 µs here) only
/// on its first sample of a session (the id; a session starts after any `fork`) and
/// every `NAME_REFRESH` samples (the name).
fn thread_identity() -> (i32, [u8; 16]) {
    let session = SESSION.load(Ordering::Relaxed);
    let mut id = IDENTITY.with(Cell::get);
    if id.session != session {
        // SAFETY: gettid has no preconditions.
        id.tid = unsafe { libc::gettid() };
        id.session = session;
        id.age = NAME_REFRESH;
    }
    if id.age >= NAME_REFRESH {
        id.name = [0; 16];
        // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer passed.
        unsafe { libc::prctl(libc::PR_GET_NAME, id.name.as_mut_ptr()) };
        id.age = 0;
    }
    id.age += 1;
    IDENTITY.with(|c| c.set(id));
    (id.tid, id.name)
}

/// Waits until no handler can still hold what was published before this call.
fn grace_period() {
    let old = EPOCH.fetch_add(1, Ordering::SeqCst) & 1;
    while READERS[old].load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Replaces the walker handlers use (manager thread only) and frees the old one once no
/// handler can hold it.
pub(crate) fn publish_walker(walker: Walker) {
    let old = WALKER.swap(Box::into_raw(Box::new(walker)), Ordering::SeqCst);
    grace_period();
    if !old.is_null() {
        // SAFETY: from Box::into_raw; unreachable by handlers after the grace period.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// Starts recording into `ring` (the walker must be published first).
pub(crate) fn enable(ring: Ring, period_nanos: u64) {
    PERIOD_NANOS.store(period_nanos, Ordering::Relaxed);
    PROCESS_MARK.store(
        super::sigsafe::clock_nanos(libc::CLOCK_PROCESS_CPUTIME_ID),
        Ordering::Relaxed,
    );
    UNTIMED_CARRY.store(0, Ordering::Relaxed);
    let old = RING.swap(Box::into_raw(Box::new(ring)), Ordering::SeqCst);
    debug_assert!(old.is_null());
    SESSION.fetch_add(1, Ordering::SeqCst);
    ENABLED.store(true, Ordering::SeqCst);
}

/// Stops recording, waits for running handlers, drains what is left into `f`, and frees
/// the ring and the walker.
pub(crate) fn disable(f: impl FnMut(&Sample)) {
    ENABLED.store(false, Ordering::SeqCst);
    // Two flips: handlers of both parities have left.
    grace_period();
    grace_period();
    let ring = RING.swap(std::ptr::null_mut(), Ordering::SeqCst);
    let walker = WALKER.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !ring.is_null() {
        // SAFETY: from Box::into_raw in `enable`; no handler uses it any more.
        let ring = unsafe { Box::from_raw(ring) };
        ring.drain(f);
    }
    if !walker.is_null() {
        // SAFETY: from Box::into_raw in `publish_walker`; no handler uses it any more.
        drop(unsafe { Box::from_raw(walker) });
    }
}

/// Drains the samples written so far (manager thread only, while enabled).
pub(crate) fn drain(f: impl FnMut(&Sample)) {
    // SAFETY: the ring is freed only by `disable`, which the manager thread calls itself
    // after its last `drain`.
    if let Some(ring) = unsafe { RING.load(Ordering::SeqCst).as_ref() } {
        ring.drain(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim_sampler() -> crate::runtime::shared::Claim {
        // The timed set is global: no CPU profile may run meanwhile.
        loop {
            match crate::runtime::cpu::claim() {
                Ok(c) => return c,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    fn sample_with(tid: i32) -> impl Fn(&Ring) -> bool {
        move |ring| match ring.reserve() {
            Some((pos, slot)) => {
                // SAFETY: the slot is ours until published (we won its CAS).
                unsafe { (*slot.sample.get()).tid = tid };
                slot.seq.store(pos + 1, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// In order, full at capacity (rounded to a power of two), free again once drained,
    /// and a slot still being written stops the drain.
    #[test]
    fn ring_keeps_order_and_capacity() {
        let ring = Ring::new(5); // 8 slots
        for tid in 0..8 {
            assert!(sample_with(tid)(&ring), "slot {tid}");
        }
        assert!(!sample_with(99)(&ring), "a full ring refuses");
        let mut seen = Vec::new();
        ring.drain(|s| seen.push(s.tid));
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
        // Claimed but not yet published: the drain waits for it.
        let (pos, slot) = ring.reserve().unwrap();
        assert!(sample_with(1)(&ring));
        let mut seen = Vec::new();
        ring.drain(|s| seen.push(s.tid));
        assert!(seen.is_empty());
        // SAFETY: ours since `reserve`.
        unsafe { (*slot.sample.get()).tid = 0 };
        slot.seq.store(pos + 1, Ordering::Release);
        ring.drain(|s| seen.push(s.tid));
        assert_eq!(seen, vec![0, 1]);
    }

    /// Producers on several threads: every sample that got a slot comes out once.
    #[test]
    fn ring_loses_nothing_it_accepted_under_concurrent_producers() {
        let ring = Ring::new(1024);
        let (accepted, drained) = (AtomicUsize::new(0), std::sync::Mutex::new(Vec::new()));
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (ring, accepted) = (&ring, &accepted);
                scope.spawn(move || {
                    for i in 0..10_000 {
                        if sample_with(t * 100_000 + i)(ring) {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            // The one consumer, meanwhile.
            let mut got = drained.lock().unwrap();
            for _ in 0..2000 {
                ring.drain(|s| got.push(s.tid));
                std::thread::yield_now();
            }
        });
        let mut got = drained.into_inner().unwrap();
        ring.drain(|s| got.push(s.tid));
        assert_eq!(got.len(), accepted.load(Ordering::Relaxed));
        got.sort_unstable();
        got.dedup();
        assert_eq!(
            got.len(),
            accepted.load(Ordering::Relaxed),
            "a sample twice"
        );
        // Each producer's samples in its own order.
        for t in 0..4 {
            let mine: Vec<_> = got.iter().filter(|&&x| x / 100_000 == t).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }
    }

    /// Members with their slots; removed ones gone (tombstones do not end a probe);
    /// the table is rewritten without tombstones when they pile up; full at capacity.
    #[test]
    fn timed_set_members_tombstones_and_rebuild() {
        let _claim = claim_sampler();
        timed::clear();
        for tid in 1..=1000 {
            assert!(timed::insert(tid, tid as usize * 2));
        }
        for tid in (1..=1000).step_by(2) {
            timed::remove(tid);
        }
        for tid in 1..=1000 {
            let want = (tid % 2 == 0).then_some(tid as usize * 2);
            assert_eq!(timed::slot_of(tid), want, "tid {tid}");
        }
        // Enough removals to force a rebuild at the next insert.
        for round in 0..5 {
            for tid in 10_000 + round * 1000..10_000 + round * 1000 + 1000 {
                assert!(timed::insert(tid, 7));
                timed::remove(tid);
            }
        }
        assert!(timed::insert(42_000, 9));
        assert_eq!(timed::slot_of(42_000), Some(9));
        for tid in (2..=1000).step_by(2) {
            assert_eq!(
                timed::slot_of(tid),
                Some(tid as usize * 2),
                "tid {tid} after rebuild"
            );
        }
        assert_eq!(timed::slot_of(10_001), None);
        timed::clear();
        for tid in 1..=timed::CAPACITY as i32 {
            assert!(timed::insert(tid, 0));
        }
        assert!(!timed::insert(-5, 0), "full");
        timed::clear();
        assert_eq!(timed::slot_of(1), None);
    }

    /// The schedule's gaps are uniform in 0.75..1.25 periods with a mean of one period
    /// (what makes the renewal count's expectation CPU time / period).
    #[test]
    fn schedule_gaps_average_one_period() {
        let period = 10_000_000;
        let mut rng = 0x1234_5678_9abc_def1;
        let n = 200_000;
        let (mut sum, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
        for _ in 0..n {
            let g = schedule_gap(period, &mut rng);
            sum += g;
            lo = lo.min(g);
            hi = hi.max(g);
        }
        let mean = sum as f64 / n as f64 / period as f64;
        assert!((mean - 1.0).abs() < 0.002, "mean gap {mean} periods");
        assert!(lo >= period * 3 / 4 && hi < period * 5 / 4, "{lo}..{hi}");
        assert!(
            lo < period * 76 / 100 && hi > period * 124 / 100,
            "not spread: {lo}..{hi}"
        );
    }
}
