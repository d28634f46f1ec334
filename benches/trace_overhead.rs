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
const ROUNDS: usize = 21;

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

/// A layer that does nothing: what any extra layer costs.
struct Noop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}

fn fmt_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().with_writer(std::io::sink)
}

fn main() {
    let plain = tracing::Dispatch::new(tracing_subscriber::registry());
    let ours = tracing::Dispatch::new(tracing_subscriber::registry().with(profile::trace::layer()));
    let noop = tracing::Dispatch::new(tracing_subscriber::registry().with(Noop));
    let fmt = tracing::Dispatch::new(tracing_subscriber::registry().with(fmt_layer()));
    let fmt_ours = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(fmt_layer())
            .with(profile::trace::layer()),
    );
    // Each round measures every subscriber once, back to back; ratios are taken within a
    // round (so a slow moment of the machine hits both sides) and their median reported.
    let (mut base, mut idle, mut noop_t, mut fmt_t, mut fmt_ours_t) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut r_idle, mut r_noop, mut r_ours_noop, mut r_fmt) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let b = enter_exit(&plain);
        let i = enter_exit(&ours);
        let n = enter_exit(&noop);
        let f = enter_exit(&fmt);
        let fo = enter_exit(&fmt_ours);
        r_idle.push(i / b);
        r_noop.push(n / b);
        r_ours_noop.push(i / n);
        r_fmt.push(fo / f);
        base.push(b);
        idle.push(i);
        noop_t.push(n);
        fmt_t.push(f);
        fmt_ours_t.push(fo);
    }
    let (noop_t, fmt_t, fmt_ours_t) = (median(noop_t), median(fmt_t), median(fmt_ours_t));
    println!(
        "registry + a layer that does nothing:       {noop_t:6.1} ns  ({:.3}x of registry only)",
        median(r_noop)
    );
    println!(
        "registry + our layer vs + the empty layer:              ({:.3}x)",
        median(r_ours_noop)
    );
    println!("registry + fmt layer (to a sink):           {fmt_t:6.1} ns");
    println!(
        "registry + fmt + profile::trace::layer():   {fmt_ours_t:6.1} ns  ({:.3}x of fmt alone; target <= 1.05x)",
        median(r_fmt)
    );
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
        "with profile::trace::layer(), not tracing:  {idle:6.1} ns  ({:.3}x of registry only)",
        median(r_idle)
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
