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
            thread::spawn(move || take_turns(&lock, rounds))
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[inline(never)]
fn take_turns(lock: &profile::sync::Mutex<u64>, rounds: usize) {
    for _ in 0..rounds {
        let mut g = lock.lock();
        *g += 1;
        thread::sleep(Duration::from_micros(300));
    }
}

#[inline(never)]
fn allocate(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i as u8; 4096 + i]).collect()
}

/// A function of the test binary in the profile, for `-list`, `-peek` and `-disasm`: one
/// of the workload's own (never inlined, a symbol of its own) that a sample's stack holds
/// as a physical frame, else the test function itself. (The heaviest sample's innermost
/// function was sometimes `core::hint::black_box`, which `-disasm` did not find.)
fn own_function(p: &Profile) -> String {
    let exe = std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let physical: std::collections::HashSet<&str> = p
        .locations
        .iter()
        .filter(|l| {
            p.mappings
                .iter()
                .any(|m| m.id == l.mapping_id && m.filename == exe)
        })
        .filter_map(|l| l.lines.last())
        .filter_map(|line| p.functions.iter().find(|f| f.id == line.function_id))
        .map(|f| f.name.as_str())
        .collect();
    let ours = [
        "common::busy_loop",
        "readers::allocate",
        "readers::take_turns",
        "readers::http_endpoints",
        "readers::every_kind_in_every_mode_of_the_reader",
    ];
    for name in ours {
        if let Some(f) = physical.iter().find(|f| f.ends_with(name)) {
            return (*f).to_owned();
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

fn reader_name(go: &str) -> String {
    std::env::var("PPROF_READER").unwrap_or_else(|_| {
        let v = Command::new(go).arg("version").output().unwrap();
        String::from_utf8_lossy(&v.stdout).trim().to_owned()
    })
}

/// Reads `file` in every text mode (those naming a function only with `function`: the
/// legacy text forms carry addresses only); returns the `-proto` output's path.
fn every_mode(go: &str, reader: &str, name: &str, file: &Path, function: Option<&str>) -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut modes: Vec<Vec<String>> = vec![
        vec!["-top".into()],
        vec!["-traces".into()],
        vec!["-tags".into()],
        vec!["-lines".into(), "-top".into()],
        vec!["-raw".into()],
    ];
    if let Some(function) = function {
        let function = regex_escape(function);
        modes.push(vec![format!("-list={function}")]);
        modes.push(vec![format!("-peek={function}")]);
        // Go's cmd/pprof matches `-disasm` against the symbol table's mangled names
        // (`_ZN7readers6common9busy_loop17h…E`): the last path segment matches both.
        modes.push(vec![
            format!("-disasm={}", last_segment(&function)),
            exe.clone(),
        ]);
    }
    for mode in &modes {
        let args: Vec<&str> = mode.iter().map(String::as_str).collect();
        // Succeeds with nothing on stderr (common::pprof asserts both) — but for Go's
        // legacy text forms, which name no binary: pprof says "Main binary filename not
        // available." for them all, Go's own `heap?debug=1` (… `goroutine?debug=1`)
        // included (checked with Go 1.26's runtime/pprof), and nothing else.
        let out = if function.is_none() {
            legacy_text(go, &args, file)
        } else {
            common::pprof(go, &args, file)
        };
        if mode[0].starts_with("-list") || mode[0].starts_with("-disasm") {
            assert!(
                out.contains("ROUTINE"),
                "{reader}: {name} {mode:?}: no routine\n{out}"
            );
        }
    }
    // -proto to stdout (with -output pprof says "Generating report in" on stderr).
    let proto = file.with_extension("proto.pb.gz");
    let out = reader_command(go)
        .arg("-proto")
        .arg(file)
        .output()
        .expect("run pprof -proto");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    assert!(
        out.status.success()
            && (stderr.is_empty()
                || (function.is_none() && stderr == "Main binary filename not available.")),
        "{name} -proto: {stderr}"
    );
    std::fs::write(&proto, &out.stdout).unwrap();
    println!(
        "{reader}: {name}: all {} modes and -proto clean",
        modes.len()
    );
    proto
}

/// The web UI (`-http`): the flame graph, source and disassembly pages of `file` load,
/// and pprof says nothing on stderr but where it serves.
fn web_ui(go: &str, reader: &str, file: &Path, function: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exe = std::env::current_exe().unwrap();
    let child = reader_command(go)
        .arg(format!("-http=127.0.0.1:{port}"))
        .arg("-no_browser")
        .arg(&exe)
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pprof -http");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let get = |target: &str| {
        common::http_request(
            addr,
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    };
    // A deadline that only catches a reader that never comes up.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "pprof -http never listened"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let f = regex_escape(function);
    let segment = last_segment(&f).to_owned();
    // Each page names the function (the flame graph in its data); none says it found
    // nothing.
    let plain = last_segment(function);
    let pages = [
        "/ui/flamegraph".to_owned(),
        format!("/ui/source?f={}", url_escape(&f)),
        format!("/ui/disasm?f={}", url_escape(&segment)),
    ];
    // Go's own `go tool pprof` takes a listing's file:line from the Go pclntab of the
    // binary it disassembles (cmd/internal/disasm: `d.pcln.PCToLine`), which a Rust
    // binary does not have: its source page loads but lists nothing, whoever wrote the
    // profile (docs/readers.md). `-list` (from the profile's lines) works there, and the
    // standalone pprof (binutils) fills the page.
    let go_cmd_pprof = std::env::var_os("PPROF_READER").is_none();
    for page in &pages {
        let started = std::time::Instant::now();
        let (status, _, body) = get(page);
        println!("{reader}: {page}: {:?}", started.elapsed());
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{reader}: {page}: {body}");
        assert!(!body.contains("no matches"), "{reader}: {page}:\n{body}");
        if go_cmd_pprof && page.starts_with("/ui/source") {
            continue;
        }
        assert!(
            body.contains(plain),
            "{reader}: {page}: no {plain:?}:\n{body}"
        );
    }
    // SIGTERM, which `go tool` passes on to the pprof it runs (SIGKILL would leave that
    // one running, holding the pipes open).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let other: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("Serving web UI on")
                && !l.ends_with("signal: terminated") // `go tool`, on our SIGTERM
        })
        .collect();
    assert!(other.is_empty(), "{reader} -http said: {other:?}");
    println!("{reader}: web UI flame graph, source and disasm pages load");
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every `/debug/pprof` endpoint that gives a profile, fetched while the workload runs:
/// protobuf forms in every mode, Go's legacy text forms (`debug=1`) in the modes that
/// need no function. Returns the files, for the checker.
#[cfg(feature = "http")]
fn http_endpoints(go: &str, reader: &str, dir: &Path) -> Vec<PathBuf> {
    let server = profile::http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    profile::runtime::heap::set_rate(4096).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let work = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut kept = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                common::busy_loop(Duration::from_millis(5));
                kept.push(allocate(20));
                if kept.len() > 10 {
                    kept.remove(0);
                }
                contend(5);
            }
        })
    };
    let mut endpoints = vec![
        "profile?seconds=1",
        "clock?seconds=1",
        "heap",
        "heap?seconds=1",
        "allocs",
        "allocs?seconds=1",
        "mutex",
        "mutex?seconds=1",
        "block",
        "block?seconds=1",
        "goroutine",
        "heap?debug=1",
        "allocs?debug=1",
        "mutex?debug=1",
        "block?debug=1",
        "goroutine?debug=1",
    ];
    if cfg!(feature = "threadcreate") {
        endpoints.push("threadcreate");
    }
    let mut files = Vec::new();
    for endpoint in endpoints {
        let (status, _, body) = common::http_get(addr, &format!("/debug/pprof/{endpoint}"));
        assert_eq!(
            status,
            200,
            "{endpoint}: {}",
            String::from_utf8_lossy(&body)
        );
        let name = endpoint.replace(['?', '=', '&'], "_");
        let file = dir.join(format!("http_{name}.pb.gz"));
        std::fs::write(&file, &body).unwrap();
        let text = endpoint.contains("debug=1");
        let function = if text {
            None
        } else {
            let p = profile::Profile::decode(&body).unwrap();
            (!p.samples.is_empty()).then(|| own_function(&p))
        };
        let proto = every_mode(
            go,
            reader,
            &format!("/debug/pprof/{endpoint}"),
            &file,
            function.as_deref(),
        );
        files.push(file);
        files.push(proto);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    work.join().unwrap();
    profile::runtime::heap::set_rate(0).unwrap();
    files
}

/// `common::pprof` for a legacy text profile: succeeds, and says at most that it has no
/// binary's name.
fn legacy_text(go: &str, args: &[&str], file: &Path) -> String {
    let out = reader_command(go)
        .args(args)
        .arg(file)
        .env("TZ", "UTC")
        .output()
        .expect("run pprof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pprof {args:?} failed:\n{stderr}");
    let other: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != "Main binary filename not available.")
        .collect();
    assert!(other.is_empty(), "warnings from pprof {args:?}: {other:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    common::until_signals(&cpu, 50, 1, || {
        common::busy_loop(Duration::from_millis(20));
    });
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

    let reader = reader_name(go);
    let mut paths = Vec::new();
    for (name, p) in &files {
        assert!(!p.samples.is_empty(), "{name}: no samples");
        let file = write(dir.path(), name, p);
        paths.push(file.clone());
        paths.push(every_mode(go, &reader, name, &file, Some(&own_function(p))));
    }
    let cpu_file = paths[0].clone();
    let cpu_function = own_function(&files[0].1);
    web_ui(go, &reader, &cpu_file, &cpu_function);
    #[cfg(feature = "http")]
    paths.extend(http_endpoints(go, &reader, dir.path()));

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
