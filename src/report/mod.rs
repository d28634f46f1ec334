//! Reading profiles without Go (cargo feature `report`): the `top` table, a `diff` against a
//! base profile, collapsed stacks, flame graph SVGs and the debug=1 text — for our files and
//! Go's, gzipped or not. The `profile-report` command (feature `cli`) is a thin shell over
//! this module.
//!
//! ```no_run
//! let bytes = std::fs::read("profiles/cpu.pb.gz")?;
//! let profile = profile::report::read(&bytes)?;
//! let top = profile::report::top(&profile, &profile::report::Options::default())?;
//! print!("{top}"); // the table `go tool pprof -top` prints
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `top` computes what `go tool pprof -top` does (google/pprof's function granularity with
//! inlined frames as their own entries, `drop_frames` pruning, focus/ignore, node fraction
//! and count trimming, unit selection and formatting), so its flat and cum values agree
//! with Go's, entry by entry; the tests compare them on Go's own profiles.

mod graph;
mod units;

use std::collections::{HashMap, HashSet};
use std::fmt;

use regex::Regex;

use crate::Error;
use crate::profile::{Index, Location, Profile};

pub use crate::profile::MAX_DECODED_BYTES;

/// Writes a report (an SVG, a table) to `path` completely or not at all: a temporary file
/// beside it, then a rename; permissions as `File::create` gives them. Missing parent
/// directories are created; a directory at `path` is an error.
pub fn save(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    if path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::output::prepare_dir(parent)?;
    }
    crate::output::write_atomic(path, |w| w.write_all(bytes))
}

/// pprof's default `-edgefraction`: lighter call edges do not count for `(inline)` labels.
const EDGE_FRACTION: f64 = 0.001;

fn invalid(reason: impl Into<String>) -> Error {
    Error::Report {
        reason: reason.into(),
    }
}

/// Reads a profile: gzipped or raw protobuf, ours or Go's. Bad gzip, bad protobuf, ids or
/// string indices that point nowhere, input that inflates beyond [`MAX_DECODED_BYTES`],
/// would take more than 1 GiB of memory once decoded, or has more than [`MAX_FRAMES`]
/// frames in all are errors ([`Error::Decode`]), so memory stays bounded.
pub fn read(bytes: &[u8]) -> Result<Profile, Error> {
    if bytes.len() as u64 > MAX_DECODED_BYTES {
        return Err(Error::Decode {
            reason: format!("input is larger than {MAX_DECODED_BYTES} bytes"),
        });
    }
    let profile = Profile::decode(bytes)?;
    // Reports walk every frame of every sample (inlined frames included): a location with
    // many lines named by many samples multiplies. Bound the product.
    let lines: HashMap<u64, u64> = profile
        .locations
        .iter()
        .map(|l| (l.id, l.lines.len().max(1) as u64))
        .collect();
    let mut frames = 0u64;
    for s in &profile.samples {
        for id in &s.location_ids {
            frames += lines.get(id).copied().unwrap_or(1);
        }
        if frames > MAX_FRAMES {
            return Err(Error::Decode {
                reason: format!(
                    "its samples' stacks hold more than {MAX_FRAMES} frames in all (hostile input?)"
                ),
            });
        }
    }
    Ok(profile)
}

/// The most frames (every sample's stack, inlined frames counted) a report reads: well
/// above real profiles (100 000 distinct stacks of 40 frames are 4 million). At the cap,
/// `top` takes ~400 MB (a 32 M cap let a 29 KB file take 785 MB for `top`).
pub const MAX_FRAMES: u64 = 16_000_000;

/// The largest output a report makes (`folded`, `text`, the flame graph's SVG): beyond it
/// the report is an error naming the bound, before the memory is spent (before: a 29 KB
/// file of 3 samples × 10 M frames made a 1.93 GB SVG in 2.78 GB of memory).
pub const MAX_OUTPUT_BYTES: usize = 256 << 20;

