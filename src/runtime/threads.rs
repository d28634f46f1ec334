//! Thread dumps: every thread's stack, now — the goroutine profile of a Rust process
//! (Java's jstack, Go's `goroutine?debug=2`).
//!
//! ```no_run
//! // From a watchdog that noticed a stall: print every thread to stderr.
//! profile::runtime::threads::dump_to_stderr()?;
//!
//! // Or keep the snapshot: a `goroutine/count` profile plus per-thread details.
//! let snapshot = profile::runtime::threads::snapshot()?;
//! for t in snapshot.threads() {
//!     println!("{} {:?} {} frames", t.id, t.name, t.frames.len());
//! }
//! snapshot.profile().write_to(std::fs::File::create("threads.pb.gz")?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How: the threads are listed from `/proc/self/task` (name, state and blocked signals
//! from each `status`), then each in turn is interrupted with a dedicated real-time
//! signal; its handler walks its own stack with DWARF CFI (no frame pointers needed, no
//! allocation, no lock — so a thread interrupted inside `malloc` or the dynamic loader
//! cannot deadlock the dump) and hands the addresses back. The handler has `SA_RESTART`:
//! reads, writes and futex waits resume, while `poll`, `epoll_wait`, `select` and
//! `nanosleep` return `EINTR` (Linux never restarts them; see the crate docs,
//! *Interrupted system calls*). A thread that blocks the
//! signal, is stopped, or does not answer within 100 ms is listed with the reason instead
//! of a stack; the whole capture gives up after 2 s, so a dump never hangs the process.
//!
//! The calling thread is included, with the profiler's own frames cut off.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use crate::profile::builder::{ProfileBuilder, Resolve};
use crate::profile::{Label, LabelValue, ValueType};
use crate::{Error, Profile, sys};

/// The longest a thread is waited for by [`snapshot`] ([`snapshot_within`] takes others).
pub const THREAD_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest a whole [`snapshot`] takes before the remaining threads are skipped.
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// What a thread is doing, as `/proc/<pid>/task/<tid>/status` says.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadState {
    /// On a CPU or ready to run (`R`).
    Running,
    /// Waiting, interruptibly: sleep, lock, condition variable, read... (`S`).
    Sleeping,
    /// Waiting uninterruptibly, usually for disk or network file system I/O (`D`).
    DiskWait,
    /// Stopped by a signal (`T`).
    Stopped,
    /// Stopped by a debugger (`t`).
    TracingStop,
    /// Exited, not yet reaped (`Z`).
    Zombie,
    /// Exiting (`X`).
    Dead,
    /// A kernel idle thread (`I`).
    Idle,
    /// A letter this crate does not know.
    Unknown,
}

impl ThreadState {
    /// The state for a `/proc` state letter.
    pub fn from_letter(letter: char) -> ThreadState {
        match letter {
            'R' => ThreadState::Running,
            'S' => ThreadState::Sleeping,
            'D' => ThreadState::DiskWait,
            'T' => ThreadState::Stopped,
            't' => ThreadState::TracingStop,
            'Z' => ThreadState::Zombie,
            'X' => ThreadState::Dead,
            'I' => ThreadState::Idle,
            _ => ThreadState::Unknown,
        }
    }

    /// The state in words, as `ps` and `/proc` spell them (`running`, `disk wait`).
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::Sleeping => "sleeping",
            ThreadState::DiskWait => "disk wait",
            ThreadState::Stopped => "stopped",
            ThreadState::TracingStop => "tracing stop",
            ThreadState::Zombie => "zombie",
            ThreadState::Dead => "dead",
            ThreadState::Idle => "idle",
            ThreadState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ThreadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One source-level frame of a thread's stack.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The instruction address (the interrupted instruction for the first frame, a return
    /// address for the others). Inlined functions share their caller's address.
    pub address: u64,
    /// The demangled function name; empty when unknown.
    pub function: String,
    /// The source file; empty when unknown (no debug info).
    pub file: String,
    /// The line; 0 when unknown.
    pub line: u32,
    /// The address as the profile writes it (the executable's at its link-time address,
    /// return addresses moved back to the call): what the `debug=1` text prints, so pprof
    /// resolves it against the binary like every other text form.
    pub(crate) profile_address: u64,
}

/// One thread of a [`Snapshot`].
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Thread {
    /// The kernel thread id (what `gettid` returns; the main thread's equals the pid).
    pub id: u32,
    /// The thread's name (`comm`, at most 15 bytes; `std::thread::Builder::name` sets it).
    pub name: String,
    /// Its state when listed.
    pub state: ThreadState,
    /// The stack, innermost first; empty if it was not captured (see `missing`).
    pub frames: Vec<Frame>,
    /// False if the walk stopped before the outermost frame (code without unwind
    /// information, a corrupted stack, or more than 128 frames).
    pub complete: bool,
    /// Why the stack is missing, if it is.
    pub missing: Option<&'static str>,
    /// How long the thread was paused in the capture handler.
    pub pause: Option<Duration>,
}

