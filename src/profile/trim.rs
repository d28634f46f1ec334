//! Cutting a profiler's own frames from the top (leaf end) of recorded stacks (the
//! allocator's in heap profiles, the locks' in mutex and block profiles, thread
//! creation's in threadcreate profiles).

use std::collections::{HashMap, HashSet};

use crate::profile::Profile;
use crate::profile::builder::Resolve;

/// How many leading frames of `stack` (return addresses, leaf first) to drop: up to the
/// frames judged by their physical (outermost) function, see [`cut_leading`]. Keeps at
/// least one frame.
pub(crate) fn leading_internal(
    symbolizer: &mut dyn Resolve,
    stack: &[u64],
    internal: fn(&str) -> bool,
) -> usize {
    let names: Vec<Option<String>> = stack
        .iter()
        .map(|&pc| judged_name(symbolizer.names(pc.saturating_sub(1))))
        .collect();
    cut_leading(&names, internal).min(stack.len().saturating_sub(1))
}

/// The name a frame is judged by, from its function names (innermost inlined first):
/// its physical (outermost) function's, unless that is neutral `core` code into which
/// other code was inlined: then the outermost of those (a test harness's
/// `FnOnce::call_once` with the test and its allocation inlined into it is the test's
/// frame, not `core`'s).
fn judged_name(mut names: Vec<String>) -> Option<String> {
    let physical = names.pop()?;
    if !is_neutral(&physical) {
        return Some(physical);
    }
    Some(
        names
            .into_iter()
            .rev()
            .find(|n| !is_neutral(n))
            .unwrap_or(physical),
    )
}

/// `core` code (`Option::and_then` carrying a closure, `drop_in_place` running a guard's
/// drop) is neither ours nor the user's.
fn is_neutral(name: &str) -> bool {
    name.starts_with("core::") || name.starts_with("<core::")
}

/// How many leading frames (innermost first) belong to the profiler: the run of internal
/// and neutral frames before the first other one, cut after its last frame if the run has
/// an internal frame at all (neutral frames alone are the user's).
fn cut_leading(names: &[Option<String>], internal: fn(&str) -> bool) -> usize {
    let mut cut = 0;
    let mut seen_internal = false;
    for (i, name) in names.iter().enumerate() {
        let Some(name) = name else { break };
        if internal(name) {
            seen_internal = true;
            cut = i + 1;
        } else if is_neutral(name) {
            if seen_internal {
                cut = i + 1;
            }
        } else {
            break;
        }
    }
    cut
}

/// A leaf location of user code can still hold inlined internal frames (e.g.
/// `alloc::alloc::alloc` inlined into `Box::new` inlined into the caller, or a guard's
/// `drop_in_place`): drop them as [`cut_leading`] says, keeping at least one line.
pub(crate) fn strip_internal_inline_lines(p: &mut Profile, internal: fn(&str) -> bool) {
    let names: HashMap<u64, String> = p.functions.iter().map(|f| (f.id, f.name.clone())).collect();
    let leaves: HashSet<u64> = p
        .samples
        .iter()
        .filter_map(|s| s.location_ids.first().copied())
        .collect();
    for loc in p.locations.iter_mut().filter(|l| leaves.contains(&l.id)) {
        let line_names: Vec<Option<String>> = loc
            .lines
            .iter()
            .map(|l| names.get(&l.function_id).cloned())
            .collect();
        let cut = cut_leading(&line_names, internal);
        let cut = cut.min(loc.lines.len().saturating_sub(1));
        loc.lines.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(n: &str) -> bool {
        n.starts_with("lock_api::")
    }

    fn names(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn cuts_internal_and_neutral_frames_around_them() {
        // A guard's drop glue after the lock's unlock: both cut.
        let n = names(&[
            "lock_api::unlock",
            "core::ptr::drop_in_place<G>",
            "app::hold",
        ]);
        assert_eq!(cut_leading(&n, internal), 2);
        // Neutral before internal: cut too.
        let n = names(&["core::option::Option::and_then", "lock_api::x", "app::f"]);
        assert_eq!(cut_leading(&n, internal), 2);
        // Neutral frames of the user's own code are kept.
        let n = names(&["core::hint::black_box", "app::f"]);
        assert_eq!(cut_leading(&n, internal), 0);
        // An unknown frame stops the cut.
        let v = vec![
            Some("lock_api::x".to_string()),
            None,
            Some("lock_api::y".to_string()),
        ];
        assert_eq!(cut_leading(&v, internal), 1);
    }

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_neutral_physical_frame_is_judged_by_what_was_inlined_into_it() {
        // The user's code and the lock inlined into core's call_once: the user's frame.
        let n = owned(&[
            "lock_api::x",
            "app::f",
            "app::f::{{closure}}",
            "core::ops::call_once",
        ]);
        assert_eq!(judged_name(n).as_deref(), Some("app::f::{{closure}}"));
        // Only the lock inlined into it: internal, cut.
        let n = owned(&["lock_api::x", "core::ops::call_once"]);
        assert_eq!(judged_name(n).as_deref(), Some("lock_api::x"));
        // Nothing inlined, or only core: core's own, neutral.
        let n = owned(&["core::hint::black_box", "core::ops::call_once"]);
        assert_eq!(judged_name(n).as_deref(), Some("core::ops::call_once"));
        // A physical frame that is not neutral is judged by itself.
        let n = owned(&["app::g", "lock_api::y"]);
        assert_eq!(judged_name(n).as_deref(), Some("lock_api::y"));
        assert_eq!(judged_name(Vec::new()), None);
        // In a stack: the internal leaf is cut, the call_once holding the user's code kept.
        let frames = [
            owned(&["lock_api::x"]),
            owned(&["lock_api::y", "app::f", "core::ops::call_once"]),
            owned(&["app::main"]),
        ];
        let judged: Vec<Option<String>> = frames.into_iter().map(judged_name).collect();
        assert_eq!(cut_leading(&judged, internal), 1);
    }
}
