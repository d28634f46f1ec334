//! What every kind's runtime module shares: the one-profiler-per-kind claim, the
//! fork-child check, frequency validation, and the command line.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, ProfileKind};

/// One running profiler of a kind per process: the flag, claimed by `start`.
pub(crate) struct Exclusive {
    in_use: AtomicBool,
    kind: ProfileKind,
}

impl Exclusive {
    pub(crate) const fn new(kind: ProfileKind) -> Exclusive {
        Exclusive {
            in_use: AtomicBool::new(false),
            kind,
        }
    }

    /// Claims the kind, or [`Error::AlreadyActive`] if a profiler of it runs.
    pub(crate) fn claim(&'static self) -> Result<Claim, Error> {
        self.in_use
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| Claim(self))
            .map_err(|_| Error::AlreadyActive { mode: self.kind })
    }
}

/// Held by a running profiler; frees its kind when dropped (declare it as the profiler's
/// last field, so the sampler has stopped by then).
pub(crate) struct Claim(&'static Exclusive);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.in_use.store(false, Ordering::Release);
    }
}

/// Checks a sampling frequency: 1..=`max`.
/// `Err(ForkedChild)` when called in a `fork()` child of process `pid` (the one that
/// started a `mode` profiler): the sampler's threads and timers are the parent's.
pub(crate) fn check_same_process(pid: u32, mode: crate::ProfileKind) -> Result<(), Error> {
    let now = std::process::id();
    if pid == now {
        return Ok(());
    }
    Err(Error::ForkedChild {
        mode,
        parent: pid,
        child: now,
    })
}

pub(crate) fn validate_frequency(what: &'static str, hz: u32, max: u32) -> Result<(), Error> {
    if hz == 0 || hz > max {
        return Err(Error::InvalidFrequency { what, hz, max });
    }
    Ok(())
}

/// The process's command-line arguments, the program first (what Go's
/// `/debug/pprof/cmdline` serves, joined by NUL bytes). Arguments that are not valid
/// UTF-8 are converted lossily.
pub fn cmdline() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// What responses say when tokio tasks are not listed but tokio is running.
pub(crate) const TASKS_OFF: &str = "tokio tasks are not listed: build with RUSTFLAGS=\"--cfg tokio_unstable\" and profile-guard's feature `tokio` (tokio's task dumps are unstable), and register the runtime with profile::runtime::tasks::register(Handle::current())";

#[cfg(test)]
mod tests {
    #[test]
    fn cmdline_is_the_program_and_its_arguments() {
        let args = super::cmdline();
        let exe = std::env::current_exe().unwrap();
        let first = std::path::Path::new(&args[0]);
        assert_eq!(
            first.file_name(),
            exe.file_name(),
            "{args:?} should start with this test binary"
        );
        assert_eq!(args.len(), std::env::args_os().count());
    }
}
