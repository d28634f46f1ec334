//! `profile-report` against `go tool pprof`: on every Go fixture (every sample type) and on
//! profiles of each kind this crate writes, `profile-report top` prints the table
//! `go tool pprof -top` prints — the same functions with the same flat and cum values,
//! percentages and header. Also diffs, focus/ignore, node count/fraction, folded stacks,
//! text, and corrupt input. Needs `--features cli`; skips the go comparisons without
//! `go` (fails under CI=true).

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".pb.gz"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 7, "the seven Go fixtures");
    v
}

use common::profile_report as report;

/// `go tool pprof -top ARGS FILE` (no warnings allowed).
fn go_top(go: &str, args: &[&str], file: &Path) -> String {
    let mut all = vec!["-top"];
    all.extend_from_slice(args);
    if args
        .iter()
        .any(|a| a.starts_with("-tag") && a.ends_with(':'))
    {
        // A numeric range: pprof says "tagfocus:Interpreted '1:' as range, not regexp"
        // on stderr, a notice about the option, not a warning about the file.
        let out = std::process::Command::new(go)
            .args(["tool", "pprof"])
            .args(&all)
            .arg(file)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.lines().all(|l| l.contains("as range, not regexp")),
            "{stderr}"
        );
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    common::pprof(go, &all, file)
}

/// Rows of a top table: name -> (flat, cum) as printed.
fn rows(top: &str) -> Vec<(String, String, String)> {
    top.lines()
        .skip_while(|l| !l.trim_start().starts_with("flat  flat%"))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "row {l:?}");
            (f[5..].join(" "), f[0].to_owned(), f[3].to_owned())
        })
        .collect()
}

/// Compares one report with go's: the whole text, and (for a readable failure) rows.
fn same_top(go: &str, ours_args: &[&str], go_args: &[&str], file: &Path) -> usize {
    let mut args = vec!["top"];
    args.extend_from_slice(ours_args);
    let f = file.to_str().unwrap();
    args.push(f);
    let (ok, ours, err) = report(&args);
    assert!(ok, "profile-report {args:?} failed: {err}");
    let theirs = go_top(go, go_args, file);
    if ours != theirs {
        // Only the lines that differ, and the file kept for a look.
        let keep = std::env::temp_dir().join("profile-report-mismatch");
        let _ = std::fs::create_dir_all(&keep);
        let kept = keep.join(file.file_name().unwrap());
        let _ = std::fs::copy(file, &kept);
        let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
        let only_ours: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).take(15).collect();
        let only_go: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).take(15).collect();
        panic!(
            "profile-report {args:?} differs from go tool pprof -top {go_args:?} (file kept at {})\n\
             only in ours:\n{}\nonly in go's:\n{}",
            kept.display(),
            only_ours
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            only_go
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    rows(&ours).len()
}

fn sample_types(file: &Path) -> Vec<String> {
    let p = profile::report::read(&std::fs::read(file).unwrap()).unwrap();
    p.sample_types.iter().map(|t| t.ty.clone()).collect()
}

#[test]
fn top_matches_go_on_go_fixtures() {
    let Some(go) = common::go() else { return };
    let mut compared = 0;
    for f in fixtures() {
        same_top(go, &[], &[], &f);
        for ty in sample_types(&f) {
            let ours = format!("--sample-index={ty}");
            let theirs = format!("-sample_index={ty}");
            compared += same_top(go, &[&ours], &[&theirs], &f);
            // Every entry, none dropped by the node fraction.
            compared += same_top(
                go,
                &[&ours, "--nodefraction=0"],
                &[&theirs, "-nodefraction=0"],
                &f,
            );
        }
    }
    eprintln!("{compared} rows identical to go tool pprof -top");
    assert!(compared > 50, "only {compared} rows compared");
}

#[test]
fn options_match_go() {
    let Some(go) = common::go() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19");
    let heap = dir.join("allocs.pb.gz");
    let cpu = dir.join("cpu.pb.gz");
    same_top(go, &["--nodecount=3"], &["-nodecount=3"], &heap);
    same_top(go, &["--focus=flate"], &["-focus=flate"], &heap);
    same_top(go, &["--ignore=leak"], &["-ignore=leak"], &heap);
    same_top(
        go,
        &[
            "--focus=main",
            "--ignore=Small",
            "--sample-index=alloc_objects",
        ],
        &[
            "-focus=main",
            "-ignore=Small",
            "-sample_index=alloc_objects",
        ],
        &heap,
    );
    same_top(go, &["--focus=coldOne"], &["-focus=coldOne"], &cpu);
    same_top(go, &["--nodefraction=0.3"], &["-nodefraction=0.3"], &cpu);
    same_top(go, &["--sample-index=0"], &["-sample_index=0"], &cpu);
    same_top(
        go,
        &["--sample-index=inuse_space"],
        &["-sample_index=inuse_space"],
        &heap,
    );
}

