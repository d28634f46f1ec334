//! `profile::push::otlp` checked by the OpenTelemetry Collector's own decoder: the push
//! example's workload exports every kind over OTLP/HTTP to `tests/go/otlpcheck`, which
//! unmarshals each request with `pdata/pprofile/pprofileotlp` (what the Collector's OTLP
//! receiver runs), checks every dictionary index, and reports what it read. Then: no
//! request refused, every sample type there, the CPU total within ±5% of what the process
//! measured, the hottest function, the resource and the span attributes.
//!
//! Needs Go (1.26: pdata's go.mod); without it the test says so and passes, except under
//! `CI=true`.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

#[path = "../examples/push.rs"]
#[allow(unused_imports)]
mod example;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Go that builds the checker: `GO_CHECKER` (set by .ci/run), else `go` on PATH.
fn go() -> Option<String> {
    let go = std::env::var("GO_CHECKER").unwrap_or_else(|_| "go".into());
    let ok = Command::new(&go)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(go);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true needs Go to build tests/go/otlpcheck"
    );
    eprintln!("skipped: no Go to build tests/go/otlpcheck (pdata's OTLP decoder)");
    None
}

fn library(n: &str) -> bool {
    [
        "core::", "<core::", "alloc::", "<alloc::", "std::", "<std::", "<u", "<i",
    ]
    .iter()
    .any(|p| n.starts_with(p))
}

#[test]
fn otlp_export_is_read_by_the_collectors_pdata() {
    let Some(go) = go() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("otlpcheck");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/otlpcheck");
    let built = Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .output()
        .expect("go build");
    assert!(
        built.status.success(),
        "go build tests/go/otlpcheck: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut checker = Command::new(&bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(checker.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.strip_prefix("listening ").expect("listening ADDRESS");
    // The summaries, read as they come (a full pipe would stall the receiver).
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let run = example::run(
        profile::push::otlp(format!("http://{addr}"), "otlp-test"),
        Duration::from_millis(500),
        8,
        || {},
    );
    let _ = checker.kill();
    let _ = checker.wait();
    let summaries: Vec<serde_json::Value> = reader
        .join()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    println!("{:?}; {} requests", run.stats, summaries.len());
    assert_eq!(run.stats.rejected, 0, "{:?}", run.stats);
    assert_eq!(run.stats.dropped, 0, "{:?}", run.stats);
    assert_eq!(run.stats.uploads as usize, summaries.len());
    let mut types = std::collections::BTreeSet::new();
    let mut cpu = 0i64;
    let mut cpu_self: std::collections::HashMap<String, i64> = Default::default();
    let mut attribute_keys = std::collections::BTreeSet::new();
    for s in &summaries {
        assert!(s.get("error").is_none(), "pdata refused a request: {s}");
        assert_eq!(s["resource"]["service.name"], "otlp-test", "{s}");
        assert_eq!(s["resource"]["env"], "test", "{s}");
        assert!(s["resource"]["host.name"].is_string(), "{s}");
        assert_eq!(s["scope"], "profile-guard");
        for p in s["profiles"].as_array().unwrap() {
            let ty = p["type"].as_str().unwrap().to_owned();
            if ty == "cpu" {
                cpu += p["total"].as_i64().unwrap();
                for (f, v) in p["self"].as_object().unwrap() {
                    *cpu_self.entry(f.clone()).or_default() += v.as_i64().unwrap();
                }
                for k in p["attribute_keys"].as_array().into_iter().flatten() {
                    attribute_keys.insert(k.as_str().unwrap().to_owned());
                }
            }
            types.insert(ty);
        }
    }
    for t in [
        "samples",
        "cpu",
        "time",
        "inuse_space",
        "alloc_space",
        "contentions",
        "delay",
        "goroutine",
    ] {
        assert!(types.contains(t), "no {t} profile in {types:?}");
    }
    let ratio = cpu as f64 / run.cpu.as_nanos() as f64;
    println!(
        "OTLP carried {:.3} s of CPU; the process measured {:.3} s: {ratio:.3}",
        cpu as f64 / 1e9,
        run.cpu.as_secs_f64()
    );
    assert!((0.95..=1.05).contains(&ratio), "CPU ratio {ratio:.3}");
    let mut selfs: Vec<(String, i64)> = cpu_self.into_iter().collect();
    selfs.sort_by_key(|(_, v)| -v);
    let hottest = selfs
        .iter()
        .find(|(n, _)| !library(n))
        .map(|(n, _)| n.as_str());
    assert!(
        hottest.is_some_and(|n| n.ends_with("push_hot_loop")),
        "{:?}",
        &selfs[..selfs.len().min(5)]
    );
    for k in ["span_id", "span_name", "thread_name"] {
        assert!(attribute_keys.contains(k), "no {k} in {attribute_keys:?}");
    }
}
