//! Wall-clock profiling: where the time goes while threads wait. Two request handlers
//! spend most of their time waiting on a (simulated) database and a lock, which a CPU
//! profile would not show at all.
//!
//! ```text
//! cargo run --release --example clock
//! go tool pprof -top ./profiles/clock.pb.gz
//! go tool pprof -top -tagfocus thread_name=handler-0 ./profiles/clock.pb.gz
//! ```

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// CPU work: about 2 ms of computation.
#[inline(never)]
fn render_page(seed: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(2);
    let mut x = seed;
    while Instant::now() < end {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

/// Waiting: a 6 ms round trip to the database.
#[inline(never)]
fn query_database() -> u64 {
    thread::sleep(Duration::from_millis(6));
    black_box(6)
}

/// Waiting for a lock the other handler holds while it writes the cache.
#[inline(never)]
fn update_cache(cache: &Mutex<Vec<u64>>, v: u64) {
    let mut c = cache.lock().unwrap();
    c.push(v);
    thread::sleep(Duration::from_millis(2)); // slow write while holding the lock
}

fn main() -> Result<(), profile::Error> {
    let guard = profile::start().path("./profiles").clock().build()?;
    let cache = Arc::new(Mutex::new(Vec::new()));
    let handlers: Vec<_> = (0..2)
        .map(|i| {
            let cache = cache.clone();
            thread::Builder::new()
                .name(format!("handler-{i}"))
                .spawn(move || {
                    let end = Instant::now() + Duration::from_secs(3);
                    while Instant::now() < end {
                        let v = render_page(i) ^ query_database();
                        update_cache(&cache, v);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handlers {
        h.join().unwrap();
    }
    guard.stop()?;
    Ok(())
}
