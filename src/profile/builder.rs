//! Turns raw stacks (instruction addresses) and values into a [`Profile`].
//!
//! This is the middle of the pipeline every profile kind shares:
//! raw stacks + values → (symbolization through a [`Resolve`]) → `Profile` → gzip.
//! Functions are deduplicated by (name, system name, file), locations by address, and
//! samples with the same stack and labels are merged by adding their values.

// Only the Linux backend produces raw stacks so far.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::collections::HashMap;
use std::sync::Arc;

use super::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};

/// One source-level frame an address stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SymFrame {
    /// Demangled function name.
    pub name: String,
    /// Mangled (linker) name; equal to `name` when there is no mangling.
    pub system_name: String,
    /// Source file, empty when unknown.
    pub file: String,
    /// Line, 0 when unknown.
    pub line: u32,
}

/// What an address resolves to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    /// Id of the mapping containing the address (an id from [`Resolve::mappings`]), 0 if none.
    pub mapping_id: u64,
    /// The address to write in the profile, in the mapping's address space (the runtime
    /// address, or the link-time one for a rebased mapping).
    pub address: u64,
    /// Innermost first (inlined callees, then the function they were inlined into);
    /// empty when nothing is known.
    pub frames: Arc<[SymFrame]>,
}

/// A symbolizer: turns addresses into frames and knows the process's mappings.
pub(crate) trait Resolve {
    /// The mappings, with ids starting at 1, the main executable first.
    fn mappings(&self) -> Vec<Mapping>;
    /// What `address` (already adjusted to lie inside its instruction) resolves to.
    fn resolve(&mut self, address: u64) -> Resolved;
    /// Whether addresses were given their functions (false: the reader is to symbolize
    /// them from the binary, so mappings do not claim functions).
    fn symbolizes(&self) -> bool {
        true
    }
    /// The function names `address` resolves to, innermost first (to trim a profiler's
    /// own frames, which needs names even when profiles are not symbolized).
    fn names(&mut self, address: u64) -> Vec<String> {
        self.resolve(address)
            .frames
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }
}

type SampleKey = (Vec<u64>, Vec<Label>);

/// The labels of a sample taken on one thread: `thread_name` and a numeric `thread_id`.
pub(crate) fn thread_labels(name: String, tid: i32) -> Vec<Label> {
    vec![
        Label {
            key: "thread_name".into(),
            value: super::LabelValue::Str(name),
        },
        Label {
            key: "thread_id".into(),
            value: super::LabelValue::Num {
                value: i64::from(tid),
                unit: String::new(),
            },
        },
    ]
}

/// Now, in nanoseconds since the Unix epoch (a profile's `time_nanos`).
pub(crate) fn now_nanos() -> i64 {
    nanos_since_epoch(std::time::SystemTime::now())
}

/// `t` in nanoseconds since the Unix epoch; 0 before it.
pub(crate) fn nanos_since_epoch(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Builds one profile; see the module docs.
pub(crate) struct ProfileBuilder<'r> {
    resolver: &'r mut dyn Resolve,
    profile: Profile,
    functions: HashMap<(String, String, String), u64>,
    locations: HashMap<u64, u64>,
    samples: HashMap<SampleKey, usize>,
}

impl<'r> ProfileBuilder<'r> {
    pub(crate) fn new(resolver: &'r mut dyn Resolve, sample_types: Vec<ValueType>) -> Self {
        ProfileBuilder {
            resolver,
            profile: Profile {
                sample_types,
                ..Profile::default()
            },
            functions: HashMap::new(),
            locations: HashMap::new(),
            samples: HashMap::new(),
        }
    }

    /// The profile's header fields (period, times, default sample type...) are set here.
    pub(crate) fn header(&mut self) -> &mut Profile {
        &mut self.profile
    }

    /// Adds a sample. `stack` holds raw addresses, leaf first. Every address but an exact
    /// leaf is a return address (one past a call), so it is moved back by one byte to land
    /// on the call instruction: symbolization then reports the call's line.
    pub(crate) fn add(
        &mut self,
        stack: &[u64],
        leaf_exact: bool,
        values: &[i64],
        labels: Vec<Label>,
    ) {
        let location_ids: Vec<u64> = stack
            .iter()
            .enumerate()
            .map(|(i, &pc)| {
                let address = if i == 0 && leaf_exact {
                    pc
                } else {
                    pc.saturating_sub(1)
                };
                self.location(address)
            })
            .collect();
        let key = (location_ids, labels);
        match self.samples.get(&key) {
            Some(&i) => {
                let sample = &mut self.profile.samples[i];
                for (total, v) in sample.values.iter_mut().zip(values) {
                    *total += v;
                }
            }
            None => {
                self.samples.insert(key.clone(), self.profile.samples.len());
                self.profile.samples.push(Sample {
                    location_ids: key.0,
                    values: values.to_vec(),
                    labels: key.1,
                });
            }
        }
    }

