//! Signal-based stack capture: interrupt one chosen thread with a dedicated real-time
//! signal (`tgkill`), walk its stack inside the signal handler, in its own context, and
//! hand the frames back through a preallocated slot. Thread dumps and wall-clock profiles
//! are built on it.
//!
//! # Layering rule
//!
//! [`handler`] and everything it calls runs in a signal handler that may have
//! interrupted any code at all — `malloc`, the dynamic loader, another unwinder, a lock
//! holder: it must not allocate, must not take a lock (not even one of ours), must not
//! format or log, and must not call `dl_iterate_phdr` or read a loaded object's memory
//! (a concurrent `dlclose` may unmap it). What it may do: atomics, `gettid`,
//! `clock_gettime`, `futex` wake, reads of the interrupted thread's own stack within
//! bounds taken beforehand, and framehop's CFI evaluation with the
//! `MustNotAllocateDuringUnwind` policy over *copies* of every object's `.eh_frame_hdr`
//! and `.eh_frame` made by the requesting thread.
//!
//! # Protocol
//!
//! One request at a time (the requester holds [`CORE`]). `STATE` holds a sequence number
//! and a phase:
//!
//! ```text
//!            requester                 handler (target thread)
//!   Idle/Done ──store──▶ Requested ──CAS──▶ Claimed ──store──▶ Done ──▶ (requester reads)
//!                            │
//!                            └─CAS (timeout)──▶ Idle     (a late handler then finds no
//!                                                          request and returns)
//! ```
//!
//! The slot's contents belong to the requester except between `Claimed` and `Done`, when
//! they belong to the one handler that won the CAS. A requester never touches the slot
//! while the phase is `Claimed`: a handler that claimed a request and then stalls (its
//! thread stopped by a debugger) makes captures report [`Miss::Busy`] until it finishes,
//! instead of racing with it. A handler also checks that it runs on the requested thread,
//! so a stale signal (queued while the thread blocked it) cannot claim someone else's
//! request.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::libc;
use parking_lot::{Mutex, MutexGuard};

use super::sigsafe::monotonic_nanos;
use super::stack::{self, Cache, Walker};
use crate::Error;
use crate::labels::{self, LabelSet};

/// The deepest stack recorded; deeper ones are cut (marked incomplete).
pub(crate) const MAX_FRAMES: usize = stack::MAX_FRAMES;

/// The first real-time signal tried, as an offset from `SIGRTMIN`: the lowest few are the
/// ones other libraries reach for first.
const FIRST_SIGNAL_OFFSET: i32 = 8;

/// Why a thread's stack was not captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The thread blocks the capture signal (its `SigBlk` mask has it).
    SignalBlocked,
    /// The signal was sent but the handler did not run in time (the thread is in
    /// uninterruptible sleep, stopped, or exiting).
    NoAnswer,
    /// The thread no longer exists.
    Exited,
    /// An earlier capture's handler has not finished; the slot cannot be reused yet.
    Busy,
    /// The thread is stopped (job control or a debugger): it runs no handler until it
    /// continues, so it was not asked.
    Stopped,
    /// The whole dump's time budget ran out before this thread's turn.
    Deadline,
    /// The kernel's queue of pending real-time signals is full (`RLIMIT_SIGPENDING`).
    QueueFull,
}

impl Miss {
    /// Why, in a few words (for dumps and profile comments).
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Miss::SignalBlocked => "the thread blocks the capture signal",
            Miss::NoAnswer => "no answer in time",
            Miss::Exited => "the thread exited",
            Miss::Busy => "an earlier capture has not finished",
            Miss::Stopped => "the thread is stopped",
            Miss::Deadline => "the dump ran out of time before this thread",
            Miss::QueueFull => "the queue of pending signals is full",
        }
    }
}

/// A captured stack: the interrupted instruction first, then return addresses.
#[derive(Debug, Clone)]
pub(crate) struct Captured<'a> {
    /// Leaf first; the first address is exact (not a return address).
    pub frames: &'a [u64],
    /// False when the walk stopped early (unknown code, no unwind info, too deep).
    pub complete: bool,
    /// Time the target spent in the handler, in nanoseconds.
    pub handler_nanos: u64,
    /// The target's labels when it was interrupted (`labels::with`, `Labeled`).
    pub labels: Option<Arc<LabelSet>>,
}

// Phases of `STATE` (its low two bits); the rest is a sequence number.
const IDLE: u32 = 0;
const REQUESTED: u32 = 1;
const CLAIMED: u32 = 2;
const DONE: u32 = 3;

