//! The CPU profile's total against the CPU time the kernel charged the process
//! (getrusage), one busy thread at 100 Hz: Go's own test allows ±10%, and so do we.
//! Its own file: it measures process-wide CPU time, which other tests would disturb.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

fn process_cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

#[test]
fn sample_total_matches_getrusage_within_ten_percent() {
    let profiler = profile::runtime::cpu::start(100).unwrap();
    let before = process_cpu();
    common::busy_loop(Duration::from_secs(3));
    let used = process_cpu() - before;
    let p = profiler.stop().unwrap();

    let sampled = Duration::from_nanos(p.total("cpu") as u64);
    let ratio = sampled.as_secs_f64() / used.as_secs_f64();
    println!("sampled {sampled:?} of {used:?} CPU: ratio {ratio:.3}");
    assert!(
        (0.9..=1.1).contains(&ratio),
        "profile shows {sampled:?} of CPU, getrusage says {used:?} (ratio {ratio:.3})"
    );
}