    /// Adds a sample whose one frame is a named pseudo-function with no address (Go's
    /// `lostProfileEvent`: samples that were counted but could not be recorded).
    pub(crate) fn add_synthetic(&mut self, function: &str, values: &[i64], labels: Vec<Label>) {
        let function_id = self.function(&SymFrame {
            name: function.to_owned(),
            ..SymFrame::default()
        });
        let id = self.profile.locations.len() as u64 + 1;
        self.profile.locations.push(Location {
            id,
            mapping_id: 0,
            address: 0,
            lines: vec![Line {
                function_id,
                line: 0,
            }],
            is_folded: false,
        });
        self.profile.samples.push(Sample {
            location_ids: vec![id],
            values: values.to_vec(),
            labels,
        });
    }

    fn location(&mut self, address: u64) -> u64 {
        if let Some(&id) = self.locations.get(&address) {
            return id;
        }
        let resolved = self.resolver.resolve(address);
        let lines = resolved
            .frames
            .iter()
            .map(|f| Line {
                function_id: self.function(f),
                line: i64::from(f.line),
            })
            .collect();
        let id = self.profile.locations.len() as u64 + 1;
        self.profile.locations.push(Location {
            id,
            mapping_id: resolved.mapping_id,
            address: resolved.address,
            lines,
            is_folded: false,
        });
        self.locations.insert(address, id);
        id
    }

    fn function(&mut self, f: &SymFrame) -> u64 {
        let key = (f.name.clone(), f.system_name.clone(), f.file.clone());
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.profile.functions.len() as u64 + 1;
        self.profile.functions.push(Function {
            id,
            name: f.name.clone(),
            system_name: f.system_name.clone(),
            filename: f.file.clone(),
            start_line: 0,
        });
        self.functions.insert(key, id);
        id
    }

    /// Finishes the profile: mappings, with their `has_*` flags set from what
    /// symbolization found in each.
    pub(crate) fn finish(mut self) -> Profile {
        let mut mappings = self.resolver.mappings();
        let symbolized = self.resolver.symbolizes();
        for m in &mut mappings {
            let locations = self
                .profile
                .locations
                .iter()
                .filter(|l| l.mapping_id == m.id);
            for l in locations {
                // We symbolized every address we had: tell pprof not to try again (it
                // would print warnings for objects it cannot open). Not for a pseudo
                // object (`[vdso]`) we found no names in: claiming functions there made
                // readers show nameless rows; pprof skips such mappings by itself.
                m.has_functions |=
                    symbolized && (!m.filename.starts_with('[') || !l.lines.is_empty());
                for line in &l.lines {
                    let f = &self.profile.functions[line.function_id as usize - 1];
                    m.has_filenames |= !f.filename.is_empty();
                    m.has_line_numbers |= line.line != 0;
                }
            }
            m.has_inline_frames = m.has_line_numbers;
        }
        self.profile.mappings = mappings;
        self.profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::LabelValue;

    /// Addresses 0x1000..0x2000 are `f` (0x1000..0x1100 with `g` inlined), the rest `main`.
    struct Fake {
        calls: usize,
    }

    impl Resolve for Fake {
        fn mappings(&self) -> Vec<Mapping> {
            vec![Mapping {
                id: 1,
                memory_start: 0x1000,
                memory_limit: 0x3000,
                filename: "/bin/fake".into(),
                ..Mapping::default()
            }]
        }

        fn resolve(&mut self, address: u64) -> Resolved {
            self.calls += 1;
            let frame = |name: &str, line| SymFrame {
                name: name.into(),
                system_name: format!("_ZN{name}E"),
                file: "fake.rs".into(),
                line,
            };
            let frames: Vec<SymFrame> = match address {
                0x1000..0x1100 => vec![frame("g", 3), frame("f", 10)],
                0x1100..0x2000 => vec![frame("f", 11)],
                _ => vec![frame("main", 20)],
            };
            Resolved {
                mapping_id: 1,
                address,
                frames: frames.into(),
            }
        }
    }

    fn thread(name: &str) -> Vec<Label> {
        vec![Label {
            key: "thread_name".into(),
            value: LabelValue::Str(name.into()),
        }]
    }

    #[test]
    fn dedups_functions_locations_and_samples() {
        let mut fake = Fake { calls: 0 };
        let mut b = ProfileBuilder::new(&mut fake, vec![ValueType::new("samples", "count")]);
        // Same stack twice (merged), once more on another thread (kept apart).
        b.add(&[0x1010, 0x2501], true, &[1], thread("a"));
        b.add(&[0x1010, 0x2501], true, &[2], thread("a"));
        b.add(&[0x1010, 0x2501], true, &[4], thread("b"));
        // Another address in f: a new location, but the same function `f`.
        b.add(&[0x1200, 0x2501], true, &[8], thread("a"));
        let p = b.finish();

        assert_eq!(p.samples.len(), 3);
        assert_eq!(p.samples[0].values, vec![3]);
        assert_eq!(p.total("samples"), 15);
        // Locations: 0x1010, 0x2500 (return address moved back), 0x1200.
        let addrs: Vec<u64> = p.locations.iter().map(|l| l.address).collect();
        assert_eq!(addrs, vec![0x1010, 0x2500, 0x1200]);
        assert_eq!(fake.calls, 3);
        // Functions g, f, main: each once although f appears in two locations.
        let names: Vec<&str> = p.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["g", "f", "main"]);
        // The inlined location has two lines, innermost first.
        assert_eq!(p.locations[0].lines.len(), 2);
        assert_eq!(p.stack_names(&p.samples[0]), vec!["g", "f", "main"]);
        let m = &p.mappings[0];
        assert!(m.has_functions && m.has_filenames && m.has_line_numbers);
    }