/// One tokio task of a [`Snapshot`]: where it is suspended (see [`super::tasks`]).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Task {
    /// tokio's task id.
    pub id: u64,
    /// The stack of its last poll, innermost first: the await point it is suspended at,
    /// then the async functions awaiting it.
    pub frames: Vec<Frame>,
}

/// Every thread's stack at one moment: a `goroutine/count` profile plus the details.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) threads: Vec<Thread>,
    pub(crate) tasks: Vec<Task>,
    /// Why tokio's tasks are not listed, when tokio runs here.
    pub(crate) tasks_note: Option<String>,
    pub(crate) profile: Profile,
    pub(crate) capture_time: Duration,
}

impl Snapshot {
    /// The threads, by id.
    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// The tokio tasks (empty unless task dumps are on: see [`super::tasks`]).
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Why tokio tasks are not listed although tokio worker threads run, if so.
    pub fn tasks_note(&self) -> Option<&str> {
        self.tasks_note.as_deref()
    }

    /// The profile: sample type `goroutine/count`; threads with the same stack and name
    /// form one sample (value = how many), labelled `thread_name` and with one numeric
    /// `thread_id` label per thread. `go tool pprof -top`, `-traces`, `-tagfocus
    /// thread_name=...` read it.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The profile, without a copy.
    pub fn into_profile(self) -> Profile {
        self.profile
    }

    /// Time from the first thread's interruption to the last one's answer (listing and
    /// symbolization excluded).
    pub fn capture_time(&self) -> Duration {
        self.capture_time
    }

