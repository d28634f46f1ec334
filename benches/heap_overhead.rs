//! Cost of the heap profiler on an allocation-heavy workload, both cores, one run.
//! Bars: wrapper installed but not sampling ≤ 1.03 × the plain system allocator;
//! sampling at the default 512 KiB ≤ 1.05 ×.
//!
//! ```text
//! cargo bench --bench heap_overhead
//! HEAP_OVERHEAD_RATE=65536 cargo bench --bench heap_overhead   # another sampling rate
//! HEAP_OVERHEAD_ONLY=bare cargo bench --bench heap_overhead    # the bare loop alone
//! HEAP_OVERHEAD_ONLY=program cargo bench --bench heap_overhead # the program alone
//! ```
//!
//! Two threads each run an allocation loop (sizes 16 B..2 KiB, a ring of 256 live blocks)
//! through an explicit allocator value, so the three configurations share one process:
//! `System` itself, `profile::Allocator` with sampling off, and with sampling at 512 KiB.
//! Rounds rotate the order. Measured per round: the CPU time the two worker threads used
//! (`CLOCK_THREAD_CPUTIME_ID`, summed), and the wall time. The bar is checked on the
//! median over rounds of the per-round CPU-time ratio: on this 2-core virtual machine the
//! wall time of a 2-thread run also counts every moment another process held a core,
//! which moved wall-time ratios by ±5% between runs; CPU time does not (wall-time
//! medians are printed beside it).
//!
//! Three workloads, each through an explicit allocator value:
//! - `program` (the bar): what allocation-heavy Rust code does: format numbers into
//!   `String`s, grow `Vec`s, fill a `HashMap`, build and drop a boxed tree, every block
//!   used after it is made. Allocation and freeing are about half of its time.
//! - `alloc+init` (stress): nothing but malloc, memset, free of 16 B..2 KiB blocks.
//! - `bare malloc/free` (stress): blocks are never even touched.
//!
//! The stress cases allocate 10-20 GB/s per core, so at 512 KiB they take ~30 000
//! samples per CPU-second, and each sample's cost (~2 µs with caches cold: stack capture
//! plus table update) shows; they are reported to make that cost visible, not as the bar.

use std::alloc::{GlobalAlloc, System};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "common/heap.rs"]
mod common;

use common::{churn, program, thread_cpu, use_wrapper};

#[global_allocator]
static GLOBAL: common::Switch<System> = common::Switch::new(System);

const THREADS: usize = 2;
const OPS_PER_THREAD: usize = 1_000_000;
const ROUNDS: usize = 21;
const PROGRAM_ITERATIONS: usize = 100_000;

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Program,
    AllocInit,
    Bare,
}