#[test]
fn hide_show_show_from_and_cum_match_go() {
    let Some(go) = common::go() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19");
    let heap = dir.join("allocs.pb.gz");
    let cpu = dir.join("cpu.pb.gz");
    for f in [&heap, &cpu] {
        same_top(go, &["--cum"], &["-cum"], f);
        same_top(
            go,
            &["--cum", "--nodecount=4"],
            &["-cum", "-nodecount=4"],
            f,
        );
        same_top(go, &["--hide=runtime"], &["-hide=runtime"], f);
        same_top(go, &["--show=main"], &["-show=main"], f);
        same_top(go, &["--show-from=main.main"], &["-show_from=main.main"], f);
    }
    same_top(
        go,
        &["--show-from=main", "--hide=Small", "--cum"],
        &["-show_from=main", "-hide=Small", "-cum"],
        &heap,
    );
    same_top(
        go,
        &["--show-from=main", "--hide=hotThree", "--cum"],
        &["-show_from=main", "-hide=hotThree", "-cum"],
        &cpu,
    );
    same_top(
        go,
        &["--focus=main", "--show=main", "--sample-index=alloc_space"],
        &["-focus=main", "-show=main", "-sample_index=alloc_space"],
        &heap,
    );
}

#[inline(never)]
fn labelled_work(work: &'static str, d: Duration) -> u64 {
    profile::labels::with(&[("work", work)], || {
        if work == "hot" {
            common::hot_three(d)
        } else {
            common::cold_one(d)
        }
    })
}

