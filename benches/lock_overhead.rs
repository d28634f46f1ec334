//! Cost of `profile::sync::Mutex` against `parking_lot::Mutex`, one run.
//! Bars: uncontended lock+unlock ≤ 1.10× parking_lot (or within 2 ns), profiling on or
//! off; contended throughput with profiling off ≤ 5% below parking_lot's.
//!
//! ```text
//! cargo bench --bench lock_overhead
//! ```
//!
//! Uncontended: one thread, 20 M lock+unlock pairs per measurement, best of 25 (the
//! minimum is the stable estimate on a shared machine: interference only adds time).
//! Contended: two threads each doing 2 M increments of one locked counter, median of 25
//! rounds, configurations interleaved.

use std::hint::black_box;
use std::time::{Duration, Instant};

const UNCONTENDED: u64 = 20_000_000;
const CONTENDED: u64 = 2_000_000;
const ROUNDS: usize = 25;

#[inline(never)]
fn uncontended_pl(m: &parking_lot::Mutex<u64>) -> Duration {
    let t = Instant::now();
    for _ in 0..UNCONTENDED {
        *black_box(m).lock() += 1;
    }
    t.elapsed()
}

#[inline(never)]
fn uncontended_ours(m: &profile::sync::Mutex<u64>) -> Duration {
    let t = Instant::now();
    for _ in 0..UNCONTENDED {
        *black_box(m).lock() += 1;
    }
    t.elapsed()
}

/// Two threads, `ops` increments each: the time per increment.
fn contended<M: Sync>(m: &M, ops: u64, inc: fn(&M)) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ops {
                    inc(m);
                }
            });
        }
    });
    t.elapsed().as_secs_f64() / (2 * ops) as f64
}

fn ns(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e9 / n as f64
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| a != "--bench" && !"lock_overhead".contains(&a))
    {
        return;
    }
    let pl = parking_lot::Mutex::new(0u64);
    let ours = profile::sync::Mutex::new(0u64);
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        best[0] = best[0].min(uncontended_pl(&pl));
        profile::runtime::mutex::set_fraction(0);
        profile::runtime::block::set_rate(0);
        best[1] = best[1].min(uncontended_ours(&ours));
        profile::runtime::mutex::set_fraction(1);
        profile::runtime::block::set_rate(1);
        best[2] = best[2].min(uncontended_ours(&ours));
        profile::runtime::mutex::set_fraction(0);
        profile::runtime::block::set_rate(0);
    }
    let [p, off, on] = best.map(|d| ns(d, UNCONTENDED));
    let verdict = |x: f64| {
        if x / p <= 1.10 || x - p <= 2.0 {
            "MEETS BAR"
        } else {
            "ABOVE BAR"
        }
    };
    println!("uncontended lock+unlock: parking_lot {p:.2} ns");
    println!(
        "  profile::sync, profiling off: {off:.2} ns ({:.3}x, +{:.2} ns): {}",
        off / p,
        off - p,
        verdict(off)
    );
    println!(
        "  profile::sync, profiling on (fraction 1, rate 1): {on:.2} ns ({:.3}x, +{:.2} ns): {}",
        on / p,
        on - p,
        verdict(on)
    );

    let pl = parking_lot::Mutex::new(0u64);
    let ours = profile::sync::Mutex::new(0u64);
    let mut ratios = Vec::new();
    let mut on_ratios = Vec::new();
    for round in 0..ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = contended(&pl, CONTENDED, |m| *m.lock() += 1);
            (a, contended(&ours, CONTENDED, |m| *m.lock() += 1))
        } else {
            let b = contended(&ours, CONTENDED, |m| *m.lock() += 1);
            (contended(&pl, CONTENDED, |m| *m.lock() += 1), b)
        };
        ratios.push(a / b);
        // Recording every event is ~20x slower under this much contention: fewer ops.
        profile::runtime::mutex::set_fraction(1);
        profile::runtime::block::set_rate(1);
        let c = contended(&ours, CONTENDED / 50, |m| *m.lock() += 1);
        profile::runtime::mutex::set_fraction(0);
        profile::runtime::block::set_rate(0);
        on_ratios.push(a / c);
    }
    ratios.sort_by(f64::total_cmp);
    on_ratios.sort_by(f64::total_cmp);
    let r = ratios[ROUNDS / 2];
    println!(
        "contended throughput (2 threads x {CONTENDED} increments), relative to parking_lot, median of {ROUNDS}:"
    );
    println!(
        "  profiling off: {r:.3}x (bar >= 0.95): {}",
        if r >= 0.95 { "MEETS BAR" } else { "BELOW BAR" }
    );
    println!(
        "  profiling on, every event recorded (no bar): {:.3}x",
        on_ratios[ROUNDS / 2]
    );
}
