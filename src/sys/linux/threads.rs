//! Thread dumps' platform side: list the threads and capture each one's stack through
//! the capture core (`runtime::threads` symbolizes them and builds the profile).

use std::time::{Duration, Instant};

use super::capture::{self, Capturer, Miss};
use super::tasks::{self, Task};
use crate::Error;

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

/// Checks that captures can work here (installs the signal handler).
pub(crate) fn prepare() -> Result<(), Error> {
    Capturer::new().map(drop)
}

/// One listed thread and what its capture gave.
pub(crate) struct Captured {
    pub tid: i32,
    pub name: String,
    /// The `/proc` state letter when listed.
    pub state: char,
    /// Its stack, or why it is missing.
    pub stack: Result<RawStack, &'static str>,
    /// The calling thread (its stack starts inside the dump's own code).
    pub own: bool,
}

/// Lists the threads and captures each one's stack, giving up on the rest after
/// `budget` and on a thread after `per_thread`. Returns them in `/proc` order, and how
/// long the captures took.
pub(crate) fn capture(
    budget: Duration,
    per_thread: Duration,
) -> Result<(Vec<Captured>, Duration), Error> {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { nix::libc::gettid() };
    let tasks = tasks::list()?;
    let mut capturer = Capturer::new()?;
    let signal = capture::signal().unwrap_or(0);
    // After listing: every listed thread's stack is mapped now.
    capturer.refresh();
    let start = Instant::now();
    let raw = capture_all(&mut capturer, signal, &tasks, budget, per_thread);
    let capture_time = start.elapsed();
    drop(capturer);
    let captured = tasks
        .into_iter()
        .zip(raw)
        .map(|(task, raw)| Captured {
            own: task.tid == me,
            tid: task.tid,
            state: task.state,
            name: task.name,
            stack: raw.map_err(|miss| miss.describe()),
        })
        .collect();
    Ok((captured, capture_time))
}
