//! The kinds table: every profile kind once, with its names, file, sample types, how it
//! is taken, and how to read it now and count it cheaply. The builder's modes, `PROFILE=`
//! (`env.rs`), toggles, every `/debug/pprof` endpoint and the index page choose a kind
//! through [`find`] / [`endpoint`] / [`of`], as Go's `net/http/pprof` looks profiles up
//! in `runtime/pprof`'s registry.
//!
//! Adding a kind: a [`ProfileKind`] variant, its entry in [`KINDS`], its backend (a
//! `runtime` module; a `sys` backend if it needs the platform), a mode in
//! `builder::mode` with its adapter in `session.rs`, and its arm in `env.rs`.

use std::fmt;

use crate::{Error, Profile};

/// What kind of profile a guard or a runtime profiler records.
///
/// Displayed as the word pkg/profile uses in its messages (`cpu`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// CPU time, sampled by a profiling timer. Written as `cpu.pb.gz`.
    Cpu,
    /// Live heap (in-use objects and bytes, plus allocations), `heap.pb.gz`.
    Heap,
    /// Allocations (the heap profile opening on `alloc_space`), `allocs.pb.gz`.
    Allocs,
    /// Lock contention charged to the holders, `mutex.pb.gz`.
    Mutex,
    /// Time spent waiting, charged to the waiters, `block.pb.gz`.
    Block,
    /// Every thread's stack at one moment (Go's goroutine profile), `threads.pb.gz`.
    Threads,
    /// Every thread sampled over wall-clock time, running or waiting, `clock.pb.gz`.
    Clock,
    /// Where threads were created, `threadcreate.pb.gz` (cargo feature `threadcreate`).
    ThreadCreate,
    /// An execution trace: spans, events and CPU samples on a timeline, `trace.json`
    /// (cargo feature `trace`).
    Trace,
}

impl ProfileKind {
    /// The word used in messages and errors (`cpu`).
    pub fn name(self) -> &'static str {
        of(self).name
    }

    /// The file name a guard writes for this kind inside its output directory.
    pub fn file_name(self) -> &'static str {
        of(self).file_name
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a kind is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taking {
    /// Recorded over a window (CPU, clock, trace): `?seconds=N` is the window.
    Session,
    /// State that can be read at any moment, cumulative (heap, allocs, mutex, block,
    /// threadcreate) or instant (threads): a snapshot; `?seconds=N` makes a delta.
    Snapshot,
}

/// A kind's `?debug=1` text form (Go's legacy formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// None: the kind is taken over a window (its endpoint ignores `debug`).
    None,
    /// `heap profile: ...` with `@ heap/RATE`.
    Heap,
    /// `--- contention:` (mutex: `true`, block: `false`).
    Contention { mutex: bool },
    /// The thread dump's own (`goroutine profile: total N`, and `debug=2` full dump).
    Threads,
    /// `NAME profile: total N` count lines.
    Counts,
}

/// One row of the table.
#[cfg_attr(not(feature = "http"), allow(dead_code))] // the endpoints read most of it
pub(crate) struct Kind {
    pub(crate) kind: ProfileKind,
    /// The word in messages, errors and file names (`cpu`, `heap`).
    pub(crate) name: &'static str,
    /// The names `PROFILE=` and `/flamegraph?kind=` accept, the usual one first
    /// (`mem` before `heap`, as pkg/profile's `MemProfile`).
    pub(crate) names: &'static [&'static str],
    /// The `/debug/pprof/` paths that serve it, Go's first (`profile` for CPU,
    /// `goroutine` for threads).
    pub(crate) endpoints: &'static [&'static str],
    pub(crate) file_name: &'static str,
    /// Sample types as written, in order.
    #[allow(dead_code)] // checked against what each kind writes (kind::tests)
    pub(crate) sample_types: &'static [(&'static str, &'static str)],
    pub(crate) taking: Taking,
    /// The cargo feature it needs (None: always built).
    pub(crate) feature: Option<&'static str>,
    /// Whether this build has it.
    pub(crate) available: bool,
    /// What `PROFILE=` options beside the common ones it takes (`hz`, `rate`).
    pub(crate) options: &'static [&'static str],
    pub(crate) text: Text,
    /// The index page's description (Go's words where Go has the profile).
    pub(crate) description: &'static str,
    /// The profile now (snapshot kinds).
    pub(crate) snapshot: Option<fn() -> Result<Profile, Error>>,
    /// How many records (stacks) it has now, without symbolizing (the index page's
    /// count; None: nothing to count before it is taken).
    pub(crate) count: Option<fn() -> usize>,
    /// Why it records nothing now, with the one call that turns it on (None: it is on,
    /// or always is). The index page and the kind's responses say it.
    pub(crate) off: Option<fn() -> Option<&'static str>>,
}

