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
//! Every thread gets a POSIX timer on its own CPU-time clock that sends SIGPROF to that
//! thread (`timer_create` with `SIGEV_THREAD_ID`, as Go does since 1.18); threads that
//! start later get one within 25–75 ms (the process-wide `ITIMER_PROF` samples them until
//! then). The handler walks the interrupted stack with DWARF
//! CFI (correct without frame pointers, no allocation, no lock) into a lock-free buffer
//! that a background thread (`profile-cpu`) drains; two threads sampling at once never
//! cost a sample. Each thread is sampled at points of its own CPU time with jittered gaps
//! (0.75–1.25 periods); a signal counts every point passed since the previous one, so the
//! CPU total stays right when the kernel delivers fewer signals than asked (rates above
//! its tick, a busy machine). Samples lost
//! to a full buffer are counted under a `lostProfileEvent` frame.
//!
//! The profile has sample types `samples/count` and `cpu/nanoseconds`, period
//! `cpu/nanoseconds` = 1e9 / frequency, and labels `thread_name`, `thread_id` and those
//! set with [`crate::labels::with`] on each sample; its comments give the rate actually
//! achieved and the handler's cost.

use std::time::Duration;

use super::shared::{Claim, Exclusive};
use crate::{Error, Profile, ProfileKind, sys};

/// The default sampling frequency, as in Go and pkg/profile.
pub const DEFAULT_FREQUENCY: u32 = 100;
/// The highest frequency accepted. Above the kernel's tick rate (often 250 Hz) a thread's
/// timer fires once per tick and each signal counts the sampling points passed since the
/// previous one: the totals stay right, the resolution does not improve.
pub const MAX_FREQUENCY: u32 = 10_000;

/// One CPU profiler per process.
static EXCLUSIVE: Exclusive = Exclusive::new(ProfileKind::Cpu);

/// Claims the process's one CPU sampler for another user of it (an execution trace's CPU
/// samples, the sampler's own tests): [`Error::AlreadyActive`] while a CPU profile runs.
#[cfg_attr(not(any(feature = "trace", test)), allow(dead_code))]
pub(crate) fn claim() -> Result<Claim, Error> {
    EXCLUSIVE.claim()
}

/// Checks a frequency without starting anything.
pub(crate) fn validate(hz: u32) -> Result<(), Error> {
    super::shared::validate_frequency("CPU", hz, MAX_FREQUENCY)
}

/// Starts CPU profiling at `hz` samples per CPU-second.
///
/// Errors: [`Error::InvalidFrequency`] for 0 or more than [`MAX_FREQUENCY`],
/// [`Error::AlreadyActive`] if a CPU profile (a guard's or another `start`) is running,
/// [`Error::SignalInUse`] if the application has its own SIGPROF handler or has armed
/// `ITIMER_PROF` (the crate uses both and never replaces the application's),
/// [`Error::Unsupported`] off Linux.
pub fn start(hz: u32) -> Result<CpuProfiler, Error> {
    validate(hz)?;
    let claim = EXCLUSIVE.claim()?;
    Ok(CpuProfiler {
        sampler: Some(sys::cpu::Sampler::start(hz)?),
        pid: std::process::id(),
        hz,
        _claim: claim,
    })
}

/// A running CPU profiler. [`stop`](CpuProfiler::stop) returns the profile; dropping it
/// stops sampling and discards what was collected.
#[must_use = "dropping a CpuProfiler stops it and discards its samples; call .stop()"]
pub struct CpuProfiler {
    sampler: Option<sys::cpu::Sampler>,
    /// The process that started it (a fork child must not stop the parent's sampler).
    pid: u32,
    hz: u32,
    /// Last: released after the sampler stopped.
    _claim: Claim,
}

impl std::fmt::Debug for CpuProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuProfiler")
            .field("frequency", &self.hz)
            .finish_non_exhaustive()
    }
}

/// What the sampler's signal handler has done so far (see [`CpuProfiler::stats`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuStats {
    /// Timer signals handled that counted CPU (each a sample of weight ≥ 1).
    pub signals: u64,
    /// Samples lost because the buffer was full (shown as `lostProfileEvent`).
    pub lost_samples: u64,
    /// Samples recorded with the interrupted function only (no unwinder was free).
    pub leaf_only_samples: u64,
    /// Time spent in the signal handler, in total.
    pub handler_time: Duration,
    /// Frames walked, in total.
    pub frames: u64,
    /// The handler's median time per sample (to 250 ns: wall time, so a handler that was
    /// preempted counts long; the median is not moved by those).
    pub handler_median: Duration,
}

impl CpuStats {
    /// The average time the handler took per sample.
    pub fn handler_time_per_sample(&self) -> Duration {
        self.handler_time
            .checked_div(self.signals.max(1) as u32)
            .unwrap_or_default()
    }
}

/// The signal handler's counters: of the running CPU profiler (a guard's, a trace's or
/// one started here), else of the last one (zero before any). Cheap: atomic loads.
pub fn stats() -> CpuStats {
    let c = sys::cpu::counters();
    CpuStats {
        signals: c.signals,
        lost_samples: c.lost,
        leaf_only_samples: c.leaf_only,
        handler_time: Duration::from_nanos(c.handler_nanos),
        frames: c.frames,
        handler_median: Duration::from_nanos(c.handler_median_nanos),
    }
}

impl CpuProfiler {
    /// The sampling frequency in Hz.
    pub fn frequency(&self) -> u32 {
        self.hz
    }

    /// The handler's counters so far (as [`stats`]).
    pub fn stats(&self) -> CpuStats {
        match &self.sampler {
            Some(_) => stats(),
            None => CpuStats::default(),
        }
    }

    /// The profile of the samples taken since the start or the previous cut, while
    /// sampling goes on: for continuous profiling (`profile::push` uploads one cut per
    /// interval). No sample is lost or counted twice between two cuts; each cut's
    /// `time_nanos` and `duration_nanos` are its own interval. CPU a thread used after its
    /// latest signal is counted when the thread exits or sampling stops, in the cut of
    /// that moment.
    ///
    /// Errors: [`Error::ForkedChild`] in a `fork()` child, [`Error::System`] if the
    /// sampler's thread has ended.
    pub fn cut(&mut self) -> Result<Profile, Error> {
        super::shared::check_same_process(self.pid, ProfileKind::Cpu)?;
        match &mut self.sampler {
            Some(s) => s.cut(),
            None => Ok(Profile::default()),
        }
    }

    /// Stops sampling and returns the symbolized profile.
    ///
    /// In a `fork()` child of the process that started it: [`Error::ForkedChild`] (the
    /// sampler's threads and timers are the parent's; nothing of them is touched).
    pub fn stop(mut self) -> Result<Profile, Error> {
        if let Err(e) = super::shared::check_same_process(self.pid, ProfileKind::Cpu) {
            std::mem::forget(self.sampler.take());
            return Err(e);
        }
        // Always Some: only `stop` (which takes `self`) and `drop` take it. The claim is
        // released when `self` drops, after the sampler has stopped.
        match self.sampler.take() {
            Some(s) => s.stop(),
            None => Ok(Profile::default()),
        }
    }
}

impl Drop for CpuProfiler {
    fn drop(&mut self) {
        if let Some(s) = self.sampler.take() {
            if super::shared::check_same_process(self.pid, ProfileKind::Cpu).is_err() {
                // A fork child: the sampler's threads are not here to stop.
                std::mem::forget(s);
                return;
            }
            s.discard();
        }
    }
}
