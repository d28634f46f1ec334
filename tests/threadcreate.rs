//! Thread-creation profiles (cargo feature `threadcreate`; CI runs
//! `cargo test --features threadcreate --test threadcreate`): the stacks that created
//! threads, counted exactly, readable by `go tool pprof`.

use std::hint::black_box;
use std::thread;

mod common;

#[inline(never)]
fn spawn_pool_a(n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|i| thread::spawn(move || black_box(i)))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    black_box(n);
}

#[inline(never)]
fn spawn_pool_b(n: usize) {
    for i in 0..n {
        thread::Builder::new()
            .name("pool-b".into())
            .spawn(move || black_box(i))
            .unwrap()
            .join()
            .unwrap();
    }
    black_box(n);
}

fn created_in(p: &profile::Profile, function: &str) -> i64 {
    p.samples
        .iter()
        .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with(function)))
        .map(|s| s.values[0])
        .sum()
}

#[test]
fn counts_thread_creations_by_stack_and_writes_a_file_go_reads() {
    let _serial = common::serial();
    let before = profile::runtime::threadcreate::profile().unwrap();
    spawn_pool_a(5);
    spawn_pool_b(2);
    let p = profile::runtime::threadcreate::profile().unwrap();
    assert_eq!(p.sample_types[0].ty, "threadcreate");
    assert_eq!(
        created_in(&p, "spawn_pool_a") - created_in(&before, "spawn_pool_a"),
        5
    );
    assert_eq!(
        created_in(&p, "spawn_pool_b") - created_in(&before, "spawn_pool_b"),
        2
    );
    // The interposer's own frames are cut: no sample starts inside this crate.
    for s in &p.samples {
        let names = p.stack_names(s);
        assert!(
            !names.first().is_some_and(|n| n.starts_with("profile::")),
            "{names:?}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start()
        .path(dir.path())
        .threadcreate()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    spawn_pool_a(1);
    let file = guard.stop().unwrap();
    assert_eq!(file, dir.path().join("threadcreate.pb.gz"));
    let written = common::decode(&file);
    assert!(created_in(&written, "spawn_pool_a") >= 6);

    let Some(go) = common::go() else { return };
    let stdout = common::pprof(go, &["-top"], &file);
    assert!(stdout.contains("Type: threadcreate"), "{stdout}");
    assert!(stdout.contains("spawn_pool_a"), "{stdout}");
}