fn output_too_large(what: &str) -> Error {
    invalid(format!(
        "the {what} would be larger than {} MiB (stacks too deep or names too long; narrow it with --focus/--ignore)",
        MAX_OUTPUT_BYTES >> 20
    ))
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    /// A write was refused.
    hit: bool,
}

impl std::io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.hit = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "output bound",
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a report shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The sample type to report (`inuse_space`, `alloc_space`, `delay`, `cpu`, ... or an
    /// index); `None`: the profile's default, else its last (as pprof).
    pub sample_index: Option<String>,
    /// Show at most this many entries (0: all, pprof's `-nodecount`).
    pub node_count: usize,
    /// Drop entries whose cum is below this fraction of the total (pprof's
    /// `-nodefraction`, default 0.005).
    pub node_fraction: f64,
    /// Keep only samples with a frame matching this regex (function name, file or object).
    pub focus: Option<String>,
    /// Drop samples with a frame matching this regex.
    pub ignore: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sample_index: None,
            node_count: 0,
            node_fraction: 0.005,
            focus: None,
            ignore: None,
        }
    }
}

impl Options {
    /// Default options with this sample type.
    pub fn sample_index(mut self, index: impl Into<String>) -> Self {
        self.sample_index = Some(index.into());
        self
    }

    /// Sets the node count (0: all).
    pub fn node_count(mut self, count: usize) -> Self {
        self.node_count = count;
        self
    }

    /// Sets the node fraction (0: keep every entry).
    pub fn node_fraction(mut self, fraction: f64) -> Self {
        self.node_fraction = fraction;
        self
    }

    /// Sets the focus regex.
    pub fn focus(mut self, regex: impl Into<String>) -> Self {
        self.focus = Some(regex.into());
        self
    }

    /// Sets the ignore regex.
    pub fn ignore(mut self, regex: impl Into<String>) -> Self {
        self.ignore = Some(regex.into());
        self
    }
}

/// The index of the sample type `name` (pprof's `SampleIndexByName`): a type name, a type
/// with `inuse_` dropped, or a number; `None` picks the default type, else the last.
pub fn sample_index(profile: &Profile, name: Option<&str>) -> Result<usize, Error> {
    if profile.sample_types.is_empty() {
        return Err(invalid("the profile has no sample types"));
    }
    let last = profile.sample_types.len() - 1;
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(profile
            .default_sample_type
            .as_deref()
            .and_then(|d| profile.sample_types.iter().position(|t| t.ty == d))
            .unwrap_or(last));
    };
    if let Ok(i) = name.parse::<i64>() {
        return usize::try_from(i)
            .ok()
            .filter(|&i| i <= last)
            .ok_or_else(|| invalid(format!("sample index {name} is outside [0..{last}]")));
    }
    let no_inuse = name.strip_prefix("inuse_").unwrap_or(name);
    profile
        .sample_types
        .iter()
        .position(|t| t.ty == name || t.ty == no_inuse)
        .ok_or_else(|| {
            let types: Vec<&str> = profile.sample_types.iter().map(|t| t.ty.as_str()).collect();
            invalid(format!(
                "sample index {name:?} must be one of: {}",
                types.join(", ")
            ))
        })
}

fn regex(what: &str, pattern: Option<&str>) -> Result<Option<Regex>, Error> {
    pattern
        .filter(|p| !p.is_empty())
        .map(|p| Regex::new(p).map_err(|e| invalid(format!("bad {what} regex {p:?}: {e}"))))
        .transpose()
}

