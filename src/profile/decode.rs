//! Decoding: gzip or raw protobuf → the model, bounded (inflated size, memory estimate)
//! and checked as Go's `profile.CheckValid` checks.

use std::io::Read;

use prost::Message;

use super::{
    Function, Label, LabelValue, Line, Location, MAX_DECODED_BYTES, Mapping, Profile, Sample,
    ValueType, budget, proto,
};
use crate::Error;

impl Profile {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::test_profiles::*;
    use std::io::Write;

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
}
