//! Continuous profiling to Pyroscope: a small workload pushes every kind for a few
//! intervals, with `tracing` root spans labelling its CPU samples.
//!
//! ```text
//! pyroscope &   # a server on 127.0.0.1:4040 (see the README's "Continuous profiling")
//! cargo run --release --features push,push-tracing --example push -- http://127.0.0.1:4040 10
//! ```
//!
//! With `--features push-otel` the `checkout` spans are OpenTelemetry spans too
//! (tracing-opentelemetry over the SDK), and their samples carry the trace's span ids.
//!
//! Arguments: the server URL (default `http://127.0.0.1:4040`) and how many intervals to
//! run (default 10, 1 s each here; 15 s is the agent's default). It prints what it
//! measured: the process's CPU time while the agent ran, and the agent's stats.
//!
//! `tests/push_pyroscope.rs` runs this same workload in-process (it includes this file).

#![allow(dead_code)] // the test uses the workload, not `main`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

/// The hot function: most of the CPU (inside a `checkout` root span half the time).
#[inline(never)]
pub fn push_hot_loop(rounds: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rounds {
        x = black_box(x.rotate_left(7) ^ i).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    x
}

/// A smaller share of the CPU, outside any span.
#[inline(never)]
pub fn push_cold_loop(rounds: u64) -> u64 {
    push_hot_loop(rounds / 4)
}

/// Allocations kept a while (heap and allocs).
#[inline(never)]
pub fn push_allocate(keep: &mut Vec<Vec<u8>>) {
    keep.push(vec![7u8; 64 << 10]);
    if keep.len() > 64 {
        keep.remove(0);
    }
}

/// A lock held while others wait (mutex and block).
#[inline(never)]
pub fn push_hold_lock(lock: &profile::sync::Mutex<u64>) {
    let mut g = lock.lock();
    *g = g.wrapping_add(push_hot_loop(20_000));
}

/// Runs the workload until `stop`: a hot thread (half inside `checkout` spans), an
/// allocating thread, two threads contending for a lock.
pub fn workload(
    stop: Arc<AtomicBool>,
    dispatch: tracing::Dispatch,
    span_ids: Arc<std::sync::Mutex<Vec<String>>>,
) -> Vec<thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    let s = stop.clone();
    threads.push(
        thread::Builder::new()
            .name("push-hot".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut round = 0u64;
                    while !s.load(Ordering::Relaxed) {
                        if round.is_multiple_of(2) {
                            tracing::info_span!("checkout").in_scope(|| {
                                // The span's id, as its samples carry it.
                                let id = profile::labels::current()
                                    .into_iter()
                                    .find(|(k, _)| k == "span_id")
                                    .map(|(_, v)| v)
                                    .expect("a span_id label");
                                // With OpenTelemetry: the trace's own span id.
                                #[cfg(feature = "push-otel")]
                                {
                                    use opentelemetry::trace::TraceContextExt as _;
                                    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
                                    let otel = tracing::Span::current()
                                        .context()
                                        .span()
                                        .span_context()
                                        .span_id();
                                    assert_eq!(id, otel.to_string());
                                }
                                let mut ids = span_ids.lock().unwrap();
                                if ids.len() < 20 {
                                    ids.push(id);
                                }
                                drop(ids);
                                black_box(push_hot_loop(2_000_000))
                            });
                        } else {
                            black_box(push_hot_loop(2_000_000));
                        }
                        black_box(push_cold_loop(2_000_000));
                        round += 1;
                    }
                })
            })
            .unwrap(),
    );
    let s = stop.clone();
    threads.push(
        thread::Builder::new()
            .name("push-alloc".into())
            .spawn(move || {
                let mut keep = Vec::new();
                while !s.load(Ordering::Relaxed) {
                    push_allocate(&mut keep);
                    thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap(),
    );
    let lock = Arc::new(profile::sync::Mutex::new(0u64));
    for i in 0..2 {
        let (s, lock) = (stop.clone(), lock.clone());
        threads.push(
            thread::Builder::new()
                .name(format!("push-lock-{i}"))
                .spawn(move || {
                    while !s.load(Ordering::Relaxed) {
                        push_hold_lock(&lock);
                        thread::sleep(Duration::from_millis(2));
                    }
                })
                .unwrap(),
        );
    }
    threads
}

/// The process's CPU time (user + system).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { nix::libc::getrusage(nix::libc::RUSAGE_SELF, &mut u) };
    let tv = |t: nix::libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// What one run measured.
#[derive(Debug)]
pub struct Run {
    /// Process CPU from the agent's start to its stop.
    pub cpu: Duration,
    pub started: std::time::SystemTime,
    pub stopped: std::time::SystemTime,
    pub stats: profile::push::PushStats,
    /// Ids of some `checkout` spans (16 hex digits).
    pub span_ids: Vec<String>,
}

/// The workload's subscriber: `SpanLayer`, and with the `push-otel` feature an
/// OpenTelemetry tracer (tracing-opentelemetry over the SDK, spans exported nowhere) so
/// that the span ids are the trace's.
pub fn subscriber() -> tracing::Dispatch {
    let registry = tracing_subscriber::registry().with(profile::push::SpanLayer::new());
    #[cfg(feature = "push-otel")]
    {
        use opentelemetry::trace::TracerProvider as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("push-example"));
        tracing::Dispatch::new(registry.with(otel))
    }
    #[cfg(not(feature = "push-otel"))]
    tracing::Dispatch::new(registry)
}

/// The agent every run uses: every kind (clock too), `env`/`version` tags, room in the
/// queue for a server that is down a while, no shutdown hook (the caller stops it).
pub fn agent(b: profile::push::Builder, interval: Duration) -> profile::push::Builder {
    b.interval(interval)
        .tag("env", "test")
        .tag("version", env!("CARGO_PKG_VERSION"))
        .all()
        .clock(profile::runtime::clock::DEFAULT_FREQUENCY)
        .queue_limits(10_000, 256 << 20)
        .flush_deadline(Duration::from_secs(60))
        .no_shutdown_hook()
}

/// Runs the workload while the agent `b` (see [`agent`]) pushes for `intervals`
/// intervals, calling `middle` once halfway (the test restarts the server there).
pub fn run(
    b: profile::push::Builder,
    interval: Duration,
    intervals: u64,
    middle: impl FnOnce(),
) -> Run {
    let dispatch = subscriber();
    let stop = Arc::new(AtomicBool::new(false));
    let started = std::time::SystemTime::now();
    let cpu0 = process_cpu();
    let agent = agent(b, interval).start().expect("the agent starts");
    let span_ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads = workload(stop.clone(), dispatch, span_ids.clone());
    // Against a hang only: the intervals, a restart's gap and a margin.
    let deadline = Instant::now() + interval * (intervals as u32 + 2) + Duration::from_secs(300);
    let wait_until = |done: &dyn Fn(&profile::push::PushStats) -> bool| {
        while !done(&agent.stats()) {
            assert!(Instant::now() < deadline, "the agent stopped collecting");
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_until(&|s| s.intervals >= intervals / 2);
    // Between intervals, with no upload in flight: a tick, then its uploads done. A
    // server that is stopped while an upload reaches it may acknowledge it and lose it
    // (Pyroscope 1.9 did: one interval's CPU gone after a SIGTERM that came with the
    // uploads).
    let tick = agent.stats().intervals;
    wait_until(&|s| s.intervals > tick);
    wait_until(&|s| s.queued == 0 && !s.sending);
    middle();
    wait_until(&|s| s.intervals >= intervals);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let stats = agent.stop().expect("the agent stops");
    Run {
        cpu: process_cpu() - cpu0,
        started,
        stopped: std::time::SystemTime::now(),
        stats,
        span_ids: span_ids.lock().unwrap().clone(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4040".into());
    let intervals: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let b = profile::push::pyroscope(url.clone(), "push-example");
    let r = run(b, Duration::from_secs(1), intervals, || {});
    println!(
        "pushed {} intervals to {url} as push-example: {:.3} s of CPU measured; {:?}",
        r.stats.intervals,
        r.cpu.as_secs_f64(),
        r.stats
    );
}