/// pprof's `simplifyFunc`: the name up to its argument list.
fn simplify(name: &str) -> &str {
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
fn prune(profile: &mut Profile) -> Result<(), Error> {
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

/// Focus and ignore as pprof's `FilterSamplesByName`: a sample is kept if no frame matches
/// `ignore` and (without focus) it has a frame, or a frame matches `focus`.
struct Filter {
    focus: Option<Regex>,
    ignore: Option<Regex>,
}

impl Filter {
    fn new(o: &Options) -> Result<Filter, Error> {
        Ok(Filter {
            focus: regex("focus", o.focus.as_deref())?,
            ignore: regex("ignore", o.ignore.as_deref())?,
        })
    }

    /// Each location's verdict: `Some(false)` ignored, `Some(true)` focused, `None`
    /// neither (pprof's `focusOrIgnore` map).
    fn classify(&self, ix: &Index<'_>, p: &Profile) -> HashMap<u64, bool> {
        let matches = |re: &Regex, l: &Location| {
            l.lines.iter().any(|line| {
                ix.functions
                    .get(&line.function_id)
                    .is_some_and(|f| re.is_match(&f.name) || re.is_match(&f.filename))
            }) || ix
                .mappings
                .get(&l.mapping_id)
                .is_some_and(|m| re.is_match(&m.filename))
        };
        let mut verdicts = HashMap::with_capacity(p.locations.len());
        for l in &p.locations {
            if self.ignore.as_ref().is_some_and(|r| matches(r, l)) {
                verdicts.insert(l.id, false);
            } else if self.focus.as_ref().is_none_or(|r| matches(r, l)) {
                verdicts.insert(l.id, true);
            }
        }
        verdicts
    }

    fn active(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(f) = &self.focus {
            v.push(format!("focus={f}"));
        }
        if let Some(i) = &self.ignore {
            v.push(format!("ignore={i}"));
        }
        v
    }
}

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
fn format_time(nanos: i64) -> String {
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

/// Everything a top-like report needs, from one or two profiles.
struct Prepared {
    paths: graph::Paths,
    total: i64,
    unit: String,
    sample_type: String,
    filters: Vec<String>,
}

/// `profile` with pprof's `drop_frames` pruning applied (a copy only when it has any).
fn pruned(profile: &Profile) -> Result<std::borrow::Cow<'_, Profile>, Error> {
    if profile.drop_frames.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(profile));
    }
    let mut p = profile.clone();
    prune(&mut p)?;
    Ok(std::borrow::Cow::Owned(p))
}

/// The paths and totals of `profile` (minus `base`) for sample type `index`.
fn prepare(
    profile: &Profile,
    base: Option<&Profile>,
    index: usize,
    o: &Options,
) -> Result<Prepared, Error> {
    let filter = Filter::new(o)?;
    let ty = profile.sample_types[index].clone();
    let mut paths = graph::Paths::default();
    let p = pruned(profile)?;
    let ix = Index::new(&p);
    paths.add(&ix, &p, index, 1, &filter.classify(&ix, &p));
    // pprof computes the total before focus/ignore ("to get percentages on all samples"),
    // over every sample, with or without a stack.
    let sum = |p: &Profile| {
        p.samples
            .iter()
            .map(|s| s.values.get(index).map_or(0, |v| v.unsigned_abs()))
            .fold(0u64, u64::saturating_add)
    };
    let mut total = sum(&p);
    if let Some(base) = base {
        if base.sample_types != profile.sample_types {
            return Err(invalid(format!(
                "incompatible sample types: {} and the base's {}",
                describe_types(profile),
                describe_types(base)
            )));
        }
        let b = pruned(base)?;
        let ix = Index::new(&b);
        paths.add(&ix, &b, index, -1, &filter.classify(&ix, &b));
        let base_total = sum(&b);
        if base_total > 0 {
            total = base_total;
        }
    }
    Ok(Prepared {
        paths,
        total: i64::try_from(total).unwrap_or(i64::MAX),
        unit: ty.unit.clone(),
        sample_type: ty.ty.clone(),
        filters: filter.active(),
    })
}

fn describe_types(p: &Profile) -> String {
    let v: Vec<String> = p
        .sample_types
        .iter()
        .map(|t| format!("{}/{}", t.ty, t.unit))
        .collect();
    format!("[{}]", v.join(" "))
}