    /// Writes Go's `debug=1` text: `goroutine profile: total N`, then each distinct stack
    /// (and thread name) with its count, most frequent first, its addresses, and one
    /// `#` line per frame (address, function, file:line).
    pub fn write_counts<W: Write>(&self, mut w: W) -> io::Result<()> {
        writeln!(
            w,
            "goroutine profile: total {}",
            self.threads.len() + self.tasks.len()
        )?;
        let mut groups: Vec<(Vec<u64>, &str, Vec<&Thread>)> = Vec::new();
        for t in &self.threads {
            let pcs = addresses(t);
            match groups
                .iter_mut()
                .find(|(p, name, _)| *p == pcs && *name == t.name)
            {
                Some(g) => g.2.push(t),
                None => groups.push((pcs, &t.name, vec![t])),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.2.len()));
        for (pcs, name, threads) in &groups {
            if pcs.is_empty() {
                // Every pprof reads `N @` with no address as malformed (its `countRE`
                // wants one): a thread without a stack is a comment, not a record.
                let ids: Vec<String> = threads.iter().map(|t| t.id.to_string()).collect();
                let why = threads[0].missing.unwrap_or("no frames");
                writeln!(
                    w,
                    "# {} without a stack: thread_name {name:?}, thread_id {}: {why}\n",
                    threads.len(),
                    ids.join(" ")
                )?;
                continue;
            }
            write!(w, "{} @", threads.len())?;
            for pc in pcs {
                write!(w, " {pc:#x}")?;
            }
            writeln!(w)?;
            let ids: Vec<String> = threads.iter().map(|t| t.id.to_string()).collect();
            writeln!(
                w,
                "# labels: {{\"thread_name\":{:?}, \"thread_id\":\"{}\"}}",
                name,
                ids.join(" ")
            )?;
            let first = threads[0];
            if let Some(why) = first.missing {
                writeln!(w, "#\tstack not captured: {why}")?;
            }
            write_frames(&mut w, &first.frames)?;
            writeln!(w)?;
        }
        // Tasks with the same await-point stack, most frequent first.
        let mut groups: Vec<(Vec<u64>, Vec<&Task>)> = Vec::new();
        for t in &self.tasks {
            let pcs = task_addresses(t);
            match groups.iter_mut().find(|(p, _)| *p == pcs) {
                Some(g) => g.1.push(t),
                None => groups.push((pcs, vec![t])),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
        for (pcs, tasks) in groups.iter().filter(|(pcs, _)| !pcs.is_empty()) {
            write!(w, "{} @", tasks.len())?;
            for pc in pcs {
                write!(w, " {pc:#x}")?;
            }
            writeln!(w)?;
            let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
            writeln!(w, "# labels: {{\"tokio_task_id\":\"{}\"}}", ids.join(" "))?;
            write_frames(&mut w, &tasks[0].frames)?;
            writeln!(w)?;
        }
        if let Some(note) = &self.tasks_note {
            writeln!(w, "# {note}")?;
        }
        Ok(())
    }

    /// Writes the full dump (Go's `debug=2`, jstack-like): for each thread
    /// `thread ID "NAME" [STATE]:`, then each frame's function and, indented, its
    /// file:line.
    pub fn write_dump<W: Write>(&self, mut w: W) -> io::Result<()> {
        writeln!(
            w,
            "thread dump of process {} ({} threads)\n",
            std::process::id(),
            self.threads.len()
        )?;
        for t in &self.threads {
            write!(w, "thread {} {:?} [{}]:", t.id, t.name, t.state)?;
            match t.missing {
                Some(why) => writeln!(w, " stack not captured: {why}")?,
                None => writeln!(w)?,
            }
            write_dump_frames(&mut w, &t.frames)?;
            if t.missing.is_none() && !t.complete {
                writeln!(w, "...further frames could not be walked")?;
            }
            writeln!(w)?;
        }
        for t in &self.tasks {
            writeln!(w, "tokio task {} [suspended]:", t.id)?;
            write_dump_frames(&mut w, &t.frames)?;
            writeln!(w)?;
        }
        if let Some(note) = &self.tasks_note {
            writeln!(w, "{note}")?;
        }
        Ok(())
    }
}

fn function_or_unknown(f: &Frame) -> &str {
    if f.function.is_empty() {
        "??"
    } else {
        &f.function
    }
}

/// A stack in the full dump: each frame's function and, indented, its file:line (or its
/// address without debug info).
fn write_dump_frames<W: Write>(w: &mut W, frames: &[Frame]) -> io::Result<()> {
    for f in frames {
        writeln!(w, "{}", function_or_unknown(f))?;
        if f.file.is_empty() {
            writeln!(w, "\t{:#x}", f.address)?;
        } else {
            writeln!(w, "\t{}:{}", f.file, f.line)?;
        }
    }
    Ok(())
}

/// `#` lines of a stack's frames: address, function, file:line.
fn write_frames<W: Write>(w: &mut W, frames: &[Frame]) -> io::Result<()> {
    for f in frames {
        writeln!(
            w,
            "#\t{:#x}\t{}\t{}:{}",
            f.profile_address,
            function_or_unknown(f),
            f.file,
            f.line
        )?;
    }
    Ok(())
}

/// The distinct addresses of a task's stack.
fn task_addresses(t: &Task) -> Vec<u64> {
    let mut pcs: Vec<u64> = t.frames.iter().map(|f| f.profile_address).collect();
    pcs.dedup();
    pcs
}

/// The distinct addresses of a thread's stack (inlined frames share one).
fn addresses(t: &Thread) -> Vec<u64> {
    let mut pcs: Vec<u64> = t.frames.iter().map(|f| f.profile_address).collect();
    pcs.dedup();
    pcs
}

/// Symbolizes the captured stacks and groups them into the `goroutine/count` profile.
fn build(
    captured: Vec<sys::threads::Captured>,
    raw_tasks: (Vec<(u64, Vec<u64>)>, Option<String>),
    capture_time: Duration,
    symbolizer: &mut dyn Resolve,
) -> Result<Snapshot, Error> {
    let mut threads = Vec::with_capacity(captured.len());
    let mut stacks: Vec<Vec<u64>> = Vec::with_capacity(captured.len());
    let mut own_id = None;
    for c in captured {
        let (mut stack, complete, pause, missing) = match c.stack {
            Ok(r) => (r.frames, r.complete, Some(r.pause), None),
            Err(why) => (Vec::new(), false, None, Some(why)),
        };
        if c.own {
            own_id = Some(c.tid as u32);
            if !stack.is_empty() {
                let cut = own_frames(symbolizer, &stack);
                stack.drain(..cut);
            }
        }
        threads.push(Thread {
            id: c.tid as u32,
            name: c.name,
            state: ThreadState::from_letter(c.state),
            frames: frames(symbolizer, &stack, !c.own),
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
            order.push((key, Some(t.id) != own_id));
            Vec::new()
        });
        ids.push(t.id);
    }
    // Tasks' frames, symbolized before the builder borrows the symbolizer.
    let (raw, note) = raw_tasks;
    let tasks: Vec<Task> = raw
        .iter()
        .map(|(id, pcs)| Task {
            id: *id,
            frames: frames(symbolizer, pcs, false),
        })
        .collect();
    let mut b = ProfileBuilder::new(symbolizer, vec![ValueType::new("goroutine", "count")]);
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
    // tokio's tasks: one sample per await-point stack, a `tokio_task_id` per task.
    let mut by_stack: Vec<(&[u64], Vec<u64>)> = Vec::new();
    for (id, pcs) in raw.iter().filter(|(_, pcs)| !pcs.is_empty()) {
        match by_stack.iter_mut().find(|(p, _)| *p == pcs.as_slice()) {
            Some(g) => g.1.push(*id),
            None => by_stack.push((pcs, vec![*id])),
        }
    }
    for (pcs, ids) in &by_stack {
        let labels = ids
            .iter()
            .map(|&id| Label {
                key: "tokio_task_id".into(),
                value: LabelValue::Num {
                    value: i64::try_from(id).unwrap_or(i64::MAX),
                    unit: String::new(),
                },
            })
            .collect();
        b.add(pcs, false, &[ids.len() as i64], labels);
    }
    // Why tasks are missing: said where tokio runs (its worker threads' names) or where
    // some were listed.
    let tokio = threads
        .iter()
        .any(|t| t.name.starts_with("tokio-rt-worker") || t.name.starts_with("tokio-runtime"));
    let tasks_note = note.filter(|_| tokio || !tasks.is_empty());
    let header = b.header();
    if let Some(note) = &tasks_note {
        header.comments.push(format!("profile: {note}"));
    }
    header.period_type = Some(ValueType::new("goroutine", "count"));
    header.period = 1;
    header.time_nanos = crate::profile::builder::now_nanos();
    let profile = b.finish();
    Ok(Snapshot {
        threads,
        tasks,
        tasks_note,
        profile,
        capture_time,
    })
}

/// How many leading frames of the calling thread's own stack are the dump's: through the
/// last frame (inlined lines included) of this crate, scanning only the run of frames of
/// this crate, the standard library and the `syscall` wrapper from the leaf (the
/// standard library's frames there are ours: collecting, iterating).
fn own_frames(symbolizer: &mut dyn Resolve, stack: &[u64]) -> usize {
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

/// Symbolized frames of a raw stack, inlined functions expanded (innermost first).
fn frames(symbolizer: &mut dyn Resolve, stack: &[u64], leaf_exact: bool) -> Vec<Frame> {
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

/// Captures every thread's stack. See the module docs.
///
/// Errors: [`Error::Io`] if `/proc/self/task` cannot be read, [`Error::NoFreeSignal`]
/// if every usable real-time signal already has a handler, [`Error::Unsupported`] off
/// Linux (x86_64, aarch64).
pub fn snapshot() -> Result<Snapshot, Error> {
    snapshot_within(THREAD_TIMEOUT, DUMP_TIMEOUT)
}

/// [`snapshot`] with other limits than [`THREAD_TIMEOUT`] and [`DUMP_TIMEOUT`]: a thread
/// is waited for at most `per_thread`, and threads not reached within `total` are listed
/// as skipped (a watchdog with a tighter budget, or one that can wait longer for threads
/// of a loaded machine).
pub fn snapshot_within(per_thread: Duration, total: Duration) -> Result<Snapshot, Error> {
    let (captured, capture_time) = sys::threads::capture(total, per_thread)?;
    #[cfg(feature = "tokio")]
    let tasks = {
        let (raw, note) = super::tasks::capture();
        (raw.into_iter().map(|t| (t.id, t.pcs)).collect(), note)
    };
    #[cfg(not(feature = "tokio"))]
    let tasks = (Vec::new(), Some(super::shared::TASKS_OFF.to_owned()));
    sys::with_symbolizer("thread dumps", |symbolizer| {
        build(captured, tasks, capture_time, symbolizer)
    })
}

/// The `goroutine/count` profile of every thread's stack now (what `threads.pb.gz` holds).
pub fn profile() -> Result<Profile, Error> {
    snapshot().map(Snapshot::into_profile)
}

/// Writes the full dump ([`Snapshot::write_dump`]) of every thread to `w`.
pub fn dump<W: Write>(w: W) -> Result<(), Error> {
    snapshot()?
        .write_dump(w)
        .map_err(|e| Error::system("writing the thread dump", e))
}

/// Prints the full dump of every thread to stderr: the one call for a watchdog.
pub fn dump_to_stderr() -> Result<(), Error> {
    let mut text = Vec::new();
    snapshot()?
        .write_dump(&mut text)
        .map_err(|e| Error::system("writing the thread dump", e))?;
    // One write, so lines of other threads' logging do not interleave with the dump.
    io::stderr()
        .lock()
        .write_all(&text)
        .map_err(|e| Error::system("writing the thread dump to stderr", e))
}
