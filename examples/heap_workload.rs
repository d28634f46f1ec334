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
//! for what a sample costs in instructions and cache misses.

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
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || {
                if bare {
                    std::hint::black_box(common::churn(&GLOBAL, 0x9e37_79b9 + t, n, 7, false));
                } else {
                    std::hint::black_box(common::program(n, t));
                }
            });
        }
    });
}
