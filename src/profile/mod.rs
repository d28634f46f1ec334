//! The in-memory pprof model. Its jobs have files of their own, as google/pprof's
//! `profile` package keeps `encode.go`, `merge.go`, `prune.go` apart: `encode.rs`
//! (protobuf + gzip, the string table), `decode.rs` (bounded decoding and Go's
//! `CheckValid`), `delta.rs` (`Profile::delta`), `builder.rs` (raw stacks → profile),
//! `trim.rs` (a profiler's own frames), `text.rs` (Go's legacy text forms), `budget.rs`
//! (memory bounds for untrusted input).
//!
//! [`Profile`] mirrors google/pprof's `profile.proto` with owned strings instead of string
//! table indices, like Go's `github.com/google/pprof/profile` package: ids link samples to
//! locations, locations to mappings and functions. The string table is built on encode
//! (index 0 is always `""`, every string stored once) and resolved on decode.

mod budget;
pub(crate) mod builder;
mod decode;
mod delta;
mod encode;
mod proto;
#[cfg_attr(not(any(feature = "http", feature = "report")), allow(dead_code))] // debug=1 texts
pub(crate) mod text;
pub(crate) mod trim;

use std::collections::HashMap;

/// The largest decompressed profile [`Profile::decode`] accepts (a guard against
/// decompression bombs): 256 MiB, far above any real profile.
pub const MAX_DECODED_BYTES: u64 = 256 << 20;

/// A pprof profile: what `go tool pprof` reads.
///
/// Made by the profilers in [`crate::runtime`], written by a guard with [`Profile::write_to`],
/// read back with [`Profile::decode`].
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// What each value of a sample measures, in order (`samples/count`, `cpu/nanoseconds`).
    pub sample_types: Vec<ValueType>,
    /// The samples: a stack (location ids, leaf first), values, labels.
    pub samples: Vec<Sample>,
    /// Mapped objects (the executable first), from `/proc/self/maps`.
    pub mappings: Vec<Mapping>,
    /// Instruction addresses and what they symbolize to.
    pub locations: Vec<Location>,
    /// Functions referred to by locations' lines.
    pub functions: Vec<Function>,
    /// Regex of frames to drop (pprof's `drop_frames`), empty for none.
    pub drop_frames: String,
    /// Regex of frames to keep (pprof's `keep_frames`), empty for none.
    pub keep_frames: String,
    /// When collection started, nanoseconds since the Unix epoch.
    pub time_nanos: i64,
    /// How long collection ran, in nanoseconds.
    pub duration_nanos: i64,
    /// What the sampling period measures (`cpu/nanoseconds` for CPU profiles).
    pub period_type: Option<ValueType>,
    /// The sampling period, in `period_type` units.
    pub period: i64,
    /// Free-form comments (`go tool pprof -comments`).
    pub comments: Vec<String>,
    /// The sample type viewers show first; `None` means the last one.
    pub default_sample_type: Option<String>,
}

/// A profile's locations, functions and mappings by id (built once per pass; ids that
/// point nowhere are simply absent).
pub(crate) struct Index<'a> {
    pub(crate) locations: HashMap<u64, &'a Location>,
    pub(crate) functions: HashMap<u64, &'a Function>,
    #[cfg_attr(not(feature = "report"), allow(dead_code))] // reports name frames by object
    pub(crate) mappings: HashMap<u64, &'a Mapping>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(p: &'a Profile) -> Index<'a> {
        Index {
            locations: p.locations.iter().map(|l| (l.id, l)).collect(),
            functions: p.functions.iter().map(|f| (f.id, f)).collect(),
            mappings: p.mappings.iter().map(|m| (m.id, m)).collect(),
        }
    }

    /// The function names of these locations, leaf first, inlined frames expanded.
    pub(crate) fn names(&self, location_ids: &[u64]) -> Vec<&'a str> {
        location_ids
            .iter()
            .filter_map(|id| self.locations.get(id))
            .flat_map(|loc| loc.lines.iter())
            .filter_map(|line| self.functions.get(&line.function_id))
            .map(|f| f.name.as_str())
            .collect()
    }
}

/// A (type, unit) pair such as `cpu`/`nanoseconds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ValueType {
    /// What is measured (`samples`, `cpu`, `alloc_space`...).
    pub ty: String,
    /// Its unit (`count`, `nanoseconds`, `bytes`).
    pub unit: String,
}

impl ValueType {
    /// A value type from its two words.
    pub fn new(ty: impl Into<String>, unit: impl Into<String>) -> Self {
        ValueType {
            ty: ty.into(),
            unit: unit.into(),
        }
    }
}

/// One sample: a stack and one value per sample type.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Location ids, leaf first.
    pub location_ids: Vec<u64>,
    /// One value per entry of [`Profile::sample_types`].
    pub values: Vec<i64>,
    /// Labels (`thread_name`, user labels...).
    pub labels: Vec<Label>,
}

impl Sample {
    /// A sample with no labels.
    pub fn new(location_ids: Vec<u64>, values: Vec<i64>) -> Self {
        Sample {
            location_ids,
            values,
            labels: Vec::new(),
        }
    }
}

/// A key/value label on a sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    /// The key (`thread_name`, `bytes`...).
    pub key: String,
    /// The value.
    pub value: LabelValue,
}

/// A label's value: a string, or a number with an optional unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    /// A string value (`-tagfocus key=value` matches it).
    Str(String),
    /// A numeric value, with its unit (`bytes`) or none.
    Num {
        /// The number.
        value: i64,
        /// Its unit, empty for none.
        unit: String,
    },
}

