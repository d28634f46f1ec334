//! The shutdown hook, end to end: a child process (this test binary re-run on the ignored
//! `child_workload` test) profiles with the hook on; SIGTERM or SIGINT must write a valid
//! profile and end the child as the signal would have (status 143 / 130 in a shell).

#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
#[ignore = "the child side of the signal tests; run by them in a separate process"]
fn child_workload() {
    let out = std::env::var("PROFILE_TEST_OUT").expect("PROFILE_TEST_OUT");
    let _guard = profile::start().path(out).build().unwrap();
    println!("READY");
    loop {
        common::busy_loop(Duration::from_millis(20));
    }
}

fn run_child_and_signal(signal: Signal) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::spawn_ready(
        "child_workload",
        &[("PROFILE_TEST_OUT", dir.path().as_os_str())],
    );
    // Enough work for a few dozen samples at 100 Hz, however busy the machine is.
    common::wait_for_cpu(child.id(), Duration::from_millis(300));
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, signal).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit within 60 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    // Killed by the signal itself: a shell reports 128 + signal (143 for SIGTERM, 130 for SIGINT).
    assert_eq!(
        status.signal(),
        Some(signal as i32),
        "child should die of {signal}, got {status:?}; stderr:\n{stderr}"
    );
    assert_eq!(
        128 + status.signal().unwrap(),
        if signal == Signal::SIGTERM { 143 } else { 130 }
    );

    let path = dir.path().join("cpu.pb.gz");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}; stderr:\n{stderr}"));
    let p = profile::Profile::decode(&bytes).unwrap();
    assert!(
        common::samples_in(&p, "busy_loop") > 0,
        "the child's work is in the profile"
    );
    assert!(
        stderr.contains("profile: cpu profiling enabled"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("caught signal {}", signal as i32)),
        "{stderr}"
    );
    assert!(
        stderr.contains("profile: cpu profiling disabled"),
        "{stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the profile, no temp files: {leftovers:?}"
    );
}

#[test]
fn sigterm_writes_the_profile_and_exits_143() {
    run_child_and_signal(Signal::SIGTERM);
}

#[test]
fn sigint_writes_the_profile_and_exits_130() {
    run_child_and_signal(Signal::SIGINT);
}
