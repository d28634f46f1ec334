//! Wall-clock profiles: a thread that sleeps half the time and computes half the time
//! shows each half at ~50%; the guard's `clock.pb.gz` and `threads.pb.gz` are read by
//! `go tool pprof` with no warnings.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use profile::{LabelValue, Profile};

mod common;

/// Sleeps for `d`.
#[inline(never)]
fn nap(d: Duration) -> Duration {
    let start = Instant::now();
    thread::sleep(d);
    black_box(start.elapsed())
}

fn half_and_half(stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::Builder::new()
        .name("t-half".into())
        .spawn(move || {
            let mut acc = 0;
            while !stop.load(Ordering::Relaxed) {
                acc ^= nap(Duration::from_millis(50)).as_nanos() as u64;
                acc ^= common::crunch(Duration::from_millis(50));
            }
            acc
        })
        .unwrap()
}

fn is_thread(p: &Profile, s: &profile::Sample, name: &str) -> bool {
    let _ = p;
    s.labels
        .iter()
        .any(|l| l.key == "thread_name" && l.value == LabelValue::Str(name.into()))
}

/// Time of thread `name` with a frame ending in `function`, as a fraction of the thread's.
fn share(p: &Profile, name: &str, function: &str) -> f64 {
    let t = p.sample_type_index("time").expect("time/nanoseconds");
    let (mut part, mut all) = (0i64, 0i64);
    for s in p.samples.iter().filter(|s| is_thread(p, s, name)) {
        all += s.values[t];
        if p.stack_names(s).iter().any(|n| n.ends_with(function)) {
            part += s.values[t];
        }
    }
    assert!(all > 0, "no samples of {name}");
    part as f64 / all as f64
}

#[test]
fn sleeping_half_and_computing_half_shows_each_at_half() {
    let _serial = common::serial();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = half_and_half(stop.clone());
    let profiler = profile::runtime::clock::start(99).unwrap();
    thread::sleep(Duration::from_secs(3));
    let p = profiler.stop().unwrap();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();

    assert_eq!(p.sample_types[0].ty, "samples");
    assert_eq!(p.sample_types[1].ty, "time");
    assert_eq!(p.sample_types[1].unit, "nanoseconds");
    let period = p.period_type.as_ref().unwrap();
    assert_eq!(
        (period.ty.as_str(), period.unit.as_str()),
        ("wall", "nanoseconds")
    );
    assert_eq!(p.period, 1_000_000_000 / 99);

    let (sleeping, computing) = (share(&p, "t-half", "nap"), share(&p, "t-half", "crunch"));
    eprintln!("t-half: nap {sleeping:.3}, crunch {computing:.3}");
    assert!((0.40..=0.60).contains(&sleeping), "nap at {sleeping:.3}");
    assert!(
        (0.40..=0.60).contains(&computing),
        "crunch at {computing:.3}"
    );

    // Every sample carries the thread's name and id; the thread's time adds up to the
    // wall time it was sampled for (3 s, give or take its start and a round).
    for s in &p.samples {
        assert!(s.labels.iter().any(|l| l.key == "thread_name"));
        assert!(s.labels.iter().any(|l| l.key == "thread_id"));
    }
    let t = p.sample_type_index("time").unwrap();
    let thread_time: i64 = p
        .samples
        .iter()
        .filter(|s| is_thread(&p, s, "t-half"))
        .map(|s| s.values[t])
        .sum();
    let secs = thread_time as f64 / 1e9;
    assert!(
        (2.7..=3.3).contains(&secs),
        "t-half time {secs:.2} s of 3 s"
    );
    // The sampler does not sample itself.
    assert!(!p.samples.iter().any(|s| is_thread(&p, s, "profile-clock")));
}

#[test]
fn a_second_clock_profiler_is_refused_and_bad_rates_are_errors() {
    let _serial = common::serial();
    for hz in [0, 1001] {
        let e = profile::runtime::clock::start(hz).unwrap_err();
        assert!(
            matches!(
                e,
                profile::Error::InvalidFrequency {
                    what: "wall-clock",
                    ..
                }
            ),
            "{e}"
        );
        let e = profile::start().clock().frequency(hz).build().unwrap_err();
        assert!(e.to_string().contains(&hz.to_string()), "{e}");
        // It says which sampler (it said "CPU" for the clock too).
        assert!(
            e.to_string().contains("wall-clock sampling frequency"),
            "{e}"
        );
    }
    let first = profile::runtime::clock::start(50).unwrap();
    let e = profile::runtime::clock::start(50).unwrap_err();
    assert!(e.to_string().contains("clock"), "{e}");
    drop(first);
    // Dropped: the next start works.
    profile::runtime::clock::start(50).unwrap().stop().unwrap();
}

