//! The CPU profile against the CPU time the kernel charged the process (getrusage): the
//! total within ±5% for 1 and 2 busy threads at 100, 250 and 1000 Hz; two identical busy
//! threads 50 ± 5% each; a 3:1 split 75 ± 5%; threads that live 20 ms are not lost. Its own file: it measures process-wide CPU
//! time, which other tests would disturb; the cases take turns.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod common;

use std::thread;
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use profile::{LabelValue, Profile};

fn process_cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// Profiles `threads` busy threads, each burning `each` of CPU, at `hz`; returns the
/// profile and the process CPU time used meanwhile.
fn run(threads: usize, hz: u32, each: Duration) -> (Profile, Duration) {
    let profiler = profile::runtime::cpu::start(hz).unwrap();
    let before = process_cpu();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            thread::Builder::new()
                .name(format!("busy-{i}"))
                .spawn(move || common::busy_loop(each))
                .unwrap()
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let used = process_cpu() - before;
    (profiler.stop().unwrap(), used)
}

fn total_ratio(p: &Profile, used: Duration) -> f64 {
    Duration::from_nanos(p.total("cpu") as u64).as_secs_f64() / used.as_secs_f64()
}

/// Each `busy-N` thread's share of the CPU samples of all busy threads.
fn thread_shares(p: &Profile) -> Vec<(String, f64)> {
    let cpu = p.sample_type_index("cpu").unwrap();
    let mut per: std::collections::BTreeMap<String, i64> = Default::default();
    for s in &p.samples {
        for l in &s.labels {
            if let (true, LabelValue::Str(name)) = (l.key == "thread_name", &l.value)
                && name.starts_with("busy-")
            {
                *per.entry(name.clone()).or_default() += s.values[cpu];
            }
        }
    }
    let all: i64 = per.values().sum();
    per.into_iter()
        .map(|(n, v)| (n, v as f64 / all as f64))
        .collect()
}

#[test]
fn totals_match_getrusage_within_five_percent_for_1_and_2_threads_at_100_250_1000_hz() {
    let _serial = common::serial();
    let mut failures = Vec::new();
    for threads in [1, 2] {
        for hz in [100, 250, 1000] {
            let (p, used) = run(threads, hz, Duration::from_millis(1500));
            let ratio = total_ratio(&p, used);
            println!(
                "{threads} thread(s) at {hz} Hz: sampled {:.3} s of {:.3} s CPU: ratio {ratio:.3}",
                p.total("cpu") as f64 / 1e9,
                used.as_secs_f64()
            );
            if !(0.95..=1.05).contains(&ratio) {
                failures.push(format!("{threads} threads at {hz} Hz: ratio {ratio:.3}"));
            }
        }
    }
    assert!(failures.is_empty(), "outside ±5%: {failures:?}");
}

#[test]
fn two_identical_busy_threads_get_half_each() {
    let _serial = common::serial();
    for hz in [100, 1000] {
        let (p, _) = run(2, hz, Duration::from_millis(1500));
        let shares = thread_shares(&p);
        println!("{hz} Hz: {shares:?}");
        assert_eq!(shares.len(), 2, "{shares:?}");
        for (name, share) in &shares {
            assert!(
                (0.45..=0.55).contains(share),
                "{name} got {:.1}% at {hz} Hz",
                share * 100.0
            );
        }
    }
}

#[test]
fn three_to_one_split_is_75_percent_within_5_points() {
    let _serial = common::serial();
    // 1000 signals (stack observations): a share is then within ±5 points with a wide
    // margin (sampling error sqrt(0.75 × 0.25 / 1000) = 1.4 points). Counted in signals,
    // not samples: on a busy machine the kernel delivers fewer signals than the rate asks
    // (each counting several sampling points at one stack), and 4 s gave ~160 of them.
    let profiler = profile::runtime::cpu::start(250).unwrap();
    common::until_signals(&profiler, 1000, 1, || {
        common::three_to_one(Duration::from_millis(480));
    });
    let p = profiler.stop().unwrap();
    let hot = common::samples_in(&p, "hot_three") as f64;
    let cold = common::samples_in(&p, "cold_one") as f64;
    let share = hot / (hot + cold);
    println!("hot_three {:.1}%", share * 100.0);
    assert!(
        (0.70..=0.80).contains(&share),
        "hot_three at {:.1}%",
        share * 100.0
    );
}

