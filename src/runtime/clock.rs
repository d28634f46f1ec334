//! Wall-clock profiling: every thread sampled at a fixed rate of real time, whether it
//! runs or waits (pkg/profile's ClockProfile, Go's fgprof). Where CPU profiles show what
//! burns CPU, this shows where the time goes while threads sleep, wait for locks or
//! block in I/O.
//!
//! ```no_run
//! # fn work() {}
//! let profiler = profile::runtime::clock::start(99)?;
//! work();
//! let profile = profiler.stop()?;
//! println!("{} ms of thread time", profile.total("time") / 1_000_000);
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! A background thread (`profile-clock`) wakes `hz` times a second, lists the threads and
//! captures each one's stack with the signal-based capture of [`super::threads`]. Each
//! sample weighs the wall time since the previous round, so `time/nanoseconds` adds up to
//! (threads × seconds) even when a round runs late. Sample types: `samples/count`,
//! `time/nanoseconds`; period type `wall/nanoseconds`; labels `thread_name` and
//! `thread_id`. Threads that could not be asked (signal blocked, stopped) are counted in
//! the profile's comments, not hidden.
//!
//! # On a busy machine
//!
//! The sampler thread needs a CPU to start a round, and waits longer for one while
//! computing threads hold the CPUs than while they sleep, so its rounds lean towards
//! moments when threads wait: with four spinning threads on two cores, a thread computing
//! 62% of its wall time read 50% (`tests/clock_busy.rs`); its 30% and idle threads read
//! right. When rounds start more than half a period late, the profile's comments say how
//! many and by how much, so a reader knows the split leans. Totals per thread stay right:
//! each sample weighs the time since the previous round, and a thread that answered a
//! round too late (it waited for a CPU) has that round's time added to its next sample
//! (it was 11% short under load otherwise). On a machine with a CPU to spare the split is
//! exact within sampling noise.

use super::shared::{Claim, Exclusive};
use crate::profile::builder::{ProfileBuilder, Resolve, thread_labels};
use crate::profile::{Label, LabelValue, ValueType};
use crate::{Error, Profile, ProfileKind, sys};

/// The default rate: 99 Hz, off the beat of timers that fire at round rates.
pub const DEFAULT_FREQUENCY: u32 = 99;
/// The highest rate accepted: each round interrupts every thread once.
pub const MAX_FREQUENCY: u32 = 1000;

/// One clock profiler per process.
static EXCLUSIVE: Exclusive = Exclusive::new(ProfileKind::Clock);

/// Checks a frequency without starting anything.
pub(crate) fn validate(hz: u32) -> Result<(), Error> {
    super::shared::validate_frequency("wall-clock", hz, MAX_FREQUENCY)
}

/// Starts sampling every thread `hz` times per wall-clock second.
///
/// Errors: [`Error::InvalidFrequency`] for 0 or more than [`MAX_FREQUENCY`],
/// [`Error::AlreadyActive`] if a clock profile is running, [`Error::NoFreeSignal`],
/// [`Error::Unsupported`] off Linux (x86_64, aarch64).
pub fn start(hz: u32) -> Result<ClockProfiler, Error> {
    validate(hz)?;
    let claim = EXCLUSIVE.claim()?;
    Ok(ClockProfiler {
        sampler: Some(sys::clock::Sampler::start(hz)?),
        pid: std::process::id(),
        hz,
        _claim: claim,
    })
}

/// A running wall-clock profiler. [`stop`](ClockProfiler::stop) returns the profile;
/// dropping it stops sampling and discards the samples.
#[must_use = "dropping a ClockProfiler stops it and discards its samples; call .stop()"]
pub struct ClockProfiler {
    sampler: Option<sys::clock::Sampler>,
    /// The process that started it (a fork child must not stop the parent's sampler).
    pid: u32,
    hz: u32,
    /// Last: released after the sampler stopped.
    _claim: Claim,
}

impl std::fmt::Debug for ClockProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockProfiler")
            .field("frequency", &self.hz)
            .finish_non_exhaustive()
    }
}

/// The wall-clock sampler's counters: of the running profiler, else of the last one.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockStats {
    /// Sampling rounds taken (one per period: every thread once).
    pub rounds: u64,
    /// Rounds that started more than half a period late (a busy machine: the sampler
    /// waited for a CPU; the profile's comments say so too).
    pub late_rounds: u64,
    /// Thread captures that failed (the thread blocked the signal, was stopped, or did
    /// not answer in time).
    pub missed_captures: u64,
}

