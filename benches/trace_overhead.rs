//! The cost of a span enter + exit with `profile::trace::layer()` in the subscriber, while
//! a trace records and while none does, against the same subscriber without the layer
//! (target while not tracing: within 5%).
//!
//! ```text
//! cargo bench --features trace --bench trace_overhead
//! ```

use std::hint::black_box;
use std::time::Instant;

use tracing_subscriber::layer::SubscriberExt;

const SPANS: u32 = 2_000_000;
const ROUNDS: usize = 7;

/// ns per enter + exit of an existing span.
fn enter_exit(dispatch: &tracing::Dispatch) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let span = tracing::info_span!("work", n = 1);
        let start = Instant::now();
        for i in 0..SPANS {
            let _e = span.enter();
            black_box(i);
        }
        start.elapsed().as_nanos() as f64 / f64::from(SPANS)
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let plain = tracing::Dispatch::new(tracing_subscriber::registry());
    let ours = tracing::Dispatch::new(tracing_subscriber::registry().with(profile::trace::layer()));
    let (mut base, mut idle) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        base.push(enter_exit(&plain));
        idle.push(enter_exit(&ours));
    }
    let tracer = profile::runtime::trace::start(None).unwrap();
    let mut tracing_on = Vec::new();
    for _ in 0..2 {
        // 2 × 2 M spans = 8 M records: beyond the trace's limit, so part of this measures
        // the dropping path; the first round is all recorded.
        tracing_on.push(enter_exit(&ours));
    }
    let trace = tracer.stop().unwrap();
    let (base, idle) = (median(base), median(idle));
    println!("span enter+exit, registry only:              {base:6.1} ns");
    println!(
        "with profile::trace::layer(), not tracing:  {idle:6.1} ns  ({:.3}x; target <= 1.05x)",
        idle / base
    );
    println!(
        "while tracing (recording):                  {:6.1} ns  ({} events kept, {} dropped at the limit)",
        tracing_on[0],
        trace.events(),
        trace.dropped()
    );
    println!(
        "while tracing, past the limit (dropping):   {:6.1} ns",
        tracing_on[1]
    );
}
