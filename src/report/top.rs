//! The `top` table (pprof's `-top`: flat, flat%, sum%, cum, cum%, per function) and its
//! `diff` against a base profile.

use std::collections::HashSet;
use std::fmt;

use super::filter::{Prepared, prepare};
use super::limits::invalid;
use super::options::{Options, sample_index};
use super::{graph, units};
use crate::Error;
use crate::profile::Profile;

/// pprof's default `-edgefraction`: lighter call edges do not count for `(inline)` labels.
pub(super) const EDGE_FRACTION: f64 = 0.001;

/// One entry of a [`Top`] table.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Row {
    /// Function name (or `[object]` / `<unknown>` for frames without one).
    pub name: String,
    /// The value of samples whose leaf is this function.
    pub flat: i64,
    /// The value of samples with this function anywhere on the stack.
    pub cum: i64,
    /// `flat` as pprof prints it (`10ms`, `1.50MB`).
    pub flat_text: String,
    /// `cum` as pprof prints it.
    pub cum_text: String,
    /// `(inline)` or `(partial-inline)` when calls into it were inlined.
    pub inline: Option<&'static str>,
}

/// The table `go tool pprof -top` prints: header lines, then one [`Row`] per function by
/// flat value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Top {
    /// `File:`, `Type:`, `Time:`, `Duration:`, filters, `Showing nodes ...`, `Dropped ...`.
    pub header: Vec<String>,
    /// The entries, largest |flat| first.
    pub rows: Vec<Row>,
    /// The total the percentages are of (sum of |values|; a diff's base total).
    pub total: i64,
    /// The sample type reported.
    pub sample_type: String,
}

impl fmt::Display for Top {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for h in &self.header {
            writeln!(f, "{h}")?;
        }
        writeln!(
            f,
            "{:>10} {:>5}% {:>5}% {:>10} {:>5}%",
            "flat", "flat", "sum", "cum", "cum"
        )?;
        let mut sum = 0i64;
        for r in &self.rows {
            sum = sum.saturating_add(r.flat);
            let inline = r.inline.map(|i| format!(" {i}")).unwrap_or_default();
            writeln!(
                f,
                "{:>10} {} {} {:>10} {}  {}{inline}",
                r.flat_text,
                units::percentage(r.flat, self.total),
                units::percentage(sum, self.total),
                r.cum_text,
                units::percentage(r.cum, self.total),
                r.name
            )?;
        }
        Ok(())
    }
}

/// `Time:` as current pprof prints it, in UTC: `2006-01-02 15:04:05 UTC`.
pub(super) fn format_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec) = (sod / 3600, sod % 3600 / 60, sod % 60);
    // As current pprof (Go ≥ 1.2x's vendored copy): `2006-01-02 15:04:05 MST`, in UTC.
    // (Go 1.19's printed `Jan 2, 2006 at 3:04pm (MST)`; the newest is followed.)
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{sec:02} UTC")
}

