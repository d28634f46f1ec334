//! The mutex profile: delay that waiters on [`crate::sync`] locks suffered, charged to the
//! stack of the code that held the lock and released it (Go's `mutex` profile).
//!
//! Off until a fraction is set. The profile is cumulative since the process started
//! recording; a `.mutex()` guard writes only its own window.

use crate::sync::contention::{self, Which};
use crate::{Error, Profile};

/// Records 1 in `n` contention events (0 turns recording off, 1 records all) and returns
/// the previous fraction. Counts and delays are scaled by `n`, so totals stay unbiased.
/// Go's `runtime.SetMutexProfileFraction`.
pub fn set_fraction(n: u64) -> u64 {
    contention::set_mutex_fraction(n)
}

/// The current fraction (0 = off).
pub fn fraction() -> u64 {
    contention::mutex_fraction()
}

/// The mutex profile so far: `contentions/count`, `delay/nanoseconds`.
pub fn profile() -> Result<Profile, Error> {
    let (stacks, dropped) = contention::snapshot(Which::Mutex);
    crate::sync::profile::profile(Which::Mutex, &stacks, dropped, None)
}
