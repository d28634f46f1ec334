//! The block profile: time threads spent waiting on [`crate::sync`] locks and condition
//! variables and in [`crate::sync::blocking`] calls, charged to the waiter's stack (Go's
//! `block` profile).
//!
//! Off until a rate is set. The profile is cumulative since the process started
//! recording; a `.block()` guard writes only its own window.

use crate::sync::contention::{self, Which};
use crate::{Error, Profile};

/// Records a wait of `d` ns with probability `d / ns` (always when `d >= ns`; 1 records
/// every wait, 0 turns recording off) and returns the previous rate. Sampled short waits
/// are scaled up, so totals stay unbiased. Go's `runtime.SetBlockProfileRate`.
pub fn set_rate(ns: u64) -> u64 {
    contention::set_block_rate(ns)
}

/// The current rate in nanoseconds (0 = off).
pub fn rate() -> u64 {
    contention::block_rate()
}

/// The block table's state (cheap: no stack is copied); `setting` is the rate.
pub fn stats() -> super::mutex::ContentionStats {
    super::mutex::ContentionStats::of(Which::Block, rate())
}

/// The block profile so far: `contentions/count`, `delay/nanoseconds`.
pub fn profile() -> Result<Profile, Error> {
    let (stacks, dropped) = contention::snapshot(Which::Block);
    crate::sync::profile::profile(Which::Block, &stacks, dropped, None)
}