/// Tag filters on our labels (string `work`, `thread_name`; numeric `thread_id`), against
/// go tool pprof's.
#[test]
fn tagfocus_and_tagignore_match_go() {
    let Some(go) = common::go() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cpu = profile::runtime::cpu::start(1000).unwrap();
    let threads: Vec<_> = [("hot", 300), ("cold", 150)]
        .into_iter()
        .map(|(w, ms)| {
            std::thread::Builder::new()
                .name(format!("t-{w}"))
                .spawn(move || labelled_work(w, Duration::from_millis(ms)))
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let path = dir.path().join("labelled.pb.gz");
    cpu.stop()
        .unwrap()
        .write_to(std::fs::File::create(&path).unwrap())
        .unwrap();
    for (ours, theirs) in [
        ("--tagfocus=work=hot", "-tagfocus=work=hot"),
        ("--tagignore=work=hot", "-tagignore=work=hot"),
        ("--tagfocus=work=hot,cold", "-tagfocus=work=hot,cold"),
        ("--tagfocus=work:cold", "-tagfocus=work:cold"),
        ("--tagfocus=thread_name=t-", "-tagfocus=thread_name=t-"),
        ("--tagfocus=thread_id=1:", "-tagfocus=thread_id=1:"),
    ] {
        same_top(go, &[ours], &[theirs], &path);
        same_top(go, &[ours, "--cum"], &[theirs, "-cum"], &path);
    }
}

#[test]
fn diff_matches_go() {
    let Some(go) = common::go() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19");
    let (heap, allocs) = (dir.join("heap.pb.gz"), dir.join("allocs.pb.gz"));
    for ty in ["alloc_space", "alloc_objects", "inuse_space"] {
        let (ok, ours, err) = report(&[
            "diff",
            "--base",
            heap.to_str().unwrap(),
            &format!("--sample-index={ty}"),
            allocs.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let base = format!("-diff_base={}", heap.display());
        let theirs = go_top(go, &[&base, &format!("-sample_index={ty}")], &allocs);
        assert_eq!(
            rows(&ours),
            rows(&theirs),
            "--- ours\n{ours}\n--- go\n{theirs}"
        );
        assert_eq!(ours, theirs);
    }
    // Different sample types: a clear error.
    let cpu = dir.join("cpu.pb.gz");
    let (ok, _, err) = report(&[
        "diff",
        "--base",
        cpu.to_str().unwrap(),
        heap.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("incompatible sample types"), "{err}");
}

#[inline(never)]
fn allocate_more() -> Vec<Vec<u8>> {
    (0..3000).map(|i| vec![2u8; 500 + i % 2000]).collect()
}

/// A diff's header is the merged profile's, as pprof merges: the earlier time, the summed
/// duration, both profiles' comments. Two profiles a minute apart (the base earlier).
#[test]
fn diff_header_merges_like_go() {
    let Some(go) = common::go() else { return };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19/cpu.pb.gz");
    let p = profile::report::read(&std::fs::read(&fixture).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut base = p.clone();
    base.time_nanos -= 61_000_000_000;
    base.duration_nanos *= 3;
    base.comments.push("the base".into());
    for s in &mut base.samples {
        for v in &mut s.values {
            *v /= 2;
        }
    }
    let mut after = p.clone();
    after.comments.push("the newer".into());
    let (b, a) = (
        dir.path().join("base.pb.gz"),
        dir.path().join("after.pb.gz"),
    );
    base.write_to(std::fs::File::create(&b).unwrap()).unwrap();
    after.write_to(std::fs::File::create(&a).unwrap()).unwrap();
    let (ok, ours, err) = report(&["diff", "--base", b.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(ok, "{err}");
    let theirs = go_top(go, &[&format!("-diff_base={}", b.display())], &a);
    assert_eq!(ours, theirs, "--- ours\n{ours}\n--- go\n{theirs}");
    assert!(
        ours.contains("the base") && ours.contains("the newer"),
        "{ours}"
    );
}

/// Profiles of each kind this crate writes, in a temporary directory.
fn our_profiles(dir: &Path) -> Vec<PathBuf> {
    let write = |name: &str, p: &profile::Profile| {
        let path = dir.join(name);
        p.write_to(std::fs::File::create(&path).unwrap()).unwrap();
        path
    };
    let mut files = Vec::new();
    let cpu = profile::runtime::cpu::start(1000).unwrap();
    common::three_to_one(Duration::from_millis(400));
    files.push(write("cpu.pb.gz", &cpu.stop().unwrap()));

    profile::runtime::heap::set_rate(1024).unwrap();
    let keep: Vec<Vec<u8>> = (0..2000).map(|i| vec![1u8; 100 + i % 3000]).collect();
    files.push(write(
        "heap.pb.gz",
        &profile::runtime::heap::profile().unwrap(),
    ));
    files.push(write(
        "allocs.pb.gz",
        &profile::runtime::heap::allocs_profile().unwrap(),
    ));
    let more = allocate_more();
    files.push(write(
        "heap-later.pb.gz",
        &profile::runtime::heap::profile().unwrap(),
    ));
    drop((keep, more));

    profile::runtime::mutex::set_fraction(1);
    let m = std::sync::Arc::new(profile::sync::Mutex::new(0u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let mut g = m.lock();
                    *g += 1;
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    files.push(write(
        "mutex.pb.gz",
        &profile::runtime::mutex::profile().unwrap(),
    ));
    files.push(write(
        "threads.pb.gz",
        &profile::runtime::threads::profile().unwrap(),
    ));
    files
}

#[test]
fn top_matches_go_on_our_profiles() {
    let Some(go) = common::go() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for f in our_profiles(dir.path()) {
        for ty in sample_types(&f) {
            compared += same_top(
                go,
                &[&format!("--sample-index={ty}")],
                &[&format!("-sample_index={ty}")],
                &f,
            );
            compared += same_top(
                go,
                &[&format!("--sample-index={ty}"), "--nodefraction=0"],
                &[&format!("-sample_index={ty}"), "-nodefraction=0"],
                &f,
            );
        }
    }
    // A diff of two of our heap profiles: the later one allocated in allocate_more.
    let (before, after) = (
        dir.path().join("heap.pb.gz"),
        dir.path().join("heap-later.pb.gz"),
    );
    for ty in ["inuse_space", "alloc_objects"] {
        let (ok, ours, err) = report(&[
            "diff",
            "--base",
            before.to_str().unwrap(),
            &format!("--sample-index={ty}"),
            after.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let base = format!("-diff_base={}", before.display());
        let theirs = go_top(go, &[&base, &format!("-sample_index={ty}")], &after);
        assert_eq!(
            ours, theirs,
            "diff {ty}\n--- ours\n{ours}\n--- go\n{theirs}"
        );
        assert!(ours.contains("report::allocate_more"), "{ours}");
        compared += rows(&ours).len();
    }
    eprintln!("{compared} rows identical to go tool pprof -top on our profiles");
    assert!(compared > 20, "only {compared} rows compared");
}

#[test]
fn folded_stacks_sum_to_the_total() {
    for f in fixtures() {
        let p = profile::report::read(&std::fs::read(&f).unwrap()).unwrap();
        let (ok, out, err) = report(&["folded", f.to_str().unwrap()]);
        assert!(ok, "{err}");
        let sum: i64 = out
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<i64>().unwrap())
            .sum();
        let i = profile::report::sample_index(&p, None).unwrap();
        let expected: i64 = p
            .samples
            .iter()
            .filter(|s| !s.location_ids.is_empty())
            .map(|s| s.values[i])
            .filter(|&v| v > 0)
            .sum();
        assert_eq!(sum, expected, "{}", f.display());
        if f.ends_with("cpu.pb.gz") {
            assert!(
                out.lines()
                    .any(|l| l.starts_with("runtime.main;main.main;main.hotThree;main.spin ")),
                "{out}"
            );
        }
    }
}

#[test]
fn text_has_go_debug1_layouts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19");
    let first = |name: &str| {
        let (ok, out, err) = report(&["text", dir.join(name).to_str().unwrap()]);
        assert!(ok, "{err}");
        out.lines().next().unwrap_or("").to_owned()
    };
    assert!(first("heap.pb.gz").starts_with("heap profile: "));
    assert_eq!(first("mutex.pb.gz"), "--- contention:");
    assert_eq!(first("goroutine.pb.gz"), "goroutine profile: total 4");
    assert_eq!(first("threadcreate.pb.gz"), "threadcreate profile: total 4");
    assert!(first("cpu.pb.gz").starts_with("cpu profile: total "));
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corrupt");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        for cmd in ["top", "folded", "text", "flamegraph"] {
            let (ok, out, err) = report(&[cmd, path.to_str().unwrap()]);
            assert!(!ok, "{cmd} {} succeeded: {out}", path.display());
            assert!(
                err.starts_with("profile-report: ") && err.contains("decode"),
                "{cmd} {}: {err}",
                path.display()
            );
            assert!(!err.contains("panicked"), "{err}");
        }
        n += 1;
    }
    assert!(n >= 8, "corrupt corpus has {n} files");
    // Bad arguments name the problem.
    let heap = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go1.19/heap.pb.gz");
    let heap = heap.to_str().unwrap();
    let (ok, _, err) = report(&["top", "--sample-index=nope", heap]);
    assert!(
        !ok && err.contains("must be one of: alloc_objects"),
        "{err}"
    );
    let (ok, _, err) = report(&["top", "--focus=(", heap]);
    assert!(!ok && err.contains("bad focus regex"), "{err}");
    let (ok, _, err) = report(&["top", "--sample-index=9", heap]);
    assert!(!ok && err.contains("outside [0..3]"), "{err}");
    let (ok, _, err) = report(&["top", "--nodefraction=2", heap]);
    assert!(!ok && err.contains("node fraction"), "{err}");
    let (ok, _, err) = report(&["top", "/nonexistent/x.pb.gz"]);
    assert!(!ok && err.contains("/nonexistent/x.pb.gz"), "{err}");
    let (ok, _, err) = report(&["flamegraph", "--focus=nothing-matches-this", heap]);
    assert!(!ok && err.contains("no samples"), "{err}");
    let d = tempfile::tempdir().unwrap();
    let (ok, _, err) = report(&["flamegraph", "-o", d.path().to_str().unwrap(), heap]);
    assert!(!ok && err.contains("is a directory"), "{err}");
}

/// Every byte-level mutation of real files (truncations, bit flips) reads as a profile or
/// an error: never a panic, and within bounded time and memory.
#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut ok, mut err) = (0, 0);
    for f in fixtures() {
        let gz = std::fs::read(&f).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        for input in [&gz, &raw] {
            for _ in 0..300 {
                let mut m = input.clone();
                match next() % 3 {
                    0 => m.truncate((next() as usize) % m.len()),
                    1 => {
                        for _ in 0..1 + next() % 4 {
                            let i = (next() as usize) % m.len();
                            m[i] ^= 1 << (next() % 8);
                        }
                    }
                    _ => {
                        let i = (next() as usize) % m.len();
                        m[i] = next() as u8;
                    }
                }
                match profile::report::read(&m) {
                    Ok(p) => {
                        ok += 1;
                        // Whatever decodes must also report without panicking.
                        let o = profile::report::Options::default();
                        let _ = profile::report::top(&p, &o);
                        let _ = profile::report::folded(&p, &o);
                        let _ = profile::report::text(&p, &o);
                    }
                    Err(_) => err += 1,
                }
            }
        }
    }
    eprintln!("{ok} mutations decoded, {err} rejected");
    assert!(err > 0 && ok > 0);
}
