//! Shared by the examples `heap_plain_system` and `heap_plain_wrapper`: the `program` workload on two
//! threads under a global allocator that is System itself or the wrapper around it, with
//! no switch between them (`heap_workload`'s switch changes what the compiler inlines
//! into the workload, and so the instruction counts of both sides).

#[path = "heap_program.rs"]
mod heap_program;

/// Runs the workload: `[off|on] [ITERATIONS]` (on: sampling at 512 KiB, wrapper only).
pub fn run(wrapper: bool) {
    let on = std::env::args().nth(1).is_some_and(|m| m == "on");
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    if on {
        if !wrapper {
            eprintln!("sampling needs the wrapper: run heap_plain_wrapper on");
            std::process::exit(2);
        }
        profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE)
            .expect("the wrapper is installed");
    }
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || std::hint::black_box(heap_program::program(n, t)));
        }
    });
}
