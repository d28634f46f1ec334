//! Profiling switched on and off from outside: each `kill -USR1 PID` starts a CPU profile,
//! the next one writes it (`./profiles/cpu-1.pb.gz`, `cpu-2.pb.gz`, ...). Ctrl-C ends the
//! program (a capture still running is written first).
//!
//! ```text
//! cargo run --release --example toggle
//! kill -USR1 <pid>; sleep 2; kill -USR1 <pid>
//! go tool pprof -top ./profiles/cpu-1.pb.gz
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The workload: some arithmetic in a named function.
#[inline(never)]
fn crunch(d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut x = 1u64;
    while Instant::now() < end {
        for _ in 0..1000 {
            x = black_box(x.rotate_left(7) ^ x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
    }
    x
}

fn main() -> Result<(), profile::Error> {
    let _toggle = profile::toggle::on_signal(profile::toggle::SIGUSR1, || {
        profile::start().path("./profiles").cpu()
    })?;
    let pid = std::process::id();
    println!("pid {pid}: start and stop a CPU profile with");
    println!("  kill -USR1 {pid}");
    println!("Ctrl-C to quit.");
    let mut acc = 0;
    loop {
        acc ^= crunch(Duration::from_millis(50));
        black_box(acc);
    }
}
