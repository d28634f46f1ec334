//! Side by side, in one run: this crate's CPU profiler and the `pprof` crate (the sampler
//! it replaced) on the same workload — 1 and 2 busy threads at 100, 250 and 1000 Hz — each
//! profile's CPU total against the CPU time getrusage charged, and the two threads'
//! shares of the samples.
//!
//! Then short-lived threads (ours only): threads of 0.5–50 ms, run one after another,
//! at 100, 250 and 1000 Hz, the profile's total against getrusage.
//!
//! ```text
//! cargo bench --bench cpu_accuracy
//! CPU_ACCURACY_ONLY=short cargo bench --bench cpu_accuracy   # the short-thread table only
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

const SECONDS_PER_THREAD: f64 = 1.5;

fn process_cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

#[inline(never)]
fn busy(d: Duration) -> u64 {
    let end = thread_cpu() + d;
    let mut x = 1u64;
    while thread_cpu() < end {
        for _ in 0..2000 {
            x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
    }
    x
}

/// Runs the workload; returns the CPU time the process used meanwhile.
fn workload(threads: usize) -> Duration {
    let before = process_cpu();
    std::thread::scope(|s| {
        for i in 0..threads {
            std::thread::Builder::new()
                .name(format!("busy-{i}"))
                .spawn_scoped(s, || busy(Duration::from_secs_f64(SECONDS_PER_THREAD)))
                .unwrap();
        }
    });
    process_cpu() - before
}

/// (profile total / CPU used, the busy threads' shares).
fn ours(threads: usize, hz: u32) -> (f64, Vec<f64>) {
    let profiler = profile::runtime::cpu::start(hz).unwrap();
    let used = workload(threads);
    let p = profiler.stop().unwrap();
    let cpu = p.sample_type_index("cpu").unwrap();
    let mut shares = vec![0i64; threads];
    for s in &p.samples {
        for l in &s.labels {
            if let (true, profile::LabelValue::Str(n)) = (l.key == "thread_name", &l.value)
                && let Some(i) = n
                    .strip_prefix("busy-")
                    .and_then(|i| i.parse::<usize>().ok())
            {
                shares[i] += s.values[cpu];
            }
        }
    }
    let all: i64 = shares.iter().sum();
    (
        p.total("cpu") as f64 / 1e9 / used.as_secs_f64(),
        shares
            .iter()
            .map(|&v| v as f64 / all.max(1) as f64)
            .collect(),
    )
}

fn pprof_crate(threads: usize, hz: u32) -> (f64, Vec<f64>) {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(hz as i32)
        .build()
        .unwrap();
    let used = workload(threads);
    let report = guard.report().build().unwrap();
    drop(guard);
    let mut shares = vec![0isize; threads];
    let mut total = 0isize;
    for (frames, &count) in &report.data {
        total += count;
        if let Some(i) = frames
            .thread_name
            .strip_prefix("busy-")
            .and_then(|i| i.parse::<usize>().ok())
        {
            shares[i] += count;
        }
    }
    let all: isize = shares.iter().sum();
    (
        total as f64 / f64::from(hz) / used.as_secs_f64(),
        shares
            .iter()
            .map(|&v| v as f64 / all.max(1) as f64)
            .collect(),
    )
}

fn fmt_shares(s: &[f64]) -> String {
    s.iter()
        .map(|v| format!("{:.1}%", v * 100.0))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Runs `count` threads one after another, each burning `each` of CPU, under our
/// profiler at `hz`: profile total / getrusage.
fn short_threads(hz: u32, each: Duration, count: usize) -> f64 {
    let p = profile::runtime::cpu::start(hz).unwrap();
    let before = process_cpu();
    for _ in 0..count {
        std::thread::spawn(move || busy(each)).join().unwrap();
    }
    let used = process_cpu() - before;
    let profile = p.stop().unwrap();
    profile.total("cpu") as f64 / used.as_nanos() as f64
}

fn main() {
    let start = Instant::now();
    if std::env::var("CPU_ACCURACY_ONLY").as_deref() != Ok("short") {
        side_by_side();
    }
    println!("short-lived threads, one after another (~2 s of CPU per cell): profile / getrusage");
    println!("thread CPU      100 Hz   250 Hz  1000 Hz");
    for ms in [0.5f64, 2.0, 5.0, 20.0, 50.0] {
        let each = Duration::from_secs_f64(ms / 1000.0);
        let count = (2000.0 / ms) as usize;
        let cells: Vec<String> = [100u32, 250, 1000]
            .iter()
            .map(|&hz| format!("{:>7.3}", short_threads(hz, each, count)))
            .collect();
        println!("{ms:>7.1} ms   {}", cells.join("  "));
    }
    println!("({:.0} s)", start.elapsed().as_secs_f64());
}

fn side_by_side() {
    println!(
        "threads  Hz    ours: total/getrusage  shares        pprof crate: total/getrusage  shares"
    );
    for threads in [1, 2] {
        for hz in [100u32, 250, 1000] {
            let (a, sa) = ours(threads, hz);
            let (b, sb) = pprof_crate(threads, hz);
            println!(
                "{threads:7} {hz:5}    {a:>6.3}               {:<13} {b:>6.3}                        {}",
                fmt_shares(&sa),
                fmt_shares(&sb)
            );
        }
    }
}
