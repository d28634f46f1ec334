//! The in-memory pprof model, its encoder (protobuf + gzip) and its decoder.
//!
//! [`Profile`] mirrors google/pprof's `profile.proto` with owned strings instead of string
//! table indices, like Go's `github.com/google/pprof/profile` package: ids link samples to
//! locations, locations to mappings and functions. The string table is built on encode
//! (index 0 is always `""`, every string stored once) and resolved on decode.

mod budget;
pub(crate) mod builder;
mod proto;
#[cfg_attr(not(any(feature = "http", feature = "report")), allow(dead_code))] // debug=1 texts
pub(crate) mod text;
pub(crate) mod trim;

use std::collections::HashMap;
use std::io::{self, Read, Write};

use prost::Message;

use crate::Error;

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

    /// The change from `base` to this profile: what happened between two snapshots of a
    /// cumulative profile (heap allocations, mutex and block events), as Go's HTTP
    /// handler serves for `?seconds=N`.
    ///
    /// Samples are matched by their stack (each location's address and function names)
    /// and labels. Cumulative values are subtracted; values of sample types named
    /// `inuse_*` are taken from this profile as they are — they are a state, not a count,
    /// and subtracting them (as Go does, its issues 57765 and 67942) gives meaningless
    /// negative memory. Samples whose values all come out zero are dropped. The result
    /// keeps this profile's locations, functions and mappings; `duration_nanos` is the
    /// time between the two.
    pub fn delta(&self, base: &Profile) -> Profile {
        type Key = (Vec<(u64, Vec<String>)>, Vec<Label>);
        fn key(ix: &Index<'_>, s: &Sample) -> Key {
            let frames = s
                .location_ids
                .iter()
                .map(|id| {
                    let address = ix.locations.get(id).map_or(0, |l| l.address);
                    let names = ix
                        .names(std::slice::from_ref(id))
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    (address, names)
                })
                .collect();
            (frames, s.labels.clone())
        }
        let base_types: Vec<&str> = base.sample_types.iter().map(|t| t.ty.as_str()).collect();
        let base_index = Index::new(base);
        let mut before: HashMap<Key, Vec<i64>> = HashMap::new();
        for s in &base.samples {
            let values = before
                .entry(key(&base_index, s))
                .or_insert_with(|| vec![0; s.values.len()]);
            for (v, x) in values.iter_mut().zip(&s.values) {
                *v += x;
            }
        }
        let index = Index::new(self);
        let mut out = self.clone();
        out.samples.clear();
        for s in &self.samples {
            let old = before.get(&key(&index, s));
            let mut sample = s.clone();
            for (i, v) in sample.values.iter_mut().enumerate() {
                let ty = self.sample_types.get(i).map_or("", |t| t.ty.as_str());
                if ty.starts_with("inuse_") {
                    continue;
                }
                // The same sample type in the base (by name: the types line up in practice).
                let j = base_types.iter().position(|t| *t == ty).unwrap_or(i);
                *v -= old.and_then(|o| o.get(j)).copied().unwrap_or(0);
            }
            if sample.values.iter().any(|&v| v != 0) {
                out.samples.push(sample);
            }
        }
        if self.time_nanos > 0 && base.time_nanos > 0 {
            out.duration_nanos = self.time_nanos - base.time_nanos;
        }
        out
    }

    /// Encodes the profile as an uncompressed `profile.proto` message.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Writes the profile gzip-compressed: the `.pb.gz` form `go tool pprof` reads.
    ///
    /// The writer gets the whole file; for an atomic file write see how a guard does it
    /// (temp file beside the target, then rename).
    pub fn write_to<W: Write>(&self, writer: W) -> io::Result<()> {
        let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
        gz.write_all(&self.encode())?;
        gz.finish()?.flush()
    }

    /// Reads a profile from `.pb.gz` bytes or from raw protobuf bytes.
    ///
    /// Gzip is detected by its magic number. Input that inflates beyond
    /// [`MAX_DECODED_BYTES`], is not a profile, or refers to strings that do not exist is
    /// an [`Error::Decode`].
    pub fn decode(bytes: &[u8]) -> Result<Profile, Error> {
        let decode_error = |reason: String| Error::Decode { reason };
        let raw;
        let data: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .take(MAX_DECODED_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| decode_error(format!("bad gzip data: {e}")))?;
            if out.len() as u64 > MAX_DECODED_BYTES {
                return Err(decode_error(format!(
                    "inflates to more than {MAX_DECODED_BYTES} bytes"
                )));
            }
            raw = out;
            &raw
        } else {
            bytes
        };
        if data.is_empty() {
            return Err(decode_error("empty input (no profile data)".into()));
        }
        let needed = budget::decoded_size(data);
        if needed > budget::MAX_MEMORY {
            return Err(decode_error(format!(
                "{} bytes of profile data would take about {needed} bytes of memory to \
                 decode, more than the limit of {} (hostile input?)",
                data.len(),
                budget::MAX_MEMORY
            )));
        }
        let message =
            proto::Profile::decode(data).map_err(|e| decode_error(format!("bad protobuf: {e}")))?;
        let profile = Profile::from_proto(message).map_err(decode_error)?;
        profile.check_valid().map_err(decode_error)?;
        Ok(profile)
    }

    /// The consistency checks of Go's `profile.CheckValid`: every sample has one value per
    /// sample type and refers to existing locations; ids are nonzero and unique; locations
    /// refer to existing mappings (or none) and functions.
    fn check_valid(&self) -> Result<(), String> {
        use std::collections::HashSet;
        let types = self.sample_types.len();
        if types == 0 && !self.samples.is_empty() {
            return Err("samples without sample types".into());
        }
        let mut mappings = HashSet::with_capacity(self.mappings.len());
        for m in &self.mappings {
            if m.id == 0 {
                return Err("a mapping has the reserved id 0".into());
            }
            if !mappings.insert(m.id) {
                return Err(format!("two mappings have id {}", m.id));
            }
        }
        let mut functions = HashSet::with_capacity(self.functions.len());
        for f in &self.functions {
            if f.id == 0 {
                return Err("a function has the reserved id 0".into());
            }
            if !functions.insert(f.id) {
                return Err(format!("two functions have id {}", f.id));
            }
        }
        let mut locations = HashSet::with_capacity(self.locations.len());
        for l in &self.locations {
            if l.id == 0 {
                return Err("a location has the reserved id 0".into());
            }
            if !locations.insert(l.id) {
                return Err(format!("two locations have id {}", l.id));
            }
            if l.mapping_id != 0 && !mappings.contains(&l.mapping_id) {
                return Err(format!(
                    "location {} refers to mapping {}, which does not exist",
                    l.id, l.mapping_id
                ));
            }
            for line in &l.lines {
                if !functions.contains(&line.function_id) {
                    return Err(format!(
                        "location {} refers to function {}, which does not exist",
                        l.id, line.function_id
                    ));
                }
            }
        }
        for (i, s) in self.samples.iter().enumerate() {
            if s.values.len() != types {
                return Err(format!(
                    "sample {i} has {} values for {types} sample types",
                    s.values.len()
                ));
            }
            if let Some(id) = s.location_ids.iter().find(|id| !locations.contains(id)) {
                return Err(format!(
                    "sample {i} refers to location {id}, which does not exist"
                ));
            }
        }
        Ok(())
    }

    fn to_proto(&self) -> proto::Profile {
        let mut strings = StringTable::default();
        let vt = |v: &ValueType, s: &mut StringTable| proto::ValueType {
            r#type: s.index(&v.ty),
            unit: s.index(&v.unit),
        };
        let sample_type = self
            .sample_types
            .iter()
            .map(|v| vt(v, &mut strings))
            .collect();
        let sample = self
            .samples
            .iter()
            .map(|s| proto::Sample {
                location_id: s.location_ids.clone(),
                value: s.values.clone(),
                label: s
                    .labels
                    .iter()
                    .map(|l| match &l.value {
                        LabelValue::Str(v) => proto::Label {
                            key: strings.index(&l.key),
                            str: strings.index(v),
                            num: 0,
                            num_unit: 0,
                        },
                        LabelValue::Num { value, unit } => proto::Label {
                            key: strings.index(&l.key),
                            str: 0,
                            num: *value,
                            num_unit: strings.index(unit),
                        },
                    })
                    .collect(),
            })
            .collect();
        let mapping = self
            .mappings
            .iter()
            .map(|m| proto::Mapping {
                id: m.id,
                memory_start: m.memory_start,
                memory_limit: m.memory_limit,
                file_offset: m.file_offset,
                filename: strings.index(&m.filename),
                build_id: strings.index(&m.build_id),
                has_functions: m.has_functions,
                has_filenames: m.has_filenames,
                has_line_numbers: m.has_line_numbers,
                has_inline_frames: m.has_inline_frames,
            })
            .collect();
        let location = self
            .locations
            .iter()
            .map(|l| proto::Location {
                id: l.id,
                mapping_id: l.mapping_id,
                address: l.address,
                line: l
                    .lines
                    .iter()
                    .map(|line| proto::Line {
                        function_id: line.function_id,
                        line: line.line,
                    })
                    .collect(),
                is_folded: l.is_folded,
            })
            .collect();
        let function = self
            .functions
            .iter()
            .map(|f| proto::Function {
                id: f.id,
                name: strings.index(&f.name),
                system_name: strings.index(&f.system_name),
                filename: strings.index(&f.filename),
                start_line: f.start_line,
            })
            .collect();
        proto::Profile {
            sample_type,
            sample,
            mapping,
            location,
            function,
            drop_frames: strings.index(&self.drop_frames),
            keep_frames: strings.index(&self.keep_frames),
            time_nanos: self.time_nanos,
            duration_nanos: self.duration_nanos,
            period_type: self.period_type.as_ref().map(|v| vt(v, &mut strings)),
            period: self.period,
            comment: self.comments.iter().map(|c| strings.index(c)).collect(),
            default_sample_type: self
                .default_sample_type
                .as_deref()
                .map_or(0, |s| strings.index(s)),
            string_table: strings.into_vec(),
        }
    }

    fn from_proto(mut p: proto::Profile) -> Result<Profile, String> {
        let table = std::mem::take(&mut p.string_table);
        if table.first().is_some_and(|s| !s.is_empty()) {
            return Err("string_table[0] is not the empty string".into());
        }
        // Every reference copies its string: count the bytes, so a million references to
        // one long string cannot take a terabyte.
        let copied = std::cell::Cell::new(0u64);
        let s = |i: i64| -> Result<String, String> {
            let found = usize::try_from(i).ok().and_then(|i| {
                if i == 0 && table.is_empty() {
                    Some("")
                } else {
                    table.get(i).map(String::as_str)
                }
            });
            let Some(found) = found else {
                return Err(format!(
                    "string index {i} out of range (table has {} entries)",
                    table.len()
                ));
            };
            copied.set(copied.get() + found.len() as u64 + 24);
            if copied.get() > budget::MAX_STRING_COPIES {
                return Err(format!(
                    "its strings, copied for every reference, would take more than {} bytes \
                     (hostile input?)",
                    budget::MAX_STRING_COPIES
                ));
            }
            Ok(found.to_owned())
        };
        let vt = |v: &proto::ValueType| -> Result<ValueType, String> {
            Ok(ValueType::new(s(v.r#type)?, s(v.unit)?))
        };
        let mut samples = Vec::with_capacity(p.sample.len());
        for x in std::mem::take(&mut p.sample) {
            let mut labels = Vec::with_capacity(x.label.len());
            for l in &x.label {
                let value = if l.str != 0 {
                    LabelValue::Str(s(l.str)?)
                } else {
                    LabelValue::Num {
                        value: l.num,
                        unit: s(l.num_unit)?,
                    }
                };
                labels.push(Label {
                    key: s(l.key)?,
                    value,
                });
            }
            samples.push(Sample {
                location_ids: x.location_id,
                values: x.value,
                labels,
            });
        }
        let mut mappings = Vec::with_capacity(p.mapping.len());
        for m in &p.mapping {
            mappings.push(Mapping {
                id: m.id,
                memory_start: m.memory_start,
                memory_limit: m.memory_limit,
                file_offset: m.file_offset,
                filename: s(m.filename)?,
                build_id: s(m.build_id)?,
                has_functions: m.has_functions,
                has_filenames: m.has_filenames,
                has_line_numbers: m.has_line_numbers,
                has_inline_frames: m.has_inline_frames,
            });
        }
        let locations = p
            .location
            .iter()
            .map(|l| Location {
                id: l.id,
                mapping_id: l.mapping_id,
                address: l.address,
                lines: l
                    .line
                    .iter()
                    .map(|x| Line {
                        function_id: x.function_id,
                        line: x.line,
                    })
                    .collect(),
                is_folded: l.is_folded,
            })
            .collect();
        let mut functions = Vec::with_capacity(p.function.len());
        for f in &p.function {
            functions.push(Function {
                id: f.id,
                name: s(f.name)?,
                system_name: s(f.system_name)?,
                filename: s(f.filename)?,
                start_line: f.start_line,
            });
        }
        let mut comments = Vec::with_capacity(p.comment.len());
        for &c in &p.comment {
            comments.push(s(c)?);
        }
        Ok(Profile {
            sample_types: p.sample_type.iter().map(vt).collect::<Result<_, _>>()?,
            samples,
            mappings,
            locations,
            functions,
            drop_frames: s(p.drop_frames)?,
            keep_frames: s(p.keep_frames)?,
            time_nanos: p.time_nanos,
            duration_nanos: p.duration_nanos,
            period_type: p.period_type.as_ref().map(vt).transpose()?,
            period: p.period,
            comments,
            default_sample_type: match p.default_sample_type {
                0 => None,
                i => Some(s(i)?),
            },
        })
    }
}

/// Interns strings for encoding: index 0 is `""`, each distinct string appears once.
#[derive(Debug)]
struct StringTable {
    strings: Vec<String>,
    index: HashMap<String, i64>,
}

impl Default for StringTable {
    fn default() -> Self {
        StringTable {
            strings: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl StringTable {
    fn index(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }

    fn into_vec(self) -> Vec<String> {
        self.strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap-like profile: samples at stacks [1] and [2] with (alloc_space, inuse_space).
    fn heap_like(values: &[(u64, i64, i64)], time: i64) -> Profile {
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

    #[test]
    fn delta_subtracts_counts_and_keeps_in_use_from_the_end() {
        let base = heap_like(&[(1, 10, 5), (2, 7, 7)], 1_000);
        // Location ids renumbered in the end profile (0x1234 is id 2 there, 0x2000 id 1):
        // samples are matched by address and names, not ids.
        let mut end = heap_like(&[(2, 15, 3), (1, 7, 7)], 5_000);
        end.locations[0].id = 2;
        end.locations[1].id = 1;
        let d = end.delta(&base);
        assert_eq!(d.duration_nanos, 4_000);
        let by_addr = |p: &Profile, s: &Sample| {
            p.locations
                .iter()
                .find(|l| l.id == s.location_ids[0])
                .unwrap()
                .address
        };
        let mut got: Vec<(u64, Vec<i64>)> = d
            .samples
            .iter()
            .map(|s| (by_addr(&d, s), s.values.clone()))
            .collect();
        got.sort();
        // 0x1234: alloc 15 - 10 = 5, in use 3 (the end state, not 3 - 5).
        // 0x2000: alloc 7 - 7 = 0 but in use 7: kept.
        assert_eq!(got, vec![(0x1234, vec![5, 3]), (0x2000, vec![0, 7])]);
    }

    #[test]
    fn delta_drops_samples_that_did_not_change() {
        let base = heap_like(&[(1, 10, 0)], 1);
        let end = heap_like(&[(1, 10, 0)], 2);
        assert!(end.delta(&base).samples.is_empty());
    }

    fn sample_profile() -> Profile {
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

    #[test]
    fn string_table_starts_with_empty_and_has_no_duplicates() {
        let p = sample_profile().to_proto();
        assert_eq!(p.string_table[0], "");
        let mut seen = std::collections::HashSet::new();
        for s in &p.string_table {
            assert!(seen.insert(s), "{s:?} appears twice in the string table");
        }
        // "src/main.rs" is used by two functions and "cpu"/"nanoseconds" twice each.
        assert_eq!(
            p.string_table
                .iter()
                .filter(|s| *s == "src/main.rs")
                .count(),
            1
        );
        assert_eq!(p.function[0].filename, p.function[1].filename);
        assert_eq!(p.sample_type[1], p.period_type.clone().unwrap());
    }

    #[test]
    fn empty_profile_still_has_the_empty_string() {
        let p = Profile::default().to_proto();
        assert_eq!(p.string_table, vec![String::new()]);
    }

    #[test]
    fn round_trip_raw_and_gzipped() {
        let original = sample_profile();
        let raw = original.encode();
        assert_eq!(Profile::decode(&raw).unwrap(), original);
        let mut gz = Vec::new();
        original.write_to(&mut gz).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        assert_eq!(Profile::decode(&gz).unwrap(), original);
    }

    #[test]
    fn decode_rejects_out_of_range_string_index() {
        let mut p = sample_profile().to_proto();
        p.function[0].name = 10_000;
        let err = Profile::decode(&p.encode_to_vec()).unwrap_err();
        assert!(
            err.to_string().contains("string index 10000 out of range"),
            "{err}"
        );
        let mut p = sample_profile().to_proto();
        p.function[0].name = -1;
        assert!(matches!(
            Profile::decode(&p.encode_to_vec()),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn decode_rejects_garbage_and_truncated_gzip() {
        assert!(matches!(
            Profile::decode(b"\xff\xff\xff\xff not a profile"),
            Err(Error::Decode { .. })
        ));
        let mut gz = Vec::new();
        sample_profile().write_to(&mut gz).unwrap();
        let err = Profile::decode(&gz[..gz.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn decode_rejects_a_decompression_bomb() {
        // 300 MiB of zeros compresses to ~300 KiB; decoding must stop at the limit.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..300 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        let err = Profile::decode(&bomb).unwrap_err();
        assert!(err.to_string().contains("inflates to more than"), "{err}");
    }

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
