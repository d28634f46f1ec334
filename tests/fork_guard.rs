//! `fork()` under a running guard: the child has none of the parent's helper threads, so
//! what they did must not be silently lost. A child's SIGTERM must end it (before the fork
//! handlers, the hook's handler swallowed it: the byte went to a pipe nobody read), and
//! the profilers the child inherited must stop without hanging.

#![cfg(target_os = "linux")]

use std::time::Duration;

use nix::libc;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, fork};

/// Forks; the child runs `f` and exits with its code.
mod common;

fn in_child(f: impl FnOnce() -> i32) -> Option<WaitStatus> {
    // SAFETY: the child runs `f` and `_exit`s; it never returns into the harness.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = f();
            // SAFETY: ends the child without the parent's atexit work.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => common::wait_for_child(child, Duration::from_secs(60)),
    }
}

#[test]
fn a_forked_child_dies_of_sigterm_and_stops_what_it_inherited() {
    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start()
        .path(dir.path())
        .cpu()
        .quiet()
        .build()
        .unwrap();
    let mut clock_in_parent = Some(profile::runtime::clock::start(50).unwrap());

    let status = in_child(|| {
        // SAFETY: raise has no memory effects.
        unsafe { libc::raise(libc::SIGTERM) };
        // Still here: the signal was swallowed. (Give a late delivery a moment.)
        std::thread::sleep(Duration::from_secs(2));
        1
    });
    assert!(
        matches!(status, Some(WaitStatus::Signaled(_, Signal::SIGTERM, _))),
        "SIGTERM in a forked child: {status:?}"
    );

    let status = in_child(|| {
        match clock_in_parent
            .take()
            .map(profile::runtime::clock::ClockProfiler::stop)
        {
            Some(Err(profile::Error::ForkedChild { .. })) => 0,
            other => {
                eprintln!("clock stop in a child: {other:?}");
                2
            }
        }
    });
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "clock in a child: {status:?}"
    );

    // The child stops the guard it inherited: an error that says so, no hang (its
    // profiler's helper threads are not there), and nothing written.
    let path = dir.path().join("cpu.pb.gz");
    let mut guard = Some(guard);
    let status = in_child(|| match guard.take().map(profile::Guard::stop) {
        Some(Err(profile::Error::ForkedChild {
            mode,
            parent,
            child,
        })) if mode == profile::ProfileKind::Cpu
            && parent != child
            && child == std::process::id() =>
        {
            0
        }
        other => {
            eprintln!("child stop: {other:?}");
            2
        }
    });
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "stopping the guard in a child: {status:?}"
    );
    assert!(!path.exists(), "the child wrote the parent's profile");
    // A runtime profiler likewise.
    let status = in_child(|| match profile::runtime::threads::snapshot() {
        Ok(s) if !s.threads().is_empty() => 0,
        other => {
            eprintln!("thread dump in a child: {other:?}");
            2
        }
    });
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "{status:?}"
    );
    // The parent's guard is untouched.
    guard.take().unwrap().stop().unwrap();
    let p = profile::Profile::decode(&std::fs::read(&path).unwrap()).unwrap();
    assert!(!p.sample_types.is_empty());
    clock_in_parent.take().unwrap().stop().unwrap();
}
