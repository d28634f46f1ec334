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

/// The contention tables' state (of the mutex profile here, of the block profile from
/// [`super::block::stats`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentionStats {
    /// The setting: the fraction (mutex) or the rate in nanoseconds (block); 0 = off.
    pub setting: u64,
    /// Distinct stacks recorded.
    pub stacks: usize,
    /// At most this many stacks; events on further ones are dropped.
    pub max_stacks: usize,
    /// Events not recorded because the table was full (also noted in the profile).
    pub dropped_events: u64,
}

impl ContentionStats {
    pub(crate) fn of(which: Which, setting: u64) -> ContentionStats {
        let (stacks, dropped_events) = contention::table_state(which);
        ContentionStats {
            setting,
            stacks,
            max_stacks: contention::MAX_STACKS,
            dropped_events,
        }
    }
}

/// The mutex table's state (cheap: no stack is copied).
pub fn stats() -> ContentionStats {
    ContentionStats::of(Which::Mutex, fraction())
}

/// The mutex profile so far: `contentions/count`, `delay/nanoseconds`.
pub fn profile() -> Result<Profile, Error> {
    let (stacks, dropped) = contention::snapshot(Which::Mutex);
    crate::sync::profile::profile(Which::Mutex, &stacks, dropped, None)
}
