//! CPU profiling at 1000 Hz while threads allocate and free (with heap profiling on
//! through `profile::runtime`), spawn and join, panic and catch, and load and unload a
//! shared library, with thread dumps taken meanwhile: no hang, no crash, and no sample
//! taken inside the profiler's own signal handlers.
//!
//! Bounded for CI (100 thread dumps, ~3 s); `STRESS_DUMPS=2000 cargo test --release
//! --test cpu_stress` (or `scripts/stress.sh`) runs it longer.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

#[inline(never)]
fn churn_panics(stop: &AtomicBool, ops: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        let r = std::panic::catch_unwind(|| {
            let v: Vec<u64> = (0..black_box(100)).collect();
            if black_box(v.len()) == 100 {
                std::panic::panic_any(v.len());
            }
        });
        assert!(r.is_err());
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn cpu_profiling_at_1000_hz_survives_churn() {
    // A count of thread dumps, not a window of wall time (on a busy machine a window holds
    // fewer events); scripts/stress.sh sets it from its seconds.
    let count: u64 = std::env::var("STRESS_DUMPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    // Panics are caught by the churn thread; keep their messages off the output.
    std::panic::set_hook(Box::new(|_| {}));
    let stop = Arc::new(AtomicBool::new(false));
    profile::runtime::heap::set_rate(64 * 1024).unwrap();
    let cpu = profile::runtime::cpu::start(1000).unwrap();

    let (workers, counters) = common::churn::start(
        &stop,
        &[
            ("heap", common::churn::heap),
            ("threads", common::churn::threads),
            ("panics", churn_panics),
            ("libraries", common::churn::libraries_checked),
        ],
    );
    // Thread dumps meanwhile, on a thread of their own so that a hang is reported.
    let (done_tx, done_rx) = mpsc::channel();
    let dumper = thread::spawn(move || {
        for _ in 0..count {
            profile::runtime::threads::snapshot().expect("snapshot");
            thread::sleep(Duration::from_millis(20));
        }
        done_tx.send(count).unwrap();
    });
    // Deadlines only catch hangs.
    let dumps = done_rx
        .recv_timeout(Duration::from_secs(count + 120))
        .expect("the dump loop hung");
    dumper.join().unwrap();
    // Every churn thread has made progress and the profile has 100 signals' worth.
    let deadline = Instant::now() + Duration::from_secs(120);
    while (counters.iter().any(|c| c.load(Ordering::Relaxed) == 0) || cpu.stats().signals < 100)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(20));
    }
    let stats = cpu.stats();
    let p = cpu.stop().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let heap = profile::runtime::heap::profile().unwrap();
    profile::runtime::heap::set_rate(0).unwrap();
    let _ = std::panic::take_hook();

    let ops: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    eprintln!(
        "{dumps} dumps at 1000 Hz: {} samples ({} signals, {} lost, {} leaf-only, {:.2} µs per \
         sample); heap ops {}, threads {}, panics {}, library rounds {}; \
         heap profile {} samples",
        p.total("samples"),
        stats.signals,
        stats.lost_samples,
        stats.leaf_only_samples,
        stats.handler_time_per_sample().as_secs_f64() * 1e6,
        ops[0],
        ops[1],
        ops[2],
        ops[3],
        heap.samples.len()
    );
    assert!(
        ops.iter().all(|&n| n > 0),
        "a churn thread made no progress: {ops:?}"
    );
    assert!(p.total("samples") >= 100);
    // No sample inside our handlers (their signals block each other; the handler's own
    // frames would show if a sample were taken from inside one).
    let inside: Vec<Vec<&str>> = p
        .samples
        .iter()
        .map(|s| p.stack_names(s))
        .filter(|names| {
            names.iter().any(|n| {
                n.starts_with("profile::sys::imp::cpu_signal::handler")
                    || n.starts_with("profile::sys::imp::cpu_signal::sample")
                    || n.starts_with("profile::sys::imp::capture::handler")
            })
        })
        .collect();
    assert!(inside.is_empty(), "samples inside the handler: {inside:?}");
}