fn phase(state: u32) -> u32 {
    state & 3
}

static STATE: AtomicU32 = AtomicU32::new(IDLE);
/// The thread a request is for.
static TARGET: AtomicI32 = AtomicI32::new(0);
/// The signal our handler is installed on; 0 before installation.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Held by the one requester.
static CORE: Mutex<()> = Mutex::new(());
/// The slot; see the module docs for who may touch it when.
/// Null until the first requester makes it (under CORE), then never freed. Not a
/// `OnceLock`: a fork while the first one was being made would leave the child's lock in
/// "initializing" forever; a pointer published only once the slot is whole is simply
/// still null there, and the child makes its own.
static SLOT: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());

/// The slot, if it has been made.
fn slot_ref() -> Option<&'static Shared> {
    let p = SLOT.load(Ordering::Acquire);
    // SAFETY: a non-null SLOT came from Box::into_raw of a whole Shared and is never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

struct Slot {
    /// What the handler walks with; replaced only by the requester (see `refresh`).
    walker: Walker,
    cache: Cache,
    frames: [u64; MAX_FRAMES],
    len: usize,
    complete: bool,
    handler_nanos: u64,
    /// The target's label set, one reference taken in the handler (null for none);
    /// released by the requester, never in the handler (dropping may free).
    labels: *const LabelSet,
}

struct Shared(UnsafeCell<Slot>);

// SAFETY: access to the slot is serialized by the protocol in the module docs: the
// requester (holding CORE) while the phase is not CLAIMED, the one claiming handler while
// it is.
unsafe impl Sync for Shared {}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32; the return value (the number woken) is
    // of no use here.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Sleeps while `word == expected`, at most `timeout`. Returns on a wake-up, a timeout, a
/// signal or a changed value alike (EAGAIN, ETIMEDOUT, EINTR): callers re-check the word.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = super::sigsafe::timespec(timeout.as_nanos() as u64);
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a valid relative timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The signal handler. See the layering rule in the module docs.
extern "C" fn handler(_signal: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno; saved and restored so the
    // interrupted code does not see our syscalls' errors.
    let errno = unsafe { *libc::__errno_location() };
    let state = STATE.load(Ordering::Acquire);
    if phase(state) == REQUESTED
        && TARGET.load(Ordering::Relaxed) == gettid()
        && let Some(shared) = slot_ref()
        && STATE
            .compare_exchange(
                state,
                state - REQUESTED + CLAIMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    {
        let start = monotonic_nanos();
        // SAFETY: we won the CAS to CLAIMED: the slot is ours until we store DONE (module
        // docs). `uc` is the context the kernel passed to this SA_SIGINFO handler.
        unsafe {
            let slot = &mut *shared.0.get();
            slot.walk(uc.cast());
            slot.handler_nanos = monotonic_nanos().saturating_sub(start);
        }
        STATE.store(state - REQUESTED + DONE, Ordering::Release);
        futex_wake(&STATE);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

impl Slot {
    fn new() -> Slot {
        Slot {
            walker: stack::walker(),
            cache: Cache::new_in(),
            frames: [0; MAX_FRAMES],
            len: 0,
            complete: false,
            handler_nanos: 0,
            labels: std::ptr::null(),
        }
    }

    /// Walks the stack of the interrupted context into `frames`. Runs in the handler.
    ///
    /// # Safety
    ///
    /// `uc` is the context passed to the handler, and the caller owns the slot.
    unsafe fn walk(&mut self, uc: *const libc::ucontext_t) {
        // SAFETY: per the function's contract.
        let (len, complete) = unsafe { self.walker.walk(&mut self.cache, uc, &mut self.frames) };
        self.len = len;
        self.complete = complete;
        // One atomic increment, no allocation; the requester clears the field before
        // every request, so nothing is overwritten here.
        self.labels = labels::acquire_current();
    }

    /// Takes the label reference the last handler left (the requester, owning the slot).
    fn take_labels(&mut self) -> Option<Arc<LabelSet>> {
        let p = std::mem::replace(&mut self.labels, std::ptr::null());
        // SAFETY: a non-null field is one reference from `acquire_current`, taken once
        // (the field is cleared).
        unsafe { labels::take(p) }
    }
}

/// Installs the handler on the first free real-time signal (once per process).
fn install() -> Result<i32, Error> {
    static INSTALLED: OnceLock<Result<i32, (i32, i32)>> = OnceLock::new();
    let result = *INSTALLED.get_or_init(|| {
        let (first, last) = (libc::SIGRTMIN() + FIRST_SIGNAL_OFFSET, libc::SIGRTMAX());
        for signal in first..=last {
            // SAFETY: sigaction with a null new action only reads the current one into
            // `old`, a zeroed, valid sigaction.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
            // SAFETY: a zeroed sigaction is valid; the fields are set below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = handler as *const () as libc::sighandler_t;
            // SA_RESTART: reads, writes and waits of the interrupted thread resume.
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            // SAFETY: a valid sigset_t: empty but for SIGPROF (a CPU sample is never taken
            // inside this handler); then installs a handler that follows the layering rule.
            let installed = unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaddset(&mut action.sa_mask, libc::SIGPROF);
                libc::sigaction(signal, &action, std::ptr::null_mut())
            };
            if installed == 0 {
                SIGNAL.store(signal, Ordering::Release);
                return Ok(signal);
            }
        }
        Err((first, last))
    });
    result.map_err(|(first, last)| Error::NoFreeSignal { first, last })
}

/// The signal used for captures, if installed.
pub(crate) fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::Acquire) {
        0 => None,
        s => Some(s),
    }
}

