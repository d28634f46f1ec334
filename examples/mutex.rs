//! A visibly hot lock, profiled by a mutex guard: the profile charges the waiting to the
//! function that holds the lock too long.
//!
//! ```text
//! cargo run --release --example mutex
//! go tool pprof -top ./profiles/mutex.pb.gz
//! ```

use std::sync::Arc;
use std::time::Duration;

use profile::sync::Mutex;

/// Holds the cache lock while doing slow work: the culprit.
#[inline(never)]
fn refresh_cache(cache: &Mutex<Vec<u64>>) {
    let mut c = cache.lock();
    std::thread::sleep(Duration::from_millis(3)); // slow work under the lock
    let n = c.len() as u64;
    c.push(n);
}

/// Takes the lock briefly: the victim.
#[inline(never)]
fn read_cache(cache: &Mutex<Vec<u64>>) -> usize {
    cache.lock().len()
}

fn main() -> Result<(), profile::Error> {
    let guard = profile::start().path("./profiles").mutex().build()?;
    let cache = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            for _ in 0..100 {
                refresh_cache(&cache);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut seen = 0;
                for _ in 0..200 {
                    seen += read_cache(&cache);
                    std::thread::sleep(Duration::from_micros(500));
                }
                seen
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    let path = guard.stop()?;
    println!("Mutex profile written to {}", path.display());
    println!("Who held the lock while others waited:");
    println!("  go tool pprof -top {}", path.display());
    Ok(())
}
