//! The heap profiler's cost beside jemalloc's own heap profiler, at the same mean
//! sampling interval (512 KiB: jemalloc's `lg_prof_sample:19`), on two threads.
//!
//! ```text
//! cd benches/jemalloc && cargo run --release
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

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tikv_jemallocator::Jemalloc;

#[path = "../../common/heap_program.rs"]
mod heap_program;

/// jemalloc's profiler compiled in and configured, inactive until `prof.active`.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 46] = b"prof:true,prof_active:false,lg_prof_sample:19\0";

/// The global allocator: jemalloc, or the wrapper over jemalloc (every block either hands
/// out is a jemalloc block; a switch to plain jemalloc happens only with no sampled block
/// live, so the wrapper's tables never outlive its blocks).
struct Switch;

static USE_WRAPPER: AtomicBool = AtomicBool::new(true);
static WRAPPER: profile::Allocator<Jemalloc> = profile::Allocator::new(Jemalloc);

// SAFETY: forwards to jemalloc or to the wrapper around jemalloc, whose unsampled blocks
// are plain jemalloc blocks; sampled blocks are all freed before a switch away (checked).
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                WRAPPER.alloc(layout)
            } else {
                Jemalloc.alloc(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                WRAPPER.dealloc(ptr, layout)
            } else {
                Jemalloc.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                WRAPPER.realloc(ptr, layout, new_size)
            } else {
                Jemalloc.realloc(ptr, layout, new_size)
            }
        }
    }
}

#[global_allocator]
static GLOBAL: Switch = Switch;

fn use_wrapper(on: bool) {
    if !on {
        assert_eq!(
            profile::runtime::heap::stats().live_samples,
            0,
            "sampled blocks still live"
        );
    }
    USE_WRAPPER.store(on, Ordering::SeqCst);
}

fn jemalloc_prof(on: bool) {
    // SAFETY: `prof.active` is a bool control of this jemalloc.
    unsafe { tikv_jemalloc_ctl::raw::write(b"prof.active\0", on) }.expect("prof.active");
}

const THREADS: usize = 2;
const OPS_PER_THREAD: usize = 400_000;
const PROGRAM_ITERATIONS: usize = 60_000;
const ROUNDS: usize = 15;

#[inline(never)]
fn churn<A: GlobalAlloc>(a: &A, seed: u64, max_shift: u64, init: bool) -> u64 {
    let mut ring = [(std::ptr::null_mut::<u8>(), 0usize); 256];
    let mut x = seed | 1;
    let mut sum = 0u64;
    for i in 0..OPS_PER_THREAD {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 16usize << (x % (max_shift + 1));
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: layout has a nonzero size; the block is written within bounds and freed
        // once with the layout it was allocated with.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            if init {
                p.write_bytes(i as u8, size);
            } else {
                p.write(i as u8);
                p.add(size - 1).write(i as u8);
            }
            sum += u64::from(*black_box(p));
            let slot = &mut ring[i % 256];
            if !slot.0.is_null() {
                a.dealloc(slot.0, Layout::from_size_align(slot.1, 8).unwrap());
            }
            *slot = (p, size);
        }
    }
    for (p, size) in ring {
        if !p.is_null() {
            // SAFETY: allocated above with this size and alignment, freed once.
            unsafe { a.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
        }
    }
    sum
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Clone, Copy)]
enum Workload {
    /// 16 B..64 KiB, two bytes touched.
    Mixed,
    /// 16 B..2 KiB, memset.
    Small,
    /// The program, through the global allocator.
    Program,
}

/// The workers' CPU time for `w` through `a` (the program ignores `a`: it allocates
/// through the global allocator).
fn run<A: GlobalAlloc + Sync>(a: &A, w: Workload) -> Duration {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let before = thread_cpu();
                    let seed = 0x9e37_79b9 + t as u64;
                    match w {
                        Workload::Mixed => black_box(churn(a, seed, 12, false)),
                        Workload::Small => black_box(churn(a, seed, 7, true)),
                        Workload::Program => {
                            black_box(heap_program::program(PROGRAM_ITERATIONS, seed))
                        }
                    };
                    thread_cpu() - before
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
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
fn config(k: usize, w: Workload) -> Duration {
    let ours_system = profile::Allocator::system();
    let ours_jemalloc = profile::Allocator::new(Jemalloc);
    let program = matches!(w, Workload::Program);
    match k {
        // System alone (not for the program: the global allocator is jemalloc's).
        0 => run(&System, w),
        1 => {
            profile::runtime::heap::set_rate(RATE).unwrap();
            let t = run(&ours_system, w);
            note_captures();
            profile::runtime::heap::set_rate(0).unwrap();
            t
        }
        2 => {
            if program {
                use_wrapper(false);
            }
            let t = run(&Jemalloc, w);
            use_wrapper(true);
            t
        }
        3 => {
            if program {
                use_wrapper(false);
            }
            jemalloc_prof(true);
            let t = run(&Jemalloc, w);
            jemalloc_prof(false);
            use_wrapper(true);
            t
        }
        _ => {
            profile::runtime::heap::set_rate(RATE).unwrap();
            let t = run(&ours_jemalloc, w);
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
        config(k, w); // warm up
    }
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        let mut t = [Duration::ZERO; 5];
        for i in 0..configs.len() {
            let k = configs[(round + i) % configs.len()];
            t[k] = config(k, w);
        }
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        if !t[0].is_zero() {
            ratios[0].push(r(t[1], t[0]));
        }
        ratios[1].push(r(t[3], t[2]));
        ratios[2].push(r(t[4], t[2]));
    }
    let m = ratios.map(|v| if v.is_empty() { f64::NAN } else { median(v) });
    println!(
        "{name:8} ours/System {:.3}x   jemalloc prof {:.3}x   ours/jemalloc {:.3}x",
        m[0], m[1], m[2]
    );
    m
}

fn main() {
    assert!(profile::runtime::heap::is_installed());
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
