//! Thread dumps: a few threads parked in different ways, then every thread's stack as a
//! `threads.pb.gz` profile (through a guard) and as a jstack-like text dump on stderr.
//!
//! ```text
//! cargo run --release --example threads
//! go tool pprof -top ./profiles/threads.pb.gz
//! go tool pprof -traces ./profiles/threads.pb.gz
//! ```

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

#[inline(never)]
fn wait_for_work(queue: &(Mutex<Vec<u32>>, Condvar)) -> u32 {
    let mut q = queue.0.lock().unwrap();
    loop {
        if let Some(job) = q.pop() {
            return black_box(job);
        }
        q = queue.1.wait(q).unwrap();
    }
}

#[inline(never)]
fn poll_timer() -> u32 {
    thread::sleep(Duration::from_millis(50));
    black_box(1)
}

fn main() -> Result<(), profile::Error> {
    let guard = profile::start().path("./profiles").threads().build()?;

    let queue = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let q = queue.clone();
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || wait_for_work(&q))
                .unwrap()
        })
        .collect();
    let timer = thread::Builder::new()
        .name("timer".into())
        .spawn(|| (0..40).map(|_| poll_timer()).sum::<u32>())
        .unwrap();
    thread::sleep(Duration::from_millis(200));

    // What a watchdog would do on a stall.
    profile::runtime::threads::dump_to_stderr()?;

    // The guard's snapshot is taken at stop, while the workers still wait.
    let path = guard.stop()?;
    eprintln!("wrote {}", path.display());

    queue.0.lock().unwrap().extend([1, 2, 3, 4]);
    queue.1.notify_all();
    for w in workers {
        w.join().unwrap();
    }
    timer.join().unwrap();
    Ok(())
}
