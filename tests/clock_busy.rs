//! The wall-clock split on a busy machine: a thread that computes 60% of its wall time
//! (by its own clock) and sleeps the rest, sampled while four spinning threads compete for
//! the cores. The sampler itself waits for a CPU, longer while computing threads hold
//! them, so its rounds lean towards moments when the worker sleeps: the compute share
//! reads low (50% for 62% here). Not fixed yet (it needs the samples driven by per-thread
//! kernel timers rather than a sampler thread); the promise is that the profile says so.
//! So: the share is within 6 points, or the profile's comments report late rounds.
//! (Before: nothing in the profile told the reader.) Its own file: the spinners load the
//! whole process.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use profile::LabelValue;

mod common;

#[inline(never)]
fn idle_sleep(d: Duration) {
    thread::sleep(d);
}

#[test]
fn the_split_holds_on_a_busy_machine() {
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            thread::Builder::new()
                .name("spinner".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        black_box(common::crunch(Duration::from_millis(5)));
                    }
                })
                .unwrap()
        })
        .collect();
    let (compute_ns, sleep_ns) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clock = profile::runtime::clock::start(100).unwrap();
    let worker = {
        let (c, s) = (compute_ns.clone(), sleep_ns.clone());
        thread::Builder::new()
            .name("t-sixty".into())
            .spawn(move || {
                // A count of cycles, not a window of time.
                for _ in 0..150 {
                    let t = Instant::now();
                    black_box(common::crunch(Duration::from_millis(12)));
                    c.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    let t = Instant::now();
                    idle_sleep(Duration::from_millis(8));
                    s.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
            })
            .unwrap()
    };
    worker.join().unwrap();
    let p = clock.stop().unwrap();
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    let truth = compute_ns.load(Ordering::Relaxed) as f64
        / (compute_ns.load(Ordering::Relaxed) + sleep_ns.load(Ordering::Relaxed)) as f64;
    let ti = p.sample_type_index("time").unwrap();
    let mut mine = 0i64;
    let mut computing = 0i64;
    for s in &p.samples {
        let named = s
            .labels
            .iter()
            .any(|l| l.key == "thread_name" && l.value == LabelValue::Str("t-sixty".into()));
        if !named {
            continue;
        }
        mine += s.values[ti];
        let in_compute = s.location_ids.iter().any(|id| {
            p.locations.iter().find(|l| l.id == *id).is_some_and(|l| {
                l.lines.iter().any(|line| {
                    p.functions
                        .iter()
                        .any(|f| f.id == line.function_id && f.name.ends_with("crunch"))
                })
            })
        });
        if in_compute {
            computing += s.values[ti];
        }
    }
    let share = computing as f64 / mine as f64;
    println!(
        "t-sixty: computed {:.1}% of its wall time, profile says {:.1}% ({} ms sampled); comments: {:?}",
        truth * 100.0,
        share * 100.0,
        mine / 1_000_000,
        p.comments
    );
    assert!(mine > 0, "no samples of the worker");
    let reported = p
        .comments
        .iter()
        .any(|c| c.contains("rounds started more than half a period late"));
    assert!(
        (share - truth).abs() <= 0.06 || reported,
        "compute share {:.1}% vs {:.1}% measured by the thread, and no late rounds reported: {:?}",
        share * 100.0,
        truth * 100.0,
        p.comments
    );
}
