//! OpenTelemetry profiles (OTLP, `opentelemetry/proto/profiles/v1development`, as the
//! Collector's pdata v1.71 / pprofile v0.165 reads them): one
//! `ExportProfilesServiceRequest` per upload, posted to `{endpoint}/v1development/profiles`
//! as `application/x-protobuf`.
//!
//! The shape: the request holds one dictionary (mappings, locations, functions, strings,
//! attributes, stacks; entry 0 of every table is the empty one, as the spec requires) and
//! one resource (`service.name`, `host.name`, the tags) with one scope (`profile-guard`).
//! OTLP profiles have one sample type each, so a pprof profile with several (CPU's
//! `samples` and `cpu`) becomes several profiles sharing the dictionary. Sample labels
//! become sample attributes (numeric labels keep their unit).
//!
//! Written by hand with `prost` derives, like `profile/proto.rs`: field numbers follow
//! the proto exactly (read from pdata's generated unmarshalers).

use std::collections::HashMap;

use prost::Message;

use crate::{LabelValue, Profile};

/// The profiles schema's development version this encoding is (pdata rejects a request
/// whose `otlp-profiles-development-version` it does not support; absent means 1).
pub(crate) const HEADERS: &[(&str, &str)] = &[("otlp-profiles-development-version", "1")];

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportProfilesServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_profiles: Vec<ResourceProfiles>,
    #[prost(message, optional, tag = "2")]
    pub dictionary: Option<ProfilesDictionary>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProfilesDictionary {
    #[prost(message, repeated, tag = "1")]
    pub mapping_table: Vec<Mapping>,
    #[prost(message, repeated, tag = "2")]
    pub location_table: Vec<Location>,
    #[prost(message, repeated, tag = "3")]
    pub function_table: Vec<Function>,
    #[prost(message, repeated, tag = "4")]
    pub link_table: Vec<Link>,
    #[prost(string, repeated, tag = "5")]
    pub string_table: Vec<String>,
    #[prost(message, repeated, tag = "6")]
    pub attribute_table: Vec<KeyValueAndUnit>,
    #[prost(message, repeated, tag = "7")]
    pub stack_table: Vec<Stack>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ResourceProfiles {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_profiles: Vec<ScopeProfiles>,
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ScopeProfiles {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub profiles: Vec<OtlpProfile>,
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct OtlpProfile {
    #[prost(message, optional, tag = "1")]
    pub sample_type: Option<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(uint64, tag = "4")]
    pub duration_nano: u64,
    #[prost(message, optional, tag = "5")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "6")]
    pub period: i64,
    #[prost(bytes = "vec", tag = "7")]
    pub profile_id: Vec<u8>,
    #[prost(int32, repeated, tag = "11")]
    pub attribute_indices: Vec<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ValueType {
    #[prost(int32, tag = "1")]
    pub type_strindex: i32,
    #[prost(int32, tag = "2")]
    pub unit_strindex: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    #[prost(int32, tag = "1")]
    pub stack_index: i32,
    #[prost(int32, repeated, tag = "2")]
    pub attribute_indices: Vec<i32>,
    #[prost(int32, tag = "3")]
    pub link_index: i32,
    #[prost(int64, repeated, tag = "4")]
    pub values: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Mapping {
    #[prost(uint64, tag = "1")]
    pub memory_start: u64,
    #[prost(uint64, tag = "2")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "3")]
    pub file_offset: u64,
    #[prost(int32, tag = "4")]
    pub filename_strindex: i32,
    #[prost(int32, repeated, tag = "5")]
    pub attribute_indices: Vec<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Location {
    #[prost(int32, tag = "1")]
    pub mapping_index: i32,
    #[prost(uint64, tag = "2")]
    pub address: u64,
    #[prost(message, repeated, tag = "3")]
    pub lines: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Line {
    #[prost(int32, tag = "1")]
    pub function_index: i32,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Function {
    #[prost(int32, tag = "1")]
    pub name_strindex: i32,
    #[prost(int32, tag = "2")]
    pub system_name_strindex: i32,
    #[prost(int32, tag = "3")]
    pub filename_strindex: i32,
    #[prost(int64, tag = "4")]
    pub start_line: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Link {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Stack {
    #[prost(int32, repeated, tag = "1")]
    pub location_indices: Vec<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct KeyValueAndUnit {
    #[prost(int32, tag = "1")]
    pub key_strindex: i32,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
    #[prost(int32, tag = "3")]
    pub unit_strindex: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 3")]
    pub value: Option<any_value::Value>,
}

pub(crate) mod any_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(int64, tag = "3")]
        IntValue(i64),
    }
}

fn string(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    }
}

/// The dictionary being built: each table with its index by content.
#[derive(Default)]
struct Dictionary {
    d: ProfilesDictionary,
    strings: HashMap<String, i32>,
    attributes: HashMap<(i32, String, i64, i32), i32>,
    stacks: HashMap<Vec<i32>, i32>,
}

impl Dictionary {
    fn new() -> Dictionary {
        let mut d = Dictionary::default();
        // Entry 0 of every table is the empty one.
        d.string("");
        d.d.mapping_table.push(Mapping::default());
        d.d.location_table.push(Location::default());
        d.d.function_table.push(Function::default());
        d.d.link_table.push(Link::default());
        d.d.attribute_table.push(KeyValueAndUnit::default());
        d.d.stack_table.push(Stack::default());
        d.stacks.insert(Vec::new(), 0);
        d
    }

    fn string(&mut self, s: &str) -> i32 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.d.string_table.len() as i32;
        self.d.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn attribute(&mut self, key: &str, value: &LabelValue) -> i32 {
        let k = self.string(key);
        let (s, n, unit) = match value {
            LabelValue::Str(s) => (s.clone(), 0, 0),
            LabelValue::Num { value, unit } => (String::new(), *value, self.string(unit)),
        };
        let is_num = matches!(value, LabelValue::Num { .. });
        let id = (
            k,
            if is_num { "\u{0}num".into() } else { s.clone() },
            n,
            unit,
        );
        if let Some(&i) = self.attributes.get(&id) {
            return i;
        }
        let i = self.d.attribute_table.len() as i32;
        self.d.attribute_table.push(KeyValueAndUnit {
            key_strindex: k,
            value: Some(if is_num {
                AnyValue {
                    value: Some(any_value::Value::IntValue(n)),
                }
            } else {
                string(&s)
            }),
            unit_strindex: unit,
        });
        self.attributes.insert(id, i);
        i
    }

    fn stack(&mut self, locations: Vec<i32>) -> i32 {
        if let Some(&i) = self.stacks.get(&locations) {
            return i;
        }
        let i = self.d.stack_table.len() as i32;
        self.d.stack_table.push(Stack {
            location_indices: locations.clone(),
        });
        self.stacks.insert(locations, i);
        i
    }
}

/// The OTLP request for one pprof profile: one OTLP profile per sample type, sharing one
/// dictionary; `resource` holds `service.name` and the other resource attributes.
pub(crate) fn request(p: &Profile, resource: &[(String, String)], profile_id: [u8; 16]) -> Vec<u8> {
    let mut dict = Dictionary::new();
    // Mappings, functions and locations by the pprof ids.
    let mut mapping_index: HashMap<u64, i32> = HashMap::new();
    for m in &p.mappings {
        let filename_strindex = dict.string(&m.filename);
        let mut attribute_indices = Vec::new();
        if !m.build_id.is_empty() {
            attribute_indices.push(dict.attribute(
                "process.executable.build_id.gnu",
                &LabelValue::Str(m.build_id.clone()),
            ));
        }
        mapping_index.insert(m.id, dict.d.mapping_table.len() as i32);
        dict.d.mapping_table.push(Mapping {
            memory_start: m.memory_start,
            memory_limit: m.memory_limit,
            file_offset: m.file_offset,
            filename_strindex,
            attribute_indices,
        });
    }
    let mut function_index: HashMap<u64, i32> = HashMap::new();
    for f in &p.functions {
        let f2 = Function {
            name_strindex: dict.string(&f.name),
            system_name_strindex: dict.string(&f.system_name),
            filename_strindex: dict.string(&f.filename),
            start_line: f.start_line,
        };
        function_index.insert(f.id, dict.d.function_table.len() as i32);
        dict.d.function_table.push(f2);
    }
    let mut location_index: HashMap<u64, i32> = HashMap::new();
    for l in &p.locations {
        let lines = l
            .lines
            .iter()
            .map(|line| Line {
                function_index: function_index.get(&line.function_id).copied().unwrap_or(0),
                line: line.line,
            })
            .collect();
        location_index.insert(l.id, dict.d.location_table.len() as i32);
        dict.d.location_table.push(Location {
            mapping_index: mapping_index.get(&l.mapping_id).copied().unwrap_or(0),
            address: l.address,
            lines,
        });
    }
    // Samples: the stack and attributes once, the values per sample type.
    let shared: Vec<(i32, Vec<i32>)> = p
        .samples
        .iter()
        .map(|s| {
            let stack = dict.stack(
                s.location_ids
                    .iter()
                    .map(|id| location_index.get(id).copied().unwrap_or(0))
                    .collect(),
            );
            let attributes = s
                .labels
                .iter()
                .map(|l| dict.attribute(&l.key, &l.value))
                .collect();
            (stack, attributes)
        })
        .collect();
    let period_type = p.period_type.as_ref().map(|t| ValueType {
        type_strindex: dict.string(&t.ty),
        unit_strindex: dict.string(&t.unit),
    });
    let mut profiles = Vec::new();
    for (i, t) in p.sample_types.iter().enumerate() {
        let sample_type = ValueType {
            type_strindex: dict.string(&t.ty),
            unit_strindex: dict.string(&t.unit),
        };
        let samples = p
            .samples
            .iter()
            .zip(&shared)
            .filter_map(|(s, (stack, attributes))| {
                let v = s.values.get(i).copied().unwrap_or(0);
                (v != 0).then(|| Sample {
                    stack_index: *stack,
                    attribute_indices: attributes.clone(),
                    link_index: 0,
                    values: vec![v],
                })
            })
            .collect();
        let mut id = profile_id;
        id[15] = id[15].wrapping_add(i as u8);
        profiles.push(OtlpProfile {
            sample_type: Some(sample_type),
            samples,
            time_unix_nano: p.time_nanos.max(0) as u64,
            duration_nano: p.duration_nanos.max(0) as u64,
            period_type: period_type.clone(),
            period: p.period,
            profile_id: id.to_vec(),
            attribute_indices: Vec::new(),
        });
    }
    let req = ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles {
            resource: Some(Resource {
                attributes: resource
                    .iter()
                    .map(|(k, v)| KeyValue {
                        key: k.clone(),
                        value: Some(string(v)),
                    })
                    .collect(),
            }),
            scope_profiles: vec![ScopeProfiles {
                scope: Some(InstrumentationScope {
                    name: "profile-guard".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                profiles,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
        dictionary: Some(dict.d),
    };
    req.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_otlp_profile_per_sample_type_sharing_one_dictionary() {
        let p = crate::profile::test_profiles::sample_profile();
        let bytes = request(&p, &[("service.name".into(), "svc".into())], [7; 16]);
        let req = ExportProfilesServiceRequest::decode(&bytes[..]).unwrap();
        let d = req.dictionary.as_ref().unwrap();
        assert_eq!(d.string_table[0], "");
        assert_eq!(d.stack_table[0].location_indices.len(), 0);
        let profiles = &req.resource_profiles[0].scope_profiles[0].profiles;
        assert_eq!(profiles.len(), p.sample_types.len());
        for (i, op) in profiles.iter().enumerate() {
            let t = op.sample_type.as_ref().unwrap();
            assert_eq!(
                d.string_table[t.type_strindex as usize],
                p.sample_types[i].ty
            );
            let total: i64 = op.samples.iter().map(|s| s.values[0]).sum();
            assert_eq!(total, p.total(&p.sample_types[i].ty));
            for s in &op.samples {
                for &a in &s.attribute_indices {
                    assert!((a as usize) < d.attribute_table.len());
                }
                let stack = &d.stack_table[s.stack_index as usize];
                assert!(!stack.location_indices.is_empty());
                for &l in &stack.location_indices {
                    let loc = &d.location_table[l as usize];
                    for line in &loc.lines {
                        assert!((line.function_index as usize) < d.function_table.len());
                    }
                }
            }
        }
        let resource = req.resource_profiles[0].resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
    }
}
