//! The profiler's own resident memory and latency with every kind on, in a process shaped
//! like `examples/http_server` (two workers hashing, allocating and taking a
//! `profile::sync` lock; heap sampling at the default rate, every mutex and block event
//! recorded).
//!
//! ```text
//! cargo bench --bench profiler_memory
//! ```
//!
//! Prints, per round, each profile's latency (stop/collect + symbolize + encode) and the
//! process's resident memory beyond the unprofiled baseline: at the round's peak (VmHWM,
//! reset before the round through /proc/self/clear_refs) and after it. Rounds: the first
//! (cold symbolizer), the second (warm), after `symbols::release()`, and with
//! `Symbolization::Off`. Linux only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use profile::runtime::symbols::{self, Symbolization};
use profile::sync::Mutex;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

#[path = "common/service.rs"]
mod service;

/// (VmRSS, VmHWM) in KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn encoded(p: profile::Profile) -> usize {
    let mut out = Vec::new();
    p.write_to(&mut out).expect("encode");
    out.len()
}

fn round(name: &str, baseline: u64) {
    reset_peak();
    let mut latencies = Vec::new();
    let mut time = |what: &'static str, f: &mut dyn FnMut() -> usize| {
        let t = Instant::now();
        let bytes = f();
        latencies.push(format!(
            "{what} {:.0} ms ({} KB)",
            t.elapsed().as_secs_f64() * 1e3,
            bytes / 1000
        ));
    };
    let cpu = profile::runtime::cpu::start(100).expect("cpu");
    let clock = profile::runtime::clock::start(100).expect("clock");
    thread::sleep(Duration::from_secs(1));
    let mut cpu = Some(cpu);
    time("cpu", &mut || encoded(cpu.take().unwrap().stop().unwrap()));
    let mut clock = Some(clock);
    time("clock", &mut || {
        encoded(clock.take().unwrap().stop().unwrap())
    });
    time("heap", &mut || {
        encoded(profile::runtime::heap::profile().unwrap())
    });
    time("allocs", &mut || {
        encoded(profile::runtime::heap::allocs_profile().unwrap())
    });
    time("mutex", &mut || {
        encoded(profile::runtime::mutex::profile().unwrap())
    });
    time("block", &mut || {
        encoded(profile::runtime::block::profile().unwrap())
    });
    time("threads", &mut || {
        encoded(profile::runtime::threads::profile().unwrap())
    });
    let (now, peak) = rss();
    println!(
        "{name:<28} peak +{:>6.1} MiB, after +{:>6.1} MiB | {}",
        peak.saturating_sub(baseline) as f64 / 1024.0,
        now.saturating_sub(baseline) as f64 / 1024.0,
        latencies.join(", ")
    );
}

fn main() {
    if !cfg!(target_os = "linux") {
        println!("profiler_memory: Linux only");
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cache = Arc::new(Mutex::new(Vec::new()));
    let pages = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (cache, pages, stop) = (cache.clone(), pages.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        service::handle(&cache, &pages, i);
                        i += 1;
                    }
                })
                .unwrap()
        })
        .collect();
    thread::sleep(Duration::from_secs(1));
    let (baseline, _) = rss();
    let exe = std::fs::metadata("/proc/self/exe").map_or(0, |m| m.len());
    println!(
        "baseline (workers running, nothing profiled): {:.1} MiB resident; binary {:.1} MB",
        baseline as f64 / 1024.0,
        exe as f64 / 1e6
    );
    profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE).unwrap();
    profile::runtime::mutex::set_fraction(1);
    profile::runtime::block::set_rate(1);
    thread::sleep(Duration::from_secs(1));
    let (now, _) = rss();
    println!(
        "every kind recording, nothing written yet: +{:.1} MiB",
        now.saturating_sub(baseline) as f64 / 1024.0
    );
    round("full, first (cold)", baseline);
    round("full, second (warm)", baseline);
    let release = || {
        symbols::release();
        let (now, _) = rss();
        println!(
            "after symbols::release():    +{:.1} MiB",
            now.saturating_sub(baseline) as f64 / 1024.0
        );
    };
    release();
    symbols::set(Symbolization::Off);
    round("off, first", baseline);
    round("off, second", baseline);
    release();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}
