//! Go's legacy text forms of profiles (`?debug=1` on `/debug/pprof/*`): one record per
//! sample with its addresses, then one `#` line per frame.

use std::io::{self, Write};

use super::{Index, Profile, Sample};

/// The addresses of a sample's stack, and one `#\t0xADDR\tfunction\tfile:line` line per
/// frame (inlined frames share their address).
fn write_stack<W: Write>(w: &mut W, ix: &Index<'_>, s: &Sample) -> io::Result<()> {
    let location = |id: u64| ix.locations.get(&id).copied();
    write!(w, " @")?;
    for &id in &s.location_ids {
        write!(w, " {:#x}", location(id).map_or(0, |l| l.address))?;
    }
    writeln!(w)?;
    for &id in &s.location_ids {
        let Some(l) = location(id) else { continue };
        for line in &l.lines {
            let f = ix.functions.get(&line.function_id);
            let (name, file) = f.map_or(("??", ""), |f| (f.name.as_str(), f.filename.as_str()));
            writeln!(w, "#\t{:#x}\t{name}\t{file}:{}", l.address, line.line)?;
        }
    }
    writeln!(w)
}

fn values(p: &Profile, s: &Sample, ty: &str) -> i64 {
    p.sample_type_index(ty).map_or(0, |i| s.values[i])
}

/// Samples ordered by the given sample type, largest first.
fn ordered<'a>(p: &'a Profile, ty: &str) -> Vec<&'a Sample> {
    let mut samples: Vec<&Sample> = p.samples.iter().collect();
    samples.sort_by_key(|s| std::cmp::Reverse(values(p, s, ty)));
    samples
}

/// The sampled (raw) counts behind an unbiased (objects, bytes) pair: Go's debug=1 text
/// carries what the runtime recorded, and readers (pprof's legacy parser) unbias it with
/// the `heap/2×RATE` in the header; writing our unbiased values there scaled them twice
/// (40.22 GB read for 56.51 MB). Unbiasing multiplies both by `1 / (1 - e^(-avg/rate))`
/// with `avg = bytes / objects`, which the product leaves unchanged, so it is undone
/// exactly (up to rounding) from the pair alone.
fn sampled(objects: i64, bytes: i64, rate: i64) -> (i64, i64) {
    if rate <= 1 || objects <= 0 || bytes <= 0 {
        return (objects, bytes);
    }
    let avg = bytes as f64 / objects as f64;
    let keep = 1.0 - (-avg / rate as f64).exp();
    (
        (objects as f64 * keep).round() as i64,
        (bytes as f64 * keep).round() as i64,
    )
}

/// A heap profile: `heap profile: INUSE_OBJS: INUSE_BYTES [ALLOC_OBJS: ALLOC_BYTES] @
/// heap/2×RATE`, then `a: b [c: d] @ addresses` records, with the sampled counts as Go
/// writes them (see [`sampled`]).
pub(crate) fn write_heap<W: Write>(p: &Profile, mut w: W) -> io::Result<()> {
    let ix = Index::new(p);
    let raw = |s: &Sample| {
        let (io, ib) = sampled(
            values(p, s, "inuse_objects"),
            values(p, s, "inuse_space"),
            p.period,
        );
        let (ao, ab) = sampled(
            values(p, s, "alloc_objects"),
            values(p, s, "alloc_space"),
            p.period,
        );
        [io, ib, ao, ab]
    };
    let samples = ordered(p, "inuse_space");
    let rows: Vec<[i64; 4]> = samples.iter().map(|s| raw(s)).collect();
    let total = |i: usize| rows.iter().map(|r| r[i]).sum::<i64>();
    writeln!(
        w,
        "heap profile: {}: {} [{}: {}] @ heap/{}",
        total(0),
        total(1),
        total(2),
        total(3),
        2 * p.period
    )?;
    for (s, r) in samples.iter().zip(&rows) {
        write!(w, "{}: {} [{}: {}]", r[0], r[1], r[2], r[3])?;
        write_stack(&mut w, &ix, s)?;
    }
    Ok(())
}

