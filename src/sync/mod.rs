//! Drop-in `parking_lot` locks that feed the mutex and block profiles.
//!
//! Switching is an import change: `use profile::sync::{Mutex, RwLock, Condvar};` instead
//! of `use parking_lot::{...}`. The types are `lock_api`'s (as parking_lot's are), so the
//! API is the same: guards, `try_lock`, `try_lock_for`, `into_inner`, `get_mut`, const
//! `new`, `Default`, `Debug`, mapped guards, `MutexGuard::unlocked`, fair unlocking.
//!
//! ```
//! use profile::sync::{Condvar, Mutex};
//!
//! static QUEUE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
//! let ready = Condvar::new();
//! QUEUE.lock().push(1);
//! ready.notify_one();
//! assert_eq!(QUEUE.lock().len(), 1);
//! ```
//!
//! What is recorded, and only on contended paths (an uncontended lock/unlock costs what
//! parking_lot's does, plus one load):
//!
//! - **Mutex profile** ([`crate::runtime::mutex`], `.mutex()` guards): the delay waiters
//!   suffered, charged to the stack of the code that held the lock and released it — where
//!   to shorten a critical section.
//! - **Block profile** ([`crate::runtime::block`], `.block()` guards): the time a thread
//!   waited, charged to the waiter's stack: lock waits, [`Condvar`] waits, and any other
//!   blocking call wrapped in [`blocking`] (channel receives, joins, I/O).
//!
//! Not provided: upgradable reads (`RwLockUpgradableReadGuard`) and reentrant mutexes.
//! A `Mutex` is 32 bytes (parking_lot's is 1): the waiter bookkeeping of the mutex
//! profile lives beside the lock.

pub(crate) mod contention;
pub(crate) mod profile;
mod raw;

pub use raw::{RawCondvar, RawMutex, RawRwLock};

/// A mutual exclusion lock (parking_lot's `Mutex`, instrumented).
pub type Mutex<T> = lock_api::Mutex<RawMutex, T>;
/// The guard of a locked [`Mutex`].
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawMutex, T>;
/// A [`MutexGuard`] mapped to a part of the data.
pub type MappedMutexGuard<'a, T> = lock_api::MappedMutexGuard<'a, RawMutex, T>;
/// A reader-writer lock (parking_lot's `RwLock`, instrumented).
pub type RwLock<T> = lock_api::RwLock<RawRwLock, T>;
/// The guard of a read-locked [`RwLock`].
pub type RwLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, RawRwLock, T>;
/// The guard of a write-locked [`RwLock`].
pub type RwLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, RawRwLock, T>;
/// A [`RwLockReadGuard`] mapped to a part of the data.
pub type MappedRwLockReadGuard<'a, T> = lock_api::MappedRwLockReadGuard<'a, RawRwLock, T>;
/// A [`RwLockWriteGuard`] mapped to a part of the data.
pub type MappedRwLockWriteGuard<'a, T> = lock_api::MappedRwLockWriteGuard<'a, RawRwLock, T>;
/// A condition variable for [`Mutex`] (parking_lot's `Condvar`, instrumented): each wait
/// is recorded in the block profile.
pub type Condvar = lock_api::Condvar<RawCondvar>;
pub use lock_api::WaitTimeoutResult;

/// Runs `f`, a call that blocks (a channel receive, a join, a read), and records the time
/// it took in the block profile, charged to the caller's stack.
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// std::thread::spawn(move || tx.send(7).unwrap());
/// let v = profile::sync::blocking(|| rx.recv()).unwrap();
/// assert_eq!(v, 7);
/// ```
#[inline(never)]
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    if contention::block_rate() == 0 {
        return f();
    }
    let t0 = contention::now_ns();
    let r = f();
    contention::block_event(contention::now_ns().saturating_sub(t0));
    r
}
