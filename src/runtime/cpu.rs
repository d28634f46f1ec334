//! CPU profiling: sample where threads spend CPU time.
//!
//! ```no_run
//! # fn work() {}
//! let profiler = profile::runtime::cpu::start(100)?;
//! work();
//! let profile = profiler.stop()?;
//! println!("{} ms of CPU", profile.total("cpu") / 1_000_000);
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! Samples are taken by the `pprof` crate's SIGPROF handler on a process-wide
//! `setitimer(ITIMER_PROF)` timer. The profile has sample types `samples/count` and
//! `cpu/nanoseconds`, period `cpu/nanoseconds` = 1e9 / frequency, and a `thread_name` label
//! on each sample.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Profile, ProfileKind, sys};

/// The default sampling frequency, as in Go and pkg/profile.
pub const DEFAULT_FREQUENCY: u32 = 100;
/// The highest frequency accepted. The kernel delivers at most one timer signal per tick
/// (250 Hz here), so rates above that under-count unless weighted; see
/// `docs/architecture.md`.
pub const MAX_FREQUENCY: u32 = 10_000;

/// Set while a CPU profiler runs (one per process).
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Checks a frequency without starting anything.
pub(crate) fn validate(hz: u32) -> Result<(), Error> {
    if hz == 0 || hz > MAX_FREQUENCY {
        return Err(Error::InvalidFrequency {
            hz,
            max: MAX_FREQUENCY,
        });
    }
    Ok(())
}

/// Starts CPU profiling at `hz` samples per CPU-second.
///
/// Errors: [`Error::InvalidFrequency`] for 0 or more than [`MAX_FREQUENCY`],
/// [`Error::AlreadyActive`] if a CPU profile (a guard's or another `start`) is running,
/// [`Error::Unsupported`] off Linux.
pub fn start(hz: u32) -> Result<CpuProfiler, Error> {
    validate(hz)?;
    if IN_USE
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(Error::AlreadyActive {
            mode: ProfileKind::Cpu,
        });
    }
    match sys::cpu::Sampler::start(hz) {
        Ok(sampler) => Ok(CpuProfiler {
            sampler: Some(sampler),
            hz,
        }),
        Err(e) => {
            IN_USE.store(false, Ordering::Release);
            Err(e)
        }
    }
}

/// A running CPU profiler. [`stop`](CpuProfiler::stop) returns the profile; dropping it
/// stops sampling and discards what was collected.
#[must_use = "dropping a CpuProfiler stops it and discards its samples; call .stop()"]
pub struct CpuProfiler {
    sampler: Option<sys::cpu::Sampler>,
    hz: u32,
}

impl std::fmt::Debug for CpuProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuProfiler")
            .field("frequency", &self.hz)
            .finish_non_exhaustive()
    }
}

impl CpuProfiler {
    /// The sampling frequency in Hz.
    pub fn frequency(&self) -> u32 {
        self.hz
    }

    /// Stops sampling and returns the symbolized profile.
    pub fn stop(mut self) -> Result<Profile, Error> {
        // Always Some: only `stop` (which takes `self`) and `drop` take it.
        let result = match self.sampler.take() {
            Some(s) => s.stop(),
            None => Ok(Profile::default()),
        };
        // Released only once the sampler's timer and handler are gone.
        IN_USE.store(false, Ordering::Release);
        result
    }
}

impl Drop for CpuProfiler {
    fn drop(&mut self) {
        if self.sampler.take().is_some() {
            IN_USE.store(false, Ordering::Release);
        }
    }
}
