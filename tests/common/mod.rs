//! Helpers shared by the integration tests: a CPU workload with a known split, and
//! `go tool pprof` discovery.
#![allow(dead_code)]

pub mod churn;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// CPU time consumed by the calling thread.
pub fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Spins until this thread has used `d` more CPU time.
#[inline(always)]
fn burn(d: Duration) -> u64 {
    let end = thread_cpu() + d;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while thread_cpu() < end {
        for _ in 0..2000 {
            x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
    }
    x
}

/// Computes for `d` of wall-clock time (not CPU time: a wall-clock split is about wall
/// time even when the CPU is shared with other work).
#[inline(never)]
pub fn crunch(d: Duration) -> u64 {
    let end = std::time::Instant::now() + d;
    let mut x = 1u64;
    while std::time::Instant::now() < end {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

/// Three parts of the work.
#[inline(never)]
pub fn hot_three(d: Duration) -> u64 {
    black_box(burn(d * 3))
}

/// One part of the work.
#[inline(never)]
pub fn cold_one(d: Duration) -> u64 {
    black_box(burn(d))
}

/// Runs the 3:1 workload for about `total` of CPU time, interleaved in 160 ms rounds
/// (phases spanning many sampling periods: with the CPU shared with another process,
/// short phases alias with the tick-driven profiling timer and skew the split).
pub fn three_to_one(total: Duration) -> u64 {
    let unit = Duration::from_millis(40);
    let rounds = (total.as_millis() / 160).max(1);
    let mut acc = 0;
    for _ in 0..rounds {
        acc ^= hot_three(unit);
        acc ^= cold_one(unit);
    }
    acc
}

/// Spins for `d` of CPU time in a frame named `busy_loop`.
#[inline(never)]
pub fn busy_loop(d: Duration) -> u64 {
    black_box(burn(d))
}

/// Samples whose stack contains a function whose name ends with `name`.
pub fn samples_in(p: &profile::Profile, name: &str) -> i64 {
    let i = p.sample_type_index("samples").expect("samples/count");
    p.samples
        .iter()
        .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with(name)))
        .map(|s| s.values[i])
        .sum()
}

/// Whether `go` is usable. Without it: `None` after printing why the caller skips, or a
/// panic under CI (`CI=true`), where the compatibility checks must run.
pub fn go() -> Option<&'static str> {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some("go");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("`go` is not installed but CI=true: install golang-go (see .ci/run)");
    }
    eprintln!("SKIPPED: `go` not found; install golang-go to run the go tool pprof checks");
    None
}