/// Runs the workload on THREADS threads: (CPU time of the workers, wall time).
fn run<A: GlobalAlloc + Sync>(a: &A, w: Workload) -> (Duration, Duration) {
    let start = Instant::now();
    let cpu = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let before = thread_cpu();
                    let seed = 0x9e37_79b9 + t as u64;
                    match w {
                        Workload::Program => black_box(program(PROGRAM_ITERATIONS, seed)),
                        Workload::AllocInit => black_box(churn(a, seed, OPS_PER_THREAD, 7, true)),
                        Workload::Bare => black_box(churn(a, seed, OPS_PER_THREAD, 7, false)),
                    };
                    thread_cpu() - before
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    (cpu, start.elapsed())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over ROUNDS rotating rounds of the per-round ratios (wrapper off / system,
/// wrapper sampling / system): ((CPU off, CPU on), (wall off, wall on)).
fn measure(w: Workload, name: &str) -> ((f64, f64), (f64, f64)) {
    let wrapper = profile::Allocator::system();
    // HEAP_OVERHEAD_RATE=BYTES measures another rate (to tell per-sample costs from the
    // per-allocation ones: at a rate far above the default few samples are taken).
    let rate = std::env::var("HEAP_OVERHEAD_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(profile::runtime::heap::DEFAULT_RATE);
    run(&System, w); // warm up
    let mut ratios: [Vec<f64>; 4] = Default::default();
    for round in 0..ROUNDS {
        let mut times = [(Duration::ZERO, Duration::ZERO); 3];
        for k in 0..3 {
            let config = (round + k) % 3;
            times[config] = match config {
                0 => {
                    use_wrapper(false);
                    let t = run(&System, w);
                    use_wrapper(true);
                    t
                }
                1 => {
                    profile::runtime::heap::set_rate(0).unwrap();
                    run(&wrapper, w)
                }
                _ => {
                    profile::runtime::heap::set_rate(rate).unwrap();
                    let t = run(&wrapper, w);
                    profile::runtime::heap::set_rate(0).unwrap();
                    t
                }
            };
        }
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        ratios[0].push(r(times[1].0, times[0].0));
        ratios[1].push(r(times[2].0, times[0].0));
        ratios[2].push(r(times[1].1, times[0].1));
        ratios[3].push(r(times[2].1, times[0].1));
        if round % 10 == 0 {
            println!(
                "{name} round {round}: CPU system {:5.1} ms, wrapper off {:.3}x, sampling {:.3}x; wall {:5.1} ms, {:.3}x, {:.3}x",
                times[0].0.as_secs_f64() * 1e3,
                ratios[0][round],
                ratios[1][round],
                times[0].1.as_secs_f64() * 1e3,
                ratios[2][round],
                ratios[3][round],
            );
        }
    }
    let [a, b, c, d] = ratios.map(median);
    ((a, b), (c, d))
}

fn main() {
    let rate = std::env::var("HEAP_OVERHEAD_RATE")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
        .unwrap_or(profile::runtime::heap::DEFAULT_RATE);
    if std::env::args()
        .skip(1)
        .any(|a| a != "--bench" && !"heap_overhead".contains(&a))
    {
        return;
    }
    // HEAP_OVERHEAD_ONLY=program measures the program workload alone.
    if std::env::var("HEAP_OVERHEAD_ONLY").is_ok_and(|w| w == "program") {
        let ((off, on), _) = measure(Workload::Program, "program");
        let verdict = if on <= 1.02 { "meets" } else { "above" };
        println!(
            "program: sampling off {off:.3}x, at {rate} B {on:.3}x ({verdict} issue 17's target <= 1.02)"
        );
        return;
    }
    // HEAP_OVERHEAD_ONLY=bare measures the bare malloc/free loop alone (for `perf record`).
    if std::env::var("HEAP_OVERHEAD_ONLY").is_ok_and(|w| w == "bare") {
        let ((off, on), _) = measure(Workload::Bare, "bare malloc/free");
        println!("stress, bare malloc/free: sampling off {off:.3}x, at {rate} B {on:.3}x");
        return;
    }
    let ((off, on), (off_wall, on_wall)) = measure(Workload::Program, "program");
    let ((ai_off, ai_on), _) = measure(Workload::AllocInit, "alloc+init");
    let ((bare_off, bare_on), _) = measure(Workload::Bare, "bare malloc/free");
    println!();
    println!(
        "{THREADS} threads, {ROUNDS} rounds; medians of per-round CPU-time ratios against System"
    );
    println!(
        "program: wrapper, sampling off: {off:.3}x (wall {off_wall:.3}x) (bar <= 1.03): {}",
        if off <= 1.03 {
            "MEETS BAR"
        } else {
            "ABOVE BAR"
        }
    );
    println!(
        "program: wrapper, sampling at 512 KiB: {on:.3}x (wall {on_wall:.3}x) (bar <= 1.05): {}",
        if on <= 1.05 { "MEETS BAR" } else { "ABOVE BAR" }
    );
    let target = |x: f64, t: f64| if x <= t { "meets" } else { "above" };
    println!(
        "program at 512 KiB against issue 17's target (<= 1.02): {}",
        target(on, 1.02)
    );
    println!(
        "stress, alloc+init ({OPS_PER_THREAD} x 16 B..2 KiB per thread): sampling off {ai_off:.3}x, at 512 KiB {ai_on:.3}x ({} issue 17's target <= 1.05)",
        target(ai_on, 1.05)
    );
    println!(
        "stress, bare malloc/free: sampling off {bare_off:.3}x, at 512 KiB {bare_on:.3}x ({} issue 17's target <= 1.05)",
        target(bare_on, 1.05)
    );
    // The profiler's own memory after a sampling run.
    profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE).unwrap();
    run(&profile::Allocator::system(), Workload::Program);
    let stats = profile::runtime::heap::stats();
    println!(
        "profiler memory: {} KiB reserved (fixed, resident only where touched), {} buckets of {}, {} live samples of {}, {} dropped",
        stats.reserved_bytes / 1024,
        stats.buckets,
        stats.max_buckets,
        stats.live_samples,
        stats.max_live_samples,
        stats.dropped_samples
    );
}
