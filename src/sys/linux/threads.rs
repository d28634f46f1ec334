//! Thread dumps: list the threads, capture each one's stack through [`capture`],
//! symbolize, and build the `goroutine/count` profile.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::capture::{self, Capturer, Miss};
use super::symbolize::{self, Symbolizer};
use super::tasks::{self, Task};
use crate::Error;
use crate::profile::builder::{ProfileBuilder, Resolve};
use crate::profile::{Label, LabelValue, ValueType};
use crate::runtime::threads::{DUMP_TIMEOUT, Frame, Snapshot, THREAD_TIMEOUT, Thread, ThreadState};

/// One thread's raw capture.
pub(crate) struct RawStack {
    /// Leaf first; the leaf is exact.
    pub frames: Vec<u64>,
    pub complete: bool,
    pub pause: Duration,
}

/// How long a thread that blocked the capture signal when listed is waited for: signals
/// are often blocked for a moment (glibc blocks them while creating a thread, every
/// signal handler blocks its own), so it is asked anyway, but briefly.
const BLOCKED_TIMEOUT: Duration = Duration::from_millis(10);

/// Whether to ask `task`, and how long to wait for it; or why it is not asked.
pub(crate) fn precheck(task: &Task, signal: i32, timeout: Duration) -> Result<Duration, Miss> {
    match task.state {
        'Z' | 'X' => Err(Miss::Exited),
        'T' | 't' => Err(Miss::Stopped),
        // Still pending from an earlier request: the thread keeps the signal blocked; a
        // second one would only queue up (real-time signals queue, up to a limit).
        _ if task.blocks(signal) && task.has_pending(signal) => Err(Miss::SignalBlocked),
        _ if task.blocks(signal) => Ok(timeout.min(BLOCKED_TIMEOUT)),
        _ => Ok(timeout),
    }
}

/// A clearer reason for a thread that did not answer: it exited meanwhile (glibc blocks
/// every signal while a thread exits), or it kept the signal blocked.
pub(crate) fn refine(miss: Miss, tid: i32, blocked: bool) -> Miss {
    match miss {
        Miss::NoAnswer if !tasks::exists(tid) => Miss::Exited,
        Miss::NoAnswer if blocked => Miss::SignalBlocked,
        other => other,
    }
}

/// Captures the stacks of `tasks` in turn (the caller's own thread included, through a
/// signal to itself), giving up on the rest after `budget`.
pub(crate) fn capture_all(
    capturer: &mut Capturer,
    signal: i32,
    tasks: &[Task],
    budget: Duration,
    per_thread: Duration,
) -> Vec<Result<RawStack, Miss>> {
    let deadline = Instant::now() + budget;
    tasks
        .iter()
        .map(|task| {
            let timeout = precheck(task, signal, per_thread)?;
            if Instant::now() >= deadline {
                return Err(Miss::Deadline);
            }
            let blocked = task.blocks(signal);
            capturer
                .capture(task.tid, timeout)
                .map_err(|miss| refine(miss, task.tid, blocked))
                .map(|c| RawStack {
                    frames: c.frames.to_vec(),
                    complete: c.complete,
                    pause: Duration::from_nanos(c.handler_nanos),
                })
        })
        .collect()
}

/// How many leading frames of the calling thread's own stack are the dump's: through the
/// last frame (inlined lines included) of this crate, scanning only the run of frames of
/// this crate, the standard library and the `syscall` wrapper from the leaf (the
/// standard library's frames there are ours: collecting, iterating).
fn own_frames(symbolizer: &mut Symbolizer, stack: &[u64]) -> usize {
    let ours = |n: &str| n.starts_with("profile::") || n.starts_with("<profile::");
    let library = |n: &str| {
        [
            "core::", "<core::", "alloc::", "<alloc::", "std::", "<std::",
        ]
        .iter()
        .any(|p| n.starts_with(p))
            || n == "syscall"
    };
    let mut cut = 0;
    for (i, &pc) in stack.iter().enumerate() {
        let resolved = symbolizer.resolve(pc.saturating_sub(1));
        let names: Vec<&str> = resolved.frames.iter().map(|f| f.name.as_str()).collect();
        if names.iter().any(|n| ours(n)) {
            cut = i + 1;
        } else if !names.iter().all(|n| library(n)) || names.is_empty() {
            break;
        }
    }
    cut.min(stack.len().saturating_sub(1))
}

