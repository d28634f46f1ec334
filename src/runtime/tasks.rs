//! tokio tasks in the goroutine profile (cargo feature `tokio`): where each task is
//! suspended, as Go lists its goroutines.
//!
//! tokio's task dumps are unstable: they need the application built with
//! `RUSTFLAGS="--cfg tokio_unstable"` (and debug info in the binary, the default). Then
//! `/debug/pprof/goroutine` and [`super::threads::snapshot`] list every task of every
//! runtime registered here (and of the runtime the snapshot is taken from) beside the
//! threads: `debug=1` groups tasks with the same await-point stack and counts them,
//! `debug=2` prints each task, the protobuf profile has one sample per stack with a
//! numeric `tokio_task_id` label per task. Without the cfg, responses say how to enable
//! it (whenever the process has tokio worker threads).
//!
//! ```no_run
//! # #[tokio::main] async fn main() {
//! profile::runtime::tasks::register(tokio::runtime::Handle::current());
//! # }
//! ```
//!
//! Taking a dump pauses the runtime's workers and re-polls every task in a tracing mode
//! (tokio's `Handle::dump`); the snapshot waits at most [`DUMP_TIMEOUT`] per runtime, and
//! never starts a second dump of a runtime while one of its own is still running.
//!
//! **Caution**: tokio documents that a dump may never finish when a worker is blocked in
//! synchronous code, and a dump that does not finish holds the other workers in its
//! barrier: the runtime stops. A worker that is only late does it too: a worker that
//! reaches the dump's first barrier more than 250 ms after another gives up, but tokio
//! (1.54.1, the newest; tokio-rs/tokio#8370 is the open fix) leaves its arrival counted,
//! so the late one is taken for the last of them, traces, and waits at the closing
//! barrier for a worker that will not come: that worker is lost for good and dropping
//! the runtime hangs. We saw both here on a machine with four busy loops on two CPUs
//! (`tests/axum_service.rs` under `--cfg tokio_unstable`: once with workers blocked on
//! contended std-API locks, once with a CPU-starved worker after every check had
//! passed). A snapshot waits [`DUMP_TIMEOUT`] and says so in the profile; later ones say
//! the previous dump has not finished and start none. Turn task dumps on only where
//! workers neither block nor starve, and never on a service whose availability matters
//! more than its goroutine profile.

use std::sync::Mutex;
use std::time::Duration;

/// How to turn task dumps on (what responses say when they are off).
pub const HOW_TO_ENABLE: &str = super::shared::TASKS_OFF;

/// The longest a snapshot waits for one runtime's task dump.
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// The most tasks of one runtime a snapshot lists (each stack is resolved: ~µs per
/// frame once the debug info is loaded); more are counted in a note.
pub const MAX_TASKS: usize = 10_000;

/// Registered runtimes.
static HANDLES: Mutex<Vec<tokio::runtime::Handle>> = Mutex::new(Vec::new());

/// Lists the tasks of the runtime behind `handle` in goroutine profiles and thread
/// dumps (from then on; once per runtime is enough, more is harmless).
pub fn register(handle: tokio::runtime::Handle) {
    let mut handles = HANDLES.lock().unwrap_or_else(|e| e.into_inner());
    #[cfg(tokio_unstable)]
    if handles.iter().any(|h| h.id() == handle.id()) {
        return;
    }
    if handles.len() < 64 {
        handles.push(handle);
    }
}

/// Whether this build can list tasks.
pub fn available() -> bool {
    cfg!(all(
        tokio_unstable,
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))
}

/// One task's raw stack (innermost first) from a dump.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) struct RawTask {
    pub id: u64,
    pub pcs: Vec<u64>,
}

/// Every registered (and the current) runtime's tasks, and what is missing (why there
/// are none, or runtimes that did not answer).
pub(crate) fn capture() -> (Vec<RawTask>, Option<String>) {
    #[cfg(all(
        tokio_unstable,
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        dump::capture()
    }
    #[cfg(not(all(
        tokio_unstable,
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        (Vec::new(), Some(HOW_TO_ENABLE.to_owned()))
    }
}

#[cfg(all(
    tokio_unstable,
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod dump {
    use super::{DUMP_TIMEOUT, HANDLES, MAX_TASKS, RawTask};

    /// Runtimes with a dump of ours under way.
    static IN_FLIGHT: std::sync::Mutex<Vec<tokio::runtime::Id>> = std::sync::Mutex::new(Vec::new());

    pub(super) fn capture() -> (Vec<RawTask>, Option<String>) {
        let mut handles: Vec<tokio::runtime::Handle> =
            HANDLES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Ok(current) = tokio::runtime::Handle::try_current()
            && !handles.iter().any(|h| h.id() == current.id())
        {
            handles.push(current);
        }
        if handles.is_empty() {
            return (
                Vec::new(),
                Some(
                    "no tokio runtime registered: call profile::runtime::tasks::register(Handle::current())"
                        .to_owned(),
                ),
            );
        }
        let mut tasks = Vec::new();
        let mut problems = Vec::new();
        for h in handles {
            // One dump per runtime at a time: a dump this function gave up waiting for may
            // still be running, and another beside it is asking for trouble (see the
            // module docs).
            let id = h.id();
            {
                let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
                if in_flight.contains(&id) {
                    problems.push(format!(
                        "runtime {id}: the previous task dump has not finished (a worker blocked in synchronous code?)"
                    ));
                    continue;
                }
                in_flight.push(id);
            }
            // The dump is requested from a task of the runtime itself (what a
            // current-thread runtime requires), and handed back to this thread, which
            // resolves it: that is slow, and not for a worker.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let inner = h.clone();
            h.spawn(async move {
                let dump = inner.dump().await;
                IN_FLIGHT
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|r| *r != inner.id());
                let _ = tx.send(dump);
            });
            match rx.recv_timeout(DUMP_TIMEOUT) {
                Ok(dump) => {
                    let all = dump.tasks().iter().count();
                    if all > MAX_TASKS {
                        problems.push(format!(
                            "runtime {}: {} tasks, the first {MAX_TASKS} listed",
                            h.id(),
                            all
                        ));
                    }
                    for task in dump.tasks().iter().take(MAX_TASKS) {
                        let id = task.id().to_string().parse().unwrap_or(0);
                        let pcs = task
                            .trace()
                            .resolve_backtraces()
                            .first()
                            .map(|b| b.frames().map(|f| f.ip() as u64).collect())
                            .unwrap_or_default();
                        tasks.push(RawTask { id, pcs });
                    }
                }
                Err(_) => problems.push(format!(
                    "runtime {}: no task dump within {} s (a worker blocked in synchronous code, or the runtime shut down)",
                    h.id(),
                    DUMP_TIMEOUT.as_secs()
                )),
            }
        }
        let note = (!problems.is_empty()).then(|| problems.join("; "));
        (tasks, note)
    }
}
