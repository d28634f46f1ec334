//! The shutdown hook in this process: installed only while a guard runs, restoring exactly
//! what was there before, never clobbering a handler installed meanwhile, and handing the
//! signal to the application's own handler after writing the profile. Tests here change
//! SIGINT/SIGTERM dispositions, so they take turns through `SERIAL`.

#![cfg(target_os = "linux")]

mod common;

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

fn disposition(signal: Signal) -> libc::sighandler_t {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only queries; `old` is written on success.
    let rc = unsafe { libc::sigaction(signal as i32, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: rc == 0.
    unsafe { old.assume_init() }.sa_sigaction
}

static APP_HANDLER_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn app_handler(_: libc::c_int) {
    APP_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

fn app_handler_address() -> libc::sighandler_t {
    app_handler as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t
}

fn set(signal: Signal, handler: SigHandler) {
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: app_handler only touches an atomic; SIG_DFL/SIG_IGN run no code.
    unsafe { sigaction(signal, &action) }.unwrap();
}

#[test]
fn hook_is_installed_while_running_and_default_restored_after() {
    let _s = common::serial();
    set(Signal::SIGTERM, SigHandler::SigDfl);
    set(Signal::SIGINT, SigHandler::SigDfl);
    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start().path(dir.path()).quiet().build().unwrap();
    assert_ne!(
        disposition(Signal::SIGTERM),
        libc::SIG_DFL,
        "hook installed on SIGTERM"
    );
    assert_ne!(
        disposition(Signal::SIGINT),
        libc::SIG_DFL,
        "hook installed on SIGINT"
    );
    guard.stop().unwrap();
    assert_eq!(
        disposition(Signal::SIGTERM),
        libc::SIG_DFL,
        "SIGTERM default again"
    );
    assert_eq!(
        disposition(Signal::SIGINT),
        libc::SIG_DFL,
        "SIGINT default again"
    );

    // no_shutdown_hook() leaves dispositions alone.
    let guard = common::guard_in(dir.path());
    assert_eq!(disposition(Signal::SIGTERM), libc::SIG_DFL);
    guard.stop().unwrap();
}

#[test]
fn ignored_signals_stay_ignored() {
    let _s = common::serial();
    set(Signal::SIGINT, SigHandler::SigIgn);
    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start().path(dir.path()).quiet().build().unwrap();
    assert_eq!(
        disposition(Signal::SIGINT),
        libc::SIG_IGN,
        "nohup-style ignore respected"
    );
    guard.stop().unwrap();
    assert_eq!(disposition(Signal::SIGINT), libc::SIG_IGN);
    set(Signal::SIGINT, SigHandler::SigDfl);
}

#[test]
fn handler_installed_during_the_guard_is_not_clobbered() {
    let _s = common::serial();
    set(Signal::SIGTERM, SigHandler::SigDfl);
    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start().path(dir.path()).quiet().build().unwrap();
    set(Signal::SIGTERM, SigHandler::Handler(app_handler));
    guard.stop().unwrap();
    assert_eq!(
        disposition(Signal::SIGTERM),
        app_handler_address(),
        "theirs stays"
    );
    set(Signal::SIGTERM, SigHandler::SigDfl);
}

#[test]
fn app_handler_runs_after_the_profile_is_written() {
    let _s = common::serial();
    set(Signal::SIGINT, SigHandler::Handler(app_handler));
    let before = APP_HANDLER_CALLS.load(Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start().path(dir.path()).quiet().build().unwrap();
    assert_ne!(
        disposition(Signal::SIGINT),
        app_handler_address(),
        "hook in front"
    );
    common::busy_until_cpu_signals(20);

    nix::sys::signal::raise(Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while APP_HANDLER_CALLS.load(Ordering::SeqCst) == before {
        assert!(
            Instant::now() < deadline,
            "the application's handler never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let path = dir.path().join("cpu.pb.gz");
    assert!(path.exists(), "written before the app's handler ran");
    assert_eq!(
        disposition(Signal::SIGINT),
        app_handler_address(),
        "theirs restored"
    );
    // The guard reports what the hook wrote.
    assert_eq!(guard.stop().unwrap(), path);
    let p = profile::Profile::decode(&std::fs::read(&path).unwrap()).unwrap();
    assert!(common::samples_in(&p, "busy_loop") > 0);
    set(Signal::SIGINT, SigHandler::SigDfl);
}
