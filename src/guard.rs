//! The guard, and the process-wide "one active guard" slot.
//!
//! ```text
//!            build()                  stop() / Drop / shutdown signal
//!   Idle ───────────────► Running ───────────────────────────────────► Written
//!    ▲   (slot claimed,               (profiler stopped, file written
//!    │    profiler started,            once; later callers get that
//!    │    hook installed)              outcome)
//!    └──────────────────────── release: hook removed, slot freed ◄──────┘
//! ```
//!
//! The slot is a mutex held while a guard is being built, so of many concurrent
//! `build()` calls exactly one wins. A session's state has its own mutex, held while the
//! file is written, so a shutdown signal arriving during `stop()` waits for the write to
//! finish instead of racing it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::session::{Finished, Options, Output, Session};
use crate::{Error, ProfileKind, output, sys};

/// The live session, if any.
static ACTIVE: Mutex<Option<Arc<Active>>> = Mutex::new(None);

enum State {
    Running(Box<dyn Session>),
    /// Written; holds the outcome when the shutdown hook wrote it, until a caller takes it.
    Written(Option<Result<PathBuf, Error>>),
}

struct Active {
    kind: ProfileKind,
    /// The process that started it: a `fork()` child must not stop the parent's profiler.
    pid: u32,
    path: PathBuf,
    quiet: bool,
    hook: bool,
    state: Mutex<State>,
}

/// Prints a line on stderr; a closed stderr is not worth a panic.
fn say(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

impl Active {
    /// Stops the profiler and writes the file, the first time. Later calls return the
    /// first outcome if it was kept (`keep`), or `Ok(path)` once it has been taken.
    fn complete(&self, keep: bool) -> Result<PathBuf, Error> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, State::Written(None)) {
            State::Running(profiler) if self.pid != std::process::id() => {
                // A fork child: the profiler's threads and timers are the parent's, and
                // so is the file. Touch nothing of it.
                std::mem::forget(profiler);
                crate::runtime::shared::check_same_process(self.pid, self.kind)
                    .map(|()| PathBuf::new())
            }
            State::Running(profiler) => {
                let result = profiler.finish().and_then(|finished| {
                    match finished {
                        Finished::Profile(p) => {
                            output::write_atomic(&self.path, |w| p.write_to(w))?
                        }
                        Finished::Bytes(b) => {
                            output::write_atomic(&self.path, |w| w.write_all(&b))?
                        }
                    }
                    Ok(self.path.clone())
                });
                if result.is_ok() && !self.quiet {
                    say(format_args!(
                        "profile: {} profiling disabled, {}",
                        self.kind,
                        self.path.display()
                    ));
                }
                if keep {
                    let copy = match &result {
                        Ok(p) => Ok(p.clone()),
                        Err(e) => Err(Error::FailedEarlier {
                            mode: self.kind,
                            path: self.path.clone(),
                            reason: e.to_string(),
                        }),
                    };
                    *state = State::Written(Some(copy));
                }
                result
            }
            State::Written(outcome) => outcome.unwrap_or_else(|| Ok(self.path.clone())),
        }
    }
}

/// What the shutdown hook calls: write the running guard's profile on the first signal,
/// remove half-written files before a second one ends the process.
static HOOKS: sys::hook::Hooks = sys::hook::Hooks {
    on_signal: on_shutdown_signal,
    before_dying: output::inflight::unlink_all,
};

/// Claims the slot, starts the profiler and installs the hook; see [`crate::Builder::build`].
pub(crate) fn activate(
    kind: ProfileKind,
    options: &Options,
    start: impl FnOnce() -> Result<Box<dyn Session>, Error>,
) -> Result<Guard, Error> {
    let mut active = ACTIVE.lock();
    if let Some(running) = active.as_ref() {
        return Err(Error::AlreadyActive { mode: running.kind });
    }
    let path = match &options.output {
        Output::TempDir => output::temp_dir()?.join(kind.file_name()),
        Output::Dir(dir) => dir.join(kind.file_name()),
        Output::File(file) => file.clone(),
    };
    let profiler = match start() {
        Ok(p) => p,
        Err(e) => {
            if matches!(options.output, Output::TempDir) {
                // The fresh directory we just made would stay empty.
                let _ = std::fs::remove_dir(path.parent().unwrap_or(Path::new("")));
            }
            return Err(e);
        }
    };
    if options.shutdown_hook
        && let Err(e) = hold_hook()
    {
        drop(profiler.finish());
        return Err(e);
    }
    let session = Arc::new(Active {
        kind,
        pid: std::process::id(),
        path,
        quiet: options.quiet,
        hook: options.shutdown_hook,
        state: Mutex::new(State::Running(profiler)),
    });
    if !session.quiet {
        say(format_args!(
            "profile: {kind} profiling enabled, {}",
            session.path.display()
        ));
    }
    *active = Some(Arc::clone(&session));
    Ok(Guard {
        session: Some(session),
    })
}

