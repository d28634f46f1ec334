//! The agent's collector: the profilers it runs, each interval's profile of every kind
//! (cuts of CPU and clock, deltas of heap, mutex and block, a goroutine snapshot), each
//! encoded for its sink and queued.

use std::time::{SystemTime, UNIX_EPOCH};

use super::queue::{Queue, Upload};
use super::{otlp, pyroscope};
use crate::runtime::{self, clock::ClockProfiler, cpu::CpuProfiler};
use crate::{Error, Profile, ProfileKind};

/// The kinds an agent collects (from its builder).
pub(crate) struct Kinds {
    pub(crate) cpu_hz: Option<u32>,
    pub(crate) clock_hz: Option<u32>,
    pub(crate) heap: bool,
    pub(crate) mutex: bool,
    pub(crate) block: bool,
    pub(crate) goroutines: bool,
    /// From the environment: CPU only if no guard has the sampler (else a note).
    pub(crate) cpu_if_free: bool,
}

/// The mutex fraction set when none was (see `push::DEFAULT_MUTEX_FRACTION`).
pub(crate) const MUTEX_FRACTION: u64 = 5;
/// The block rate set when none was (see `push::DEFAULT_BLOCK_RATE_NS`).
pub(crate) const BLOCK_RATE_NS: u64 = 10_000;

/// What names an upload: Pyroscope's `app{tags}`, or OTLP's resource attributes.
pub(crate) enum Series {
    Pyroscope(String),
    Otlp(Vec<(String, String)>),
}

/// The profilers the agent runs and the baselines of the cumulative kinds.
pub(crate) struct Collector {
    cpu: Option<(CpuProfiler, u32)>,
    clock: Option<ClockProfiler>,
    heap: bool,
    mutex: bool,
    block: bool,
    goroutines: bool,
    bases: Vec<(ProfileKind, Profile)>,
    last: SystemTime,
    /// Problems to say once, in the next profiles' comments and in stats.
    notes: Vec<String>,
    queue_seed: u64,
}

impl Collector {
    pub(crate) fn start(b: &Kinds) -> Result<Collector, Error> {
        let mut notes = Vec::new();
        let heap = b.heap
            && if !runtime::heap::is_installed() {
                notes
                    .push("heap not pushed: profile::Allocator is not the global allocator".into());
                false
            } else {
                crate::heap::sampler::default_rate_if_never_set(runtime::heap::DEFAULT_RATE);
                if runtime::heap::rate() == 0 {
                    notes.push("heap not pushed: the sampling rate was set to 0".into());
                    false
                } else {
                    true
                }
            };
        if b.mutex && runtime::mutex::fraction() == 0 {
            runtime::mutex::set_fraction(MUTEX_FRACTION);
        }
        if b.block && runtime::block::rate() == 0 {
            runtime::block::set_rate(BLOCK_RATE_NS);
        }
        let cpu = match b.cpu_hz.map(|hz| (runtime::cpu::start(hz), hz)) {
            Some((Ok(p), hz)) => Some((p, hz)),
            Some((Err(Error::AlreadyActive { .. }), _)) if b.cpu_if_free => {
                notes.push(
                    "cpu not pushed: a cpu profile (PROFILE=cpu?) holds the process's CPU sampler"
                        .into(),
                );
                None
            }
            Some((Err(e), _)) => return Err(e),
            None => None,
        };
        let clock = match b.clock_hz {
            Some(hz) => Some(runtime::clock::start(hz)?),
            None => None,
        };
        Ok(Collector {
            cpu,
            clock,
            heap,
            mutex: b.mutex,
            block: b.block,
            goroutines: b.goroutines,
            bases: Vec::new(),
            last: SystemTime::now(),
            notes,
            queue_seed: u64::from(std::process::id()) << 32
                ^ SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
        })
    }

    fn cumulative(&self) -> Vec<ProfileKind> {
        let mut kinds = Vec::new();
        if self.heap {
            kinds.push(ProfileKind::Heap);
        }
        if self.mutex {
            kinds.push(ProfileKind::Mutex);
        }
        if self.block {
            kinds.push(ProfileKind::Block);
        }
        kinds
    }

    pub(crate) fn baseline(&mut self) {
        self.bases.clear();
        for kind in self.cumulative() {
            if let Ok(p) = snapshot(kind) {
                self.bases.push((kind, p));
            }
        }
        self.last = SystemTime::now();
    }

