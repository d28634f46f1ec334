//! `profile::criterion::Profiler` (feature `criterion`): criterion in profile mode (what
//! `cargo bench -- --profile-time N` selects) writes `cpu.pb.gz` into each benchmark's
//! profile directory, with the benchmark's own function on top.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

/// One CPU profiler per process: the tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[inline(never)]
fn mix_numbers(n: u64) -> u64 {
    (0..n).fold(0x9e37_79b9u64, |a, i| {
        black_box(a.rotate_left(7) ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d))
    })
}

#[test]
fn profile_mode_writes_one_cpu_profile_per_benchmark() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let mut c = Criterion::default()
        .output_directory(out.path())
        .with_profiler(profile::criterion::Profiler::new().quiet())
        .profile_time(Some(Duration::from_secs(1)));
    c.bench_function("mix_numbers", |b| b.iter(|| mix_numbers(black_box(10_000))));
    c.bench_function("mix_numbers_small", |b| {
        b.iter(|| mix_numbers(black_box(100)))
    });
    for id in ["mix_numbers", "mix_numbers_small"] {
        let path = out.path().join(id).join("profile").join("cpu.pb.gz");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let p = profile::Profile::decode(&bytes).unwrap();
        let i = p.sample_type_index("samples").unwrap();
        let total: i64 = p.samples.iter().map(|s| s.values[i]).sum();
        let in_bench: i64 = p
            .samples
            .iter()
            .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with("mix_numbers")))
            .map(|s| s.values[i])
            .sum();
        // Criterion profiles for 1 s of *wall* time (its choice, not ours): at 100 Hz up to
        // 100 samples, fewer on a busy machine (48 under four busy loops), so only "some";
        // nearly all of them in the benchmark's function.
        assert!(total >= 10, "{id}: {total} samples");
        assert!(
            in_bench * 10 >= total * 8,
            "{id}: {in_bench} of {total} samples in mix_numbers"
        );
    }
}

#[test]
fn start_stop_errors_are_clear() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = profile::criterion::Profiler::new();
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        p.stop(dir.path()),
        Err(profile::Error::NotRunning { .. })
    ));
    assert!(matches!(
        profile::criterion::Profiler::with_frequency(0),
        Err(profile::Error::InvalidFrequency { .. })
    ));
    // A file where the directory should be: an error naming it, no profile.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    p.start().unwrap();
    let err = p.stop(&file).unwrap_err().to_string();
    assert!(err.contains("not-a-dir"), "{err}");
}