fn build_top(profile: &Profile, prep: Prepared, o: &Options) -> Result<Top, Error> {
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
    let mut nodes = graph::nodes(&prep.paths, kept.as_ref(), 0);
    let orig_count = nodes.len();
    graph::sort_flat(&mut nodes, names);
    if o.node_count > 0 && o.node_count < nodes.len() {
        kept = Some(nodes[..o.node_count].iter().map(|n| n.index).collect());
    }
    let mut nodes = graph::nodes(&prep.paths, kept.as_ref(), edge_cutoff);
    graph::sort_flat(&mut nodes, names);

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

/// A frame name as collapsed stacks carry it: `;` separates frames, so one inside a name
/// (`<[u8; 4] as Trait>::f`) becomes `:`.
pub fn folded_name(name: &str) -> String {
    name.replace(';', ":").replace(['\n', '\r'], " ")
}

/// Collapsed stacks (`root;caller;leaf VALUE`, one line per distinct stack, sorted), the
/// input of flame graph tools (inferno, Brendan Gregg's flamegraph.pl, speedscope).
/// Negative values (only in hand-made profiles) are left out.
pub fn folded(profile: &Profile, options: &Options) -> Result<String, Error> {
    let index = sample_index(profile, options.sample_index.as_deref())?;
    let prep = prepare(profile, None, index, options)?;
    let mut stacks: HashMap<String, i64> = HashMap::new();
    // Bytes of the distinct stacks so far: the output is about that, so it is bounded
    // before any of it is built.
    let mut size = 0usize;
    let names: Vec<String> = prep.paths.names.iter().map(|n| folded_name(n)).collect();
    for p in &prep.paths.paths {
        if p.value <= 0 || p.frames.is_empty() {
            continue;
        }
        let len = p
            .frames
            .iter()
            .map(|&(n, _)| names[n].len() + 1)
            .sum::<usize>();
        if size + len > MAX_OUTPUT_BYTES {
            return Err(output_too_large("collapsed stacks"));
        }
        let mut key = String::with_capacity(len);
        for (i, &(n, _)) in p.frames.iter().enumerate() {
            if i > 0 {
                key.push(';');
            }
            key.push_str(&names[n]);
        }
        match stacks.get_mut(&key) {
            Some(e) => *e = e.saturating_add(p.value),
            None => {
                size += len + 21;
                stacks.insert(key, p.value);
            }
        }
    }
    let mut lines: Vec<(String, i64)> = stacks.into_iter().collect();
    lines.sort();
    let mut out = String::new();
    for (stack, v) in lines {
        out.push_str(&stack);
        out.push(' ');
        out.push_str(&v.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// Flame graph settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlameOptions {
    /// The title; `None`: the sample type and unit.
    pub title: Option<String>,
    /// Frames narrower than this many pixels are left out (inferno's default 0.1; 0 keeps
    /// every frame).
    pub min_width: f64,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: None,
            min_width: 0.1,
        }
    }
}

impl FlameOptions {
    /// Sets the minimum frame width in pixels.
    pub fn min_width(mut self, pixels: f64) -> Self {
        self.min_width = pixels;
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

/// An interactive SVG flame graph (inferno: click to zoom, search, tooltips) of the sample
/// type `options` picks. A profile with no samples of that type is an error.
pub fn flamegraph(
    profile: &Profile,
    options: &Options,
    flame: &FlameOptions,
) -> Result<Vec<u8>, Error> {
    let stacks = folded(profile, options)?;
    if stacks.is_empty() {
        return Err(Error::NothingToDraw);
    }
    if !(flame.min_width >= 0.0 && flame.min_width.is_finite()) {
        return Err(invalid(format!(
            "minimum frame width {} is not a non-negative number",
            flame.min_width
        )));
    }
    let index = sample_index(profile, options.sample_index.as_deref())?;
    let ty = &profile.sample_types[index];
    let mut o = inferno::flamegraph::Options::default();
    o.title = flame
        .title
        .clone()
        .unwrap_or_else(|| format!("{} ({})", ty.ty, ty.unit));
    o.count_name = if ty.unit.is_empty() {
        "samples".into()
    } else {
        ty.unit.clone()
    };
    o.min_width = flame.min_width;
    o.deterministic = true;
    let mut svg = Vec::new();
    let mut out = Bounded {
        out: &mut svg,
        hit: false,
    };
    let drawn = inferno::flamegraph::from_lines(&mut o, stacks.lines(), &mut out);
    if out.hit {
        return Err(output_too_large("flame graph"));
    }
    drawn.map_err(|e| invalid(format!("cannot draw the flame graph: {e}")))?;
    Ok(svg)
}

/// The debug=1 text of a profile, as Go's `/debug/pprof/*?debug=1` prints it: heap
/// profiles as `heap profile: ...`, mutex/block as `--- mutex:`/`--- contention:`, count
/// profiles (goroutine, threads, threadcreate) as `NAME profile: total N`; other kinds
/// (CPU, clock) in the count form with the chosen sample type. Mutex and block profiles
/// both get `--- contention:` (the file does not tell them apart; the layout is the same).
pub fn text(profile: &Profile, options: &Options) -> Result<String, Error> {
    use crate::profile::text as t;
    let has = |ty: &str| profile.sample_type_index(ty).is_some();
    let mut buf = Vec::new();
    let mut out = Bounded {
        out: &mut buf,
        hit: false,
    };
    let r = if has("inuse_space") && has("alloc_space") {
        t::write_heap(profile, &mut out)
    } else if has("delay") && has("contentions") {
        // Mutex and block profiles share the layout; the file does not say which it is,
        // so the generic header (`--- contention:`, which Go's parser reads as both).
        t::write_contention(profile, false, &mut out)
    } else {
        let index = sample_index(profile, options.sample_index.as_deref())?;
        let ty = &profile.sample_types[index];
        let name = match ty.ty.as_str() {
            "goroutine" | "threads" | "threadcreate" => ty.ty.clone(),
            "count" => profile
                .period_type
                .as_ref()
                .map_or_else(|| "count".to_owned(), |p| p.ty.clone()),
            other => other.to_owned(),
        };
        t::write_values(profile, &name, index, &mut out)
    };
    r.map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            output_too_large("text")
        } else {
            invalid(format!("cannot write text: {e}"))
        }
    })?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
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

    #[test]
    fn time_like_go() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_time(1_700_000_000_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
    }

    /// 3 samples × 100 000 frames over 1 000 functions with 1 000-byte names: far under
    /// the frame cap, but every expanded output is ~300 MB. Each must refuse, naming the
    /// bound; `top` (one row per function) works.
    #[test]
    fn outputs_are_bounded_for_deep_stacks_with_long_names() {
        let mut p = Profile {
            sample_types: vec![crate::profile::ValueType {
                ty: "samples".into(),
                unit: "count".into(),
            }],
            ..Profile::default()
        };
        for i in 1..=1000u64 {
            p.functions.push(crate::profile::Function {
                id: i,
                name: format!("f{i:04}_{}", "x".repeat(995)),
                ..Default::default()
            });
            p.locations.push(crate::profile::Location {
                id: i,
                address: 0x1000 + i,
                lines: vec![crate::profile::Line {
                    function_id: i,
                    line: 1,
                }],
                ..Default::default()
            });
        }
        for s in 0..3u64 {
            p.samples.push(crate::profile::Sample {
                location_ids: (0..100_000u64).map(|i| (i + s) % 1000 + 1).collect(),
                values: vec![1],
                labels: vec![],
            });
        }
        let bytes = {
            let mut v = Vec::new();
            p.write_to(&mut v).unwrap();
            v
        };
        let p = read(&bytes).unwrap();
        let o = Options::default();
        for (what, r) in [
            ("folded", folded(&p, &o).map(|s| s.len())),
            ("text", text(&p, &o).map(|s| s.len())),
            (
                "flamegraph",
                flamegraph(&p, &o, &FlameOptions::default()).map(|s| s.len()),
            ),
        ] {
            let e = r.expect_err(what);
            assert!(e.to_string().contains("256 MiB"), "{what}: {e}");
        }
        let t = top(&p, &o).unwrap();
        assert!(!t.to_string().is_empty());
    }

    #[test]
    fn folded_names_keep_the_separator_meaning() {
        assert_eq!(folded_name("<[u8; 4] as T>::f"), "<[u8: 4] as T>::f");
    }
}
