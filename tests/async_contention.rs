//! Async waits in the mutex and block profiles: `profile::sync::tokio` locks (tokio's
//! API), `profile::sync::poison` locks (std's API) and `profile::sync::awaiting`, each
//! against the waits the test measured itself. The sampling settings are process-wide:
//! tests take turns.

#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use profile::Profile;

/// Sum of `delay` over samples whose stack has a function containing `f`, minus the same
/// in `before`.
fn delay_in(p: &Profile, before: &Profile, f: &str) -> f64 {
    let sum = |p: &Profile| -> i64 {
        let i = p.sample_type_index("delay").unwrap();
        p.samples
            .iter()
            .filter(|s| p.stack_names(s).iter().any(|n| n.contains(f)))
            .map(|s| s.values[i])
            .sum()
    };
    (sum(p) - sum(before)) as f64
}

/// Both profiles on at full rate for the closure's duration.
fn recording<R>(f: impl FnOnce() -> R) -> (R, Profile, Profile, Profile, Profile) {
    let before_mutex = profile::runtime::mutex::profile().unwrap();
    let before_block = profile::runtime::block::profile().unwrap();
    let prev_fraction = profile::runtime::mutex::set_fraction(1);
    let prev_rate = profile::runtime::block::set_rate(1);
    let r = f();
    let mutex = profile::runtime::mutex::profile().unwrap();
    let block = profile::runtime::block::profile().unwrap();
    profile::runtime::mutex::set_fraction(prev_fraction);
    profile::runtime::block::set_rate(prev_rate);
    (r, before_mutex, mutex, before_block, block)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// The waiting task's function: when it arrived, and how long it waited.
#[inline(never)]
async fn tokio_waiter(m: &profile::sync::tokio::Mutex<u64>) -> (Instant, Duration) {
    let t = Instant::now();
    let mut g = m.lock().await;
    let waited = t.elapsed();
    *g += 1;
    (t, waited)
}

/// The holding task's function: keeps the lock across an await of 20 ms; when it
/// released it.
#[inline(never)]
async fn tokio_holder(m: &profile::sync::tokio::Mutex<u64>) -> Instant {
    let mut g = m.lock().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    *g += 1;
    let released = Instant::now();
    drop(g);
    released
}

/// What the mutex profile should charge the holder: each waiter's wait up to the release
/// (its wait after that — waking up, waiting for a CPU — is no holder's doing).
fn until_release(rounds: &[(Instant, Instant)]) -> f64 {
    rounds
        .iter()
        .map(|&(arrived, released)| released.saturating_duration_since(arrived).as_nanos() as f64)
        .sum()
}

#[test]
fn tokio_mutex_waits_reach_both_profiles() {
    let _s = common::serial();
    let rt = runtime();
    let (waited, before_mutex, mutex, before_block, block) = recording(|| {
        rt.block_on(async {
            let m = Arc::new(profile::sync::tokio::Mutex::new(0u64));
            let mut waited = Duration::ZERO;
            let mut rounds = Vec::new();
            for _ in 0..10 {
                let holder = {
                    let m = m.clone();
                    tokio::spawn(async move { tokio_holder(&m).await })
                };
                // Let the holder take the lock first.
                while m.try_lock().is_ok() && !holder.is_finished() {
                    tokio::task::yield_now().await;
                }
                let w = {
                    let m = m.clone();
                    tokio::spawn(async move { tokio_waiter(&m).await })
                };
                let released = holder.await.unwrap();
                let (arrived, w) = w.await.unwrap();
                waited += w;
                rounds.push((arrived, released));
            }
            assert_eq!(*m.lock().await, 20);
            (waited, until_release(&rounds))
        })
    });
    let (waited, truth) = waited;
    let waited = waited.as_nanos() as f64;
    let blocked = delay_in(&block, &before_block, "tokio_waiter");
    let held = delay_in(&mutex, &before_mutex, "tokio_holder");
    println!(
        "waited {:.1} ms ({:.1} ms of it before the releases); block profile {:.1} ms in tokio_waiter; mutex profile {:.1} ms in tokio_holder",
        waited / 1e6,
        truth / 1e6,
        blocked / 1e6,
        held / 1e6
    );
    assert!(waited > 0.0);
    // The waiter's own measurement includes its wake-up and scheduling; the profile's
    // wait is inside it.
    assert!(
        blocked <= waited * 1.05 && blocked >= waited * 0.8,
        "block profile {blocked} ns vs measured {waited} ns"
    );
    // The mutex profile charges waits up to each release: the waiter's wake-up after it
    // (long on a busy machine) is no holder's doing.
    assert!(
        held >= truth * 0.8 && held <= waited * 1.05,
        "mutex profile {held} ns charged to the holder vs {truth} ns waited before the releases ({waited} ns in all)"
    );
}

/// The task that awaits a 30 ms sleep, through `awaiting`.
#[inline(never)]
async fn sleepy_handler() -> Duration {
    let t = Instant::now();
    profile::sync::awaiting(tokio::time::sleep(Duration::from_millis(30))).await;
    t.elapsed()
}

#[test]
fn awaiting_charges_pending_time_to_the_awaiting_function() {
    let _s = common::serial();
    let rt = runtime();
    let (slept, _, _, before_block, block) = recording(|| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..8).map(|_| tokio::spawn(sleepy_handler())).collect();
            let mut total = Duration::ZERO;
            for t in tasks {
                total += t.await.unwrap();
            }
            total
        })
    });
    let slept = slept.as_nanos() as f64;
    let blocked = delay_in(&block, &before_block, "sleepy_handler");
    println!(
        "awaited {:.1} ms; block profile {:.1} ms in sleepy_handler",
        slept / 1e6,
        blocked / 1e6
    );
    assert!(
        (blocked / slept - 1.0).abs() <= 0.2,
        "block profile {blocked} ns vs awaited {slept} ns"
    );
    // The frames of the wrapper itself are trimmed: the innermost is the user's.
    let i = block.sample_type_index("delay").unwrap();
    let s = block
        .samples
        .iter()
        .filter(|s| s.values[i] > 0)
        .find(|s| {
            block
                .stack_names(s)
                .iter()
                .any(|n| n.contains("sleepy_handler"))
        })
        .expect("a sample in sleepy_handler");
    let names = block.stack_names(s);
    assert!(
        !names[0].starts_with("profile::"),
        "innermost frame is the crate's own: {names:?}"
    );
}

