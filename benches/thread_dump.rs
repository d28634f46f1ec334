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

/// CPU time used by this process so far.
fn process_cpu() -> Duration {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec passed.
    let rc = unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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

    // Wall-clock profiling of the same process: CPU time the sampler costs per second.
    for hz in [99u32, 19] {
        let cpu0 = process_cpu();
        let wall = Instant::now();
        let clock = profile::runtime::clock::start(hz).unwrap();
        thread::sleep(Duration::from_secs(2));
        let sampling = process_cpu() - cpu0;
        let p = clock.stop().unwrap();
        let secs = wall.elapsed().as_secs_f64();
        println!(
            "  clock profile at {hz} Hz of {n} threads: {:.1}% of one core while sampling, \
             {} samples ({:.0} per second)",
            sampling.as_secs_f64() / 2.0 * 100.0,
            p.total("samples"),
            p.total("samples") as f64 / secs
        );
    }

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
