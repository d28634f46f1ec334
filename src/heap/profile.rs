//! Heap profiles from the sampler's buckets: symbolize, trim the allocator's own frames,
//! unbias with Go's formula.

use super::sampler::{self, Snapshot};
use crate::profile::builder::ProfileBuilder;
use crate::profile::trim;
use crate::profile::{Label, LabelValue, Profile, ValueType};

/// Frames of the allocation machinery, trimmed from the top (leaf end) of heap stacks so
/// that a stack starts at the code that asked for memory, as Go's heap profiles start
/// above `mallocgc`/`makeslice`: the stack capture, this crate's wrapper and sampler,
/// std's allocation shims, and std's containers (`alloc::*`: Box, Vec, String, RawVec,
/// collections; `hashbrown` and `std::collections`, behind HashMap/HashSet).
pub(crate) fn is_allocator_internal(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "backtrace::",
        "_Unwind_",
        "profile::heap::",
        "<profile::heap::",
        "__rustc::",
        "__rust_alloc",
        "__rust_realloc",
        "__rust_dealloc",
        "__rust_no_alloc_shim_is_unstable",
        "__rdl_",
        "__rg_",
        "alloc::",
        "<alloc::",
        "core::alloc::",
        "<core::alloc::",
        "hashbrown::",
        "<hashbrown::",
        "std::collections::",
        "<std::collections::",
    ];
    // Trait impls for other types live in `alloc` too: `<u8 as alloc::vec::…>::from_elem`.
    PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with('<') && name.contains(" as alloc::"))
}

/// Builds the heap profile (`allocs_default`: the allocs file, which opens on alloc_space).
pub(crate) fn profile(snap: &Snapshot, allocs_default: bool) -> Result<Profile, crate::Error> {
    crate::sys::with_symbolizer("heap profiling", |symbolizer| {
        build(snap, allocs_default, symbolizer)
    })
}

fn build(
    snap: &Snapshot,
    allocs_default: bool,
    symbolizer: &mut dyn crate::profile::builder::Resolve,
) -> Result<Profile, crate::Error> {
    let mut stacks = Vec::with_capacity(snap.buckets.len());
    for b in &snap.buckets {
        let stack = &b.stack[..b.depth as usize];
        let start = trim::leading_internal(symbolizer, stack, is_allocator_internal);
        let (alloc_n, alloc_b) = sampler::scale(b.allocs, b.allocs * b.size, snap.rate);
        let live = b.allocs.saturating_sub(b.frees);
        let (inuse_n, inuse_b) = sampler::scale(live, live * b.size, snap.rate);
        stacks.push((
            stack[start..].to_vec(),
            [alloc_n, alloc_b, inuse_n, inuse_b],
            b.size as i64,
        ));
    }
    let mut b = ProfileBuilder::new(
        symbolizer,
        vec![
            ValueType::new("alloc_objects", "count"),
            ValueType::new("alloc_space", "bytes"),
            ValueType::new("inuse_objects", "count"),
            ValueType::new("inuse_space", "bytes"),
        ],
    );
    for (stack, values, size) in &stacks {
        let labels = vec![Label {
            key: "bytes".into(),
            value: LabelValue::Num {
                value: *size,
                unit: String::new(),
            },
        }];
        b.add(stack, false, values, labels);
    }
    let header = b.header();
    header.period_type = Some(ValueType::new("space", "bytes"));
    header.period = snap.rate as i64;
    header.time_nanos = crate::profile::builder::now_nanos();
    if allocs_default {
        header.default_sample_type = Some("alloc_space".into());
    }
    if snap.dropped > 0 {
        header.comments.push(format!(
            "{} samples dropped: the heap profiler's tables were full ({} live sampled objects, {} stacks at most)",
            snap.dropped,
            sampler::MAX_LIVE,
            sampler::MAX_BUCKETS
        ));
    }
    let mut profile = b.finish();
    trim::strip_internal_inline_lines(&mut profile, is_allocator_internal);
    Ok(profile)
}
