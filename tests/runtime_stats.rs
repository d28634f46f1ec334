//! Every kind's runtime module has `stats()`: the counters move with what the kind
//! records (counts of events, not windows of time; deadlines only catch hangs).
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use profile::runtime;

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "hung waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn cpu_stats_count_signals_of_the_running_profiler() {
    let _one = common::serial();
    let cpu = runtime::cpu::start(250).unwrap();
    common::until_signals(&cpu, 5, 1, || {
        common::busy_loop(Duration::from_millis(20));
    });
    // The free function and the method read the same counters.
    assert!(runtime::cpu::stats().signals >= 5);
    assert!(cpu.stats().signals >= 5);
    cpu.stop().unwrap();
}

#[test]
fn clock_stats_count_rounds() {
    let _one = common::serial();
    let clock = runtime::clock::start(200).unwrap();
    until("3 clock rounds", || runtime::clock::stats().rounds >= 3);
    assert!(clock.stats().rounds >= 3);
    let p = clock.stop().unwrap();
    assert!(!p.samples.is_empty());
    // After stop: the last profiler's counters stay readable.
    assert!(runtime::clock::stats().rounds >= 3);
}

#[test]
fn mutex_and_block_stats_count_stacks() {
    let _one = common::serial();
    let before = runtime::block::stats();
    let previous = runtime::block::set_rate(1);
    // A recorded wait: `blocking` charges the time to this stack.
    profile::sync::blocking(|| std::thread::sleep(Duration::from_millis(1)));
    let after = runtime::block::stats();
    runtime::block::set_rate(previous);
    assert_eq!(after.setting, 1);
    assert!(
        after.stacks >= 1 && after.stacks >= before.stacks,
        "{after:?}"
    );
    assert!(after.max_stacks >= after.stacks);
    let m = runtime::mutex::stats();
    assert_eq!(m.setting, runtime::mutex::fraction());
    assert!(m.max_stacks > 0);
}

#[test]
fn heap_stats_report_the_rate() {
    // Without `profile::Allocator` installed the rate cannot be set; the stats say off.
    let s = runtime::heap::stats();
    assert_eq!(s.rate, runtime::heap::rate());
    assert!(runtime::heap::set_rate(4096).is_err());
}

#[test]
fn thread_dumps_take_their_limits() {
    let _one = common::serial();
    // With no time for the whole capture, every thread is listed without a stack.
    let s = runtime::threads::snapshot_within(Duration::from_millis(100), Duration::ZERO).unwrap();
    assert!(!s.threads().is_empty());
    assert!(
        s.threads().iter().all(|t| t.missing.is_some()),
        "{:?}",
        s.threads()
    );
    let s =
        runtime::threads::snapshot_within(Duration::from_secs(1), Duration::from_secs(10)).unwrap();
    assert!(s.threads().iter().any(|t| !t.frames.is_empty()));
}
