//! Cost of `profile::labels::Labeled` per poll (issue 18's target: ≤ 20 ns).
//!
//! ```text
//! cargo bench --bench labels_overhead
//! ```
//!
//! One thread polls a future that is pending 10 000 000 times before it is ready: bare,
//! wrapped in `.with_labels(..)`, and wrapped inside an enclosing `labels::with` (the
//! merged set is made once, then reused). Best of 15 rounds each, rounds rotating; the
//! difference per poll against the bare future is the wrapper's cost.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use profile::labels::LabelExt;

const POLLS: u64 = 10_000_000;
const ROUNDS: usize = 15;

/// Pending `left` times, then ready.
struct Countdown {
    left: u64,
}

impl Future for Countdown {
    type Output = u64;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u64> {
        if self.left == 0 {
            return Poll::Ready(0);
        }
        self.left = black_box(self.left - 1);
        Poll::Pending
    }
}

/// Polls `f` until ready; the time taken.
fn drive<F: Future>(f: F) -> Duration {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    let start = Instant::now();
    while f.as_mut().poll(&mut cx).is_pending() {}
    start.elapsed()
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| a != "--bench" && !"labels_overhead".contains(&a))
    {
        return;
    }
    let mut best = [Duration::MAX; 3];
    for round in 0..ROUNDS {
        for k in 0..3 {
            let config = (round + k) % 3;
            let f = Countdown { left: POLLS };
            let t = match config {
                0 => drive(f),
                1 => drive(f.with_labels(&[("endpoint", "/api/users")])),
                _ => profile::labels::with(&[("tenant", "t1")], || {
                    drive(f.with_labels(&[("endpoint", "/api/users")]))
                }),
            };
            best[config] = best[config].min(t);
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e9 / POLLS as f64;
    let bare = per(best[0]);
    println!("{POLLS} polls, best of {ROUNDS} rounds");
    println!("bare future: {bare:.2} ns per poll");
    for (name, i) in [("labelled", 1), ("labelled, nested in labels::with", 2)] {
        let ns = per(best[i]);
        let cost = ns - bare;
        println!(
            "{name}: {ns:.2} ns per poll, +{cost:.2} ns (target <= 20 ns): {}",
            if cost <= 20.0 { "MEETS" } else { "ABOVE" }
        );
    }
}
