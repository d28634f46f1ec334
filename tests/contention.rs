//! Mutex and block profiles from `profile::sync` locks: attribution to the holder and to
//! the waiters, totals against wall-clock waits, condvar and `blocking` waits, the guard
//! modes and `go tool pprof`. The sampling settings are process-wide: tests take turns.

#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use profile::Profile;
use profile::sync::{Condvar, Mutex, MutexGuard, RwLock};

/// Sum of `delay` over samples whose stack contains a function ending in `f`.
fn delay_in(p: &Profile, f: &str) -> i64 {
    let i = p.sample_type_index("delay").unwrap();
    p.samples
        .iter()
        .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with(f)))
        .map(|s| s.values[i])
        .sum()
}

/// The waiters' function: blocks in `lock()`.
#[inline(never)]
fn wait_for_lock(m: &Mutex<u64>) -> MutexGuard<'_, u64> {
    m.lock()
}

/// The holder's function: keeps the lock 2 ms, then releases it.
#[inline(never)]
fn hold_lock(mut g: MutexGuard<'_, u64>) {
    std::thread::sleep(Duration::from_millis(2));
    *g += 1;
    drop(g);
}

#[test]
fn delay_is_charged_to_the_holder_and_waits_to_the_waiters() {
    let _s = common::serial();
    let before_mutex = profile::runtime::mutex::profile().unwrap();
    let before_block = profile::runtime::block::profile().unwrap();
    let prev_fraction = profile::runtime::mutex::set_fraction(1);
    let prev_rate = profile::runtime::block::set_rate(1);

    let m = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                let mut waited = Duration::ZERO;
                for _ in 0..20 {
                    let t = Instant::now();
                    let g = wait_for_lock(&m);
                    waited += t.elapsed();
                    hold_lock(g);
                }
                waited
            })
        })
        .collect();
    let waited: Duration = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(*m.lock(), 80);

    let mutex = profile::runtime::mutex::profile().unwrap();
    let block = profile::runtime::block::profile().unwrap();
    profile::runtime::mutex::set_fraction(prev_fraction);
    profile::runtime::block::set_rate(prev_rate);

    let waited = waited.as_nanos() as f64;
    let mutex_total = (mutex.total("delay") - before_mutex.total("delay")) as f64;
    let held = (delay_in(&mutex, "hold_lock") - delay_in(&before_mutex, "hold_lock")) as f64;
    let blocked =
        (delay_in(&block, "wait_for_lock") - delay_in(&before_block, "wait_for_lock")) as f64;
    println!(
        "waited {:.1} ms; mutex profile {:.1} ms ({:.1} ms in hold_lock); block profile {:.1} ms in wait_for_lock",
        waited / 1e6,
        mutex_total / 1e6,
        held / 1e6,
        blocked / 1e6
    );
    assert!(waited > 50e6, "the threads contended ({waited} ns)");
    assert!(
        held / mutex_total >= 0.9,
        "hold_lock has {:.0}% of the mutex delay",
        100.0 * held / mutex_total
    );
    assert!(
        (blocked / waited - 1.0).abs() <= 0.2,
        "block {blocked} vs waited {waited}"
    );
    assert!(
        (held / waited - 1.0).abs() <= 0.2,
        "mutex {held} vs waited {waited}"
    );
    // The waiters' stacks, not the holder's, are in the block profile.
    assert_eq!(
        delay_in(&block, "hold_lock"),
        delay_in(&before_block, "hold_lock")
    );
    let types: Vec<_> = mutex
        .sample_types
        .iter()
        .map(|t| format!("{}/{}", t.ty, t.unit))
        .collect();
    assert_eq!(types, ["contentions/count", "delay/nanoseconds"]);
    let pt = mutex.period_type.clone().unwrap();
    assert_eq!(
        (pt.ty.as_str(), pt.unit.as_str(), mutex.period),
        ("contentions", "count", 1)
    );
}

#[inline(never)]
fn wait_on_condvar(pair: &(Mutex<bool>, Condvar)) {
    let mut ready = pair.0.lock();
    while !*ready {
        pair.1.wait(&mut ready);
    }
}