    /// One interval: every kind's profile for it, queued.
    pub(crate) fn collect(&mut self, queue: &Queue, series: &Series) {
        let from = self.last;
        let until = SystemTime::now();
        self.last = until;
        let mut notes = std::mem::take(&mut self.notes);
        {
            let mut s = queue.state.lock();
            // What could not be pushed at all (a kind off) is said in stats too.
            if !notes.is_empty() && s.stats.last_error.is_none() {
                s.stats.last_error = Some(notes.join("; "));
            }
            if s.unreported_drops > 0 {
                notes.push(format!(
                    "profile-guard push: {} earlier uploads were dropped (queue full or flush deadline: the server was slow or unreachable)",
                    s.unreported_drops
                ));
                s.unreported_drops = 0;
            }
        }
        let mut out: Vec<(ProfileKind, Result<Profile, Error>, u32)> = Vec::new();
        if let Some((cpu, hz)) = &mut self.cpu {
            out.push((ProfileKind::Cpu, cpu.cut(), *hz));
        }
        if let Some(clock) = &mut self.clock {
            let hz = clock.frequency();
            out.push((ProfileKind::Clock, clock.cut(), hz));
        }
        for kind in self.cumulative() {
            let now = snapshot(kind);
            let result = now.map(
                |now| match self.bases.iter().position(|(k, _)| *k == kind) {
                    Some(i) => {
                        let d = now.delta(&self.bases[i].1);
                        self.bases[i].1 = now;
                        d
                    }
                    None => {
                        self.bases.push((kind, now.clone()));
                        now
                    }
                },
            );
            out.push((kind, result, 0));
        }
        if self.goroutines {
            out.push((ProfileKind::Threads, runtime::threads::profile(), 0));
        }
        // In nanoseconds: in whole seconds (what pyroscope-go sends) an interval that
        // starts and ends within one second (the last one at stop, one after a late tick)
        // gets the previous one's from/until, and the server keeps one profile of the
        // two (seen as a lost interval's CPU after the restart test).
        let (from_ns, until_ns) = (nanos(from), nanos(until).max(nanos(from) + 1));
        for (kind, result, hz) in out {
            match result {
                Ok(p) => {
                    if p.samples.is_empty() && kind != ProfileKind::Cpu {
                        continue; // nothing happened: no upload (Pyroscope shows no data)
                    }
                    self.queue_seed = self.queue_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let upload = match series {
                        Series::Pyroscope(name) => {
                            let p = pyroscope::prepare(p, kind, &notes);
                            let mut gz = Vec::new();
                            if p.write_to(&mut gz).is_err() {
                                continue;
                            }
                            let (content_type, body) = pyroscope::multipart(
                                &gz,
                                pyroscope::shape(kind).sample_type_config,
                                self.queue_seed,
                            );
                            Upload {
                                kind: kind.name(),
                                target: format!(
                                    "/ingest?{}",
                                    pyroscope::query(name, from_ns, until_ns, hz.max(100))
                                ),
                                content_type,
                                headers: &[],
                                body,
                            }
                        }
                        Series::Otlp(resource) => {
                            let mut id = [0u8; 16];
                            id[..8].copy_from_slice(&self.queue_seed.to_le_bytes());
                            id[8..].copy_from_slice(&until_ns.to_le_bytes());
                            Upload {
                                kind: kind.name(),
                                target: "/v1development/profiles".into(),
                                content_type: "application/x-protobuf".into(),
                                headers: otlp::HEADERS,
                                body: otlp::request(&p, resource, id),
                            }
                        }
                    };
                    queue.push(upload);
                }
                Err(e) => {
                    queue.state.lock().stats.last_error = Some(format!("{kind}: {e}"));
                }
            }
        }
        // Counted once its uploads are queued: who sees the count also sees them.
        queue.state.lock().stats.intervals += 1;
    }
}

fn snapshot(kind: ProfileKind) -> Result<Profile, Error> {
    match kind {
        ProfileKind::Heap => runtime::heap::profile(),
        ProfileKind::Mutex => runtime::mutex::profile(),
        ProfileKind::Block => runtime::block::profile(),
        other => Err(Error::Push {
            what: format!("{other} is not a cumulative kind"),
        }),
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// This machine's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub(crate) fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
}
