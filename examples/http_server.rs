//! A small service with CPU, allocation and lock activity, serving `/debug/pprof/*` on
//! `127.0.0.1:6060` (port from the first argument or `PORT`).
//!
//! ```text
//! cargo run --release --features http --example http_server
//! go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=5
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use profile::sync::Mutex;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

/// CPU: hashing request payloads.
#[inline(never)]
fn hash_payload(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..200_000 {
        x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    x
}

/// Allocation: building responses.
#[inline(never)]
fn render_response(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item {i} of {n}")).collect()
}

/// Locks: a shared cache held while it is rebuilt.
#[inline(never)]
fn update_cache(cache: &Mutex<Vec<u64>>, v: u64) {
    let mut c = cache.lock();
    c.push(v);
    if c.len() > 1000 {
        c.clear();
    }
    thread::sleep(Duration::from_micros(200));
}

fn main() -> Result<(), profile::Error> {
    let port = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "6060".into());
    profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE)?;
    profile::runtime::mutex::set_fraction(1);
    profile::runtime::block::set_rate(1);

    let cache = Arc::new(Mutex::new(Vec::new()));
    for worker in 0..2u64 {
        let cache = cache.clone();
        thread::Builder::new()
            .name(format!("worker-{worker}"))
            .spawn(move || {
                let mut i = worker;
                loop {
                    let h = hash_payload(i);
                    let page = render_response(50 + (h % 50) as usize);
                    update_cache(&cache, h ^ page.len() as u64);
                    i += 1;
                }
            })
            .unwrap();
    }

    let server = profile::http::serve(format!("127.0.0.1:{port}"))?;
    let base = format!("http://{}/debug/pprof", server.local_addr());
    println!("serving {base}/");
    println!("try:");
    println!("  go tool pprof -top {base}/profile?seconds=5");
    println!("  go tool pprof -top {base}/heap");
    println!("  go tool pprof -top {base}/mutex");
    println!("  go tool pprof -top {base}/block");
    println!("  curl '{base}/goroutine?debug=2'");
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}