/// Every kind, in the order pprof lists them.
pub(crate) static KINDS: &[Kind] = &[
    Kind {
        kind: ProfileKind::Cpu,
        name: "cpu",
        names: &["cpu"],
        endpoints: &["profile"],
        file_name: "cpu.pb.gz",
        sample_types: &[("samples", "count"), ("cpu", "nanoseconds")],
        taking: Taking::Session,
        feature: None,
        available: true,
        options: &["hz"],
        text: Text::None,
        description: "CPU profile. ?seconds=N (default 30); the file is offered for download",
        snapshot: None,
        count: None,
        off: None,
    },
    Kind {
        kind: ProfileKind::Heap,
        name: "heap",
        names: &["mem", "heap"],
        endpoints: &["heap"],
        file_name: "heap.pb.gz",
        sample_types: HEAP_TYPES,
        taking: Taking::Snapshot,
        feature: None,
        available: true,
        options: &["rate"],
        text: Text::Heap,
        description: "A sampling of memory allocations of live objects",
        snapshot: Some(crate::runtime::heap::profile),
        count: Some(counts::heap),
        off: Some(off::heap),
    },
    Kind {
        kind: ProfileKind::Allocs,
        name: "allocs",
        names: &["allocs"],
        endpoints: &["allocs"],
        file_name: "allocs.pb.gz",
        sample_types: HEAP_TYPES,
        taking: Taking::Snapshot,
        feature: None,
        available: true,
        options: &["rate"],
        text: Text::Heap,
        description: "A sampling of all past memory allocations",
        snapshot: Some(crate::runtime::heap::allocs_profile),
        count: Some(counts::heap),
        off: Some(off::heap),
    },
    Kind {
        kind: ProfileKind::Mutex,
        name: "mutex",
        names: &["mutex"],
        endpoints: &["mutex"],
        file_name: "mutex.pb.gz",
        sample_types: CONTENTION_TYPES,
        taking: Taking::Snapshot,
        feature: None,
        available: true,
        options: &[],
        text: Text::Contention { mutex: true },
        description: "Stack traces of holders of contended mutexes (profile::sync)",
        snapshot: Some(crate::runtime::mutex::profile),
        count: Some(counts::mutex),
        off: Some(off::mutex),
    },
    Kind {
        kind: ProfileKind::Block,
        name: "block",
        names: &["block"],
        endpoints: &["block"],
        file_name: "block.pb.gz",
        sample_types: CONTENTION_TYPES,
        taking: Taking::Snapshot,
        feature: None,
        available: true,
        options: &[],
        text: Text::Contention { mutex: false },
        description: "Stack traces that led to blocking on synchronization primitives (profile::sync)",
        snapshot: Some(crate::runtime::block::profile),
        count: Some(counts::block),
        off: Some(off::block),
    },
    Kind {
        kind: ProfileKind::Threads,
        name: "threads",
        names: &["threads", "goroutine"],
        endpoints: &["goroutine", "threads"],
        file_name: "threads.pb.gz",
        sample_types: &[("goroutine", "count")],
        taking: Taking::Snapshot,
        feature: None,
        available: true,
        options: &[],
        text: Text::Threads,
        description: "Stack traces of all current threads (the goroutines of a Rust process). ?debug=2 for a full dump",
        snapshot: Some(crate::runtime::threads::profile),
        count: Some(counts::threads),
        off: None,
    },
    Kind {
        kind: ProfileKind::Clock,
        name: "clock",
        names: &["clock"],
        endpoints: &["clock"],
        file_name: "clock.pb.gz",
        sample_types: &[("samples", "count"), ("time", "nanoseconds")],
        taking: Taking::Session,
        feature: None,
        available: true,
        options: &["hz"],
        text: Text::None,
        description: "Wall-clock profile: every thread sampled, running or waiting. ?seconds=N",
        snapshot: None,
        count: None,
        off: None,
    },
    Kind {
        kind: ProfileKind::ThreadCreate,
        name: "threadcreate",
        names: &["threadcreate"],
        endpoints: &["threadcreate"],
        file_name: "threadcreate.pb.gz",
        sample_types: &[("threadcreate", "count")],
        taking: Taking::Snapshot,
        feature: Some("threadcreate"),
        available: cfg!(feature = "threadcreate"),
        options: &[],
        text: Text::Counts,
        description: "Stack traces that led to the creation of new threads",
        snapshot: Some(snapshots::threadcreate),
        count: Some(counts::threadcreate),
        off: None,
    },
    Kind {
        kind: ProfileKind::Trace,
        name: "trace",
        names: &["trace"],
        endpoints: &["trace"],
        file_name: "trace.json",
        sample_types: &[],
        taking: Taking::Session,
        feature: Some("trace"),
        available: cfg!(feature = "trace"),
        options: &["hz"],
        text: Text::None,
        description: "An execution trace (Chrome trace-event JSON: ui.perfetto.dev). ?seconds=N (default 1)",
        snapshot: None,
        count: None,
        off: None,
    },
];

