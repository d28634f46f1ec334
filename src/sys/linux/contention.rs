//! Mutex and block profiles from the contention tables: symbolize, trim the locks' own
//! frames.

use crate::profile::builder::ProfileBuilder;
use crate::profile::{Profile, ValueType};
use crate::sync::contention::{MAX_STACKS, Values, Which};

use super::symbolize;
use super::trim;

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
    let mut symbolizer = symbolize::shared();
    let trimmed: Vec<(Vec<u64>, [i64; 2])> = stacks
        .iter()
        .map(|(stack, v)| {
            let start = trim::leading_internal(&mut symbolizer, stack, is_lock_internal);
            (
                stack[start..].to_vec(),
                [v.count.round() as i64, v.delay.round() as i64],
            )
        })
        .collect();
    let mut b = ProfileBuilder::new(
        &mut *symbolizer,
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
