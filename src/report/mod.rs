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
mod limits;
mod options;
mod prune;
mod top;
mod units;

pub use flame::{FlameOptions, flamegraph, folded, folded_name};
pub use limits::MAX_OUTPUT_BYTES;
pub use options::{Options, sample_index};
pub use top::{Row, Top, diff, top};

use limits::{Bounded, invalid, output_too_large};

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
