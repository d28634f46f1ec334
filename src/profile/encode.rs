//! Encoding: the model → `profile.proto` (the string table built here, index 0 always
//! `""`, every string once) → gzip.

use std::collections::HashMap;
use std::io::{self, Write};

use prost::Message;

use super::{LabelValue, Profile, ValueType, proto};

impl Profile {
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

    pub(super) fn to_proto(&self) -> proto::Profile {
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
    use crate::profile::test_profiles::*;

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
}