/// Runs `count` threads one after another, each burning `each` of CPU, under a CPU
/// profile at `hz`; returns profile total / process CPU.
fn short_threads(hz: u32, count: usize, each: Duration) -> f64 {
    let _serial = common::serial();
    let profiler = profile::runtime::cpu::start(hz).unwrap();
    let before = process_cpu();
    for i in 0..count {
        thread::Builder::new()
            .name(format!("short-{i}"))
            .spawn(move || common::busy_loop(each))
            .unwrap()
            .join()
            .unwrap();
    }
    let used = process_cpu() - before;
    let p = profiler.stop().unwrap();
    let ratio = total_ratio(&p, used);
    println!(
        "{count} threads of {each:?} at {hz} Hz: sampled {:.3} s of {:.3} s: ratio {ratio:.3}",
        p.total("cpu") as f64 / 1e9,
        used.as_secs_f64()
    );
    ratio
}

/// Threads far shorter than a period (2 ms at 100 Hz): only the process timer sees them,
/// and each of its signals stands for the process CPU since the previous one. Before, the
/// receiving thread's own CPU since its birth (less a period) was counted, which rounded
/// to nothing: 0.01 of these threads' CPU was in the profile.
#[test]
fn threads_shorter_than_a_period_are_counted() {
    let ratio = short_threads(100, 1000, Duration::from_millis(2));
    // ~200 process-timer samples: ±25% is 3.5 standard deviations.
    assert!((0.75..=1.25).contains(&ratio), "ratio {ratio:.3}");
}

#[test]
fn short_lived_threads_are_sampled_in_proportion() {
    let ratio = short_threads(250, 60, Duration::from_millis(20));
    // Their first milliseconds, before the manager gives them a timer, are covered by the
    // process-wide timer; without it this was 0.62, with the thread-CPU weighting 0.87
    // (docs/performance.md).
    assert!((0.85..=1.1).contains(&ratio), "ratio {ratio:.3}");
}

/// Continuous profiling cuts the running sampler every interval: the cuts and the final
/// stop together must hold the CPU the process used (±5%, the bar above), each cut its
/// own interval (each starts where the previous ended).
#[test]
fn cuts_of_a_running_sampler_lose_nothing_and_count_nothing_twice() {
    let _serial = common::serial();
    let mut profiler = profile::runtime::cpu::start(250).unwrap();
    let before = process_cpu();
    let workers: Vec<_> = (0..2)
        .map(|i| {
            thread::Builder::new()
                .name(format!("busy-{i}"))
                .spawn(move || common::busy_loop(Duration::from_millis(1500)))
                .unwrap()
        })
        .collect();
    let mut cuts = Vec::new();
    while workers.iter().any(|w| !w.is_finished()) {
        thread::sleep(Duration::from_millis(20));
        cuts.push(profiler.cut().unwrap());
    }
    for w in workers {
        w.join().unwrap();
    }
    let used = process_cpu() - before;
    cuts.push(profiler.stop().unwrap());
    let sampled: i64 = cuts.iter().map(|p| p.total("cpu")).sum();
    let ratio = sampled as f64 / used.as_nanos() as f64;
    println!(
        "{} cuts: sampled {:.3} s of {:.3} s CPU: ratio {ratio:.3}",
        cuts.len(),
        sampled as f64 / 1e9,
        used.as_secs_f64()
    );
    assert!(cuts.len() > 5, "only {} cuts", cuts.len());
    assert!((0.95..=1.05).contains(&ratio), "ratio {ratio:.3}");
    for pair in cuts.windows(2) {
        let end = pair[0].time_nanos + pair[0].duration_nanos;
        assert_eq!(
            pair[1].time_nanos, end,
            "each cut starts where the previous ended"
        );
    }
}