const HEAP_TYPES: &[(&str, &str)] = &[
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

const CONTENTION_TYPES: &[(&str, &str)] = &[("contentions", "count"), ("delay", "nanoseconds")];

/// The row of `kind`.
pub(crate) fn of(kind: ProfileKind) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .expect("every ProfileKind has its row in KINDS")
}

/// The kind `PROFILE=` or `/flamegraph?kind=` names (any of its names, or an endpoint).
pub(crate) fn find(name: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.names.contains(&name) || k.endpoints.contains(&name))
}

/// The kind a `/debug/pprof/NAME` path serves.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn endpoint(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.endpoints.contains(&name))
}

/// The modes this build accepts, for messages: `cpu, mem (or heap), ...`.
pub(crate) fn names_for_messages() -> &'static str {
    static LIST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        KINDS
            .iter()
            .filter(|k| k.available)
            .map(|k| match k.names {
                [one] => (*one).to_owned(),
                [first, rest @ ..] => format!("{first} (or {})", rest.join(", ")),
                [] => k.name.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The kinds that take `option` (`hz`, `rate`), for messages: `cpu, clock and trace`.
pub(crate) fn taking_option(option: &str) -> String {
    let names: Vec<&str> = KINDS
        .iter()
        .filter(|k| k.options.contains(&option))
        .map(|k| k.names[0])
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Snapshots of kinds behind a feature: `FeatureDisabled` without it.
mod snapshots {
    use crate::{Error, Profile};

    pub(super) fn threadcreate() -> Result<Profile, Error> {
        #[cfg(feature = "threadcreate")]
        return crate::runtime::threadcreate::profile();
        #[cfg(not(feature = "threadcreate"))]
        Err(Error::FeatureDisabled {
            feature: "threadcreate",
            what: "the thread-creation profile",
        })
    }
}

/// Cheap counts: table sizes, no symbolization.
/// Why a cumulative kind records nothing now, and the call that turns it on.
mod off {
    pub(super) fn heap() -> Option<&'static str> {
        if !crate::heap::sampler::installed() {
            Some(
                "heap profiling is off: the allocator wrapper is not installed; add `#[global_allocator] static ALLOC: profile::Allocator = profile::Allocator::system();` to the binary",
            )
        } else if crate::heap::sampler::rate() == 0 {
            Some(
                "heap sampling is off: call profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE)",
            )
        } else {
            None
        }
    }

    pub(super) fn mutex() -> Option<&'static str> {
        (crate::sync::contention::mutex_fraction() == 0).then_some(
            "mutex profiling is off: call profile::runtime::mutex::set_fraction(1) (only profile::sync locks are recorded)",
        )
    }

    pub(super) fn block() -> Option<&'static str> {
        (crate::sync::contention::block_rate() == 0).then_some(
            "block profiling is off: call profile::runtime::block::set_rate(1) (only profile::sync locks, condvars, blocking() and awaiting() are recorded)",
        )
    }
}

