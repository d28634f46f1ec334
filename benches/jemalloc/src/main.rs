//! The heap profiler's cost beside jemalloc's own heap profiler, at the same mean
//! sampling interval (512 KiB: jemalloc's `lg_prof_sample:19`), on two threads.
//!
//! ```text
//! cd benches/jemalloc && cargo run --release
//! ```
//!
//! Timings on a shared machine move by a few percent between runs; for exact counts, one
//! configuration runs once (both threads, one workload) under valgrind:
//!
//! ```text
//! cd benches/jemalloc && cargo build --release
//! for c in jemalloc jemalloc-prof ours-jemalloc; do
//!   valgrind --tool=cachegrind --cache-sim=yes target/release/heap-vs-jemalloc count $c program 3000
//! done
//! ```
//!
//! Configurations, each as a ratio of the worker threads' CPU time against its base
//! allocator alone (the median over rotating rounds of per-round ratios, as
//! `benches/heap_overhead.rs` does):
//!
//! - `ours / System`: `profile::Allocator` over System, sampling at 512 KiB;
//! - `jemalloc prof`: jemalloc with `prof:true,lg_prof_sample:19` and `prof.active` on;
//! - `ours / jemalloc`: `profile::Allocator` over jemalloc, sampling at 512 KiB.
//!
//! Workloads: `mixed` (malloc, touch, free of 16 B..64 KiB blocks, a ring of 256 live
//! ones: the anchor workload of issue 17), `small` (16 B..2 KiB, memset, as
//! heap_overhead's alloc+init), and `program` (heap_overhead's program: strings, vectors,
//! a map, a boxed tree, through the global allocator).

use std::alloc::{GlobalAlloc, System};
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tikv_jemallocator::Jemalloc;

#[path = "../../common/heap.rs"]
mod heap;

use heap::{churn, thread_cpu, use_wrapper};

/// jemalloc's profiler compiled in and configured, inactive until `prof.active`.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 46] = b"prof:true,prof_active:false,lg_prof_sample:19\0";

/// The global allocator: jemalloc, or the wrapper over jemalloc (every block either hands
/// out is a jemalloc block; a switch to plain jemalloc happens only with no sampled block
/// live, so the wrapper's tables never outlive its blocks).
#[global_allocator]
static GLOBAL: heap::Switch<Jemalloc> = heap::Switch::new(Jemalloc);

fn jemalloc_prof(on: bool) {
    // SAFETY: `prof.active` is a bool control of this jemalloc.
    unsafe { tikv_jemalloc_ctl::raw::write(b"prof.active\0", on) }.expect("prof.active");
}

const THREADS: usize = 2;
const OPS_PER_THREAD: usize = 400_000;
const PROGRAM_ITERATIONS: usize = 60_000;
const ROUNDS: usize = 15;

#[derive(Clone, Copy)]
enum Workload {
    /// 16 B..64 KiB, two bytes touched.
    Mixed,
    /// 16 B..2 KiB, memset.
    Small,
    /// The program, through the global allocator.
    Program,
}

