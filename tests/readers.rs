//! Every kind of profile, as a file, read by the pprof on `PATH` (or `PPROF_READER`) in
//! every text mode — `-top -traces -tags -lines -list -disasm -peek -raw -proto` — with
//! nothing on stderr, and by `tests/go/checkprofile` (google/pprof's `profile.Parse` +
//! `CheckValid`). `.ci/run` runs it with Go 1.19, Go 1.26 and the newest google/pprof.
//! Needs `go`: skipped with a message without it, a failure when CI=true.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use profile::Profile;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

/// Two threads taking turns on a `profile::sync` lock, holding it a while each time.
fn contend(rounds: usize) {
    let lock = Arc::new(profile::sync::Mutex::new(0u64));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            thread::spawn(move || {
                for _ in 0..rounds {
                    let mut g = lock.lock();
                    *g += 1;
                    thread::sleep(Duration::from_micros(300));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[inline(never)]
fn allocate(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i as u8; 4096 + i]).collect()
}

/// A function of the test binary in the profile, for `-list`, `-peek` and `-disasm`: the
/// innermost physical function of the executable's mapping, with a plain name, in the
/// heaviest sample that has one.
fn own_function(p: &Profile) -> String {
    let exe = std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut samples: Vec<_> = p.samples.iter().collect();
    samples.sort_by_key(|s| std::cmp::Reverse(s.values.iter().copied().max().unwrap_or(0)));
    for s in samples {
        for id in &s.location_ids {
            let l = p.locations.iter().find(|l| l.id == *id).unwrap();
            let in_exe = p
                .mappings
                .iter()
                .any(|m| m.id == l.mapping_id && m.filename == exe);
            if let (true, Some(line)) = (in_exe, l.lines.last()) {
                let f = p
                    .functions
                    .iter()
                    .find(|f| f.id == line.function_id)
                    .unwrap();
                // A plain path: DWARF names generics by their parameters (`Range<T>`),
                // the symbol table `-disasm` matches by the types (`Range<usize>`).
                if !f.name.contains(['<', '{']) {
                    return f.name.clone();
                }
            }
        }
    }
    panic!("no frame of the test binary in {:?}", p.sample_types);
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain(Some(c))
        })
        .collect()
}

/// The reader `common::pprof` runs: `PPROF_READER`, else `go tool pprof`.
fn reader_command(go: &str) -> Command {
    match std::env::var_os("PPROF_READER") {
        Some(reader) => Command::new(reader),
        None => {
            let mut c = Command::new(go);
            c.args(["tool", "pprof"]);
            c
        }
    }
}

fn last_segment(function: &str) -> &str {
    function.rsplit("::").next().unwrap_or(function)
}

fn write(dir: &Path, name: &str, p: &Profile) -> PathBuf {
    let file = dir.join(format!("{name}.pb.gz"));
    p.write_to(std::fs::File::create(&file).unwrap()).unwrap();
    file
}

#[test]
fn every_kind_in_every_mode_of_the_reader() {
    let Some(go) = common::go() else { return };
    let dir = tempfile::tempdir().unwrap();
    profile::runtime::heap::set_rate(4096).unwrap();
    profile::runtime::mutex::set_fraction(1);
    profile::runtime::block::set_rate(1);

    let mut files = Vec::new();
    let cpu = profile::runtime::cpu::start(250).unwrap();
    let clock = profile::runtime::clock::start(100).unwrap();
    let mut rounds = 0;
    // Counts of events, not windows of time.
    while cpu.stats().signals < 50 {
        common::busy_loop(Duration::from_millis(20));
        rounds += 1;
        assert!(rounds < 5000, "no CPU samples");
    }
    let kept = allocate(200);
    contend(50);
    files.push(("cpu", cpu.stop().unwrap()));
    files.push(("clock", clock.stop().unwrap()));
    files.push(("heap", profile::runtime::heap::profile().unwrap()));
    files.push(("allocs", profile::runtime::heap::allocs_profile().unwrap()));
    files.push(("mutex", profile::runtime::mutex::profile().unwrap()));
    files.push(("block", profile::runtime::block::profile().unwrap()));
    files.push(("goroutine", profile::runtime::threads::profile().unwrap()));
    drop(kept);
    profile::runtime::heap::set_rate(0).unwrap();

    let reader = std::env::var("PPROF_READER").unwrap_or_else(|_| {
        let v = Command::new(go).arg("version").output().unwrap();
        String::from_utf8_lossy(&v.stdout).trim().to_owned()
    });
    let exe = std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut paths = Vec::new();
    for (name, p) in &files {
        assert!(!p.samples.is_empty(), "{name}: no samples");
        let file = write(dir.path(), name, p);
        let function = regex_escape(&own_function(p));
        let proto = dir.path().join(format!("{name}.proto.pb.gz"));
        let modes: Vec<Vec<String>> = vec![
            vec!["-top".into()],
            vec!["-traces".into()],
            vec!["-tags".into()],
            vec!["-lines".into(), "-top".into()],
            vec![format!("-list={function}")],
            vec![format!("-peek={function}")],
            // Go's cmd/pprof matches `-disasm` against the symbol table's mangled names
            // (`_ZN7readers6common9busy_loop17h…E`): the last path segment matches both.
            vec![format!("-disasm={}", last_segment(&function)), exe.clone()],
            vec!["-raw".into()],
        ];
        for mode in &modes {
            let args: Vec<&str> = mode.iter().map(String::as_str).collect();
            // Succeeds with nothing on stderr (common::pprof asserts both).
            let out = common::pprof(go, &args, &file);
            if mode[0].starts_with("-list") || mode[0].starts_with("-disasm") {
                assert!(
                    out.contains("ROUTINE"),
                    "{reader}: {name} {mode:?}: no routine\n{out}"
                );
            }
        }
        // -proto to stdout (with -output pprof says "Generating report in" on stderr).
        let out = reader_command(go)
            .arg("-proto")
            .arg(&file)
            .output()
            .expect("run pprof -proto");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{name} -proto: {stderr}"
        );
        std::fs::write(&proto, &out.stdout).unwrap();
        println!(
            "{reader}: {name}: all {} modes and -proto clean",
            modes.len()
        );
        paths.push(file);
        paths.push(proto);
    }

    // google/pprof's own parser and validity check, on each file and each -proto output.
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/checkprofile");
    // The machine's Go (`GO_CHECKER`, set by .ci/run) when `go` on PATH is Go 1.19.
    let checker_go = std::env::var("GO_CHECKER").unwrap_or_else(|_| go.to_owned());
    let out = Command::new(checker_go)
        .arg("run")
        .arg(".")
        .args(&paths)
        .current_dir(&checker)
        .output()
        .expect("go run tests/go/checkprofile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "checkprofile:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        paths.len()
    );
}
