//! A panic while a guard is live still leaves a complete, valid profile: the guard is
//! dropped during unwinding and writes the file.

#![cfg(target_os = "linux")]

mod common;

#[test]
fn panic_while_guard_is_live_writes_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    let result = std::panic::catch_unwind(move || {
        let _guard = common::guard_in(&out);
        common::busy_until_cpu_signals(20);
        panic!("the workload failed");
    });
    assert!(result.is_err(), "the closure panicked");
    let path = dir.path().join("cpu.pb.gz");
    let p = profile::Profile::decode(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        common::samples_in(&p, "busy_loop") > 0,
        "the work before the panic is in the profile"
    );
    // The slot was released: a new guard can start.
    let g = common::guard_in(dir.path());
    g.stop().unwrap();
}
