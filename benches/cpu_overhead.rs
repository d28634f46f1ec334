//! Throughput of a CPU-bound workload on both cores, with and without CPU profiling at
//! 100 Hz, measured in one run. Target: profiled ≥ 0.99 × unprofiled.
//!
//! ```text
//! cargo bench --bench cpu_overhead
//! ```
//!
//! Then the per-sample cost of the signal handler with a 40-frame stack (target ≤ 2 µs),
//! from the sampler's own counters, at 1000 Hz.
//!
//! Runs alternate (off, on), (on, off), ... so that drift in the machine's speed cancels;
//! each pair gives a ratio, and the median ratio is reported with the pooled one. Stopping
//! the profiler (symbolizing, encoding) happens outside the timed region: it is a one-off
//! cost at stop, not overhead on the program.

use std::hint::black_box;
use std::time::{Duration, Instant};

const THREADS: usize = 2;
const ITERATIONS_PER_THREAD: u64 = 800_000_000;
const PAIRS: usize = 10;

#[inline(never)]
fn mix(iterations: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..iterations {
        x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ i);
    }
    x
}

/// Runs the workload on THREADS threads; returns the wall time it took.
fn run() -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| black_box(mix(ITERATIONS_PER_THREAD)));
        }
    });
    start.elapsed()
}

struct Profiled {
    elapsed: Duration,
    samples: i64,
    stop: Duration,
    locations: usize,
}

fn run_profiled() -> Profiled {
    let profiler = profile::runtime::cpu::start(100).expect("start CPU profiler");
    let elapsed = run();
    let t = Instant::now();
    let p = profiler.stop().expect("stop CPU profiler");
    Profiled {
        elapsed,
        samples: p.total("samples"),
        stop: t.elapsed(),
        locations: p.locations.len(),
    }
}

/// Recurses `depth` frames, then spins: samples then have ~`depth` + a few frames.
#[inline(never)]
fn deep(depth: u32, iterations: u64) -> u64 {
    if depth == 0 {
        return mix(iterations);
    }
    black_box(deep(black_box(depth - 1), iterations)).wrapping_add(1)
}

/// The handler's cost per sample with ~40-frame stacks on both cores at 1000 Hz: a first
/// run (cold caches) and a second.
fn handler_cost(round: &str) {
    let profiler = profile::runtime::cpu::start(1000).expect("start CPU profiler");
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| black_box(deep(36, ITERATIONS_PER_THREAD * 2)));
        }
    });
    let stats = profiler.stats();
    let p = profiler.stop().expect("stop");
    println!(
        "handler ({round}): median {:.2} µs per sample (target <= 2 µs), mean {:.2} µs, {:.1} frames per sample, {} samples, {} signals, {} lost, {} leaf-only",
        stats.handler_median.as_secs_f64() * 1e6,
        stats.handler_time_per_sample().as_secs_f64() * 1e6,
        stats.frames as f64 / stats.signals.max(1) as f64,
        p.total("samples"),
        stats.signals,
        stats.lost_samples,
        stats.leaf_only_samples,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters, as libtest would.
    if std::env::args()
        .skip(1)
        .any(|a| a != "--bench" && !"cpu_overhead".contains(&a))
    {
        return;
    }
    run(); // warm up
    let mut ratios = Vec::with_capacity(PAIRS);
    let (mut off_total, mut on_total) = (Duration::ZERO, Duration::ZERO);
    let (mut samples, mut stops) = (0, Vec::new());
    for pair in 0..PAIRS {
        let (off, profiled) = if pair % 2 == 0 {
            let off = run();
            (off, run_profiled())
        } else {
            let on = run_profiled();
            (run(), on)
        };
        let on = profiled.elapsed;
        samples += profiled.samples;
        stops.push((profiled.stop, profiled.locations));
        off_total += off;
        on_total += on;
        // Throughput ratio = time unprofiled / time profiled.
        ratios.push(off.as_secs_f64() / on.as_secs_f64());
        println!(
            "pair {pair:2}: unprofiled {:7.1} ms, profiled {:7.1} ms, ratio {:.4}",
            off.as_secs_f64() * 1e3,
            on.as_secs_f64() * 1e3,
            ratios[pair]
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = (ratios[PAIRS / 2 - 1] + ratios[PAIRS / 2]) / 2.0;
    let pooled = off_total.as_secs_f64() / on_total.as_secs_f64();
    let expected_samples = on_total.as_secs_f64() * THREADS as f64 * 100.0;
    println!();
    println!("workload: {THREADS} threads x {ITERATIONS_PER_THREAD} iterations, {PAIRS} pairs");
    println!(
        "throughput profiled / unprofiled: median {median:.4}, pooled {pooled:.4} (target >= 0.99): {}",
        if median >= 0.99 {
            "MEETS TARGET"
        } else {
            "BELOW TARGET"
        }
    );
    println!(
        "samples recorded: {samples} of ~{expected_samples:.0} expected at 100 Hz x {THREADS} busy threads ({:.2})",
        samples as f64 / expected_samples
    );
    handler_cost("first run");
    handler_cost("second run");
    let (first, rest) = stops.split_first().unwrap();
    let later = rest.iter().map(|s| s.0).sum::<Duration>() / rest.len() as u32;
    println!(
        "stop (symbolize + encode): first {:.1} ms ({} locations, loads debug info), later ones {:.1} ms on average",
        first.0.as_secs_f64() * 1e3,
        first.1,
        later.as_secs_f64() * 1e3
    );
}