/// A thread that waits for a `poison::Mutex`: when it arrived, how long it waited.
#[inline(never)]
fn std_api_waiter(m: &profile::sync::poison::Mutex<u64>) -> (Instant, Duration) {
    let t = Instant::now();
    let mut g = m.lock().unwrap();
    let waited = t.elapsed();
    *g += 1;
    (t, waited)
}

/// A thread that holds it 5 ms; when it released it.
#[inline(never)]
fn std_api_holder(m: &profile::sync::poison::Mutex<u64>, held: &std::sync::Barrier) -> Instant {
    let mut g = m.lock().unwrap();
    held.wait();
    std::thread::sleep(Duration::from_millis(5));
    *g += 1;
    let released = Instant::now();
    drop(g);
    released
}

#[test]
fn std_api_mutex_waits_reach_both_profiles() {
    let _s = common::serial();
    let (waited, before_mutex, mutex, before_block, block) = recording(|| {
        let m = Arc::new(profile::sync::poison::Mutex::new(0u64));
        let mut waited = Duration::ZERO;
        let mut rounds = Vec::new();
        for _ in 0..10 {
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let holder = {
                let (m, b) = (m.clone(), barrier.clone());
                std::thread::spawn(move || std_api_holder(&m, &b))
            };
            barrier.wait(); // the holder has the lock
            let (arrived, w) = std_api_waiter(&m);
            waited += w;
            rounds.push((arrived, holder.join().unwrap()));
        }
        (waited, until_release(&rounds))
    });
    let (waited, truth) = waited;
    let waited = waited.as_nanos() as f64;
    let blocked = delay_in(&block, &before_block, "std_api_waiter");
    let held = delay_in(&mutex, &before_mutex, "std_api_holder");
    println!(
        "waited {:.1} ms ({:.1} ms before the releases); block {:.1} ms; mutex {:.1} ms",
        waited / 1e6,
        truth / 1e6,
        blocked / 1e6,
        held / 1e6
    );
    assert!(
        blocked >= waited * 0.8 && blocked <= waited * 1.05,
        "{blocked} vs {waited}"
    );
    // As above: waits up to each release.
    assert!(
        held >= truth * 0.8 && held <= waited * 1.05,
        "mutex {held} ns vs {truth} ns waited before the releases ({waited} ns in all)"
    );
}