mod counts {
    pub(super) fn heap() -> usize {
        crate::heap::sampler::counters().buckets
    }

    pub(super) fn mutex() -> usize {
        crate::sync::contention::table_state(crate::sync::contention::Which::Mutex).0
    }

    pub(super) fn block() -> usize {
        crate::sync::contention::table_state(crate::sync::contention::Which::Block).0
    }

    pub(super) fn threads() -> usize {
        crate::sys::thread_count()
    }

    pub(super) fn threadcreate() -> usize {
        #[cfg(feature = "threadcreate")]
        return crate::sys::threadcreate_state().0;
        #[cfg(not(feature = "threadcreate"))]
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has a row, once; names and endpoints are unique across rows; the
    /// file name and the first sample type match what the kind writes.
    #[test]
    fn every_kind_once_with_unique_names() {
        let all = [
            ProfileKind::Cpu,
            ProfileKind::Heap,
            ProfileKind::Allocs,
            ProfileKind::Mutex,
            ProfileKind::Block,
            ProfileKind::Threads,
            ProfileKind::Clock,
            ProfileKind::ThreadCreate,
            ProfileKind::Trace,
        ];
        assert_eq!(KINDS.len(), all.len());
        for k in all {
            assert_eq!(KINDS.iter().filter(|r| r.kind == k).count(), 1, "{k:?}");
            assert!(of(k).file_name.starts_with(of(k).name), "{k:?}");
        }
        let mut seen = std::collections::HashSet::new();
        for r in KINDS {
            for n in r.names.iter().chain(r.endpoints) {
                // A name may be both a kind's name and its endpoint, not another's.
                let owner = find(n).unwrap().kind;
                assert_eq!(owner, r.kind, "{n} belongs to {owner:?}");
                seen.insert(*n);
            }
            assert_eq!(
                r.taking == Taking::Snapshot,
                r.snapshot.is_some(),
                "{}",
                r.name
            );
        }
        assert_eq!(find("goroutine").unwrap().kind, ProfileKind::Threads);
        assert_eq!(endpoint("profile").unwrap().kind, ProfileKind::Cpu);
        assert!(endpoint("cpu").is_none(), "Go serves CPU at /profile only");
    }

    /// The sample types in the table are the ones the kinds write.
    #[test]
    fn sample_types_match_the_profiles() {
        for r in KINDS.iter().filter(|r| r.available) {
            let Some(snapshot) = r.snapshot else { continue };
            let p = snapshot().expect(r.name);
            let got: Vec<(&str, &str)> = p
                .sample_types
                .iter()
                .map(|t| (t.ty.as_str(), t.unit.as_str()))
                .collect();
            assert_eq!(got, r.sample_types, "{}", r.name);
        }
    }

    #[test]
    fn messages_list_the_names() {
        assert!(names_for_messages().starts_with("cpu, mem (or heap), allocs, mutex, block"));
        assert_eq!(taking_option("rate"), "mem and allocs");
        assert_eq!(taking_option("hz"), "cpu, clock and trace");
    }
}
