//! Instrumented async locks with **tokio's API** (cargo feature `tokio`): a
//! `tokio::sync::Mutex` or `RwLock` user switches with one import, and the time tasks
//! wait for them appears in the mutex and block profiles.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use profile::sync::tokio::Mutex;
//! // was: use tokio::sync::Mutex;
//!
//! let cache = Mutex::new(Vec::new());
//! cache.lock().await.push(1); // a guard may be held across `.await`
//! assert_eq!(cache.lock().await.len(), 1);
//! # }
//! ```
//!
//! What is recorded, as for [`crate::sync`]'s locks and only when a lock is contended:
//! a task's wait for the lock in the block profile (charged to the stack that polled the
//! `lock()` future: the awaiting async functions), and in the mutex profile the delay the
//! waiters suffered, charged to the code that released the lock. A `lock()` future
//! dropped while waiting records nothing. The locks are tokio's (fair, FIFO), wrapped.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};

pub use ::tokio::sync::TryLockError;

use super::contention::{self, block_event, now_ns};
use super::raw::Waits;

/// Undoes an `arrive` if the waiting future is dropped (or panics) before it gets the
/// lock; on success, `done` leaves and records the wait.
struct Waiting<'a> {
    waits: &'a Waits,
    t0: u64,
}

impl Waiting<'_> {
    fn done(self) {
        let t1 = now_ns();
        let delay = t1.saturating_sub(self.t0);
        drop(self); // leave
        block_event(delay);
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waits.leave(self.t0);
    }
}

/// Acquires with `try_now`, else waits on `wait`, timing the wait when a profile wants
/// it.
async fn acquire<G, W: Future<Output = G>>(
    waits: &Waits,
    try_now: impl FnOnce() -> Option<G>,
    wait: impl FnOnce() -> W,
) -> G {
    if let Some(g) = try_now() {
        return g;
    }
    if !contention::enabled() {
        return wait().await;
    }
    let t0 = now_ns();
    waits.arrive(t0);
    let waiting = Waiting { waits, t0 };
    let g = wait().await;
    waiting.done();
    g
}

/// Charges the delay of current waiters to the caller (a guard being released).
#[inline]
fn release(waits: &Waits) {
    if waits.has_waiters() {
        waits.released();
    }
}

/// An async mutual exclusion lock: `tokio::sync::Mutex`, instrumented.
pub struct Mutex<T: ?Sized> {
    waits: Waits,
    inner: ::tokio::sync::Mutex<T>,
}

/// The guard of a locked [`Mutex`]; may be held across `.await`.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    waits: &'a Waits,
    inner: ::tokio::sync::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            waits: Waits::new(),
            inner: ::tokio::sync::Mutex::new(value),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, waiting (asynchronously) until the lock is free.
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        let inner = acquire(
            &self.waits,
            || self.inner.try_lock().ok(),
            || self.inner.lock(),
        )
        .await;
        MutexGuard {
            waits: &self.waits,
            inner,
        }
    }

    /// Locks if the lock is free now.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        self.inner.try_lock().map(|inner| MutexGuard {
            waits: &self.waits,
            inner,
        })
    }

    /// Locks from synchronous code outside the runtime's workers (tokio's
    /// `blocking_lock`: panics if called on an async worker).
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        let inner = match self.inner.try_lock() {
            Ok(g) => g,
            // The synchronous locks' timed wait (an untimed blocking_lock always succeeds).
            Err(_) => match self.waits.contended(|| Some(self.inner.blocking_lock())) {
                Some(g) => g,
                None => unreachable!("blocking_lock always returns the guard"),
            },
        };
        MutexGuard {
            waits: &self.waits,
            inner,
        }
    }

    /// The value, through a unique reference (no locking).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
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
        fmt::Debug::fmt(&self.inner, f)
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
        // Before `inner` unlocks (fields drop after this): the releaser's stack.
        release(self.waits);
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

/// An async reader-writer lock: `tokio::sync::RwLock`, instrumented.
pub struct RwLock<T: ?Sized> {
    waits: Waits,
    inner: ::tokio::sync::RwLock<T>,
}

/// The guard of a read-locked [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    waits: &'a Waits,
    inner: ::tokio::sync::RwLockReadGuard<'a, T>,
}

/// The guard of a write-locked [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    waits: &'a Waits,
    inner: ::tokio::sync::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A new, unlocked lock.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            waits: Waits::new(),
            inner: ::tokio::sync::RwLock::new(value),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds it (or waits for it: tokio's lock
    /// is fair).
    pub async fn read(&self) -> RwLockReadGuard<'_, T> {
        let inner = acquire(
            &self.waits,
            || self.inner.try_read().ok(),
            || self.inner.read(),
        )
        .await;
        RwLockReadGuard {
            waits: &self.waits,
            inner,
        }
    }

    /// Locks for writing, waiting while anyone holds it.
    pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
        let inner = acquire(
            &self.waits,
            || self.inner.try_write().ok(),
            || self.inner.write(),
        )
        .await;
        RwLockWriteGuard {
            waits: &self.waits,
            inner,
        }
    }

    /// Locks for reading if no writer holds it now.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        self.inner.try_read().map(|inner| RwLockReadGuard {
            waits: &self.waits,
            inner,
        })
    }

    /// Locks for writing if nobody holds it now.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        self.inner.try_write().map(|inner| RwLockWriteGuard {
            waits: &self.waits,
            inner,
        })
    }

    /// The value, through a unique reference (no locking).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
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
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        release(self.waits);
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
    fn drop(&mut self) {
        release(self.waits);
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
