//! `fork()` while profiling: a child of a multi-threaded, profiled process must never hang
//! on a lock another thread held at the fork (it has only the forking thread). Children
//! are forked while churn threads allocate (heap sampling every allocation), contend
//! `profile::sync` locks (mutex and block profiles recording every event) and write
//! profiles (the shared symbolizer busy); each child allocates, contends, writes a heap
//! profile and a thread dump, and exits. Any child still running after a generous
//! deadline is a hang.
//!
//! Before the fork handlers, 21 of 50 children hung at rate 1 (spinning in the heap
//! sampler's lock forever).

#![cfg(target_os = "linux")]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::libc;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, fork};

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

mod common;

/// What a child does before `_exit`: every path that takes a profiler lock.
fn child_work() -> i32 {
    let mut keep = Vec::new();
    for i in 0..2000usize {
        keep.push(vec![i as u8; 16 + i % 3000]);
    }
    black_box(&keep);
    let m = Arc::new(profile::sync::Mutex::new(0u64));
    let m2 = Arc::clone(&m);
    let t = std::thread::spawn(move || {
        for _ in 0..200 {
            *m2.lock() += 1;
        }
    });
    for _ in 0..200 {
        *m.lock() += 1;
    }
    if t.join().is_err() {
        return 3;
    }
    // A child whose parent was symbolizing at the fork builds a fresh symbolizer, which at
    // rate 1 would sample each of its millions of allocations: lower the rate first (a
    // rate change takes the sampler's lock too), then keep enough to be sampled.
    if profile::runtime::heap::set_rate(64 * 1024).is_err() {
        return 7;
    }
    let big: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 64 * 1024]).collect();
    black_box(&big);
    let Ok(heap) = profile::runtime::heap::profile() else {
        return 4;
    };
    if heap.samples.is_empty() {
        return 5;
    }
    if profile::runtime::threads::snapshot().is_err() {
        return 6;
    }
    0
}

#[test]
fn children_forked_while_profiling_never_hang() {
    profile::runtime::heap::set_rate(1).unwrap();
    profile::runtime::mutex::set_fraction(1);
    profile::runtime::block::set_rate(1);

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (stop, ops) = (Arc::clone(&stop), Arc::clone(&ops));
        threads.push(std::thread::spawn(move || common::churn::heap(&stop, &ops)));
    }
    let lock = Arc::new(profile::sync::Mutex::new(0u64));
    for _ in 0..2 {
        let (stop, lock) = (Arc::clone(&stop), Arc::clone(&lock));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut g = lock.lock();
                *g += 1;
                black_box(vec![0u8; 64]);
            }
        }));
    }
    {
        let stop = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(profile::runtime::heap::profile().unwrap());
            }
        }));
    }
    {
        let stop = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(profile::runtime::threads::snapshot().unwrap());
            }
        }));
    }
    // Let the churn get going (counted, not timed).
    while ops.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }

    let children = 24;
    let mut hung = 0;
    let mut failed = Vec::new();
    for _ in 0..children {
        // SAFETY: the child runs only `child_work` and then `_exit`, which is what this
        // test is about; it never returns into the test harness.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = child_work();
                // SAFETY: _exit ends the child without running the parent's atexit work.
                unsafe { libc::_exit(code) };
            }
            ForkResult::Parent { child } => {
                match common::wait_for_child(child, Duration::from_secs(120)) {
                    None => {
                        hung += 1;
                        eprintln!("child {child} hung");
                    }
                    Some(WaitStatus::Exited(_, 0)) => {}
                    Some(other) => failed.push(other),
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(hung, 0, "{hung} of {children} children hung");
    assert!(failed.is_empty(), "children failed: {failed:?}");
}
