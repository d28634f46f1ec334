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
//! The same recording behind other APIs: [`poison`] has std's (`lock()` returns a
//! `LockResult`, panics poison), [`tokio`](mod@self::tokio) (feature `tokio`) has
//! tokio's async `Mutex` and `RwLock`, and [`awaiting`] times any future's pending time
//! into the block profile. `std::sync` and `tokio::sync` locks themselves are not seen:
//! nothing in them reports contention; switch the import to have them recorded.
//!
//! Not provided: upgradable reads (`RwLockUpgradableReadGuard`) and reentrant mutexes.
//! A `Mutex` is 32 bytes (parking_lot's is 1): the waiter bookkeeping of the mutex
//! profile lives beside the lock.

pub(crate) mod contention;
pub mod poison;
pub(crate) mod profile;
mod raw;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

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

/// Wraps `future` so that the time it spends pending — from its first `Poll::Pending`
/// until it is ready — is recorded in the block profile, charged to the stack of the poll
/// that completes it (the same chain of async functions that awaited it). The async
/// counterpart of [`blocking`], with the block profile's sampling; a future dropped
/// before it is ready records nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let slept = profile::sync::awaiting(tokio::time::sleep(std::time::Duration::from_millis(1)));
/// slept.await; // with runtime::block::set_rate(..) on, ~1 ms in the block profile
/// # }
/// ```
pub fn awaiting<F: std::future::Future>(future: F) -> Awaiting<F> {
    Awaiting {
        inner: future,
        since: 0,
    }
}

/// A future whose pending time goes to the block profile; made by [`awaiting`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Awaiting<F> {
    inner: F,
    /// When it first returned `Pending` (`contention::now_ns`, at least 1); 0 = not yet,
    /// or block profiling was off then.
    since: u64,
}

impl<F: std::future::Future> std::future::Future for Awaiting<F> {
    type Output = F::Output;

    #[inline(never)] // a frame of its own, trimmed from profiles with the crate's others
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: never moved while pinned (no method
        // moves it out); `since` is a plain integer, not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let r = unsafe { std::pin::Pin::new_unchecked(&mut this.inner) }.poll(cx);
        match r {
            std::task::Poll::Pending => {
                if this.since == 0 && contention::block_rate() != 0 {
                    this.since = contention::now_ns().max(1);
                }
            }
            std::task::Poll::Ready(_) => {
                if this.since != 0 {
                    contention::block_event(contention::now_ns().saturating_sub(this.since));
                    this.since = 0;
                }
            }
        }
        r
    }
}
