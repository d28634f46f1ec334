//! A small CPU-bound program profiled by a guard.
//!
//! Two named functions share the work about 3:1 (`hot_three` spins three times as long as
//! `cold_one`); the profile written to `./profiles/cpu.pb.gz` should show that split.
//!
//! ```text
//! cargo run --release --example cpu
//! go tool pprof -top ./profiles/cpu.pb.gz
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Spins for `d` of wall time doing arithmetic the optimizer cannot remove. Inlined into
/// each caller, so samples land in `hot_three` and `cold_one` themselves (a call in tail
/// position would become a jump and hide the caller's frame).
#[inline(always)]
fn spin(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while start.elapsed() < d {
        for _ in 0..1000 {
            x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
    }
    x
}

/// Three quarters of the work.
#[inline(never)]
fn hot_three() -> u64 {
    spin(Duration::from_millis(30))
}

/// One quarter of the work.
#[inline(never)]
fn cold_one() -> u64 {
    spin(Duration::from_millis(10))
}

fn main() -> Result<(), profile::Error> {
    let guard = profile::start()
        .path("./profiles")
        .cpu()
        .no_shutdown_hook()
        .build()?;
    let mut acc = 0u64;
    // 4 s: ~400 samples at 100 Hz, so the split shows within a few points.
    for _ in 0..100 {
        acc ^= hot_three();
        acc ^= cold_one();
    }
    black_box(acc);
    let path = guard.stop()?;
    println!("CPU profile written to {}", path.display());
    println!("Open it with:");
    println!("  go tool pprof -top {}", path.display());
    println!("  go tool pprof -http=:8080 {}", path.display());
    Ok(())
}
