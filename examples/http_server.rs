//! A small service with CPU, allocation and lock activity, serving `/debug/pprof/*` on
//! `127.0.0.1:6060` (port from the first argument or `PORT`).
//!
//! ```text
//! cargo run --release --features http --example http_server
//! go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=5
//! ```

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use profile::sync::Mutex;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

#[path = "../benches/common/service.rs"]
mod service;

fn main() -> Result<(), profile::Error> {
    let port = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "6060".into());
    profile::runtime::heap::set_rate(profile::runtime::heap::DEFAULT_RATE)?;
    profile::runtime::mutex::set_fraction(1);
    profile::runtime::block::set_rate(1);

    let cache = Arc::new(Mutex::new(Vec::new()));
    let pages = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    for worker in 0..2u64 {
        let (cache, pages) = (cache.clone(), pages.clone());
        thread::Builder::new()
            .name(format!("worker-{worker}"))
            .spawn(move || {
                let mut i = worker;
                loop {
                    service::handle(&cache, &pages, i);
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