/// An object mapped into the process (executable, shared library, vdso).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Id referred to by locations; never 0.
    pub id: u64,
    /// First address of the mapping.
    pub memory_start: u64,
    /// One past its last address.
    pub memory_limit: u64,
    /// Offset in the file of `memory_start`.
    pub file_offset: u64,
    /// Path of the object (`[vdso]` for the vdso).
    pub filename: String,
    /// GNU build ID, lower-case hex; empty when the object has none.
    pub build_id: String,
    /// Locations in this mapping carry function names.
    pub has_functions: bool,
    /// Locations in this mapping carry file names.
    pub has_filenames: bool,
    /// Locations in this mapping carry line numbers.
    pub has_line_numbers: bool,
    /// Locations in this mapping expand inlined calls.
    pub has_inline_frames: bool,
}

/// An instruction address and the source lines it stands for.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Id referred to by samples; never 0.
    pub id: u64,
    /// The mapping containing `address`; 0 when unknown.
    pub mapping_id: u64,
    /// The instruction address (for callers: inside the call instruction).
    pub address: u64,
    /// Innermost first: inlined callees, then the function they were inlined into.
    pub lines: Vec<Line>,
    /// Frames folded away by the producer.
    pub is_folded: bool,
}

/// A function and source line within a location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// The function's id.
    pub function_id: u64,
    /// The line number, 0 when unknown.
    pub line: i64,
}

/// A function.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Function {
    /// Id referred to by lines; never 0.
    pub id: u64,
    /// Demangled name (`my_crate::module::function`).
    pub name: String,
    /// Name as the linker knows it (mangled).
    pub system_name: String,
    /// Source file, empty when unknown.
    pub filename: String,
    /// First line of the function, 0 when unknown.
    pub start_line: i64,
}

impl Profile {
    /// The index of the sample type named `ty` (`"cpu"`, `"samples"`...).
    pub fn sample_type_index(&self, ty: &str) -> Option<usize> {
        self.sample_types.iter().position(|t| t.ty == ty)
    }

    /// The sum of the values of sample type `ty` over all samples (0 if there is none).
    pub fn total(&self, ty: &str) -> i64 {
        match self.sample_type_index(ty) {
            Some(i) => self
                .samples
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum(),
            None => 0,
        }
    }

    /// The function names of a sample's stack, leaf first, inlined frames expanded.
    ///
    /// Unknown ids are skipped; use this for reading, not for validation.
    pub fn stack_names<'a>(&'a self, sample: &Sample) -> Vec<&'a str> {
        Index::new(self).names(&sample.location_ids)
    }
}

/// Profiles the tests of every part build on.
#[cfg(test)]
pub(crate) mod test_profiles {
    use super::*;

    /// A heap-like profile: samples at stacks [1] and [2] with (alloc_space, inuse_space).
    pub(crate) fn heap_like(values: &[(u64, i64, i64)], time: i64) -> Profile {
        let mut p = sample_profile();
        p.sample_types = vec![
            ValueType::new("alloc_space", "bytes"),
            ValueType::new("inuse_space", "bytes"),
        ];
        p.time_nanos = time;
        p.samples = values
            .iter()
            .map(|&(loc, alloc, inuse)| Sample::new(vec![loc], vec![alloc, inuse]))
            .collect();
        p
    }

    pub(crate) fn sample_profile() -> Profile {
        Profile {
            sample_types: vec![
                ValueType::new("samples", "count"),
                ValueType::new("cpu", "nanoseconds"),
            ],
            samples: vec![Sample {
                location_ids: vec![1, 2],
                values: vec![3, 30_000_000],
                labels: vec![
                    Label {
                        key: "thread_name".into(),
                        value: LabelValue::Str("main".into()),
                    },
                    Label {
                        key: "bytes".into(),
                        value: LabelValue::Num {
                            value: 4096,
                            unit: "bytes".into(),
                        },
                    },
                ],
            }],
            mappings: vec![Mapping {
                id: 1,
                memory_start: 0x1000,
                memory_limit: 0x9000,
                file_offset: 0,
                filename: "/bin/app".into(),
                build_id: "abcd".into(),
                has_functions: true,
                ..Mapping::default()
            }],
            locations: vec![
                Location {
                    id: 1,
                    mapping_id: 1,
                    address: 0x1234,
                    lines: vec![
                        Line {
                            function_id: 1,
                            line: 10,
                        },
                        Line {
                            function_id: 2,
                            line: 20,
                        },
                    ],
                    is_folded: false,
                },
                Location {
                    id: 2,
                    mapping_id: 1,
                    address: 0x2000,
                    lines: vec![Line {
                        function_id: 2,
                        line: 25,
                    }],
                    is_folded: false,
                },
            ],
            functions: vec![
                Function {
                    id: 1,
                    name: "app::inner".into(),
                    system_name: "_ZN3app5inner17h0E".into(),
                    filename: "src/main.rs".into(),
                    start_line: 9,
                },
                Function {
                    id: 2,
                    name: "app::main".into(),
                    system_name: "_ZN3app4main17h0E".into(),
                    filename: "src/main.rs".into(),
                    start_line: 0,
                },
            ],
            time_nanos: 1_700_000_000_000_000_000,
            duration_nanos: 1_000_000_000,
            period_type: Some(ValueType::new("cpu", "nanoseconds")),
            period: 10_000_000,
            comments: vec!["a comment".into()],
            default_sample_type: Some("cpu".into()),
            ..Profile::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::profile::test_profiles::*;

    #[test]
    fn total_and_stack_names() {
        let p = sample_profile();
        assert_eq!(p.total("cpu"), 30_000_000);
        assert_eq!(p.total("missing"), 0);
        assert_eq!(
            p.stack_names(&p.samples[0]),
            vec!["app::inner", "app::main", "app::main"]
        );
    }
}
