//! `go tool pprof` reads our files with no warnings and shows the workload's functions
//! with file:line. Needs `go` (Debian's golang-go): skipped with a message without it,
//! a failure when CI=true.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::time::Duration;

#[test]
fn go_tool_pprof_reads_our_cpu_profile_without_warnings() {
    let Some(go) = common::go() else { return };
    let dir = tempfile::tempdir().unwrap();
    let guard = common::guard_in(dir.path());
    common::three_to_one(Duration::from_millis(1200));
    let file = guard.stop().unwrap();

    let raw = common::pprof(go, &["-raw"], &file);
    assert!(raw.contains("\nPeriodType: cpu nanoseconds\n"), "{raw}");
    // Functions with file:line, e.g. `go_compat::common::hot_three .../tests/common/mod.rs:37`.
    for f in ["common::hot_three", "common::cold_one"] {
        let line = raw
            .lines()
            .find(|l| l.contains(f))
            .unwrap_or_else(|| panic!("{f} missing from -raw output:\n{raw}"));
        assert!(
            line.contains("tests/common/mod.rs:"),
            "{f} without file:line: {line}"
        );
    }
    // The main binary's mapping, with its build ID and symbolization flags.
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let mappings = raw.split("Mappings\n").nth(1).expect("a Mappings section");
    let first = mappings.lines().next().unwrap();
    assert!(first.starts_with("1: "), "{first}");
    assert!(first.contains(&*exe.to_string_lossy()), "{first}");
    assert!(first.contains("[FN][FL][LN][IN]"), "{first}");

    let top = common::pprof(go, &["-top"], &file);
    assert!(!top.contains("Main binary filename not available"), "{top}");
    assert!(top.contains("Type: cpu"), "{top}");
    for f in ["common::hot_three", "common::cold_one"] {
        assert!(top.contains(f), "{f} missing from -top:\n{top}");
    }

    // Per-line and per-address views work (they need real addresses and mappings).
    let lines = common::pprof(go, &["-top", "-lines"], &file);
    assert!(lines.contains("tests/common/mod.rs:"), "{lines}");
    let addrs = common::pprof(go, &["-top", "-addresses"], &file);
    assert!(addrs.contains("common::hot_three"), "{addrs}");

    // Disassembly annotated with samples (needs the executable's mapping to line up with
    // its symbol table).
    let asm = common::pprof(go, &["-disasm", "hot_three"], &file);
    assert!(
        asm.contains("ROUTINE") && asm.contains("hot_three"),
        "no annotated disassembly:\n{asm}"
    );
    // Source listing with per-line samples.
    let list = common::pprof(go, &["-list", "common::hot_three"], &file);
    assert!(list.contains("tests/common/mod.rs"), "{list}");
}

#[test]
fn go_tool_pprof_and_our_decoder_agree_on_go_fixtures() {
    let Some(go) = common::go() else { return };
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19/cpu.pb.gz");
    let p = profile::Profile::decode(&std::fs::read(&file).unwrap()).unwrap();
    let raw = common::pprof(go, &["-raw"], &file);
    // Same sample count and total as Go's own reader.
    let total: i64 = raw
        .lines()
        .skip_while(|l| !l.starts_with("samples/count"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter(|l| l.contains(':'))
        .map(|l| l.split_whitespace().next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, p.total("samples"));
}
