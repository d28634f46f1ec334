//! An execution trace of a small multi-threaded workload with `tracing` spans: a
//! dispatcher hands jobs to two workers; each job parses, computes and stores.
//!
//! ```text
//! cargo run --release --features trace --example trace
//! ```
//!
//! Then open <https://ui.perfetto.dev> and drop `./profiles/trace.json` on it (or load it
//! in `chrome://tracing`): one track per thread, the spans nested on it, the events and
//! the CPU samples as instants.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tracing::{info, info_span};

#[inline(never)]
fn compute(ms: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut x = 1u64;
    while Instant::now() < end {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

fn handle(job: u64) -> u64 {
    let _job = info_span!("job", id = job).entered();
    let parsed = info_span!("parse").in_scope(|| compute(2) ^ job);
    let result = info_span!("compute", weight = job % 3).in_scope(|| compute(5 + 5 * (job % 3)));
    info_span!("store").in_scope(|| thread::sleep(Duration::from_millis(3)));
    info!(job, "done");
    parsed ^ result
}

fn main() -> Result<(), profile::Error> {
    // No subscriber of our own: the trace installs one (`profile::trace::registry()`).
    let guard = profile::start().path("./profiles").trace().build()?;
    let (tx, rx) = mpsc::channel::<u64>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let mut acc = 0;
                    loop {
                        let job = rx.lock().unwrap().recv();
                        match job {
                            Ok(job) => acc ^= handle(job),
                            Err(_) => return acc,
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    info_span!("dispatch").in_scope(|| {
        for job in 0..40 {
            tx.send(job).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
    });
    drop(tx);
    for w in workers {
        black_box(w.join().unwrap());
    }
    let path = guard.stop()?;
    println!("open {} in https://ui.perfetto.dev", path.display());
    Ok(())
}
