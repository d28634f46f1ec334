//! A tokio + axum service profiled as a Go service is: one allocator line, one router
//! line, labels on its handlers.
//!
//! ```text
//! cargo run --release --features axum --example axum_service -- --load 2000   # ~15 s of load
//! go tool pprof -tagfocus http.route=/cpu/heavy http://127.0.0.1:3000/debug/pprof/profile?seconds=10
//! go tool pprof http://127.0.0.1:3000/debug/pprof/block      # the awaited sleeps, the lock waits
//! ```
//!
//! Endpoints: `/cpu/heavy` and `/cpu/light` (3 and 1 units of CPU work), `/alloc` (keeps
//! a few megabytes of recent allocations), `/lock/std`, `/lock/tokio` and `/lock/sync` (a
//! shared counter behind a std-API, a tokio-API and a parking_lot-API lock from
//! `profile::sync`, held a while), `/sleep` (awaits 50 ms). `--load N` sends N requests
//! to each of them (8 at a time) while the service keeps serving; `--addr` sets the
//! listening address (default 127.0.0.1:3000).
//!
//! `tests/axum_service.rs` runs this same service in-process (it includes this file).

#![allow(dead_code)] // the tests use the service, not `main`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

/// The service's shared state: one counter behind each kind of lock, and recent
/// allocations.
#[derive(Default)]
pub struct Shared {
    std_api: profile::sync::poison::Mutex<u64>,
    tokio_api: profile::sync::tokio::Mutex<u64>,
    parking_lot_api: profile::sync::Mutex<u64>,
    recent: profile::sync::Mutex<Vec<Vec<u8>>>,
}

/// Iterations of one unit of CPU work: a count, not a time, so the split between the
/// endpoints is known whatever the machine's speed.
pub const UNIT: u64 = 400_000;

/// `units` units of CPU work.
#[inline(never)]
pub fn burn(units: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..units * UNIT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

#[inline(never)]
async fn cpu_heavy() -> String {
    burn(3).to_string()
}

#[inline(never)]
async fn cpu_light() -> String {
    burn(1).to_string()
}

#[inline(never)]
async fn alloc_handler(State(s): State<Arc<Shared>>) -> String {
    let block: Vec<u8> = (0..64 * 1024).map(|i| i as u8).collect();
    let mut recent = s.recent.lock();
    recent.push(block);
    if recent.len() > 64 {
        recent.remove(0);
    }
    recent.len().to_string()
}

/// Awaits 50 ms; answers the time it waited, in microseconds.
#[inline(never)]
async fn sleep_handler() -> String {
    let t = Instant::now();
    profile::sync::awaiting(tokio::time::sleep(Duration::from_millis(50))).await;
    t.elapsed().as_micros().to_string()
}

/// A std-API lock held for 1 unit of CPU work (a std lock is not held across an await).
#[inline(never)]
async fn lock_std(State(s): State<Arc<Shared>>) -> String {
    let mut g = s.std_api.lock().unwrap_or_else(|e| e.into_inner());
    *g += burn(1) & 1;
    g.to_string()
}

/// A tokio-API lock held across a 2 ms await.
#[inline(never)]
async fn lock_tokio(State(s): State<Arc<Shared>>) -> String {
    let mut g = s.tokio_api.lock().await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    *g += 1;
    g.to_string()
}

/// A parking_lot-API lock held for 1 unit of CPU work.
#[inline(never)]
async fn lock_sync(State(s): State<Arc<Shared>>) -> String {
    let mut g = s.parking_lot_api.lock();
    *g += burn(1) & 1;
    g.to_string()
}

/// The service: its routes, each labelled with its route, and `/debug/pprof/*`.
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/cpu/heavy", get(cpu_heavy))
        .route("/cpu/light", get(cpu_light))
        .route("/alloc", get(alloc_handler))
        .route("/sleep", get(sleep_handler))
        .route("/lock/std", get(lock_std))
        .route("/lock/tokio", get(lock_tokio))
        .route("/lock/sync", get(lock_sync))
        .with_state(shared)
        .route_layer(axum::middleware::from_fn(
            profile::http::axum::label_requests,
        ))
        .merge(profile::http::axum::router())
}

/// Serves `app` on `listener` (with the client addresses the profile router checks).
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    axum::serve(
        listener,
        app(shared).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("serve");
}

/// A request's outcome: (status, body).
pub type Answer = (u16, String);

/// Sends `count` GET requests for each of `paths` to `addr`, `concurrency` at a time:
/// a bounded load. Returns each path's answers.
pub async fn load(
    addr: SocketAddr,
    paths: &[&str],
    count: usize,
    concurrency: usize,
) -> Vec<(String, Vec<Answer>)> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for i in 0..count {
        for path in paths {
            let (client, limit) = (client.clone(), limit.clone());
            let uri: axum::http::Uri = format!("http://{addr}{path}").parse().expect("uri");
            let path = path.to_string();
            tasks.push((
                path,
                i,
                tokio::spawn(async move {
                    let _slot = limit.acquire_owned().await.expect("semaphore");
                    match client.get(uri).await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body = r.into_body().collect().await.map(|b| b.to_bytes());
                            let body = body.map(|b| String::from_utf8_lossy(&b).into_owned());
                            (status, body.unwrap_or_default())
                        }
                        Err(e) => (0, e.to_string()),
                    }
                }),
            ));
        }
    }
    let mut answers: Vec<(String, Vec<Answer>)> =
        paths.iter().map(|p| (p.to_string(), Vec::new())).collect();
    for (path, _, task) in tasks {
        let a = task.await.expect("request task");
        if let Some((_, v)) = answers.iter_mut().find(|(p, _)| *p == path) {
            v.push(a);
        }
    }
    answers
}

/// Every endpoint of the service (not the profiles).
pub const ENDPOINTS: &[&str] = &[
    "/cpu/heavy",
    "/cpu/light",
    "/alloc",
    "/sleep",
    "/lock/std",
    "/lock/tokio",
    "/lock/sync",
];

#[tokio::main]
async fn main() {
    let mut addr = "127.0.0.1:3000".to_string();
    let mut requests = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr ADDRESS"),
            "--load" => {
                requests = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--load N (requests per endpoint)");
            }
            other => panic!("unknown argument {other:?}: use --addr ADDRESS, --load N"),
        }
    }
    // Go leaves these off by default too: a service that wants lock and wait profiles
    // turns them on (waits of 10 µs and more always recorded, shorter ones sampled).
    profile::runtime::mutex::set_fraction(1);
    profile::runtime::block::set_rate(10_000);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("listening on {addr}: {e}"));
    let local = listener.local_addr().expect("local address");
    println!("serving on http://{local}/ (profiles: http://{local}/debug/pprof/)");
    println!(
        "try: go tool pprof -tagfocus http.route=/cpu/heavy http://{local}/debug/pprof/profile?seconds=10"
    );
    let shared = Arc::new(Shared::default());
    let server = tokio::spawn(serve(listener, shared));
    if requests > 0 {
        let started = Instant::now();
        let answers = load(local, ENDPOINTS, requests, 8).await;
        for (path, a) in &answers {
            let ok = a.iter().filter(|(s, _)| *s == 200).count();
            println!("{path}: {ok} of {} requests answered 200", a.len());
        }
        println!(
            "load done in {:.1} s; still serving (Ctrl-C to stop)",
            started.elapsed().as_secs_f64()
        );
    }
    server.await.expect("server task");
}