pub(super) fn build_top(profile: &Profile, prep: Prepared, o: &Options) -> Result<Top, Error> {
    if !(0.0..=1.0).contains(&o.node_fraction) || o.node_fraction.is_nan() {
        return Err(invalid(format!(
            "node fraction {} is not between 0 and 1",
            o.node_fraction
        )));
    }
    let names = &prep.paths.names;
    // The cutoffs come from the untrimmed graph's flat sum; edges lighter than 0.1% of it
    // (pprof's default -edgefraction) do not count for the inline labels.
    let full = graph::nodes(&prep.paths, None, 0);
    let total_flat = full.iter().fold(0i64, |s, n| s.saturating_add(n.flat));
    let cutoff = ((total_flat as f64) * o.node_fraction) as i64;
    let cutoff = cutoff.saturating_abs();
    let edge_cutoff = ((total_flat as f64) * EDGE_FRACTION) as i64;
    let edge_cutoff = edge_cutoff.saturating_abs();
    let mut kept: Option<HashSet<usize>> = None;
    let mut dropped = 0;
    if cutoff > 0 {
        let k: HashSet<usize> = full
            .iter()
            .filter(|n| n.cum.saturating_abs() >= cutoff)
            .map(|n| n.index)
            .collect();
        if k.len() != full.len() {
            dropped = full.len() - k.len();
            kept = Some(k);
        }
    }
    let sort = |nodes: &mut [graph::Node]| {
        if o.cum {
            graph::sort_cum(nodes, names);
        } else {
            graph::sort_flat(nodes, names);
        }
    };
    let mut nodes = graph::nodes(&prep.paths, kept.as_ref(), 0);
    let orig_count = nodes.len();
    sort(&mut nodes);
    if o.node_count > 0 && o.node_count < nodes.len() {
        kept = Some(nodes[..o.node_count].iter().map(|n| n.index).collect());
    }
    let mut nodes = graph::nodes(&prep.paths, kept.as_ref(), edge_cutoff);
    sort(&mut nodes);

    // pprof's "minimum" output unit: from the smallest nonzero value and the total.
    let mut min = 0i64;
    for n in &nodes {
        let v = if n.flat != 0 { n.flat } else { n.cum }.saturating_abs();
        if v > 0 && (min == 0 || v < min) {
            min = v;
        }
    }
    // Without entries pprof keeps "minimum": each value scaled on its own.
    let mut out_unit = "minimum".to_owned();
    if !nodes.is_empty() {
        out_unit = prep.unit.clone();
        let max = prep.total;
        if min == 0 {
            min = max;
        }
        let (_, min_unit) = units::scale(min, &prep.unit, "minimum");
        let (_, max_unit) = units::scale(max, &prep.unit, "minimum");
        let mut unit = min_unit.clone();
        if min_unit != max_unit && min.saturating_mul(100) < max {
            unit = units::scale(min.saturating_mul(100), &prep.unit, "minimum").1;
        }
        if !unit.is_empty() {
            out_unit = unit;
        }
    }
    let fmt = |v: i64| units::scaled_label(v, &prep.unit, &out_unit);

    let mut header = Vec::new();
    if let Some(m) = profile.mappings.first() {
        if !m.filename.is_empty() {
            header.push(format!(
                "File: {}",
                m.filename.rsplit('/').next().unwrap_or(&m.filename)
            ));
        }
        if !m.build_id.is_empty() {
            header.push(format!("Build ID: {}", m.build_id));
        }
    }
    header.extend(
        profile
            .comments
            .iter()
            .filter(|c| !c.starts_with('#'))
            .cloned(),
    );
    header.push(format!("Type: {}", prep.sample_type));
    if profile.time_nanos != 0 {
        header.push(format!("Time: {}", format_time(profile.time_nanos)));
    }
    if profile.duration_nanos != 0 {
        let duration = units::scaled_label(profile.duration_nanos, "nanoseconds", "auto");
        let (total_ns, total_unit) = units::scale(prep.total, &prep.unit, "nanoseconds");
        let ratio = if total_unit == "ns" && total_ns != 0.0 {
            format!(
                "({})",
                units::percentage(total_ns as i64, profile.duration_nanos)
            )
        } else {
            String::new()
        };
        header.push(format!(
            "Duration: {duration}, Total samples = {} {ratio}",
            fmt(prep.total)
        ));
    }
    if !prep.filters.is_empty() {
        header.push("Active filters:".into());
        for f in &prep.filters {
            header.push(format!("   {f}"));
        }
    }
    let flat_sum: i64 = nodes.iter().map(|n| n.flat).sum();
    header.push(format!(
        "Showing nodes accounting for {}, {} of {} total",
        fmt(flat_sum),
        units::percentage(flat_sum, prep.total).trim(),
        fmt(prep.total)
    ));
    if prep.total != 0 {
        if dropped > 0 {
            header.push(format!(
                "Dropped {dropped} node{} (cum <= {})",
                if dropped > 1 { "s" } else { "" },
                fmt(((prep.total as f64) * o.node_fraction) as i64)
            ));
        }
        if !nodes.is_empty() && nodes.len() < orig_count {
            header.push(format!(
                "Showing top {} nodes out of {orig_count}",
                nodes.len()
            ));
        }
    }
    let rows = nodes
        .iter()
        .map(|n| Row {
            name: names[n.index].clone(),
            flat: n.flat,
            cum: n.cum,
            flat_text: fmt(n.flat),
            cum_text: fmt(n.cum),
            inline: match (n.inline_in, n.noinline_in) {
                (true, true) => Some("(partial-inline)"),
                (true, false) => Some("(inline)"),
                _ => None,
            },
        })
        .collect();
    Ok(Top {
        header,
        rows,
        total: prep.total,
        sample_type: prep.sample_type,
    })
}

/// The `go tool pprof -top` table of `profile`.
pub fn top(profile: &Profile, options: &Options) -> Result<Top, Error> {
    let index = sample_index(profile, options.sample_index.as_deref())?;
    let prep = prepare(profile, None, index, options)?;
    build_top(profile, prep, options)
}

/// The `go tool pprof -top -diff_base BASE` table: `profile` minus `base` per function,
/// percentages of the base's total. The profiles must have the same sample types.
pub fn diff(profile: &Profile, base: &Profile, options: &Options) -> Result<Top, Error> {
    // The header of pprof's merged profile (`combineHeaders`, profile first): the earlier
    // time (0 wins, as in pprof), the sum of durations, the comments of both once, the
    // first default sample type. Only the header: the samples stay where they are.
    let mut header = Profile {
        sample_types: profile.sample_types.clone(),
        mappings: profile.mappings.iter().take(1).cloned().collect(),
        comments: profile.comments.clone(),
        duration_nanos: profile.duration_nanos.saturating_add(base.duration_nanos),
        default_sample_type: profile
            .default_sample_type
            .clone()
            .or_else(|| base.default_sample_type.clone()),
        ..Profile::default()
    };
    for t in [profile.time_nanos, base.time_nanos] {
        if header.time_nanos == 0 || t < header.time_nanos {
            header.time_nanos = t;
        }
    }
    for c in &base.comments {
        if !header.comments.contains(c) {
            header.comments.push(c.clone());
        }
    }
    let index = sample_index(&header, options.sample_index.as_deref())?;
    let prep = prepare(profile, Some(base), index, options)?;
    build_top(&header, prep, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_like_go() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_time(1_700_000_000_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
    }
}
