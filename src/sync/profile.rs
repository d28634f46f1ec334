//! Mutex and block profiles from the contention tables: symbolize, trim the locks' own
//! frames; and a guard's window of recording.

use super::contention::{MAX_STACKS, Values, Which};
use crate::profile::builder::{ProfileBuilder, Resolve};
use crate::profile::trim;
use crate::profile::{Profile, ValueType};

/// Frames of the instrumented locks and of the recording itself.
pub(crate) fn is_lock_internal(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "backtrace::",
        "_Unwind_",
        "profile::sync::",
        "<profile::sync::",
        "lock_api::",
        "<lock_api::",
        "parking_lot::",
        "<parking_lot::",
        "parking_lot_core::",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Builds a mutex or block profile: `contentions/count`, `delay/nanoseconds`, period type
/// `contentions/count` (as Go writes them).
pub(crate) fn profile(
    _which: Which,
    stacks: &[(Vec<u64>, Values)],
    dropped: u64,
    duration_nanos: Option<i64>,
) -> Result<Profile, crate::Error> {
    crate::sys::with_symbolizer("mutex and block profiles", |symbolizer| {
        build(stacks, dropped, duration_nanos, symbolizer)
    })
}

fn build(
    stacks: &[(Vec<u64>, Values)],
    dropped: u64,
    duration_nanos: Option<i64>,
    symbolizer: &mut dyn Resolve,
) -> Result<Profile, crate::Error> {
    let trimmed: Vec<(Vec<u64>, [i64; 2])> = stacks
        .iter()
        .map(|(stack, v)| {
            let start = trim::leading_internal(symbolizer, stack, is_lock_internal);
            (
                stack[start..].to_vec(),
                [v.count.round() as i64, v.delay.round() as i64],
            )
        })
        .collect();
    let mut b = ProfileBuilder::new(
        symbolizer,
        vec![
            ValueType::new("contentions", "count"),
            ValueType::new("delay", "nanoseconds"),
        ],
    );
    for (stack, values) in &trimmed {
        b.add(stack, false, values, Vec::new());
    }
    let header = b.header();
    header.period_type = Some(ValueType::new("contentions", "count"));
    header.period = 1;
    header.time_nanos = crate::profile::builder::now_nanos();
    if let Some(d) = duration_nanos {
        header.duration_nanos = d;
    }
    if dropped > 0 {
        header.comments.push(format!(
            "{dropped} events dropped: more than {MAX_STACKS} distinct stacks"
        ));
    }
    let mut p = b.finish();
    trim::strip_internal_inline_lines(&mut p, is_lock_internal);
    Ok(p)
}

/// A guard's window of mutex or block recording: every event recorded while it is open
/// (fraction / rate 1), the previous setting restored when it closes; its profile holds
/// only the window's events.
pub(crate) struct Window {
    which: Which,
    previous: u64,
    base: Vec<(Vec<u64>, Values)>,
    started: std::time::Instant,
}

impl Window {
    /// Records every event of `which` from now on.
    pub(crate) fn start(which: Which) -> Window {
        use super::contention;
        Window {
            which,
            previous: contention::set(which, 1),
            base: contention::snapshot(which).0,
            started: std::time::Instant::now(),
        }
    }

    /// The window's profile; the previous setting is back.
    pub(crate) fn finish(self) -> Result<Profile, crate::Error> {
        use super::contention;
        let (end, dropped) = contention::snapshot(self.which);
        contention::set(self.which, self.previous);
        let window = contention::delta(end, &self.base);
        profile(
            self.which,
            &window,
            dropped,
            Some(self.started.elapsed().as_nanos() as i64),
        )
    }
}