/// The counters of the running wall-clock profiler, else of the last one (zero before
/// any). Cheap: three atomic loads.
pub fn stats() -> ClockStats {
    use std::sync::atomic::Ordering::Relaxed;
    ClockStats {
        rounds: sys::clock::ROUNDS.load(Relaxed),
        late_rounds: sys::clock::LATE_ROUNDS.load(Relaxed),
        missed_captures: sys::clock::MISSES.load(Relaxed),
    }
}

impl ClockProfiler {
    /// The sampling frequency in Hz.
    pub fn frequency(&self) -> u32 {
        self.hz
    }

    /// The sampler's counters so far (as [`stats`]).
    pub fn stats(&self) -> ClockStats {
        stats()
    }

    /// The profile of the rounds taken since the start or the previous cut, while
    /// sampling goes on (as [`crate::runtime::cpu::CpuProfiler::cut`]): each round is in
    /// exactly one cut.
    ///
    /// Errors: [`Error::ForkedChild`] in a `fork()` child, [`Error::System`] if the
    /// sampler's thread has ended.
    pub fn cut(&mut self) -> Result<Profile, Error> {
        super::shared::check_same_process(self.pid, ProfileKind::Clock)?;
        match &mut self.sampler {
            Some(s) => {
                let recorded = s.cut()?;
                sys::with_symbolizer("wall-clock profiling", |symbolizer| {
                    Ok(build(&recorded, symbolizer))
                })
            }
            None => Ok(Profile::default()),
        }
    }

    /// Stops sampling and returns the symbolized profile.
    ///
    /// In a `fork()` child of the process that started it: [`Error::ForkedChild`] (the
    /// sampler's threads and timers are the parent's; nothing of them is touched).
    pub fn stop(mut self) -> Result<Profile, Error> {
        if let Err(e) = super::shared::check_same_process(self.pid, ProfileKind::Clock) {
            std::mem::forget(self.sampler.take());
            return Err(e);
        }
        // The claim is released when `self` drops, after the sampler has stopped.
        match self.sampler.take() {
            Some(s) => {
                let recorded = s.stop()?;
                sys::with_symbolizer("wall-clock profiling", |symbolizer| {
                    Ok(build(&recorded, symbolizer))
                })
            }
            None => Ok(Profile::default()),
        }
    }
}

/// The profile of a stopped sampler's recording.
fn build(r: &sys::clock::Recorded, symbolizer: &mut dyn Resolve) -> Profile {
    let (c, hz, start_nanos, duration) = (&r.collected, r.hz, r.start_nanos, r.duration);
    let mut b = ProfileBuilder::new(
        symbolizer,
        vec![
            ValueType::new("samples", "count"),
            ValueType::new("time", "nanoseconds"),
        ],
    );
    let mut samples: Vec<_> = c.samples.iter().collect();
    samples.sort_by_key(|((_, tid, _), _)| *tid);
    for ((stack, tid, user), &(count, nanos)) in samples {
        let mut labels = thread_labels(c.names.get(tid).cloned().unwrap_or_default(), *tid);
        if let Some(user) = user {
            labels.extend(user.0.iter().map(|(k, v)| Label {
                key: k.clone(),
                value: LabelValue::Str(v.clone()),
            }));
        }
        b.add(stack, true, &[count, nanos], labels);
    }
    let header = b.header();
    header.period_type = Some(ValueType::new("wall", "nanoseconds"));
    header.period = 1_000_000_000 / i64::from(hz);
    header.time_nanos = start_nanos;
    header.duration_nanos = duration.as_nanos() as i64;
    let mut misses: Vec<_> = c.misses.iter().collect();
    misses.sort();
    for (why, n) in misses {
        header
            .comments
            .push(format!("{n} thread samples not taken: {why}"));
    }
    if c.late_rounds > 0 {
        header.comments.push(format!(
            "{} of {} rounds started more than half a period late (latest by {:.1} ms): the machine was busy, and samples then lean towards waiting threads (a thread computing 60% of its wall time read 50%)",
            c.late_rounds,
            c.rounds,
            c.max_late.as_secs_f64() * 1000.0
        ));
    }
    if c.failed_rounds > 0 {
        header.comments.push(format!(
            "{} of {} rounds skipped: the thread list could not be read",
            c.failed_rounds, c.rounds
        ));
    }
    b.finish()
}

impl Drop for ClockProfiler {
    fn drop(&mut self) {
        if let Some(s) = self.sampler.take() {
            if super::shared::check_same_process(self.pid, ProfileKind::Clock).is_err() {
                // A fork child: the sampler's threads are not here to stop.
                std::mem::forget(s);
                return;
            }
            s.discard();
        }
    }
}
