//! A criterion benchmark with `profile::criterion::Profiler`: the `-cpuprofile` of Go
//! benchmarks.
//!
//! ```text
//! cargo bench --features criterion --bench criterion_profiled -- --profile-time 5
//! profile-report top target/criterion/checksum/profile/cpu.pb.gz
//! ```
//!
//! Without `--profile-time`, criterion measures as usual and the profiler is not called.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

#[inline(never)]
fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[inline(never)]
fn sort_copy(data: &[u32]) -> Vec<u32> {
    let mut v = data.to_vec();
    v.sort_unstable();
    v
}

fn benches(c: &mut Criterion) {
    let bytes: Vec<u8> = (0..64 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let words: Vec<u32> = (0..10_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    c.bench_function("checksum", |b| b.iter(|| checksum(black_box(&bytes))));
    c.bench_function("sort_copy", |b| b.iter(|| sort_copy(black_box(&words))));
}

fn profiled() -> Criterion {
    Criterion::default().with_profiler(profile::criterion::Profiler::new())
}

criterion_group! {
    name = group;
    config = profiled();
    targets = benches
}
criterion_main!(group);