/// What else runs on a shutdown signal (a push agent's flush), set by its owner: the
/// guard's side does not import it.
static ALSO_ON_SHUTDOWN: Mutex<Option<fn()>> = Mutex::new(None);

/// Runs `flush` on the hook's worker when SIGINT/SIGTERM arrives, before the guard's
/// profile is written.
#[cfg_attr(not(feature = "push"), allow(dead_code))]
pub(crate) fn also_on_shutdown(flush: fn()) {
    *ALSO_ON_SHUTDOWN.lock() = Some(flush);
}

/// How many holders (a guard, a push agent) want the shutdown hook installed.
static HOOK_HOLDERS: Mutex<usize> = Mutex::new(0);

/// Installs the shutdown hook for one more holder (the first installs it).
pub(crate) fn hold_hook() -> Result<(), Error> {
    let mut holders = HOOK_HOLDERS.lock();
    if *holders == 0 {
        sys::hook::install(&HOOKS)?;
    }
    *holders += 1;
    Ok(())
}

/// One holder is done with the hook (the last removes it).
pub(crate) fn release_hook() {
    let mut holders = HOOK_HOLDERS.lock();
    *holders = holders.saturating_sub(1);
    if *holders == 0 {
        sys::hook::remove();
    }
}

/// Called on the hook's worker thread when SIGINT or SIGTERM arrived: write the running
/// profile and flush a push agent (the caller then re-delivers the signal).
fn on_shutdown_signal(signal: i32) {
    let also = *ALSO_ON_SHUTDOWN.lock();
    if let Some(flush) = also {
        flush();
    }
    let session = ACTIVE.lock().clone();
    if let Some(session) = session {
        if !session.quiet {
            say(format_args!(
                "profile: caught signal {signal}, stopping profiles"
            ));
        }
        if let Err(e) = session.complete(true) {
            say(format_args!("{e}"));
        }
    }
    // The hook's worker removes the hook after this returns: no holder has it then.
    *HOOK_HOLDERS.lock() = 0;
}

/// Frees the slot held by `session` and removes its hook.
fn release(session: &Arc<Active>) {
    let mut active = ACTIVE.lock();
    if active.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
        if session.hook {
            release_hook();
        }
        *active = None;
    }
}

/// A running profile. [`stop`](Guard::stop) writes it and reports errors; dropping the
/// guard writes it too, best-effort.
///
/// Made by [`crate::Builder::build`].
#[must_use = "the profile is written when the guard is stopped or dropped; a guard bound to `_` stops at once"]
pub struct Guard {
    session: Option<Arc<Active>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Guard");
        if let Some(s) = &self.session {
            d.field("kind", &s.kind).field("path", &s.path);
        }
        d.finish()
    }
}

impl Guard {
    /// Where the profile will be written.
    pub fn path(&self) -> &Path {
        self.session.as_ref().map_or(Path::new(""), |s| &s.path)
    }

    /// The kind of profile being recorded.
    pub fn kind(&self) -> ProfileKind {
        self.session.as_ref().map_or(ProfileKind::Cpu, |s| s.kind)
    }

    /// Stops profiling and writes the file completely (or not at all); returns its path.
    ///
    /// If the shutdown hook already wrote the profile, returns that outcome.
    pub fn stop(mut self) -> Result<PathBuf, Error> {
        match self.session.take() {
            Some(session) => finish(&session),
            None => Ok(PathBuf::new()),
        }
    }
}

// A guard may be moved to, and stopped on, another thread.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Guard>();
};

fn finish(session: &Arc<Active>) -> Result<PathBuf, Error> {
    let result = session.complete(false);
    release(session);
    result
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        // Never panic here: this may run while a panic unwinds.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| finish(&session)));
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => say(format_args!("{e}")),
            Err(_) => {
                release(&session);
                say(format_args!(
                    "profile: writing the {} profile to {} panicked; no file was written",
                    session.kind,
                    session.path.display()
                ));
            }
        }
    }
}
