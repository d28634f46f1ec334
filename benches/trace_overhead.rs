//! The cost of a span enter + exit with `profile::trace::layer()` or on
//! `profile::trace::registry()`, while a trace records and while none does, against the
//! same subscriber without them (target while not tracing: within 5%).
//!
//! ```text
//! cargo bench --features trace --bench trace_overhead
//! ```

use std::hint::black_box;
use std::time::Instant;

use tracing_subscriber::layer::SubscriberExt;

const SPANS: u32 = 2_000_000;
const ROUNDS: usize = 15;
const SLICES: u32 = 20;

/// ns per enter + exit of an existing span.
fn enter_exit(dispatch: &tracing::Dispatch) -> f64 {
    enter_exit_n(dispatch, SPANS)
}

fn enter_exit_n(dispatch: &tracing::Dispatch, spans: u32) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let span = tracing::info_span!("work", n = 1);
        let start = Instant::now();
        for i in 0..spans {
            let _e = span.enter();
            black_box(i);
        }
        start.elapsed().as_nanos() as f64 / f64::from(spans)
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

/// Per-round ratios of `a` to `b` (each measured once per round, back to back) and the
/// medians of both times.
struct Pair {
    ratios: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            ratios: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
        }
    }

    /// One round: `a` and `b` alternate in 20 slices of 100 000 enters+exits each, so a
    /// slow stretch of the machine lands on both.
    fn measure(&mut self, a: &tracing::Dispatch, b: &tracing::Dispatch) {
        let (mut ta, mut tb) = (0.0, 0.0);
        for _ in 0..SLICES {
            ta += enter_exit_n(a, SPANS / SLICES);
            tb += enter_exit_n(b, SPANS / SLICES);
        }
        let (ta, tb) = (ta / f64::from(SLICES), tb / f64::from(SLICES));
        self.ratios.push(ta / tb);
        self.a.push(ta);
        self.b.push(tb);
    }

    fn print(self, what: &str, target: bool) {
        let (a, b, r) = (median(self.a), median(self.b), median(self.ratios));
        let mark = if target { "  (target <= 1.05x)" } else { "" };
        println!("{what:58} {a:5.1} ns vs {b:5.1} ns: {r:.3}x{mark}");
    }
}

fn main() {
    use profile::trace::{layer, registry};
    use tracing::Dispatch;
    let bare = Dispatch::new(tracing_subscriber::registry());
    let noop = Dispatch::new(tracing_subscriber::registry().with(Noop));
    let fmt = Dispatch::new(tracing_subscriber::registry().with(fmt_layer()));
    let ours_layer = Dispatch::new(tracing_subscriber::registry().with(layer()));
    let ours_layer_fmt = Dispatch::new(
        tracing_subscriber::registry()
            .with(fmt_layer())
            .with(layer()),
    );
    let ours_reg = Dispatch::new(registry());
    let ours_reg_noop = Dispatch::new(registry().with(Noop));
    let ours_reg_fmt = Dispatch::new(registry().with(fmt_layer()));
    // Instruction counts (timing noise on a shared 2-core machine is about ±5% per pair):
    // `TRACE_OVERHEAD_ONLY=NAME:N` runs N enters+exits on one subscriber and exits, for
    // `valgrind --tool=callgrind`; the difference of two N gives instructions per
    // enter+exit exactly (docs/performance.md has the commands).
    if let Ok(only) = std::env::var("TRACE_OVERHEAD_ONLY") {
        let (name, n) = only.split_once(':').expect("NAME:N");
        let d = match name {
            "bare" => &bare,
            "noop" => &noop,
            "fmt" => &fmt,
            "layer" => &ours_layer,
            "layer_fmt" => &ours_layer_fmt,
            "registry" => &ours_reg,
            "registry_noop" => &ours_reg_noop,
            "registry_fmt" => &ours_reg_fmt,
            other => panic!("unknown subscriber {other}"),
        };
        enter_exit_n(d, n.parse().expect("N"));
        return;
    }
    let mut pairs: Vec<(&str, bool, Pair, &Dispatch, &Dispatch)> = vec![
        (
            "empty layer: registry+Noop / registry",
            false,
            Pair::new(),
            &noop,
            &bare,
        ),
        (
            "trace::layer(): registry+ours / registry",
            false,
            Pair::new(),
            &ours_layer,
            &bare,
        ),
        (
            "trace::layer(): registry+fmt+ours / registry+fmt",
            true,
            Pair::new(),
            &ours_layer_fmt,
            &fmt,
        ),
        (
            "trace::registry(): ours / registry",
            false,
            Pair::new(),
            &ours_reg,
            &bare,
        ),
        (
            "trace::registry(): ours+Noop / registry+Noop",
            true,
            Pair::new(),
            &ours_reg_noop,
            &noop,
        ),
        (
            "trace::registry(): ours+fmt / registry+fmt",
            true,
            Pair::new(),
            &ours_reg_fmt,
            &fmt,
        ),
    ];
    // Each round measures every pair once, back to back; ratios are taken within a round
    // (so a slow moment of the machine hits both sides) and their median reported.
    for _ in 0..ROUNDS {
        for (_, _, pair, a, b) in &mut pairs {
            pair.measure(a, b);
        }
    }
    println!("span enter+exit while not tracing, median of {ROUNDS} paired rounds:");
    for (what, target, pair, _, _) in pairs {
        pair.print(what, target);
    }
    for (what, d) in [
        ("trace::layer()", &ours_layer),
        ("trace::registry()", &ours_reg),
    ] {
        let tracer = profile::runtime::trace::start_without_cpu().unwrap();
        // 2 × 2 M spans = 8 M records: beyond the trace's limit, so the second round
        // measures the dropping path; the first is all recorded.
        let recording = enter_exit(d);
        let dropping = enter_exit(d);
        let trace = tracer.stop().unwrap();
        println!(
            "while tracing with {what:18} recording {recording:6.1} ns, past the limit {dropping:6.1} ns ({} kept, {} dropped)",
            trace.events(),
            trace.dropped()
        );
    }
}
