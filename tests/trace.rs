//! Execution traces: spans nested across three named threads → the JSON parses, every
//! begin has its end in order on each thread, thread names are there, timestamps never
//! go back on a thread; CPU samples appear as instant events. Needs the `trace` feature
//! (CI: `cargo test --features trace --test trace`).
#![cfg(target_os = "linux")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

/// Spins for `ms` of this thread's CPU time, reading the thread's CPU clock (a system
/// call) only every few hundred microseconds: a sample's innermost frame is then this
/// function, not `clock_gettime`. (On a busy machine a thread is preempted, and its
/// CPU-timer signal delivered, at its next return from the kernel, which over-weights
/// system calls: two samples of a thread once both landed in `clock_gettime` inside
/// `common::busy_loop`.)
#[inline(never)]
fn leaf_work(ms: u64) -> u64 {
    let end = common::thread_cpu() + Duration::from_millis(ms);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while common::thread_cpu() < end {
        for _ in 0..200_000 {
            x = std::hint::black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
    }
    x
}

fn work(depth: u32) {
    let span = tracing::info_span!("level", depth, kind = "nested");
    let _enter = span.enter();
    if depth == 0 {
        // 4 leaves × 100 ms of CPU a thread: on a machine whose cores are busy with
        // other work the kernel delivers 40–60 CPU-timer signals per CPU-second (see
        // scripts/cpu_timer_check.c), so ~20 a thread; with 30 ms leaves a thread got
        // none in about one run of ten.
        leaf_work(100);
        tracing::info!(result = 42, "leaf done");
    } else {
        work(depth - 1);
        work(depth - 1);
    }
}

/// One trace at a time per process: the tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `work(2)` on threads alpha, beta and gamma, each with `dispatch` as its default
/// subscriber (None: the global one).
fn on_three_threads(dispatch: Option<&tracing::Dispatch>) {
    let threads: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| {
            let d = dispatch.cloned();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    // Labels reach the trace's CPU samples as their args.
                    profile::labels::with(&[("role", name)], || match d {
                        Some(d) => tracing::dispatcher::with_default(&d, || work(2)),
                        None => work(2),
                    })
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A guard's trace of `on_three_threads(dispatch)`, parsed.
fn traced(dispatch: Option<&tracing::Dispatch>) -> Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let guard = profile::start()
        .path(dir.path())
        .trace()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    on_three_threads(dispatch);
    let path = guard.stop().unwrap();
    assert_eq!(path, dir.path().join("trace.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("JSON")
}

#[test]
fn nested_spans_on_three_threads_make_a_well_formed_trace() {
    // The global subscriber: the one the trace installs when the program has none
    // (`trace::registry()`), or another test's (also one of ours).
    check(&traced(None));
}

#[test]
fn the_layer_on_a_users_subscriber_records_the_same() {
    use tracing_subscriber::layer::SubscriberExt;
    let d = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
            .with(profile::trace::layer()),
    );
    check(&traced(Some(&d)));
}

#[test]
fn the_recording_registry_under_a_users_layers_records_the_same() {
    use tracing_subscriber::layer::SubscriberExt;
    let d = tracing::Dispatch::new(
        profile::trace::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
    );
    check(&traced(Some(&d)));
}

/// Every begin has its end in order on each named thread, timestamps never go back,
/// fields are there, CPU samples land in the work.
fn check(trace: &Value) {
    let events = trace["traceEvents"].as_array().expect("traceEvents");

    let mut names: HashMap<i64, String> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
    {
        names.insert(
            e["tid"].as_i64().unwrap(),
            e["args"]["name"].as_str().unwrap().to_owned(),
        );
    }
    for name in ["alpha", "beta", "gamma"] {
        let tid = names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("thread {name} not named: {names:?}"));
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["tid"].as_i64() == Some(tid) && e["ph"] != "M")
            .collect();
        // Begins and ends nest properly, in order; timestamps never go back.
        let mut stack = Vec::new();
        let mut last = f64::MIN;
        let (mut begins, mut leaves) = (0, 0);
        for e in mine.iter().filter(|e| e["cat"] != "cpu") {
            let ts = e["ts"].as_f64().unwrap();
            assert!(ts >= last, "{name}: time went back at {e}");
            last = ts;
            match e["ph"].as_str().unwrap() {
                "B" => {
                    begins += 1;
                    assert_eq!(e["name"], "level");
                    assert_eq!(e["args"]["kind"], "nested");
                    stack.push(e["args"]["depth"].clone());
                }
                "E" => {
                    assert!(stack.pop().is_some(), "{name}: an end without a begin");
                }
                "i" => {
                    leaves += 1;
                    assert_eq!(e["args"]["result"], "42", "{e}");
                }
                other => panic!("unexpected phase {other}"),
            }
        }
        assert!(
            stack.is_empty(),
            "{name}: {} begins without an end",
            stack.len()
        );
        assert_eq!(begins, 7, "{name}: 1 + 2 + 4 spans");
        assert_eq!(leaves, 4, "{name}: an event per leaf");
        // CPU samples land on the thread that burned the CPU, most of them inside
        // leaf_work (the rest in the clock read it makes, or in the span code).
        let cpu: Vec<&&Value> = mine.iter().filter(|e| e["cat"] == "cpu").collect();
        assert!(!cpu.is_empty(), "{name}: no CPU samples");
        let in_leaf = cpu
            .iter()
            .filter(|e| e["name"].as_str().unwrap().contains("leaf_work"))
            .count();
        assert!(
            2 * in_leaf > cpu.len(),
            "{name}: {in_leaf} of {} CPU samples in leaf_work: {cpu:?}",
            cpu.len()
        );
        for e in cpu
            .iter()
            .filter(|e| e["name"].as_str().unwrap().contains("leaf_work"))
        {
            assert_eq!(
                e["args"]["role"], *name,
                "{name}: a sample without its label: {e}"
            );
        }
    }
    assert_eq!(trace["otherData"]["dropped_events"], 0);
}
