//! pprof's `drop_frames` pruning (frames of the runtime and allocator cut from stack
//! tops) and name simplification.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use super::limits::invalid;
use crate::Error;
use crate::profile::Profile;

/// pprof's `simplifyFunc`: the name up to its argument list.
pub(super) fn simplify(name: &str) -> &str {
    let name = name.strip_prefix('.').unwrap_or(name);
    let mut from = 0;
    while let Some(i) = name[from..].find(['(', 'o']).map(|i| i + from) {
        let rest = &name[i..];
        if rest.starts_with("(anonymous namespace)") {
            from = i + "(anonymous namespace)".len();
        } else if rest.starts_with("operator()") {
            from = i + "operator()".len();
        } else if rest.starts_with('(') {
            return &name[..i];
        } else {
            from = i + 1;
        }
    }
    name
}

/// pprof's `RemoveUninteresting`: prunes frames matching the profile's `drop_frames` (and
/// not `keep_frames`) and those beneath them.
pub(super) fn prune(profile: &mut Profile) -> Result<(), Error> {
    if profile.drop_frames.is_empty() {
        return Ok(());
    }
    let anchored = |what: &str, p: &str| {
        Regex::new(&format!("^({p})$"))
            .map_err(|e| invalid(format!("the profile's {what} regex {p:?} is bad: {e}")))
    };
    let drop = anchored("drop_frames", &profile.drop_frames)?;
    let keep = if profile.keep_frames.is_empty() {
        None
    } else {
        Some(anchored("keep_frames", &profile.keep_frames)?)
    };
    let names: HashMap<u64, String> = profile
        .functions
        .iter()
        .map(|f| (f.id, f.name.clone()))
        .collect();
    let (mut prune, mut beneath) = (HashSet::new(), HashSet::new());
    for l in &mut profile.locations {
        let found = l.lines.iter().rposition(|line| {
            let name = names.get(&line.function_id).map_or("", String::as_str);
            if name.is_empty() {
                return false;
            }
            let name = simplify(name);
            drop.is_match(name) && keep.as_ref().is_none_or(|k| !k.is_match(name))
        });
        if let Some(i) = found {
            beneath.insert(l.id);
            if i == l.lines.len() - 1 {
                prune.insert(l.id);
            } else {
                l.lines.drain(..=i);
            }
        }
    }
    for s in &mut profile.samples {
        let mut found_user = false;
        for i in (0..s.location_ids.len()).rev() {
            let id = s.location_ids[i];
            if !prune.contains(&id) && !beneath.contains(&id) {
                found_user = true;
                continue;
            }
            if !found_user {
                continue;
            }
            if prune.contains(&id) {
                s.location_ids.drain(..=i);
                break;
            }
            if beneath.contains(&id) {
                s.location_ids.drain(..i);
                break;
            }
        }
    }
    Ok(())
}

/// `profile` with pprof's `drop_frames` pruning applied (a copy only when it has any).
pub(super) fn pruned(profile: &Profile) -> Result<std::borrow::Cow<'_, Profile>, Error> {
    if profile.drop_frames.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(profile));
    }
    let mut p = profile.clone();
    prune(&mut p)?;
    Ok(std::borrow::Cow::Owned(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_like_pprof() {
        assert_eq!(simplify("foo(int)"), "foo");
        assert_eq!(
            simplify("a::(anonymous namespace)::b(int)"),
            "a::(anonymous namespace)::b"
        );
        assert_eq!(simplify("Foo::operator()(int)"), "Foo::operator()");
        assert_eq!(simplify(".bar"), "bar");
        assert_eq!(
            simplify("core::ptr::drop_in_place<T>"),
            "core::ptr::drop_in_place<T>"
        );
    }
}
