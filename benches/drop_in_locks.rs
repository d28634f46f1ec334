//! Uncontended cost of the drop-in locks against the locks they replace (issue 18's bar:
//! ≤ 1.10×), profiling off and on, one run.
//!
//! ```text
//! cargo bench --features tokio --bench drop_in_locks
//! ```
//!
//! One thread, 10 M lock+unlock pairs per measurement, best of 21 rounds (interference
//! only adds time), configurations interleaved: `profile::sync::poison::{Mutex, RwLock}`
//! against `std::sync`'s, `profile::sync::tokio::Mutex` against `tokio::sync::Mutex`
//! (its `lock()` future polled once with a no-op waker: uncontended, it is ready at once).

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const PAIRS: u64 = 10_000_000;
const ROUNDS: usize = 21;

fn timed(f: impl Fn()) -> Duration {
    let t = Instant::now();
    for _ in 0..PAIRS {
        f();
    }
    t.elapsed()
}

/// Polls a future that is ready at once.
#[inline(always)]
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("uncontended"),
    }
}

fn set_profiling(on: bool) {
    profile::runtime::mutex::set_fraction(u64::from(on));
    profile::runtime::block::set_rate(u64::from(on));
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| a != "--bench" && !"drop_in_locks".contains(&a))
    {
        return;
    }
    let std_m = std::sync::Mutex::new(0u64);
    let our_m = profile::sync::poison::Mutex::new(0u64);
    let std_rw = std::sync::RwLock::new(0u64);
    let our_rw = profile::sync::poison::RwLock::new(0u64);
    let tokio_m = tokio::sync::Mutex::new(0u64);
    let our_tm = profile::sync::tokio::Mutex::new(0u64);
    // (name, base, ours): closures timing one configuration.
    type Bench<'a> = Box<dyn Fn() -> Duration + 'a>;
    let cases: Vec<(&str, Bench, Bench)> = vec![
        (
            "Mutex (std API)",
            Box::new(|| timed(|| *black_box(&std_m).lock().unwrap() += 1)),
            Box::new(|| timed(|| *black_box(&our_m).lock().unwrap() += 1)),
        ),
        (
            "RwLock write (std API)",
            Box::new(|| timed(|| *black_box(&std_rw).write().unwrap() += 1)),
            Box::new(|| timed(|| *black_box(&our_rw).write().unwrap() += 1)),
        ),
        (
            "RwLock read (std API)",
            Box::new(|| {
                timed(|| {
                    black_box(*black_box(&std_rw).read().unwrap());
                })
            }),
            Box::new(|| {
                timed(|| {
                    black_box(*black_box(&our_rw).read().unwrap());
                })
            }),
        ),
        (
            "async Mutex (tokio API)",
            Box::new(|| timed(|| *now(black_box(&tokio_m).lock()) += 1)),
            Box::new(|| timed(|| *now(black_box(&our_tm).lock()) += 1)),
        ),
    ];
    println!("{PAIRS} uncontended lock+unlock pairs, best of {ROUNDS}");
    for (name, base, ours) in &cases {
        let mut best = [Duration::MAX; 3];
        for round in 0..ROUNDS {
            for k in 0..3 {
                let config = (round + k) % 3;
                best[config] = best[config].min(match config {
                    0 => base(),
                    1 => {
                        set_profiling(false);
                        ours()
                    }
                    _ => {
                        set_profiling(true);
                        let t = ours();
                        set_profiling(false);
                        t
                    }
                });
            }
        }
        let ns = |d: Duration| d.as_secs_f64() * 1e9 / PAIRS as f64;
        let [b, off, on] = best.map(ns);
        let verdict = |x: f64| if x / b <= 1.10 { "MEETS" } else { "ABOVE" };
        println!(
            "{name}: replaced {b:.2} ns; ours off {off:.2} ns ({:.3}x, {}); on {on:.2} ns ({:.3}x, {}) (bar <= 1.10x)",
            off / b,
            verdict(off),
            on / b,
            verdict(on)
        );
    }
}
