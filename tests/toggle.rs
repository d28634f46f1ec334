//! Toggling profiles: by signal (each pair of deliveries writes one numbered capture; a
//! signal during a write is not lost), from many threads at once through the API (never
//! two captures, never a lost file), SIGTERM during a capture (written, exit by the
//! signal), and `PROFILE=...` in a child process.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use profile::toggle::{self, Toggle};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_valid(file: &Path) {
    let p = common::decode(file);
    assert_eq!(p.sample_types[1].ty, "cpu", "{}", file.display());
    if let Some(go) = common::go() {
        let top = common::pprof(go, &["-top"], file);
        assert!(top.contains("Type: cpu"), "{top}");
    }
}

#[test]
fn each_pair_of_signals_writes_one_numbered_capture() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    // A file from "an earlier run" that must not be overwritten.
    std::fs::write(dir.path().join("cpu-2.pb.gz"), b"earlier").unwrap();
    let t = toggle::on_signal(toggle::SIGUSR1, move || {
        profile::start()
            .path(&path)
            .cpu()
            .quiet()
            .no_shutdown_hook()
    })
    .unwrap();
    let me = Pid::this();
    for round in 0..3 {
        kill(me, Signal::SIGUSR1).unwrap();
        wait_until("a capture to start", || t.toggle().is_running());
        common::busy_loop(Duration::from_millis(150));
        kill(me, Signal::SIGUSR1).unwrap();
        wait_until("the capture to be written", || !t.toggle().is_running());
        println!("round {round} done");
    }
    for n in [1, 3, 4] {
        assert_valid(&dir.path().join(format!("cpu-{n}.pb.gz")));
    }
    assert_eq!(
        std::fs::read(dir.path().join("cpu-2.pb.gz")).unwrap(),
        b"earlier"
    );

    // The stop's signal, then (once it is written) another start. That a signal arriving
    // *during* a write is kept is checked deterministically by the unit test
    // `sys::toggle::tests::a_signal_during_a_slow_toggle_is_kept` (a slow callback).
    kill(me, Signal::SIGUSR1).unwrap();
    wait_until("a capture to start", || t.toggle().is_running());
    common::busy_loop(Duration::from_millis(100));
    kill(me, Signal::SIGUSR1).unwrap();
    wait_until("cpu-5 to be written", || {
        dir.path().join("cpu-5.pb.gz").exists()
    });
    kill(me, Signal::SIGUSR1).unwrap();
    wait_until("the next capture", || t.toggle().is_running());
    // Turning the toggle off writes the running capture.
    let last = t.off().unwrap().expect("a capture was running");
    assert_eq!(last, dir.path().join("cpu-6.pb.gz"));
    for n in [5, 6] {
        assert_valid(&dir.path().join(format!("cpu-{n}.pb.gz")));
    }
    // Off: the signal's disposition is back to the default (not ours).
    // SAFETY: swaps in the default disposition (which it already is) to read the current.
    let current = unsafe {
        nix::sys::signal::sigaction(
            Signal::SIGUSR1,
            &nix::sys::signal::SigAction::new(
                nix::sys::signal::SigHandler::SigDfl,
                nix::sys::signal::SaFlags::empty(),
                nix::sys::signal::SigSet::empty(),
            ),
        )
    }
    .unwrap();
    assert!(matches!(
        current.handler(),
        nix::sys::signal::SigHandler::SigDfl
    ));
}

#[test]
fn api_from_many_threads_never_runs_two_and_never_loses_a_file() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let t = Toggle::new(move || {
        profile::start()
            .path(&path)
            .cpu()
            .quiet()
            .no_shutdown_hook()
    })
    .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (t, barrier) = (t.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (mut written, mut refused) = (Vec::new(), 0);
                for _ in 0..10 {
                    match t.start() {
                        Ok(_) => {}
                        Err(profile::Error::AlreadyActive { .. }) => refused += 1,
                        Err(e) => panic!("start: {e}"),
                    }
                    common::busy_loop(Duration::from_millis(5));
                    match t.stop() {
                        Ok(p) => written.push(p),
                        Err(profile::Error::NotRunning { .. }) => {}
                        Err(e) => panic!("stop: {e}"),
                    }
                }
                (written, refused)
            })
        })
        .collect();
    let mut written = Vec::new();
    let mut refused = 0;
    for w in workers {
        let (w, r) = w.join().unwrap();
        written.extend(w);
        refused += r;
    }
    assert!(!t.is_running());
    println!(
        "{} captures written, {refused} starts refused",
        written.len()
    );
    assert!(refused > 0, "threads never raced");
    written.sort();
    written.dedup();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pb.gz"))
        .collect();
    assert_eq!(files.len(), written.len(), "a file per capture, none lost");
    for f in &written {
        assert!(profile::Profile::decode(&std::fs::read(f).unwrap()).is_ok());
    }
    // A guard elsewhere blocks the toggle with the same error as build().
    let guard = common::guard_in(dir.path().join("other"));
    assert!(matches!(
        t.start(),
        Err(profile::Error::AlreadyActive { .. })
    ));
    drop(guard);
    assert!(t.start().is_ok());
    t.stop().unwrap();
}

/// The child side: a signal toggle with the shutdown hook on, and PROFILE from the env.
#[test]
#[ignore = "the child side of the process tests; run by them in a separate process"]
fn child() {
    let out = std::env::var("TOGGLE_TEST_OUT").expect("TOGGLE_TEST_OUT");
    if std::env::var("TOGGLE_TEST_MODE").as_deref() == Ok("env") {
        let guard = profile::from_env().unwrap().expect("PROFILE names a mode");
        common::busy_loop(Duration::from_millis(200));
        println!("WROTE {}", guard.stop().unwrap().display());
        return;
    }
    let t = toggle::on_signal(toggle::SIGUSR1, move || {
        profile::start().path(&out).cpu().quiet()
    })
    .unwrap();
    t.toggle().start().unwrap();
    println!("READY");
    loop {
        common::busy_loop(Duration::from_millis(20));
    }
}

fn spawn_child(out: &Path, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("TOGGLE_TEST_OUT", out)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

#[test]
fn sigterm_during_a_capture_writes_it_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::spawn_ready("child", &[("TOGGLE_TEST_OUT", dir.path().as_os_str())]);
    std::thread::sleep(Duration::from_millis(300));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "child did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc_sigterm()), "{status:?}");
    assert_valid(&dir.path().join("cpu-1.pb.gz"));
}

fn libc_sigterm() -> i32 {
    Signal::SIGTERM as i32
}

#[test]
fn profile_env_var_starts_a_guard() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("cpu,path={},quiet,no_shutdown_hook", dir.path().display());
    let child = spawn_child(
        dir.path(),
        &[("TOGGLE_TEST_MODE", "env"), ("PROFILE", &spec)],
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("WROTE"), "{stdout}");
    assert_valid(&dir.path().join("cpu.pb.gz"));
    // A malformed value is an error naming the variable (checked in the child too).
    let bad = spawn_child(
        dir.path(),
        &[("TOGGLE_TEST_MODE", "env"), ("PROFILE", "cpu,oops")],
    )
    .wait_with_output()
    .unwrap();
    assert!(!bad.status.success());
}