#[test]
fn guards_write_clock_and_threads_files_that_go_tool_pprof_reads() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = half_and_half(stop.clone());

    let clock = profile::start()
        .path(dir.path())
        .clock()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    thread::sleep(Duration::from_millis(600));
    let clock_file = clock.stop().unwrap();
    assert_eq!(clock_file, dir.path().join("clock.pb.gz"));

    let threads = profile::start()
        .path(dir.path())
        .threads()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    let threads_file = threads.stop().unwrap();
    assert_eq!(threads_file, dir.path().join("threads.pb.gz"));
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();

    let p = common::decode(&clock_file);
    assert!(share(&p, "t-half", "nap") > 0.0);
    let p = common::decode(&threads_file);
    assert_eq!(p.sample_types[0].ty, "goroutine");
    assert!(p.total("goroutine") >= 2);

    let Some(go) = common::go() else { return };
    let top = common::pprof(go, &["-top"], &clock_file);
    assert!(top.contains("Type: time"), "{top}");
    assert!(top.contains("nap") && top.contains("crunch"), "{top}");
    let top = common::pprof(go, &["-top"], &threads_file);
    assert!(top.contains("Type: goroutine"), "{top}");
    assert!(
        top.contains("t-half") || top.contains("clock_profile::"),
        "{top}"
    );
    // Labels are readable: filter on the thread's name.
    let text = common::pprof(
        go,
        &["-traces", "-tagfocus", "thread_name=t-half"],
        &threads_file,
    );
    assert!(text.contains("thread_id"), "{text}");
}

/// Polls `f` to completion on this thread.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn clock_samples_carry_the_labels_of_closures_and_futures() {
    use profile::labels::LabelExt;
    let _serial = common::serial();
    let stop = Arc::new(AtomicBool::new(false));
    let napper = |name: &str, labelled_future: bool| {
        let stop = stop.clone();
        thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let naps = || {
                    while !stop.load(Ordering::Relaxed) {
                        nap(Duration::from_millis(5));
                    }
                };
                if labelled_future {
                    block_on(async { naps() }.with_labels(&[("endpoint", "/future")]));
                } else {
                    profile::labels::with(&[("endpoint", "/closure")], naps);
                }
            })
            .unwrap()
    };
    let threads = [napper("t-closure", false), napper("t-future", true)];
    let profiler = profile::runtime::clock::start(100).unwrap();
    // A count of rounds, not a window of time: each round samples both threads once.
    let deadline = Instant::now() + Duration::from_secs(60); // a hang check only
    while profile::runtime::clock::stats().rounds < 40 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let p = profiler.stop().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let t = p.sample_type_index("time").unwrap();
    for (thread, endpoint) in [("t-closure", "/closure"), ("t-future", "/future")] {
        let (mut labelled, mut all) = (0i64, 0i64);
        for s in p.samples.iter().filter(|s| is_thread(&p, s, thread)) {
            all += s.values[t];
            if s.labels
                .iter()
                .any(|l| l.key == "endpoint" && l.value == LabelValue::Str(endpoint.into()))
            {
                labelled += s.values[t];
            }
        }
        assert!(all > 0, "no samples of {thread}");
        // The labels are set before the first nap and end after the last one.
        assert!(
            labelled as f64 >= 0.9 * all as f64,
            "{thread}: {labelled} of {all} ns labelled endpoint={endpoint}"
        );
    }
}

/// Cuts of a running clock profiler (continuous profiling): a thread that exists
/// throughout is in every cut, and its time over the cuts and the final stop adds up to
/// the time sampled (each round is in one cut only).
#[test]
fn cuts_of_a_running_clock_profiler_add_up_to_the_time_sampled() {
    let _serial = common::serial();
    let stop = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let stop = stop.clone();
        thread::Builder::new()
            .name("t-sleeper".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    nap(Duration::from_millis(5));
                }
            })
            .unwrap()
    };
    let mut profiler = profile::runtime::clock::start(99).unwrap();
    let mut cuts = Vec::new();
    for _ in 0..12 {
        thread::sleep(Duration::from_millis(100));
        cuts.push(profiler.cut().unwrap());
    }
    cuts.push(profiler.stop().unwrap());
    stop.store(true, Ordering::Relaxed);
    sleeper.join().unwrap();
    let window: i64 = cuts.iter().map(|p| p.duration_nanos).sum();
    let mut sleeper_time = 0i64;
    for p in &cuts {
        let t = p.sample_type_index("time").unwrap();
        let mine: i64 = p
            .samples
            .iter()
            .filter(|s| is_thread(p, s, "t-sleeper"))
            .map(|s| s.values[t])
            .sum();
        sleeper_time += mine;
    }
    let ratio = sleeper_time as f64 / window as f64;
    println!("t-sleeper: {sleeper_time} ns over cuts covering {window} ns: {ratio:.3}");
    assert!((0.85..=1.05).contains(&ratio), "ratio {ratio:.3}");
    for pair in cuts.windows(2) {
        assert_eq!(
            pair[1].time_nanos,
            pair[0].time_nanos + pair[0].duration_nanos,
            "each cut starts where the previous ended"
        );
    }
}
