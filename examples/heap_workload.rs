//! The `program` workload of `benches/heap_overhead.rs`, one configuration per run, for
//! deterministic instruction counts under valgrind (this machine's timings are noisy):
//!
//! ```text
//! cargo build --release --example heap_workload
//! for m in system off on; do
//!   valgrind --tool=cachegrind --cache-sim=no target/release/examples/heap_workload $m 5000
//! done
//! ```
//!
//! `system`: plain System allocator; `off`: the wrapper, sampling off; `on`: sampling at
//! 512 KiB. Two threads each run the workload N times (default 20000). A third argument
//! `bare` runs the bare malloc/free stress loop instead (N allocations per thread), e.g.
//! `heap_workload on 1000000 bare` under `valgrind --tool=cachegrind --cache-sim=yes`
//! for what a sample costs in instructions and cache misses. A fourth argument keeps that
//! many MiB of blocks (16 B..2 KiB) live while the threads run, as a service's heap does:
//! `heap_workload on 3000000 bare 8192` (with sampling on, ~16 000 of them are live
//! samples): five rounds with that heap, five after it is freed, and the ratio of their
//! median CPU times, for what frees cost beside a large live heap.

#[path = "../benches/common/heap.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::Switch<std::alloc::System> = common::Switch::new(std::alloc::System);

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    match mode.as_str() {
        "system" => common::use_wrapper(false),
        "off" => {}
        "on" => {
            profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE)
                .expect("the wrapper is installed");
        }
        _ => {
            eprintln!("usage: heap_workload system|off|on [ITERATIONS] [bare]");
            std::process::exit(2);
        }
    }
    let bare = std::env::args().nth(3).is_some_and(|w| w == "bare");
    let live_mib: usize = std::env::args()
        .nth(4)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let live = live_heap(live_mib << 20);
    if live_mib == 0 {
        run(bare, n);
        return;
    }
    // Beside a live heap: rounds with it, then rounds after it is freed (its samples
    // with it), in one process; the medians' ratio is what the live heap costs the frees.
    eprintln!(
        "{} blocks live, {} of them sampled",
        live.len(),
        profile::runtime::heap::stats().live_samples
    );
    let with: Vec<f64> = (0..5).map(|_| run(bare, n)).collect();
    drop(std::hint::black_box(live));
    let without: Vec<f64> = (0..5).map(|_| run(bare, n)).collect();
    let (w, wo) = (median(with), median(without));
    eprintln!(
        "median CPU: {w:.1} ms with the live heap, {wo:.1} ms after; {:.3}x",
        w / wo
    );
}

/// Two threads run the workload; their CPU time in ms.
fn run(bare: bool, n: usize) -> f64 {
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|t| {
                s.spawn(move || {
                    let start = common::thread_cpu();
                    if bare {
                        std::hint::black_box(common::churn(&GLOBAL, 0x9e37_79b9 + t, n, 7, false));
                    } else {
                        std::hint::black_box(common::program(n, t));
                    }
                    (common::thread_cpu() - start).as_secs_f64() * 1e3
                })
            })
            .collect();
        let ms: Vec<f64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        eprintln!("threads: {:.1} ms, {:.1} ms CPU", ms[0], ms[1]);
        ms.iter().sum()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Blocks of 16 B..2 KiB (the sizes of the stress loop) totalling `bytes`.
fn live_heap(bytes: usize) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let (mut x, mut total) = (0x2545_f491u64, 0);
    while total < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 16usize << (x % 8);
        blocks.push(vec![1u8; size]);
        total += size;
    }
    blocks
}