#[inline(never)]
fn wait_on_channel(rx: &std::sync::mpsc::Receiver<u32>) -> u32 {
    profile::sync::blocking(|| rx.recv()).unwrap()
}

#[test]
fn condvar_waits_and_blocking_calls_are_in_the_block_profile() {
    let _s = common::serial();
    let prev = profile::runtime::block::set_rate(1);
    let before = profile::runtime::block::profile().unwrap();

    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let notifier = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(60));
        *p2.0.lock() = true;
        p2.1.notify_all();
    });
    wait_on_condvar(&pair);
    notifier.join().unwrap();

    let (tx, rx) = std::sync::mpsc::channel();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(60));
        tx.send(7).unwrap();
    });
    assert_eq!(wait_on_channel(&rx), 7);
    sender.join().unwrap();

    let after = profile::runtime::block::profile().unwrap();
    profile::runtime::block::set_rate(prev);
    let cv = delay_in(&after, "wait_on_condvar") - delay_in(&before, "wait_on_condvar");
    let ch = delay_in(&after, "wait_on_channel") - delay_in(&before, "wait_on_channel");
    assert!(cv >= 40_000_000, "condvar wait {cv} ns");
    assert!(ch >= 40_000_000, "blocking() wait {ch} ns");
}

#[inline(never)]
fn contend_rwlock(l: &RwLock<Vec<u32>>) {
    for i in 0..20 {
        let mut w = l.write();
        std::thread::sleep(Duration::from_millis(1));
        w.push(i);
    }
}

#[test]
fn guard_modes_write_mutex_and_block_files_that_go_tool_pprof_reads() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let g = profile::start()
        .mutex()
        .path(dir.path())
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    run_guarded(g, dir.path().join("mutex.pb.gz"));
    let g = profile::start()
        .block()
        .path(dir.path())
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    run_guarded(g, dir.path().join("block.pb.gz"));
    // Settings restored.
    assert_eq!(profile::runtime::mutex::fraction(), 0);
    assert_eq!(profile::runtime::block::rate(), 0);

    let Some(go) = common::go() else { return };
    for file in ["mutex.pb.gz", "block.pb.gz"] {
        let out = std::process::Command::new(go)
            .args(["tool", "pprof", "-top"])
            .arg(dir.path().join(file))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{file}: {stderr}"
        );
        assert!(stdout.contains("Type: delay"), "{file}: {stdout}");
        assert!(stdout.contains("contend_rwlock"), "{file}: {stdout}");
    }
}

fn run_guarded(guard: profile::Guard, expected: std::path::PathBuf) {
    let l = Arc::new(RwLock::new(Vec::new()));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || contend_rwlock(&l))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(l.read().len(), 60);
    let path = guard.stop().unwrap();
    assert_eq!(path, expected);
    let p = common::decode(&path);
    assert!(delay_in(&p, "contend_rwlock") > 0, "{path:?}");
}

#[test]
fn api_matches_parking_lot() {
    static COUNTER: Mutex<u32> = Mutex::new(0);
    *COUNTER.lock() += 1;
    let mut m = Mutex::new(vec![1]);
    m.get_mut().push(2);
    assert!(m.try_lock().is_some());
    assert!(m.try_lock_for(Duration::from_millis(1)).is_some());
    assert_eq!(format!("{m:?}"), "Mutex { data: [1, 2] }");
    assert_eq!(m.into_inner(), vec![1, 2]);
    let d: Mutex<u8> = Mutex::default();
    let g = d.lock();
    assert!(d.try_lock().is_none());
    drop(g);
    let r = RwLock::new(5);
    {
        let a = r.read();
        let b = r.read();
        assert_eq!(*a + *b, 10);
        assert!(r.try_write().is_none());
    }
    *r.write() = 6;
    assert_eq!(r.into_inner(), 6);
    let cv = Condvar::new();
    let m = Mutex::new(());
    let mut g = m.lock();
    assert!(cv.wait_for(&mut g, Duration::from_millis(5)).timed_out());
}
