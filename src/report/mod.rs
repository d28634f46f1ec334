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
//!
//! One file per job, as google/pprof keeps them: reading and options here, `prune.rs`
//! (`drop_frames`), `filter.rs` (focus/ignore and the preparation every report shares),
//! `top.rs` (`top`, `diff`), `graph.rs` (the function graph behind `top`), `flame.rs`
//! (`folded`, `flamegraph`), `units.rs` (pprof's value formatting).

mod filter;
mod flame;
mod graph;
mod prune;
mod top;
mod units;

pub use flame::{FlameOptions, flamegraph, folded, folded_name};
pub use top::{Row, Top, diff, top};

use std::collections::HashMap;

use crate::Error;
use crate::profile::Profile;

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

pub(super) fn invalid(reason: impl Into<String>) -> Error {
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

pub(super) fn output_too_large(what: &str) -> Error {
    invalid(format!(
        "the {what} would be larger than {} MiB (stacks too deep or names too long; narrow it with --focus/--ignore)",
        MAX_OUTPUT_BYTES >> 20
    ))
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
pub(super) struct Bounded<'a> {
    pub(super) out: &'a mut Vec<u8>,
    /// A write was refused.
    pub(super) hit: bool,
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
    /// Remove frames matching this regex from every stack (pprof's `-hide`).
    pub hide: Option<String>,
    /// Keep only frames matching this regex in every stack (pprof's `-show`).
    pub show: Option<String>,
    /// Drop frames above (callers of) the outermost frame matching this regex; samples
    /// without one go (pprof's `-show_from`).
    pub show_from: Option<String>,
    /// Keep only samples with a matching label: `key=regex`, `regex` (any `key:value`) or
    /// `key=range` for numeric labels (pprof's `-tagfocus`).
    pub tag_focus: Option<String>,
    /// Drop samples with a matching label, the same forms (pprof's `-tagignore`).
    pub tag_ignore: Option<String>,
    /// Sort the top table by cumulative value (pprof's `-cum`).
    pub cum: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sample_index: None,
            node_count: 0,
            node_fraction: 0.005,
            focus: None,
            ignore: None,
            hide: None,
            show: None,
            show_from: None,
            tag_focus: None,
            tag_ignore: None,
            cum: false,
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

    /// Sets the hide regex (frames removed).
    pub fn hide(mut self, regex: impl Into<String>) -> Self {
        self.hide = Some(regex.into());
        self
    }

    /// Sets the show regex (only matching frames kept).
    pub fn show(mut self, regex: impl Into<String>) -> Self {
        self.show = Some(regex.into());
        self
    }

    /// Sets the show-from regex (callers of the outermost match dropped).
    pub fn show_from(mut self, regex: impl Into<String>) -> Self {
        self.show_from = Some(regex.into());
        self
    }

    /// Sets the tag focus (`key=regex`, `regex`, `key=range`).
    pub fn tag_focus(mut self, spec: impl Into<String>) -> Self {
        self.tag_focus = Some(spec.into());
        self
    }

    /// Sets the tag ignore (`key=regex`, `regex`, `key=range`).
    pub fn tag_ignore(mut self, spec: impl Into<String>) -> Self {
        self.tag_ignore = Some(spec.into());
        self
    }

    /// Sorts the top table by cumulative value.
    pub fn cum(mut self, cum: bool) -> Self {
        self.cum = cum;
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
}