/// A mutex or block profile: `--- mutex:` / `--- contention:`, `cycles/second=1000000000`
/// (delays are in nanoseconds), then `DELAY COUNT @ addresses` records.
pub(crate) fn write_contention<W: Write>(p: &Profile, mutex: bool, mut w: W) -> io::Result<()> {
    let ix = Index::new(p);
    writeln!(w, "--- {}:", if mutex { "mutex" } else { "contention" })?;
    writeln!(w, "cycles/second=1000000000")?;
    for s in ordered(p, "delay") {
        write!(
            w,
            "{} {}",
            values(p, s, "delay"),
            values(p, s, "contentions")
        )?;
        write_stack(&mut w, &ix, s)?;
    }
    Ok(())
}

/// A count profile (`threadcreate`): `NAME profile: total N`, then `COUNT @ addresses`.
#[cfg_attr(not(feature = "http"), allow(dead_code))] // the HTTP threadcreate/goroutine text
pub(crate) fn write_counts<W: Write>(p: &Profile, name: &str, w: W) -> io::Result<()> {
    write_values(p, name, 0, w)
}

/// The count form with sample type `index`: `NAME profile: total N`, then
/// `VALUE @ addresses` records, largest first.
pub(crate) fn write_values<W: Write>(
    p: &Profile,
    name: &str,
    index: usize,
    mut w: W,
) -> io::Result<()> {
    let ix = Index::new(p);
    let value = |s: &Sample| s.values.get(index).copied().unwrap_or(0);
    let total = p
        .samples
        .iter()
        .fold(0i64, |t, s| t.saturating_add(value(s)));
    writeln!(w, "{name} profile: total {total}")?;
    let mut samples: Vec<&Sample> = p.samples.iter().collect();
    samples.sort_by_key(|s| std::cmp::Reverse(value(s)));
    for s in samples {
        write!(w, "{}", value(s))?;
        write_stack(&mut w, &ix, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Function, Line, Location, ValueType};

    fn profile(types: &[&str], samples: &[(u64, Vec<i64>)]) -> Profile {
        Profile {
            sample_types: types.iter().map(|t| ValueType::new(*t, "x")).collect(),
            samples: samples
                .iter()
                .map(|(l, v)| Sample::new(vec![*l], v.clone()))
                .collect(),
            locations: (1..=2)
                .map(|id| Location {
                    id,
                    mapping_id: 0,
                    address: 0x1000 * id,
                    lines: vec![Line {
                        function_id: id,
                        line: 7,
                    }],
                    is_folded: false,
                })
                .collect(),
            functions: (1..=2)
                .map(|id| Function {
                    id,
                    name: format!("f{id}"),
                    system_name: String::new(),
                    filename: "a.rs".into(),
                    start_line: 0,
                })
                .collect(),
            period: 524288,
            ..Profile::default()
        }
    }

    #[test]
    fn heap_text_has_go_header_and_records_largest_first() {
        let p = profile(
            &[
                "alloc_objects",
                "alloc_space",
                "inuse_objects",
                "inuse_space",
            ],
            &[(1, vec![4, 400, 1, 100]), (2, vec![2, 2000, 2, 2000])],
        );
        // Rate 1: every allocation sampled, so the values are written as they are (the
        // undoing of the unbiasing has its own test).
        let p = Profile { period: 1, ..p };
        let mut out = Vec::new();
        write_heap(&p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("heap profile: 3: 2100 [6: 2400] @ heap/2\n2: 2000 [2: 2000] @ 0x2000\n#\t0x2000\tf2\ta.rs:7\n"),
            "{text}"
        );
    }

    #[test]
    fn contention_text_has_go_header() {
        let p = profile(&["contentions", "delay"], &[(1, vec![3, 900])]);
        let mut out = Vec::new();
        write_contention(&p, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "--- mutex:\ncycles/second=1000000000\n900 3 @ 0x1000\n#\t0x1000\tf1\ta.rs:7\n\n"
        );
    }

    /// Undoes Go's unbiasing: 10 objects of 1 KiB sampled at 512 KiB stand for ~5125.
    #[test]
    fn sampled_undoes_the_unbiasing() {
        let rate = 512 * 1024;
        let keep = 1.0 - (-1024.0f64 / rate as f64).exp();
        let (objects, bytes) = ((10.0 / keep) as i64, (10.0 * 1024.0 / keep) as i64);
        assert_eq!(sampled(objects, bytes, rate), (10, 10 * 1024));
        assert_eq!(sampled(7, 700, 1), (7, 700));
        assert_eq!(sampled(0, 0, rate), (0, 0));
    }
}
