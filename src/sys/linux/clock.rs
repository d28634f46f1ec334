//! The wall-clock sampler thread: every round, list the threads and capture each one's
//! stack (see [`super::capture`]); at stop, hand what it collected to `runtime::clock`,
//! which builds the profile.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::capture::{self, Capturer, Miss};
use super::tasks::{self, Task};
use super::threads::{precheck, refine};
use crate::Error;
use crate::labels::LabelSet;
use crate::profile::builder::now_nanos;

/// A clock sample's identity: stack, thread id, labels.
pub(crate) type Key = (Vec<u64>, i32, Option<Arc<LabelSet>>);

/// What the sampler thread collected.
#[derive(Default)]
pub(crate) struct Collected {
    /// (stack, tid, labels) → (samples, nanoseconds).
    pub samples: HashMap<Key, (i64, i64)>,
    /// Names by tid (the last seen).
    pub names: HashMap<i32, String>,
    /// Threads not sampled, by reason.
    pub misses: HashMap<&'static str, u64>,
    /// Rounds in which the thread list could not be read.
    pub failed_rounds: u64,
    pub rounds: u64,
    /// Rounds that started more than half a period late, and the latest start.
    pub late_rounds: u64,
    pub max_late: Duration,
}

/// A stopped sampler's recording.
pub(crate) struct Recorded {
    pub collected: Collected,
    pub hz: u32,
    /// When sampling started (ns since the epoch), and for how long it ran.
    pub start_nanos: i64,
    pub duration: Duration,
}

/// The running (or last) sampler's counters, for `runtime::clock::stats`: rounds taken,
/// rounds started more than half a period late, thread captures that failed.
pub(crate) static ROUNDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub(crate) static LATE_ROUNDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub(crate) static MISSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the sampler thread is told.
enum Command {
    /// Stop (also when the sender is dropped).
    Stop,
    /// Hand over what was collected since the start or the previous cut, keep sampling.
    Cut(mpsc::Sender<Collected>),
}

/// A running sampler thread.
pub(crate) struct Sampler {
    stop: mpsc::Sender<Command>,
    thread: JoinHandle<Collected>,
    hz: u32,
    started: Instant,
    start_nanos: i64,
}

