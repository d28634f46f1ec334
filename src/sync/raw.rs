//! The instrumented raw locks: parking_lot's, plus contention bookkeeping on the slow
//! paths only.
//!
//! Fast paths: with profiling off, `lock` is parking_lot's `lock` after one relaxed load
//! of a global flag; with it on, parking_lot's `try_lock` (one compare-and-swap) and, if
//! that fails, a timed wait. `unlock` adds one relaxed load of the waiter count before
//! parking_lot's unlock. No extra atomic read-modify-write on either path.
//!
//! Mutex-profile attribution: waiting time is charged to the holders during whose tenure
//! it passed. Each contended release charges the delay its current waiters accrued since
//! they started waiting or since the previous contended release, whichever is later, to
//! the releasing (holding) code. Summed over releases this is the waiters' total wait,
//! minus the wake-up latency after the last release.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lock_api::{RawMutex as _, RawRwLock as _};

use super::contention::{self, block_event, mutex_event, now_ns};

/// Waiters of one lock, for the mutex profile. Touched only on contended paths. Shared
/// with the async locks (`sync::tokio`).
pub(super) struct Waits {
    /// Threads waiting now (while profiling). Read by every unlock: zero means no work.
    waiters: AtomicU32,
    /// Guards the two fields below (a tiny spin lock: held for a few instructions).
    busy: AtomicBool,
    /// Sum over waiters of the time their uncharged wait began.
    since_sum: UnsafeCell<u64>,
    /// When the last contended release happened.
    last_release: UnsafeCell<u64>,
}

// SAFETY: `since_sum` and `last_release` are only accessed inside `with`, which holds the
// `busy` spin lock, so accesses from different threads are ordered.
unsafe impl Sync for Waits {}
// SAFETY: plain integers and atomics.
unsafe impl Send for Waits {}

impl Waits {
    pub(super) const fn new() -> Waits {
        Waits {
            waiters: AtomicU32::new(0),
            busy: AtomicBool::new(false),
            since_sum: UnsafeCell::new(0),
            last_release: UnsafeCell::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut u64, &mut u64) -> R) -> R {
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the spin lock is held (see the Sync impl).
        let r = unsafe { f(&mut *self.since_sum.get(), &mut *self.last_release.get()) };
        self.busy.store(false, Ordering::Release);
        r
    }

