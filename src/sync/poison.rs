//! Instrumented locks with **std's API**: `lock()` returns a [`LockResult`], a panic while
//! a guard is held poisons the lock, `try_lock` returns a [`TryLockResult`]. A
//! `std::sync` user switches with one import:
//!
//! ```
//! use profile::sync::poison::{Condvar, Mutex};
//! // was: use std::sync::{Condvar, Mutex};
//!
//! let queue = Mutex::new(Vec::new());
//! let ready = Condvar::new();
//! queue.lock().unwrap().push(1);
//! ready.notify_one();
//! assert_eq!(queue.lock().unwrap().len(), 1);
//! ```
//!
//! The locks are the instrumented parking_lot locks of [`crate::sync`] (same recording:
//! contended waits in the block profile, delays charged to the releaser in the mutex
//! profile) plus a poison flag kept as std keeps it. Differences from std: no
//! `Mutex::lock` re-entrancy detection (std's deadlocks too, unspecified); `wait_timeout`
//! returns [`WaitTimeoutResult`] (lock_api's: std's cannot be made outside std); a
//! `Condvar` may be used with several mutexes one after another (std panics on that).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

pub use super::WaitTimeoutResult;

/// A poison flag: set when a guard is dropped during a panic that began while it was
/// held (std's rule).
struct Flag(AtomicBool);

impl Flag {
    #[inline]
    const fn new() -> Flag {
        Flag(AtomicBool::new(false))
    }

    #[inline]
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// What a guard remembers: whether its thread was already panicking when it locked.
    #[inline]
    fn guard(&self) -> Panicking {
        Panicking(std::thread::panicking())
    }

    /// A guard is dropped: poison if a panic started while it was held.
    #[inline]
    fn done(&self, at_lock: &Panicking) {
        if !at_lock.0 && std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

struct Panicking(bool);

#[inline]
fn result<G>(poisoned: bool, guard: G) -> LockResult<G> {
    if poisoned {
        Err(PoisonError::new(guard))
    } else {
        Ok(guard)
    }
}

/// A mutual exclusion lock with `std::sync::Mutex`'s API, feeding the mutex and block
/// profiles.
pub struct Mutex<T: ?Sized> {
    poison: Flag,
    inner: super::Mutex<T>,
}

/// The guard of a locked [`Mutex`]; unlocks when dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    poison: &'a Flag,
    at_lock: Panicking,
    inner: super::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A new, unlocked, unpoisoned mutex.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            poison: Flag::new(),
            inner: super::Mutex::new(value),
        }
    }

    /// The value; an error (holding it) if the mutex is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        result(poisoned, self.inner.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    #[inline]
    fn guard<'a>(&'a self, inner: super::MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        MutexGuard {
            poison: &self.poison,
            at_lock: self.poison.guard(),
            inner,
        }
    }

    /// Locks, blocking until the lock is free. An error (holding the guard) if a holder
    /// panicked.
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        let g = self.guard(self.inner.lock());
        result(self.poison.get(), g)
    }

    /// Locks if the lock is free now.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            None => Err(TryLockError::WouldBlock),
            Some(g) => {
                let g = self.guard(g);
                if self.poison.get() {
                    Err(TryLockError::Poisoned(PoisonError::new(g)))
                } else {
                    Ok(g)
                }
            }
        }
    }

    /// Whether a holder panicked (and [`clear_poison`](Self::clear_poison) was not called).
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The value, through a unique reference (no locking).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        result(poisoned, self.inner.get_mut())
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.inner.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Before `inner` unlocks (fields drop after this).
        self.poison.done(&self.at_lock);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A reader-writer lock with `std::sync::RwLock`'s API, feeding the mutex and block
/// profiles.
pub struct RwLock<T: ?Sized> {
    poison: Flag,
    inner: super::RwLock<T>,
}

/// The guard of a read-locked [`RwLock`]. A panic while reading does not poison (std's
/// rule).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    inner: super::RwLockReadGuard<'a, T>,
}

