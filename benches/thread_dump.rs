//! Dumping 200 threads: pause per thread (time in the capture handler) and end-to-end
//! time, against the bars of ≤ 50 µs per thread (median) and ≤ 50 ms per dump.
//!
//! ```text
//! cargo bench --bench thread_dump
//! ```
//!
//! The threads wait in four ways (condition variable, sleep, channel, pipe read), each a
//! few frames below its closure, as service threads do. The first dump also opens the
//! executable's debug information and is reported apart ("cold").

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const THREADS: usize = 200;
const DUMPS: usize = 30;

#[inline(never)]
fn wait_in(kind: usize, go: &(Mutex<bool>, Condvar), rx: mpsc::Receiver<()>, mut s: UnixStream) {
    match kind {
        0 => {
            let mut g = go.0.lock().unwrap();
            while !*g {
                g = go.1.wait(g).unwrap();
            }
        }
        1 => {
            while !*go.0.lock().unwrap() {
                thread::sleep(Duration::from_millis(20));
            }
        }
        2 => rx.recv().unwrap(),
        _ => {
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let go = Arc::new((Mutex::new(false), Condvar::new()));
    let mut senders = Vec::new();
    let mut writers = Vec::new();
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let go = go.clone();
            let (tx, rx) = mpsc::channel();
            let (w, r) = UnixStream::pair().unwrap();
            senders.push(tx);
            writers.push(w);
            thread::Builder::new()
                .name(format!("waiter-{i}"))
                .spawn(move || wait_in(i % 4, &go, rx, r))
                .unwrap()
        })
        .collect();
    thread::sleep(Duration::from_millis(300));

    let cold = Instant::now();
    let first = profile::runtime::threads::snapshot().unwrap();
    let cold = cold.elapsed();
    assert!(first.threads().len() > THREADS);

    let (mut totals, mut captures, mut pauses) = (Vec::new(), Vec::new(), Vec::new());
    let mut missing = 0;
    for _ in 0..DUMPS {
        let start = Instant::now();
        let snap = profile::runtime::threads::snapshot().unwrap();
        totals.push(start.elapsed().as_secs_f64() * 1e3);
        captures.push(snap.capture_time().as_secs_f64() * 1e3);
        for t in snap.threads() {
            match t.pause {
                Some(p) => pauses.push(p.as_secs_f64() * 1e6),
                None => missing += 1,
            }
        }
    }
    let n = first.threads().len();
    let pause_median = median(&mut pauses);
    let pause_p99 = percentile(&mut pauses, 0.99);
    let capture = median(&mut captures);
    let total = median(&mut totals);
    println!(
        "thread_dump: {n} threads, {DUMPS} dumps (after one cold dump of {:.1} ms)",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  pause per thread (in handler): median {pause_median:.1} µs, p99 {pause_p99:.1} µs  (bar: median <= 50 µs)"
    );
    println!(
        "  capture of all threads:        median {capture:.2} ms = {:.1} µs per thread",
        capture * 1e3 / n as f64
    );
    println!(
        "  end to end (list, capture, symbolize, profile): median {total:.2} ms, max {:.2} ms  (bar: <= 50 ms)",
        totals.iter().cloned().fold(0.0, f64::max)
    );
    println!("  threads without a stack: {missing}");

    *go.0.lock().unwrap() = true;
    go.1.notify_all();
    for tx in senders {
        let _ = tx.send(());
    }
    drop(writers);
    for h in handles {
        h.join().unwrap();
    }
}