    #[test]
    fn resolves_each_address_once() {
        let mut fake = Fake { calls: 0 };
        let mut b = ProfileBuilder::new(&mut fake, vec![ValueType::new("samples", "count")]);
        for _ in 0..100 {
            b.add(&[0x1010, 0x2501, 0x2601], true, &[1], Vec::new());
        }
        let p = b.finish();
        assert_eq!(p.samples.len(), 1);
        assert_eq!(fake.calls, 3);
    }

    #[test]
    fn inexact_leaf_is_moved_back_too() {
        let mut fake = Fake { calls: 0 };
        let mut b = ProfileBuilder::new(&mut fake, vec![ValueType::new("samples", "count")]);
        b.add(&[0x1101, 0x2501], false, &[1], Vec::new());
        let p = b.finish();
        assert_eq!(p.locations[0].address, 0x1100);
    }
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;

    struct NoSymbols;

    impl Resolve for NoSymbols {
        fn mappings(&self) -> Vec<Mapping> {
            // Every real profile has the main executable's mapping.
            vec![Mapping {
                id: 1,
                memory_start: 0x1000,
                memory_limit: 0x2000,
                filename: "/bin/fake".into(),
                has_functions: true,
                ..Mapping::default()
            }]
        }

        fn resolve(&mut self, address: u64) -> Resolved {
            Resolved {
                address,
                ..Resolved::default()
            }
        }
    }

    /// A pseudo object with no names found (`[vdso]`) does not claim functions; a file
    /// mapping we symbolized (even without names) does, so pprof does not try again.
    #[test]
    fn nameless_pseudo_objects_do_not_claim_functions() {
        struct Vdso;
        impl Resolve for Vdso {
            fn mappings(&self) -> Vec<Mapping> {
                vec![
                    Mapping {
                        id: 1,
                        memory_start: 0x1000,
                        memory_limit: 0x2000,
                        filename: "/bin/fake".into(),
                        ..Mapping::default()
                    },
                    Mapping {
                        id: 2,
                        memory_start: 0x7000,
                        memory_limit: 0x8000,
                        filename: "[vdso]".into(),
                        ..Mapping::default()
                    },
                ]
            }
            fn resolve(&mut self, address: u64) -> Resolved {
                Resolved {
                    address,
                    mapping_id: if address >= 0x7000 { 2 } else { 1 },
                    ..Resolved::default()
                }
            }
        }
        let mut r = Vdso;
        let mut b = ProfileBuilder::new(&mut r, vec![ValueType::new("samples", "count")]);
        b.add(&[0x7010, 0x1501], true, &[1], Vec::new());
        let p = b.finish();
        assert!(p.mappings[0].has_functions);
        assert!(
            !p.mappings[1].has_functions,
            "[vdso] claims names it does not have"
        );
    }

    /// `lostProfileEvent` samples: a named frame without address or mapping, which
    /// `go tool pprof` shows without complaint.
    #[test]
    fn synthetic_frame_is_read_by_go_tool_pprof() {
        let mut r = NoSymbols;
        let mut b = ProfileBuilder::new(
            &mut r,
            vec![
                ValueType::new("samples", "count"),
                ValueType::new("cpu", "nanoseconds"),
            ],
        );
        b.add_synthetic("lostProfileEvent", &[3, 30_000_000], Vec::new());
        b.header().period_type = Some(ValueType::new("cpu", "nanoseconds"));
        b.header().period = 10_000_000;
        let p = b.finish();
        assert_eq!(p.total("samples"), 3);
        assert_eq!(p.stack_names(&p.samples[0]), vec!["lostProfileEvent"]);

        let ok = std::process::Command::new("go").arg("version").output();
        if !ok.is_ok_and(|o| o.status.success()) {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "go is required under CI=true"
            );
            eprintln!("SKIPPED: go not found");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lost.pb.gz");
        p.write_to(std::fs::File::create(&file).unwrap()).unwrap();
        let out = std::process::Command::new("go")
            .args(["tool", "pprof", "-top"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.trim().is_empty(), "warnings: {stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("lostProfileEvent"));
    }
}
