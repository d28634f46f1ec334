//! CPU sampling through the `pprof` crate (setitimer(ITIMER_PROF) + SIGPROF), and the
//! conversion of its unresolved report (raw return addresses) into a [`Profile`].
//!
//! The signal handler is the `pprof` crate's own; nothing of ours runs in signal context
//! here. Its stacks start inside the handler, so the frames up to and including the
//! signal trampoline are cut off before symbolization (see [`trim_handler_frames`]).

use crate::Error;
use crate::profile::builder::{ProfileBuilder, nanos_since_epoch};
use crate::profile::{Label, LabelValue, Profile, ValueType};

use super::symbolize::{self, Symbolizer};

/// A running CPU sampler.
pub(crate) struct Sampler {
    guard: pprof::ProfilerGuard<'static>,
    hz: u32,
}

fn sampler_error(e: pprof::Error) -> Error {
    Error::Sampler {
        source: Box::new(e),
    }
}

impl Sampler {
    /// Starts sampling at `hz` (already validated by the caller).
    pub(crate) fn start(hz: u32) -> Result<Sampler, Error> {
        let frequency = i32::try_from(hz).map_err(|_| Error::InvalidFrequency {
            hz,
            max: crate::runtime::cpu::MAX_FREQUENCY,
        })?;
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(frequency)
            .build()
            .map_err(sampler_error)?;
        Ok(Sampler { guard, hz })
    }

    /// Stops sampling and builds the profile.
    pub(crate) fn stop(self) -> Result<Profile, Error> {
        let report = self.guard.report().build_unresolved();
        // Dropping the guard stops the timer and restores SIGPROF's disposition.
        drop(self.guard);
        let report = report.map_err(sampler_error)?;

        let mut symbolizer = symbolize::shared();
        let period = 1_000_000_000 / i64::from(self.hz);
        let mut stacks = Vec::with_capacity(report.data.len());
        for (frames, count) in &report.data {
            // The unwinder ends some stacks with a 0 return address (past `_start`).
            let ips: Vec<u64> = frames
                .frames
                .iter()
                .map(|f| f.ip() as u64)
                .filter(|&ip| ip != 0)
                .collect();
            let (start, exact) = trim_handler_frames(&mut symbolizer, &ips);
            let name = &frames.thread_name[..frames.thread_name_length];
            let labels = if name.is_empty() {
                Vec::new()
            } else {
                vec![Label {
                    key: "thread_name".into(),
                    value: LabelValue::Str(String::from_utf8_lossy(name).into_owned()),
                }]
            };
            stacks.push((ips[start..].to_vec(), exact, *count as i64, labels));
        }

        let mut b = ProfileBuilder::new(
            &mut *symbolizer,
            vec![
                ValueType::new("samples", "count"),
                ValueType::new("cpu", "nanoseconds"),
            ],
        );
        for (stack, exact, count, labels) in stacks {
            b.add(&stack, exact, &[count, count * period], labels);
        }
        let header = b.header();
        header.period_type = Some(ValueType::new("cpu", "nanoseconds"));
        header.period = period;
        header.time_nanos = nanos_since_epoch(report.timing.start_time);
        header.duration_nanos = report.timing.duration.as_nanos() as i64;
        Ok(b.finish())
    }
}

/// Where the interrupted code's frames start in a stack the `pprof` crate captured, and
/// whether that first frame is the exact interrupted instruction.
///
/// The stack begins inside the unwinder and `perf_signal_handler`. The handler's return
/// address is always the kernel's signal trampoline (`sa_restorer`: `__restore_rt` in
/// glibc on x86_64, `__kernel_rt_sigreturn` in the aarch64 vdso), whatever its symbol
/// says, so the frame after the handler is skipped unconditionally; the one after that
/// holds the interrupted PC itself, not a return address. A stack without the handler
/// (not expected) is kept whole.
pub(crate) fn trim_handler_frames(symbolizer: &mut Symbolizer, ips: &[u64]) -> (usize, bool) {
    let handler = ips.iter().position(|&ip| {
        symbolizer
            .names(ip.saturating_sub(1))
            .iter()
            .any(|n| n == "perf_signal_handler")
    });
    match handler {
        Some(h) => ((h + 2).min(ips.len()), true),
        None => (0, false),
    }
}