/// The one requester of captures; holding it excludes every other.
pub(crate) struct Capturer {
    _core: MutexGuard<'static, ()>,
    shared: &'static Shared,
    signal: i32,
    pid: i32,
}

/// `fork()`: a child whose parent was capturing at the fork finds CORE held by a thread
/// it does not have, and maybe a request in flight to a thread that is gone. It frees
/// the core and sets the phase to IDLE (the slot is rewritten by the next request; a
/// walker half-replaced at the fork is abandoned by re-reading the objects).
static FORK_HANDLERS: super::fork::Handlers = super::fork::Handlers {
    prepare: super::fork::nothing,
    parent: super::fork::nothing,
    child: || {
        if super::fork::release_in_child(&CORE) {
            let state = STATE.load(Ordering::Relaxed);
            STATE.store((state & !3).wrapping_add(4) | IDLE, Ordering::Release);
        }
    },
};

impl Capturer {
    /// Installs the handler if needed and waits for other requesters to finish. The
    /// caller should [`refresh`](Capturer::refresh) after listing the threads it will ask
    /// for and before asking.
    pub(crate) fn new() -> Result<Capturer, Error> {
        if !stack::SUPPORTED {
            return Err(Error::Unsupported {
                what: "capturing other threads' stacks on this architecture",
            });
        }
        let signal = install()?;
        let _ = super::fork::register(super::fork::Slot::Capture, &FORK_HANDLERS);
        let core = CORE.lock();
        // Made under CORE, so only one requester makes it.
        let shared = match slot_ref() {
            Some(s) => s,
            None => {
                let fresh = Box::into_raw(Box::new(Shared(UnsafeCell::new(Slot::new()))));
                SLOT.store(fresh, Ordering::Release);
                // SAFETY: just made from Box::into_raw; never freed.
                unsafe { &*fresh }
            }
        };
        Ok(Capturer {
            _core: core,
            shared,
            signal,
            pid: std::process::id() as i32,
        })
    }

    /// The slot, if no late handler owns it.
    fn slot(&mut self) -> Option<&mut Slot> {
        if phase(STATE.load(Ordering::Acquire)) == CLAIMED {
            return None;
        }
        // SAFETY: we hold CORE and the phase is not CLAIMED, so no handler can own the
        // slot until we store REQUESTED (module docs).
        Some(unsafe { &mut *self.shared.0.get() })
    }

    /// Re-reads the loaded objects (if any changed) and the stack mappings. Call it after
    /// listing the threads to capture: a thread's stack must be mapped when this runs.
    pub(crate) fn refresh(&mut self) {
        if let Some(slot) = self.slot() {
            if !slot.walker.is_current() {
                slot.walker = stack::walker();
                slot.cache = Cache::new_in();
            } else {
                slot.walker.refresh_writable();
            }
        }
    }

