//! Shared by `examples/http_server.rs` and `benches/profiler_memory.rs`: a small service's
//! work — CPU, allocation and a `profile::sync` lock — so the benchmark measures the
//! profiler in the process the example shows.

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use profile::sync::Mutex;

/// CPU: hashing request payloads.
#[inline(never)]
pub fn hash_payload(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..200_000 {
        x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    x
}

/// Allocation: building responses.
#[inline(never)]
pub fn render_response(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item {i} of {n}")).collect()
}

/// Locks: a shared cache held while it is rebuilt.
#[inline(never)]
pub fn update_cache(cache: &Mutex<Vec<u64>>, v: u64) {
    let mut c = cache.lock();
    c.push(v);
    if c.len() > 1000 {
        c.clear();
    }
    thread::sleep(Duration::from_micros(200));
}

/// Rendered pages kept, at most (a few MB in use, as a service's response cache).
pub const KEPT_PAGES: usize = 2000;

/// One request: hash, render (keeping the page in `pages`, the oldest dropped), update
/// the cache.
pub fn handle(
    cache: &Mutex<Vec<u64>>,
    pages: &Mutex<std::collections::VecDeque<Vec<String>>>,
    i: u64,
) {
    let h = hash_payload(i);
    let page = render_response(50 + (h % 50) as usize);
    update_cache(cache, h ^ page.len() as u64);
    let mut kept = pages.lock();
    if kept.len() >= KEPT_PAGES {
        kept.pop_front();
    }
    kept.push_back(page);
}
