//! Heap profiling: sampled allocations by call stack, what is live now and what was
//! allocated, as in Go's heap and allocs profiles.
//!
//! Needs [`crate::Allocator`] as the global allocator:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: profile::Allocator = profile::Allocator::system();
//!
//! fn main() -> Result<(), profile::Error> {
//!     profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE)?;
//!     // ... run ...
//!     let heap = profile::runtime::heap::profile()?;
//!     println!("{} bytes live", heap.total("inuse_space"));
//!     Ok(())
//! }
//! ```
//!
//! Sampling is off until a rate is set (unlike Go, where it is always on at 512 KiB).
//! An allocation of `s` bytes is sampled with probability `1 - exp(-s / rate)` (a random
//! per-thread byte countdown, as in Go and tcmalloc), and the profile's values are
//! unbiased with Go's formula. Frees of sampled objects are matched, so in-use values are
//! right at any moment. Changing the rate (or setting it to 0) starts over: samples taken
//! at different rates cannot be combined.
//!
//! The profile: sample types `alloc_objects/count`, `alloc_space/bytes`,
//! `inuse_objects/count`, `inuse_space/bytes`; period `space/bytes` = the rate; a numeric
//! `bytes` label with the object size; the allocator's own frames trimmed from the top.

use crate::heap::sampler;
use crate::{Error, Profile};

/// Go's default sampling rate: on average one sample per 512 KiB allocated.
pub const DEFAULT_RATE: usize = 512 * 1024;

/// Whether [`crate::Allocator`] is this program's global allocator.
pub fn is_installed() -> bool {
    sampler::installed()
}

/// Sets the sampling rate in bytes (0 turns sampling off, 1 records every allocation) and
/// returns the previous one. A different rate clears what was recorded.
///
/// Errors: [`Error::AllocatorNotInstalled`] for a nonzero rate without the wrapper.
pub fn set_rate(bytes: usize) -> Result<usize, Error> {
    if bytes != 0 && !sampler::installed() {
        return Err(Error::AllocatorNotInstalled);
    }
    Ok(sampler::set_rate(bytes))
}

/// The current sampling rate (0 = off).
pub fn rate() -> usize {
    sampler::rate()
}

/// A heap profile of what was recorded since the rate was last set (Go's `heap`).
pub fn profile() -> Result<Profile, Error> {
    crate::heap::profile::profile(&sampler::snapshot(), false)
}

/// The same data opening on `alloc_space` (Go's `allocs`).
pub fn allocs_profile() -> Result<Profile, Error> {
    crate::heap::profile::profile(&sampler::snapshot(), true)
}

/// The heap profiler's own state and memory.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapStats {
    /// The sampling rate (0 = off).
    pub rate: usize,
    /// Sampled objects not freed yet.
    pub live_samples: usize,
    /// (stack, size) buckets in use.
    pub buckets: usize,
    /// Samples not recorded because a table was full (also noted in the profile).
    pub dropped_samples: u64,
    /// Samples whose stack the fast (cached) unwinder could not walk, so libgcc's slower
    /// one was used: frames in a library loaded after sampling started, or on platforms
    /// without the fast unwinder (everything but x86_64 Linux).
    pub slow_stack_captures: u64,
    /// Memory reserved for the tables, fixed at first use; only the touched part is
    /// resident.
    pub reserved_bytes: usize,
    /// At most this many sampled objects are tracked at once.
    pub max_live_samples: usize,
    /// At most this many (stack, size) buckets.
    pub max_buckets: usize,
}

/// The heap profiler's own state and memory (cheap: copies counters only).
pub fn stats() -> HeapStats {
    let c = sampler::counters();
    HeapStats {
        rate: sampler::rate(),
        live_samples: c.live,
        buckets: c.buckets,
        dropped_samples: c.dropped,
        slow_stack_captures: c.slow_captures,
        reserved_bytes: if c.allocated {
            sampler::reserved_bytes()
        } else {
            0
        },
        max_live_samples: sampler::MAX_LIVE,
        max_buckets: sampler::MAX_BUCKETS,
    }
}