/// The workers' CPU time for `n` operations (program iterations) per thread of `w`
/// through `a` (the program ignores `a`: it allocates through the global allocator).
fn run<A: GlobalAlloc + Sync>(a: &A, w: Workload, n: usize) -> Duration {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let before = thread_cpu();
                    let seed = 0x9e37_79b9 + t as u64;
                    match w {
                        Workload::Mixed => black_box(churn(a, seed, n, 12, false)),
                        Workload::Small => black_box(churn(a, seed, n, 7, true)),
                        Workload::Program => black_box(heap::program(n, seed)),
                    };
                    thread_cpu() - before
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// The benchmark's operations (program iterations) per thread for `w`.
fn per_thread(w: Workload) -> usize {
    match w {
        Workload::Program => PROGRAM_ITERATIONS,
        Workload::Mixed | Workload::Small => OPS_PER_THREAD,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const RATE: usize = 512 << 10;

/// Samples taken and those libgcc's unwinder walked (the fast walk could not), over the
/// runs of our configurations.
static SAMPLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SLOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn note_captures() {
    let s = profile::runtime::heap::stats();
    SAMPLES.fetch_add(s.buckets as u64, Ordering::Relaxed);
    SLOW.fetch_add(s.slow_stack_captures, Ordering::Relaxed);
}

/// One configuration's CPU time for `w`.
fn config(k: usize, w: Workload, n: usize) -> Duration {
    let ours_system = profile::Allocator::system();
    let ours_jemalloc = profile::Allocator::new(Jemalloc);
    let program = matches!(w, Workload::Program);
    match k {
        // System alone (not for the program: the global allocator is jemalloc's).
        0 => run(&System, w, n),
        1 => {
            profile::runtime::heap::set_rate(RATE).unwrap();
            let t = run(&ours_system, w, n);
            note_captures();
            profile::runtime::heap::set_rate(0).unwrap();
            t
        }
        2 => {
            if program {
                use_wrapper(false);
            }
            let t = run(&Jemalloc, w, n);
            use_wrapper(true);
            t
        }
        3 => {
            if program {
                use_wrapper(false);
            }
            jemalloc_prof(true);
            let t = run(&Jemalloc, w, n);
            jemalloc_prof(false);
            use_wrapper(true);
            t
        }
        _ => {
            profile::runtime::heap::set_rate(RATE).unwrap();
            let t = run(&ours_jemalloc, w, n);
            note_captures();
            profile::runtime::heap::set_rate(0).unwrap();
            t
        }
    }
}

/// Medians of per-round ratios: [ours/System, jemalloc prof, ours/jemalloc].
fn measure(w: Workload, name: &str) -> [f64; 3] {
    let configs: &[usize] = if matches!(w, Workload::Program) {
        &[2, 3, 4]
    } else {
        &[0, 1, 2, 3, 4]
    };
    for &k in configs {
        config(k, w, per_thread(w)); // warm up
    }
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        let mut t = [Duration::ZERO; 5];
        for i in 0..configs.len() {
            let k = configs[(round + i) % configs.len()];
            t[k] = config(k, w, per_thread(w));
        }
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        if !t[0].is_zero() {
            ratios[0].push(r(t[1], t[0]));
        }
        ratios[1].push(r(t[3], t[2]));
        ratios[2].push(r(t[4], t[2]));
    }
    let m = ratios.map(|v| if v.is_empty() { f64::NAN } else { median(v) });
    // The program is not run over System (its global allocator is jemalloc): "-" there.
    let shown = m.map(|r| {
        if r.is_nan() {
            format!("{:>6}", "-")
        } else {
            format!("{r:.3}x")
        }
    });
    println!(
        "{name:8} ours/System {}   jemalloc prof {}   ours/jemalloc {}",
        shown[0], shown[1], shown[2]
    );
    m
}

/// `count CONFIG WORKLOAD [N]`: one configuration once, for valgrind's exact counts.
/// CONFIG: `system`, `ours-system`, `jemalloc`, `jemalloc-prof`, `ours-jemalloc`;
/// WORKLOAD: `mixed`, `small`, `program`; N: operations (iterations for the program) per
/// thread.
fn count(args: &[String]) -> Result<(), String> {
    let usage = "usage: heap-vs-jemalloc count system|ours-system|jemalloc|jemalloc-prof|ours-jemalloc mixed|small|program [N]";
    let (Some(name), Some(workload)) = (args.first(), args.get(1)) else {
        return Err(usage.into());
    };
    let w = match workload.as_str() {
        "mixed" => Workload::Mixed,
        "small" => Workload::Small,
        "program" => Workload::Program,
        _ => return Err(usage.into()),
    };
    let n: usize = match args.get(2) {
        Some(n) => n.parse().map_err(|_| format!("N is not a count: {n}"))?,
        None => 3000,
    };
    let k = match name.as_str() {
        "system" if !matches!(w, Workload::Program) => 0,
        "ours-system" if !matches!(w, Workload::Program) => 1,
        "jemalloc" => 2,
        "jemalloc-prof" => 3,
        "ours-jemalloc" => 4,
        _ => {
            return Err(format!(
                "{usage} (the program runs on the global allocator: jemalloc)"
            ));
        }
    };
    let t = config(k, w, n);
    println!(
        "{name} {workload} x{n}: {:.3} s of worker CPU",
        t.as_secs_f64()
    );
    Ok(())
}

fn main() {
    assert!(profile::runtime::heap::is_installed());
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "count") {
        if let Err(e) = count(&args[1..]) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    // SAFETY: read-only jemalloc controls.
    let (libgcc, libunwind): (bool, bool) = unsafe {
        (
            tikv_jemalloc_ctl::raw::read(b"config.prof_libgcc\0").unwrap_or(false),
            tikv_jemalloc_ctl::raw::read(b"config.prof_libunwind\0").unwrap_or(false),
        )
    };
    println!(
        "{THREADS} threads, {ROUNDS} rounds, medians of per-round CPU-time ratios against the base allocator alone; \
         mean sampling interval 512 KiB for both profilers (jemalloc backtraces: libgcc {libgcc}, libunwind {libunwind})"
    );
    measure(Workload::Mixed, "mixed");
    measure(Workload::Small, "small");
    measure(Workload::Program, "program");
    println!(
        "slow (libgcc) stack captures in our runs: {} ({} buckets)",
        SLOW.load(Ordering::Relaxed),
        SAMPLES.load(Ordering::Relaxed)
    );
}