    /// A thread (or task) starts waiting at `t0`.
    pub(super) fn arrive(&self, t0: u64) {
        self.with(|since, _| {
            *since += t0;
            self.waiters.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// A thread (or task) that arrived at `t0` got the lock, or stopped waiting.
    pub(super) fn leave(&self, t0: u64) {
        self.with(|since, last| {
            *since -= t0.max(*last);
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// The holder releases with waiters present: the delay they accrued since they
    /// arrived or since the last contended release.
    fn release(&self, now: u64) -> u64 {
        self.with(|since, last| {
            let n = u64::from(self.waiters.load(Ordering::Relaxed));
            let charged = (n * now).saturating_sub(*since);
            *since = n * now;
            *last = now;
            charged
        })
    }

    #[inline]
    pub(super) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Waits for the lock with `acquire`, timing the wait when profiling wants it.
    #[cold]
    pub(super) fn contended<G>(&self, acquire: impl FnOnce() -> Option<G>) -> Option<G> {
        if !contention::enabled() {
            return acquire();
        }
        let t0 = now_ns();
        self.arrive(t0);
        let g = acquire();
        let t1 = now_ns();
        self.leave(t0);
        if g.is_some() {
            block_event(t1.saturating_sub(t0));
        }
        g
    }

    #[cold]
    #[inline(never)]
    pub(super) fn released(&self) {
        let charged = self.release(now_ns());
        mutex_event(charged);
    }
}

/// The raw mutex behind [`super::Mutex`]: parking_lot's, instrumented.
pub struct RawMutex {
    inner: parking_lot::RawMutex,
    waits: Waits,
}

type MutexGuardState = <parking_lot::RawMutex as lock_api::RawMutex>::Guard;

// SAFETY: mutual exclusion, acquire/release ordering and guard-state handling are
// parking_lot's: every method passes its guard state through unchanged. The bookkeeping
// around it never touches the lock.
unsafe impl lock_api::RawMutex for RawMutex {
    const INIT: RawMutex = RawMutex {
        inner: parking_lot::RawMutex::INIT,
        waits: Waits::new(),
    };

    type Guard = MutexGuardState;

    #[inline]
    fn lock(&self) -> Self::Guard {
        if !contention::enabled() {
            return self.inner.lock();
        }
        match self.inner.try_lock() {
            Some(g) => g,
            None => self.lock_contended(),
        }
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard> {
        self.inner.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self, guard: Self::Guard) {
        if self.waits.has_waiters() {
            self.waits.released();
        }
        // SAFETY: the caller holds the lock with `guard` (RawMutex::unlock's contract).
        unsafe { self.inner.unlock(guard) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

impl RawMutex {
    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> MutexGuardState {
        match self.waits.contended(|| Some(self.inner.lock())) {
            Some(g) => g,
            None => unreachable!("an untimed lock always succeeds"),
        }
    }
}

// SAFETY: as for RawMutex; parking_lot's fair unlock with the same guard state.
unsafe impl lock_api::RawMutexFair for RawMutex {
    #[inline]
    unsafe fn unlock_fair(&self, guard: Self::Guard) {
        if self.waits.has_waiters() {
            self.waits.released();
        }
        // SAFETY: the caller holds the lock with `guard`.
        unsafe { self.inner.unlock_fair(guard) }
    }
}

// SAFETY: as for RawMutex; timed acquisition is parking_lot's.
unsafe impl lock_api::RawMutexTimed for RawMutex {
    type Duration = Duration;
    type Instant = Instant;

    fn try_lock_for(&self, timeout: Duration) -> Option<Self::Guard> {
        self.inner
            .try_lock()
            .or_else(|| self.waits.contended(|| self.inner.try_lock_for(timeout)))
    }

    fn try_lock_until(&self, timeout: Instant) -> Option<Self::Guard> {
        self.inner
            .try_lock()
            .or_else(|| self.waits.contended(|| self.inner.try_lock_until(timeout)))
    }
}

impl std::fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMutex")
            .field("locked", &self.inner.is_locked())
            .finish_non_exhaustive()
    }
}

/// The raw reader-writer lock behind [`super::RwLock`]: parking_lot's, instrumented.
pub struct RawRwLock {
    inner: parking_lot::RawRwLock,
    waits: Waits,
}

type SharedState = <parking_lot::RawRwLock as lock_api::RawRwLock>::SharedGuard;
type ExclusiveState = <parking_lot::RawRwLock as lock_api::RawRwLock>::ExclusiveGuard;

// SAFETY: reader-writer exclusion, ordering and guard states are parking_lot's: every
// method passes its guard state through unchanged.
unsafe impl lock_api::RawRwLock for RawRwLock {
    const INIT: RawRwLock = RawRwLock {
        inner: parking_lot::RawRwLock::INIT,
        waits: Waits::new(),
    };

    type SharedGuard = SharedState;
    type ExclusiveGuard = ExclusiveState;

    #[inline]
    fn lock_shared(&self) -> SharedState {
        if !contention::enabled() {
            return self.inner.lock_shared();
        }
        match self.inner.try_lock_shared() {
            Some(g) => g,
            None => self.lock_shared_contended(),
        }
    }

    #[inline]
    fn try_lock_shared(&self) -> Option<SharedState> {
        self.inner.try_lock_shared()
    }

    #[inline]
    unsafe fn unlock_shared(&self, guard: SharedState) {
        if self.waits.has_waiters() {
            self.waits.released();
        }
        // SAFETY: the caller holds a shared lock with `guard`.
        unsafe { self.inner.unlock_shared(guard) }
    }

    #[inline]
    fn lock_exclusive(&self) -> ExclusiveState {
        if !contention::enabled() {
            return self.inner.lock_exclusive();
        }
        match self.inner.try_lock_exclusive() {
            Some(g) => g,
            None => self.lock_exclusive_contended(),
        }
    }

    #[inline]
    fn try_lock_exclusive(&self) -> Option<ExclusiveState> {
        self.inner.try_lock_exclusive()
    }

    #[inline]
    unsafe fn unlock_exclusive(&self, guard: ExclusiveState) {
        if self.waits.has_waiters() {
            self.waits.released();
        }
        // SAFETY: the caller holds the exclusive lock with `guard`.
        unsafe { self.inner.unlock_exclusive(guard) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        self.inner.is_locked_exclusive()
    }
}

impl RawRwLock {
    #[cold]
    #[inline(never)]
    fn lock_shared_contended(&self) -> SharedState {
        match self.waits.contended(|| Some(self.inner.lock_shared())) {
            Some(g) => g,
            None => unreachable!("an untimed lock always succeeds"),
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_exclusive_contended(&self) -> ExclusiveState {
        match self.waits.contended(|| Some(self.inner.lock_exclusive())) {
            Some(g) => g,
            None => unreachable!("an untimed lock always succeeds"),
        }
    }
}

impl std::fmt::Debug for RawRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRwLock")
            .field("locked", &self.inner.is_locked())
            .finish_non_exhaustive()
    }
}

/// The raw condition variable behind [`super::Condvar`]: parking_lot's, waiting on the
/// instrumented mutex's inner lock, with each wait recorded in the block profile.
pub struct RawCondvar {
    inner: parking_lot::RawCondvar,
}

// SAFETY: waiting, notification and the atomic unlock/relock are parking_lot's condvar
// operating on the parking_lot mutex inside our RawMutex, with the caller's guard state;
// parking_lot documents no spurious wakeups, and so do we.
unsafe impl lock_api::RawCondvar for RawCondvar {
    const INIT: RawCondvar = RawCondvar {
        inner: parking_lot::RawCondvar::INIT,
    };

    type RawMutex = RawMutex;

    unsafe fn wait(&self, mutex: &RawMutex, guard: &mut MutexGuardState) {
        let t0 = now_ns();
        // SAFETY: the caller holds `mutex` with `guard` (RawCondvar::wait's contract), and
        // parking_lot's condvar works on the parking_lot mutex inside it.
        unsafe { lock_api::RawCondvar::wait(&self.inner, &mutex.inner, guard) };
        block_event(now_ns().saturating_sub(t0));
    }

    fn notify_one(&self) -> bool {
        lock_api::RawCondvar::notify_one(&self.inner)
    }

    fn notify_all(&self) -> usize {
        lock_api::RawCondvar::notify_all(&self.inner)
    }
}

// SAFETY: as for RawCondvar, with parking_lot's timed waits.
unsafe impl lock_api::RawCondvarTimed for RawCondvar {
    fn checked_duration_to_instant(timeout: &Duration) -> Option<Instant> {
        Instant::now().checked_add(*timeout)
    }

    unsafe fn wait_until(
        &self,
        mutex: &RawMutex,
        guard: &mut MutexGuardState,
        timeout: &Instant,
    ) -> bool {
        let t0 = now_ns();
        // SAFETY: as in `wait`.
        let timed_out = unsafe {
            lock_api::RawCondvarTimed::wait_until(&self.inner, &mutex.inner, guard, timeout)
        };
        block_event(now_ns().saturating_sub(t0));
        timed_out
    }
}

impl std::fmt::Debug for RawCondvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCondvar").finish_non_exhaustive()
    }
}