/// Runs `go tool pprof ARGS FILE`, asserting that it succeeds and prints no warnings;
/// returns its standard output. With `PPROF_READER` set to a standalone google/pprof
/// binary (`go install github.com/google/pprof@latest`), that reader runs instead, so
/// `.ci/run` can check the same files with the newest pprof.
pub fn pprof(go: &str, args: &[&str], file: &Path) -> String {
    let mut cmd = match std::env::var_os("PPROF_READER") {
        Some(reader) => Command::new(reader),
        None => {
            let mut c = Command::new(go);
            c.args(["tool", "pprof"]);
            c
        }
    };
    // UTC: `Time:` lines then match what profile-report prints.
    let out = cmd
        .args(args)
        .arg(file)
        .env("TZ", "UTC")
        .output()
        .expect("run go tool pprof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "go tool pprof {args:?} failed:\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "warnings from go tool pprof {args:?}:\n{stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `profile-report ARGS` (the `cli` feature's binary): (success, stdout, stderr).
#[cfg(feature = "cli")]
pub fn profile_report(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_profile-report"))
        .args(args)
        .output()
        .expect("run profile-report");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until process `pid` has used `cpu` of CPU time (user + system, from
/// `/proc/<pid>/stat`): a child's work to profile measured in what it did, not in wall
/// time, which a busy machine stretches. Panics after 60 s or if the process is gone.
#[cfg(target_os = "linux")]
pub fn wait_for_cpu(pid: u32, cpu: Duration) {
    // SAFETY: sysconf reads a constant; no memory is passed.
    let ticks = match unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) } {
        t if t > 0 => t as u64,
        _ => 100,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
        // Fields after the command name (which may hold spaces), from field 3 on.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let used: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        if Duration::from_millis(used * 1000 / ticks) >= cpu {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} used {used} ticks of CPU in 60 s, waiting for {cpu:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs this test binary again on its ignored test `test` (the child side of a
/// process test), with `env`, stdout piped; returns once the child prints `READY`
/// (panics after 60 s).
pub fn spawn_ready(test: &str, env: &[(&str, &std::ffi::OsStr)]) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        test,
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.ends_with("READY") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("child {test} never became ready");
    }
    child
}

/// The usual test guard: quiet, no shutdown hook, writing into `dir`.
pub fn guard_in(dir: impl Into<PathBuf>) -> profile::Guard {
    profile::start()
        .path(dir)
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap()
}

/// The usual test guard writing exactly `file`.
pub fn guard_at(file: impl Into<PathBuf>) -> profile::Guard {
    profile::start()
        .file(file)
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap()
}

/// Reads and decodes a profile file.
pub fn decode(path: &Path) -> profile::Profile {
    profile::Profile::decode(&std::fs::read(path).unwrap()).unwrap()
}

/// Tests in one binary that start the process-wide profiler (or change signal
/// dispositions) take turns through this lock.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits for child `pid` up to `deadline` (a hang check, not a speed check); `None` if it
/// is still running then (it is killed and reaped).
#[cfg(target_os = "linux")]
pub fn wait_for_child(
    pid: nix::unistd::Pid,
    deadline: Duration,
) -> Option<nix::sys::wait::WaitStatus> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let start = std::time::Instant::now();
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
            WaitStatus::StillAlive => {}
            done => return Some(done),
        }
        if start.elapsed() > deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends `raw` (a whole HTTP/1.x request) to `addr`; returns (status, head, body).
pub fn http_request(addr: std::net::SocketAddr, raw: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    // Only catches a hang: on a busy machine a pprof web UI page took over 60 s.
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

/// `GET target` from `addr`, asking the server to close the connection after (hyper
/// keeps it open otherwise).
pub fn http_get_close(addr: std::net::SocketAddr, target: &str) -> (u16, String, Vec<u8>) {
    http_request(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// `GET target` from `addr`.
pub fn http_get(addr: std::net::SocketAddr, target: &str) -> (u16, String, Vec<u8>) {
    http_request(addr, &format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// Runs `round` until `cpu` has taken `signals` signals that counted CPU (a count of
/// events, not a window of time: on a busy machine the kernel delivers fewer signals than
/// the rate asks); at least `min_rounds` rounds. Panics after 10 minutes (a hang check).
/// Runs `busy_loop` in 20 ms pieces until the running CPU profiler (a guard's, or one of
/// `runtime::cpu`) has handled `signals` timer signals: a count of events, not a window
/// of time (on a busy machine the kernel delivers 40–60 signals per CPU-second whatever
/// the rate, so a fixed 200 ms of CPU got none now and then). Panics after 10 minutes.
pub fn busy_until_cpu_signals(signals: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    while profile::runtime::cpu::stats().signals < signals {
        busy_loop(Duration::from_millis(20));
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {signals} CPU signals",
            profile::runtime::cpu::stats().signals
        );
    }
}

pub fn until_signals(
    cpu: &profile::runtime::cpu::CpuProfiler,
    signals: u64,
    min_rounds: usize,
    mut round: impl FnMut(),
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let mut rounds = 0;
    while rounds < min_rounds || cpu.stats().signals < signals {
        round();
        rounds += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {signals} signals in {rounds} rounds",
            cpu.stats().signals
        );
    }
}