/// The guard of a write-locked [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    poison: &'a Flag,
    at_lock: Panicking,
    inner: super::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A new, unlocked, unpoisoned lock.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            poison: Flag::new(),
            inner: super::RwLock::new(value),
        }
    }

    /// The value; an error (holding it) if the lock is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        result(poisoned, self.inner.into_inner())
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, blocking while a writer holds it.
    #[inline]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let g = RwLockReadGuard {
            inner: self.inner.read(),
        };
        result(self.poison.get(), g)
    }

    /// Locks for reading if no writer holds it now.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        match self.inner.try_read() {
            None => Err(TryLockError::WouldBlock),
            Some(inner) => {
                let g = RwLockReadGuard { inner };
                if self.poison.get() {
                    Err(TryLockError::Poisoned(PoisonError::new(g)))
                } else {
                    Ok(g)
                }
            }
        }
    }

    #[inline]
    fn write_guard<'a>(&'a self, inner: super::RwLockWriteGuard<'a, T>) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            poison: &self.poison,
            at_lock: self.poison.guard(),
            inner,
        }
    }

    /// Locks for writing, blocking while anyone holds it.
    #[inline]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let g = self.write_guard(self.inner.write());
        result(self.poison.get(), g)
    }

    /// Locks for writing if nobody holds it now.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        match self.inner.try_write() {
            None => Err(TryLockError::WouldBlock),
            Some(g) => {
                let g = self.write_guard(g);
                if self.poison.get() {
                    Err(TryLockError::Poisoned(PoisonError::new(g)))
                } else {
                    Ok(g)
                }
            }
        }
    }

    /// Whether a writer panicked (and [`clear_poison`](Self::clear_poison) was not
    /// called).
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The value, through a unique reference (no locking).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        result(poisoned, self.inner.get_mut())
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.inner.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.poison.done(&self.at_lock);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A condition variable with `std::sync::Condvar`'s API, for [`Mutex`]; each wait is
/// recorded in the block profile.
#[derive(Default)]
pub struct Condvar {
    inner: super::Condvar,
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Condvar {
        Condvar {
            inner: super::Condvar::new(),
        }
    }

    /// Unlocks `guard`'s mutex, waits for a notification, locks it again. An error (with
    /// the guard) if the mutex is poisoned on waking.
    pub fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.inner.wait(&mut guard.inner);
        let poisoned = guard.poison.get();
        result(poisoned, guard)
    }

    /// Waits while `condition` holds (checked before the first wait and after each
    /// wake-up).
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`wait`](Self::wait), at most `timeout`.
    pub fn wait_timeout<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let r = self.inner.wait_for(&mut guard.inner, timeout);
        let poisoned = guard.poison.get();
        result(poisoned, (guard, r))
    }

    /// [`wait_while`](Self::wait_while), at most `timeout` in all.
    pub fn wait_timeout_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let r = self
            .inner
            .wait_while_for(&mut guard.inner, |v| condition(v), timeout);
        let poisoned = guard.poison.get();
        result(poisoned, (guard, r))
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.inner.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.inner.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panic_while_holding_poisons_and_clear_poison_clears() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let r = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert!(m.is_poisoned());
        let e = m.lock().unwrap_err();
        assert_eq!(*e.into_inner(), 1, "the guard comes with the error");
        assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
        m.clear_poison();
        assert_eq!(*m.lock().unwrap(), 1);
        let g = m.lock().unwrap();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        drop(g);
        let m = Arc::try_unwrap(m).unwrap();
        assert_eq!(m.into_inner().unwrap(), 1);
    }

    #[test]
    fn a_guard_taken_while_panicking_does_not_poison() {
        let m = Mutex::new(0);
        struct LockOnDrop<'a>(&'a Mutex<i32>);
        impl Drop for LockOnDrop<'_> {
            fn drop(&mut self) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _d = LockOnDrop(&m);
            panic!("boom");
        }));
        assert!(r.is_err());
        assert!(
            !m.is_poisoned(),
            "std poisons only if the panic began while held"
        );
        assert_eq!(*m.lock().unwrap(), 1);
    }

    #[test]
    fn rwlock_writers_poison_readers_do_not() {
        let l = Arc::new(RwLock::new(5));
        let l2 = l.clone();
        let _ = std::thread::spawn(move || {
            let _r = l2.read().unwrap();
            panic!("reader");
        })
        .join();
        assert!(!l.is_poisoned());
        let l2 = l.clone();
        let _ = std::thread::spawn(move || {
            let _w = l2.write().unwrap();
            panic!("writer");
        })
        .join();
        assert!(l.is_poisoned());
        assert_eq!(**l.read().unwrap_err().get_ref(), 5);
        assert!(matches!(l.try_write(), Err(TryLockError::Poisoned(_))));
        l.clear_poison();
        *l.write().unwrap() = 6;
        let r = l.read().unwrap();
        assert!(matches!(l.try_write(), Err(TryLockError::WouldBlock)));
        assert_eq!(*r, 6);
    }

    #[test]
    fn condvar_waits_and_times_out_with_std_signatures() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = pair.clone();
        let t = std::thread::spawn(move || {
            *p2.0.lock().unwrap() = true;
            p2.1.notify_all();
        });
        let (m, c) = &*pair;
        let g = c.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap();
        assert!(*g);
        drop(g);
        t.join().unwrap();
        let (g, r) = c
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(1))
            .unwrap();
        assert!(r.timed_out());
        let (_g, r) = c
            .wait_timeout_while(g, Duration::from_millis(1), |_| true)
            .unwrap();
        assert!(r.timed_out());
    }
}