impl Sampler {
    pub(crate) fn start(hz: u32) -> Result<Sampler, Error> {
        // Fail here, not on the sampler thread, if no signal can be had.
        drop(Capturer::new()?);
        for c in [&ROUNDS, &LATE_ROUNDS, &MISSES] {
            c.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        let (stop, rx) = mpsc::channel();
        let period = Duration::from_nanos(1_000_000_000 / u64::from(hz));
        let thread = std::thread::Builder::new()
            .name("profile-clock".into())
            .spawn(move || run(&rx, period))
            .map_err(|e| Error::system("starting the profile-clock thread", e))?;
        Ok(Sampler {
            stop,
            thread,
            hz,
            started: Instant::now(),
            start_nanos: now_nanos(),
        })
    }

    /// What was collected since the start or the previous cut; sampling goes on. The
    /// sampler thread hands its table over between two rounds: each round is in exactly
    /// one cut.
    pub(crate) fn cut(&mut self) -> Result<Recorded, Error> {
        let gone = || {
            Error::system(
                "cutting the wall-clock profile",
                std::io::Error::other("the profile-clock thread has ended"),
            )
        };
        let (tx, rx) = mpsc::channel();
        self.stop.send(Command::Cut(tx)).map_err(|_| gone())?;
        let collected = rx.recv().map_err(|_| gone())?;
        let now = Instant::now();
        let duration = now.duration_since(self.started);
        let recorded = Recorded {
            collected,
            hz: self.hz,
            start_nanos: self.start_nanos,
            duration,
        };
        self.started = now;
        // The next window starts where this one ended (not a second clock reading, which
        // a preemption between the two would leave a gap after).
        self.start_nanos += duration.as_nanos() as i64;
        Ok(recorded)
    }

    /// Stops the thread and drops what it collected.
    pub(crate) fn discard(self) {
        let _ = self.stop.send(Command::Stop);
        let _ = self.thread.join();
    }

    pub(crate) fn stop(self) -> Result<Recorded, Error> {
        let _ = self.stop.send(Command::Stop);
        let duration = self.started.elapsed();
        let collected = self.thread.join().unwrap_or_default();
        Ok(Recorded {
            collected,
            hz: self.hz,
            start_nanos: self.start_nanos,
            duration,
        })
    }
}

/// The sampler thread's loop: one round per period until told to stop.
fn run(stop: &mpsc::Receiver<Command>, period: Duration) -> Collected {
    let _own = tasks::register_own();
    let _untracked = super::untracked::Untracked::new();
    let mut c = Collected::default();
    let mut known: HashMap<i32, Task> = HashMap::new();
    let mut stale: Vec<i32> = Vec::new();
    // Wall time of rounds in which a thread did not answer in time (a busy machine: it
    // waited for a CPU), charged to its next sample so that its time still adds up to the
    // time it was sampled for.
    let mut owed: HashMap<i32, i64> = HashMap::new();
    let rounds_per_second = (1_000_000_000 / period.as_nanos().max(1) as u64).max(1);
    let mut last = Instant::now();
    let mut next = last + period;
    // A thread gets at most one period to answer (and never more than 50 ms).
    let timeout = period.min(Duration::from_millis(50));
    loop {
        match stop.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Command::Cut(reply)) => {
                // Names stay known (a thread's name is read once a second at most).
                let names = c.names.clone();
                let _ = reply.send(std::mem::replace(
                    &mut c,
                    Collected {
                        names,
                        ..Collected::default()
                    },
                ));
                continue;
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return c,
        }
        let now = Instant::now();
        // A busy machine starts rounds late (the sampler waits for a CPU), and then more
        // often while computing threads hold the CPUs: reported, see `build`.
        let late = now.saturating_duration_since(next);
        if late > period / 2 {
            c.late_rounds += 1;
            LATE_ROUNDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        c.max_late = c.max_late.max(late);
        // Each sample stands for the wall time since the previous round.
        let weight = now.duration_since(last).as_nanos() as i64;
        last = now;
        next += period;
        if next < now {
            next = now + period; // rounds missed while we were late are not made up
        }
        c.rounds += 1;
        ROUNDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Listing reads a directory; a thread's `status` (name, state, blocked signals) is
        // read when it is new, once a second, or after it could not be sampled: reading
        // every status every round cost 20 µs per thread.
        let Ok(tids) = tasks::tids() else {
            c.failed_rounds += 1;
            continue;
        };
        let refresh_all = c.rounds % rounds_per_second == 0;
        known.retain(|tid, _| tids.binary_search(tid).is_ok());
        owed.retain(|tid, _| tids.binary_search(tid).is_ok());
        for &tid in &tids {
            if refresh_all || stale.contains(&tid) || !known.contains_key(&tid) {
                match tasks::read(tid) {
                    Some(task) => known.insert(tid, task),
                    None => known.remove(&tid),
                };
            }
        }
        stale.clear();
        let tasks: Vec<&Task> = tids.iter().filter_map(|tid| known.get(tid)).collect();
        let Ok(mut capturer) = Capturer::new() else {
            c.failed_rounds += 1;
            continue;
        };
        let signal = capture::signal().unwrap_or(0);
        capturer.refresh();
        let own = tasks::own(); // this thread and the other helpers
        for task in tasks.iter().filter(|t| !own.contains(&t.tid)) {
            let result = precheck(task, signal, timeout).and_then(|timeout| {
                capturer
                    .capture(task.tid, timeout)
                    .map(|s| (s.frames.to_vec(), s.labels))
                    .map_err(|miss| refine(miss, task.tid, task.blocks(signal)))
            });
            match result {
                Ok((stack, labels)) => {
                    let v = c.samples.entry((stack, task.tid, labels)).or_default();
                    v.0 += 1;
                    v.1 += weight + owed.remove(&task.tid).unwrap_or(0);
                    if c.names.get(&task.tid) != Some(&task.name) {
                        c.names.insert(task.tid, task.name.clone());
                    }
                }
                // A thread that exited between the listing and its turn was not there.
                Err(Miss::Exited) => {}
                Err(miss) => {
                    if matches!(miss, Miss::NoAnswer | Miss::Busy) {
                        // Running, only late: its time is real.
                        *owed.entry(task.tid).or_default() += weight;
                    }
                    *c.misses.entry(miss.describe()).or_default() += 1;
                    MISSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    stale.push(task.tid);
                }
            }
        }
    }
}