    /// Captures thread `tid`'s stack, waiting at most `timeout` for its handler.
    pub(crate) fn capture(&mut self, tid: i32, timeout: Duration) -> Result<Captured<'_>, Miss> {
        let deadline = Instant::now() + timeout;
        // A late handler still owns the slot: give it the same time to finish.
        loop {
            let state = STATE.load(Ordering::Acquire);
            if phase(state) != CLAIMED {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Miss::Busy);
            }
            futex_wait(&STATE, state, left);
        }
        // A handler that finished after an earlier request gave up left its labels.
        if let Some(slot) = self.slot() {
            drop(slot.take_labels());
        }
        let request = (STATE.load(Ordering::Acquire) & !3).wrapping_add(4) | REQUESTED;
        TARGET.store(tid, Ordering::Relaxed);
        STATE.store(request, Ordering::Release);
        // SAFETY: tgkill with our pid, a tid and a valid signal; failure is checked.
        let sent = unsafe { libc::syscall(libc::SYS_tgkill, self.pid, tid, self.signal) };
        if sent != 0 {
            let errno = std::io::Error::last_os_error().raw_os_error();
            let _ = STATE.compare_exchange(
                request,
                request - REQUESTED + IDLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            return Err(match errno {
                Some(libc::ESRCH) => Miss::Exited,
                Some(libc::EAGAIN) => Miss::QueueFull,
                _ => Miss::NoAnswer,
            });
        }
        let done = request - REQUESTED + DONE;
        // Once claimed, a handler gets this much longer than `timeout` to finish.
        let grace = deadline + timeout.max(Duration::from_millis(100));
        loop {
            let state = STATE.load(Ordering::Acquire);
            if state == done {
                break;
            }
            let now = Instant::now();
            if state == request && now >= deadline {
                match STATE.compare_exchange(
                    request,
                    request - REQUESTED + IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Err(Miss::NoAnswer),
                    Err(_) => continue, // claimed (or done) in the meantime
                }
            }
            if now >= grace {
                return Err(Miss::NoAnswer); // claimed and stalled: slot stays busy
            }
            let until = if state == request { deadline } else { grace };
            futex_wait(&STATE, state, until.saturating_duration_since(now));
        }
        // SAFETY: the phase is DONE and we hold CORE: the slot is ours again.
        let slot = unsafe { &mut *self.shared.0.get() };
        let labels = slot.take_labels();
        Ok(Captured {
            frames: &slot.frames[..slot.len],
            complete: slot.complete,
            handler_nanos: slot.handler_nanos,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::profile::builder::Resolve;
    use crate::test_alloc::allocations;

    #[inline(never)]
    fn idle_until(stop: &AtomicBool) -> usize {
        let before = allocations();
        while !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        allocations() - before
    }

    /// The layering rule, checked: neither the handler (on the target thread) nor the
    /// requester's `capture` allocates.
    #[test]
    fn capture_allocates_on_neither_side() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let target = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                idle_until(&stop)
            })
        };
        let tid = tid_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut capturer = Capturer::new().unwrap();
        capturer.refresh();
        let mut depths = Vec::with_capacity(100);
        let before = allocations();
        for _ in 0..100 {
            let c = capturer.capture(tid, Duration::from_secs(1)).unwrap();
            depths.push((c.frames.len(), c.complete));
        }
        // This thread too (the handler runs here before tgkill returns).
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let own = capturer.capture(me, Duration::from_secs(1)).unwrap();
        let own_len = own.frames.len();
        let own_frames = own.frames.to_vec();
        assert_eq!(allocations() - before, 1, "only the to_vec above allocates");
        drop(capturer);
        stop.store(true, Ordering::Release);
        assert_eq!(target.join().unwrap(), 0, "the handler allocated");
        assert!(
            depths.iter().all(|&(n, complete)| n > 3 && complete),
            "{depths:?}"
        );
        assert!(own_len > 3);

        // The own stack names this test.
        let mut symbolizer = crate::sys::imp::symbolize::shared();
        let names: Vec<String> = own_frames
            .iter()
            .skip(1)
            .flat_map(|&pc| {
                let r = symbolizer.resolve(pc - 1);
                r.frames.iter().map(|f| f.name.clone()).collect::<Vec<_>>()
            })
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("capture_allocates_on_neither_side")),
            "{names:?}"
        );
    }

    #[test]
    fn exited_thread_is_reported_at_once() {
        let tid = std::thread::spawn(|| {
            // SAFETY: gettid has no preconditions.
            unsafe { libc::gettid() }
        })
        .join()
        .unwrap();
        let mut capturer = Capturer::new().unwrap();
        let start = Instant::now();
        let miss = capturer.capture(tid, Duration::from_secs(5)).unwrap_err();
        assert_eq!(miss, Miss::Exited);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
