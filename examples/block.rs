//! Where threads wait: a block profile of lock waits, a condition variable and a channel
//! receive (through `profile::sync::blocking`).
//!
//! ```text
//! cargo run --release --example block
//! go tool pprof -top ./profiles/block.pb.gz
//! ```

use std::sync::Arc;
use std::time::Duration;

use profile::sync::{Condvar, Mutex, blocking};

/// Waits for the hot lock (held 2 ms at a time by `hog`).
#[inline(never)]
fn wait_for_lock(m: &Mutex<u64>) {
    *m.lock() += 1;
}

/// Holds the lock for 2 ms at a time.
#[inline(never)]
fn hog(m: &Mutex<u64>) {
    let mut g = m.lock();
    std::thread::sleep(Duration::from_millis(2));
    *g += 1;
}

/// Waits on a condition variable until a job is ready.
#[inline(never)]
fn wait_for_job(state: &(Mutex<bool>, Condvar)) {
    let mut ready = state.0.lock();
    while !*ready {
        state.1.wait(&mut ready);
    }
    *ready = false;
}

/// Waits for a message on a channel.
#[inline(never)]
fn wait_for_message(rx: &std::sync::mpsc::Receiver<u32>) -> u32 {
    let msg = blocking(|| rx.recv());
    // Using the result after the call keeps this frame (a call in tail position would
    // become a jump and the profile would charge the caller).
    std::hint::black_box(msg).unwrap_or(0)
}

fn main() -> Result<(), profile::Error> {
    let guard = profile::start().path("./profiles").block().build()?;

    let m = Arc::new(Mutex::new(0u64));
    let hogger = {
        let m = Arc::clone(&m);
        std::thread::spawn(move || (0..50).for_each(|_| hog(&m)))
    };
    let waiter = {
        let m = Arc::clone(&m);
        std::thread::spawn(move || {
            for _ in 0..50 {
                wait_for_lock(&m);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let producer = {
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            for i in 0..20 {
                std::thread::sleep(Duration::from_millis(5));
                *state.0.lock() = true;
                state.1.notify_one();
                std::thread::sleep(Duration::from_millis(5));
                tx.send(i).unwrap();
            }
        })
    };
    for _ in 0..20 {
        wait_for_job(&state);
        wait_for_message(&rx);
    }
    for t in [hogger, waiter, producer] {
        t.join().unwrap();
    }
    let path = guard.stop()?;
    println!("Block profile written to {}", path.display());
    println!("Where threads waited:");
    println!("  go tool pprof -top {}", path.display());
    Ok(())
}
