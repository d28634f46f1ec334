//! The always-on cost (issue 19): the axum service example under a bounded local load,
//! with CPU at 100 Hz, heap sampling at 512 KiB, mutex and block sampled and a push to
//! Pyroscope every 15 s, against the same service with all of it off, in interleaved
//! phases of one run.
//!
//! ```text
//! PYROSCOPE_URL=http://127.0.0.1:4040 cargo bench --features axum,push --bench always_on
//! ```
//!
//! Each phase sends `ALWAYS_ON_REQUESTS` requests (default 20 000; 8 at a time) over the
//! service's CPU, allocation and lock endpoints and records each one's latency. Off: the
//! agent stopped, heap sampling, mutex and block recording off. On: the agent running
//! (started at the phase's beginning; its first push is 15 s in). Prints per phase the
//! throughput and p50/p99 latency, then the medians' ratios (targets: throughput ≥ 0.98×,
//! p99 ≤ 1.05×) and the process's resident memory on minus off (target ≤ 16 MiB).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../examples/axum_service.rs"]
mod service;

/// VmRSS in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

const PATHS: &[&str] = &[
    "/cpu/light",
    "/cpu/heavy",
    "/alloc",
    "/lock/sync",
    "/lock/tokio",
];

/// Sends `count` requests, 8 at a time; returns (wall time, sorted latencies).
async fn phase(addr: SocketAddr, count: usize) -> (Duration, Vec<Duration>) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, next) = (client.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let uri: axum::http::Uri = format!("http://{addr}{}", PATHS[i % PATHS.len()])
                    .parse()
                    .unwrap();
                let t = Instant::now();
                let r = client.get(uri).await.expect("request");
                assert_eq!(r.status(), 200);
                let _ = r.into_body().collect().await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort();
    (started.elapsed(), all)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Ok(url) = std::env::var("PYROSCOPE_URL") else {
        eprintln!(
            "always_on: set PYROSCOPE_URL to a Pyroscope server (the README's \"Continuous profiling\" says how to run one)"
        );
        return;
    };
    let requests: usize = std::env::var("ALWAYS_ON_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rounds: usize = std::env::var("ALWAYS_ON_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(service::serve(listener, Arc::new(service::Shared::default())));
        // Off to begin with (the profile router turns heap sampling on when built).
        profile::runtime::heap::set_rate(0).unwrap();
        // Warm up (connections, the allocator).
        phase(addr, requests / 4).await;
        let (mut tput, mut p99, mut p50, mut rss_delta) =
            ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()], [Vec::new(), Vec::new()], Vec::new());
        let mut uploads = 0;
        for round in 0..rounds {
            for on in [false, true] {
                let before = rss_kib();
                let agent = on.then(|| {
                    profile::push::pyroscope(url.clone(), "always-on-bench")
                        .all()
                        .no_shutdown_hook()
                        .start()
                        .expect("agent")
                });
                if on {
                    // Heap sampling at 512 KiB is the agent's default when none was set;
                    // it was set to 0 by the off phase.
                    profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE).unwrap();
                }
                let (wall, lat) = phase(addr, requests).await;
                let after = rss_kib();
                if let Some(a) = agent {
                    let stats = tokio::task::spawn_blocking(move || a.stop().unwrap())
                        .await
                        .unwrap();
                    uploads += stats.uploads;
                    rss_delta.push(after as f64 - before as f64);
                }
                profile::runtime::heap::set_rate(0).unwrap();
                profile::runtime::mutex::set_fraction(0);
                profile::runtime::block::set_rate(0);
                let rps = requests as f64 / wall.as_secs_f64();
                let i = usize::from(on);
                tput[i].push(rps);
                p50[i].push(pct(&lat, 0.5).as_secs_f64());
                p99[i].push(pct(&lat, 0.99).as_secs_f64());
                println!(
                    "round {round} {}: {rps:.0} req/s, p50 {:.3} ms, p99 {:.3} ms ({:.1} s)",
                    if on { "on " } else { "off" },
                    pct(&lat, 0.5).as_secs_f64() * 1e3,
                    pct(&lat, 0.99).as_secs_f64() * 1e3,
                    wall.as_secs_f64()
                );
            }
        }
        let ratio = |v: &[Vec<f64>; 2]| median(v[1].clone()) / median(v[0].clone());
        println!(
            "medians, on/off: throughput {:.3}x (target >= 0.98), p50 {:.3}x, p99 {:.3}x (target <= 1.05); {uploads} uploads",
            ratio(&tput),
            ratio(&p50),
            ratio(&p99)
        );
        println!(
            "resident memory, on phase end minus its start: median {:.1} MiB (target <= 16 MiB); heap profiler reserved {:.1} MiB",
            median(rss_delta) / 1024.0,
            profile::runtime::heap::stats().reserved_bytes as f64 / (1 << 20) as f64
        );
    });
}
