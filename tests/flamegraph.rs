//! Flame graph SVGs opened in headless Chromium (Debian's `chromium`): the DOM Chromium
//! builds (after the SVG's script ran) has one frame per node of the merged call tree —
//! every function of the profile, no other — and no parse error. Needs `--features cli`;
//! skips without chromium, fails under CI=true without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn chromium() -> Option<&'static str> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium is not installed but CI=true: install Debian's chromium (see .ci/run)");
    }
    eprintln!("SKIPPED: chromium not found; install Debian's chromium to run the DOM checks");
    None
}

/// The DOM of `svg` as Chromium serializes it after loading (and running its script).
fn dump_dom(chromium: &str, svg: &Path) -> String {
    let profile_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", svg.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Frame names in the DOM: the `<title>` of every `<g>` frame, without its
/// ` (N unit, P%)` suffix; "all" (the root) left out.
fn frames(dom: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("<title>") {
        rest = &rest[i + 7..];
        let end = rest.find("</title>").expect("closed title");
        let title = unescape(&rest[..end]);
        rest = &rest[end..];
        let Some((name, _)) = title.rsplit_once(" (") else {
            continue;
        };
        if name != "all" {
            out.push(name.to_owned());
        }
    }
    out
}

use common::profile_report as report;

/// Checks one profile: returns the number of frames seen.
fn check(chromium: &str, profile: &Path, dir: &Path) -> usize {
    let svg = dir.join(format!(
        "{}.svg",
        profile.file_name().unwrap().to_string_lossy()
    ));
    let p = profile.to_str().unwrap();
    let (ok, _, err) = report(&[
        "flamegraph",
        "--min-width",
        "0",
        "-o",
        svg.to_str().unwrap(),
        p,
    ]);
    assert!(ok, "flamegraph {p}: {err}");
    let (ok, folded, err) = report(&["folded", p]);
    assert!(ok, "{err}");
    // Expected: one frame per distinct stack prefix (inferno merges equal prefixes), and
    // the functions are those on the stacks.
    let mut prefixes = BTreeSet::new();
    let mut functions = BTreeSet::new();
    for line in folded.lines() {
        let (stack, _) = line.rsplit_once(' ').unwrap();
        let names: Vec<&str> = stack.split(';').collect();
        for i in 1..=names.len() {
            prefixes.insert(names[..i].join(";"));
        }
        functions.extend(names.iter().map(|s| s.to_string()));
    }
    let dom = dump_dom(chromium, &svg);
    assert!(
        dom.contains("<svg") && !dom.contains("parsererror"),
        "chromium did not open {} as SVG:\n{}",
        svg.display(),
        &dom[..dom.len().min(2000)]
    );
    let seen = frames(&dom);
    let seen_functions: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen_functions,
        functions,
        "{}: the frames' functions differ from the profile's",
        profile.display()
    );
    assert_eq!(
        seen.len(),
        prefixes.len(),
        "{}: {} frames in the DOM for {} call-tree nodes",
        profile.display(),
        seen.len(),
        prefixes.len()
    );
    seen.len()
}

#[test]
fn flame_graphs_open_in_chromium_with_one_frame_per_function() {
    let Some(chromium) = chromium() else { return };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19");
    let out = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".pb.gz"))
        .collect();
    files.sort();
    // One of ours: a CPU profile with Rust names (generics, closures, inlined frames).
    let ours = out.path().join("ours-cpu.pb.gz");
    let cpu = profile::runtime::cpu::start(1000).unwrap();
    let mut x = 0u64;
    common::until_signals(&cpu, 100, 1, || {
        x = std::hint::black_box(
            (0..1000u64).fold(x, |a, i| a.rotate_left(5) ^ i.wrapping_mul(x | 1)),
        );
    });
    cpu.stop()
        .unwrap()
        .write_to(std::fs::File::create(&ours).unwrap())
        .unwrap();
    files.push(ours);
    let mut total = 0;
    for f in &files {
        if f.ends_with("threadcreate.pb.gz") {
            // Go 1.19's threadcreate samples have no stacks: nothing to draw, said so.
            let (ok, _, err) = report(&["flamegraph", f.to_str().unwrap()]);
            assert!(!ok && err.contains("no samples"), "{err}");
            continue;
        }
        let n = check(chromium, f, out.path());
        eprintln!("{}: {n} frames", f.display());
        total += n;
    }
    assert!(total > 50, "only {total} frames");
}