/// Checks that captures can work here (installs the signal handler).
pub(crate) fn prepare() -> Result<(), Error> {
    Capturer::new().map(drop)
}

pub(crate) fn snapshot() -> Result<Snapshot, Error> {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { nix::libc::gettid() };
    let tasks = tasks::list()?;
    let mut capturer = Capturer::new()?;
    let signal = capture::signal().unwrap_or(0);
    // After listing: every listed thread's stack is mapped now.
    capturer.refresh();
    let start = Instant::now();
    let raw = capture_all(&mut capturer, signal, &tasks, DUMP_TIMEOUT, THREAD_TIMEOUT);
    let capture_time = start.elapsed();
    drop(capturer);

    let mut symbolizer = symbolize::shared();
    let mut threads = Vec::with_capacity(tasks.len());
    let mut stacks: Vec<Vec<u64>> = Vec::with_capacity(tasks.len());
    for (task, raw) in tasks.iter().zip(raw) {
        let (mut stack, complete, pause, missing) = match raw {
            Ok(r) => (r.frames, r.complete, Some(r.pause), None),
            Err(miss) => (Vec::new(), false, None, Some(miss.describe())),
        };
        if task.tid == me && !stack.is_empty() {
            let cut = own_frames(&mut symbolizer, &stack);
            stack.drain(..cut);
        }
        threads.push(Thread {
            id: task.tid as u32,
            name: task.name.clone(),
            state: ThreadState::from_letter(task.state),
            frames: frames(&mut symbolizer, &stack, task.tid != me),
            complete,
            missing,
            pause,
        });
        stacks.push(stack);
    }

    // One sample per (stack, thread name), with every member's id.
    let mut groups: HashMap<(&[u64], &str), Vec<u32>> = HashMap::new();
    let mut order = Vec::new();
    for (t, stack) in threads.iter().zip(&stacks) {
        let key = (stack.as_slice(), t.name.as_str());
        let ids = groups.entry(key).or_insert_with(|| {
            // The caller's trimmed stack starts at a return address; others at the exact
            // interrupted instruction.
            order.push((key, t.id != me as u32));
            Vec::new()
        });
        ids.push(t.id);
    }
    let mut b = ProfileBuilder::new(&mut *symbolizer, vec![ValueType::new("goroutine", "count")]);
    for (key, leaf_exact) in order {
        let ids = &groups[&key];
        let mut labels = vec![Label {
            key: "thread_name".into(),
            value: LabelValue::Str(key.1.to_owned()),
        }];
        labels.extend(ids.iter().map(|&id| Label {
            key: "thread_id".into(),
            value: LabelValue::Num {
                value: i64::from(id),
                unit: String::new(),
            },
        }));
        b.add(key.0, leaf_exact, &[ids.len() as i64], labels);
    }
    let header = b.header();
    header.period_type = Some(ValueType::new("goroutine", "count"));
    header.period = 1;
    header.time_nanos = crate::profile::builder::now_nanos();
    let profile = b.finish();
    Ok(Snapshot {
        threads,
        profile,
        capture_time,
    })
}

/// Symbolized frames of a raw stack, inlined functions expanded (innermost first).
fn frames(symbolizer: &mut Symbolizer, stack: &[u64], leaf_exact: bool) -> Vec<Frame> {
    let mut out = Vec::new();
    for (i, &pc) in stack.iter().enumerate() {
        let lookup = if i == 0 && leaf_exact {
            pc
        } else {
            pc.saturating_sub(1)
        };
        let resolved = symbolizer.resolve(lookup);
        if resolved.frames.is_empty() {
            out.push(Frame {
                address: pc,
                function: String::new(),
                file: String::new(),
                line: 0,
                profile_address: resolved.address,
            });
        }
        for f in resolved.frames.iter() {
            out.push(Frame {
                address: pc,
                function: f.name.clone(),
                file: f.file.clone(),
                line: f.line,
                profile_address: resolved.address,
            });
        }
    }
    out
}
