//! Thread dumps of eight threads parked in eight different ways, each in its own named
//! function: the dump shows every one with its name, state and function, and none of
//! them notices (the interrupted sleep and read complete correctly).
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use profile::runtime::threads::{self, Snapshot, ThreadState};

mod common;

/// How many of the parked threads have entered their `park_in_*` function (each counts
/// itself first thing, so from then on the function is on its stack).
static ARRIVED: AtomicUsize = AtomicUsize::new(0);

fn arrive() {
    ARRIVED.fetch_add(1, Ordering::SeqCst);
}

#[inline(never)]
fn park_in_sleep(d: Duration) -> Duration {
    arrive();
    let start = Instant::now();
    thread::sleep(d);
    black_box(start.elapsed())
}

#[inline(never)]
fn park_in_lock_wait(m: &Mutex<u32>) -> u32 {
    arrive();
    let v = *m.lock().unwrap();
    black_box(v)
}

#[inline(never)]
fn park_in_condvar_wait(pair: &(Mutex<bool>, Condvar)) -> bool {
    arrive();
    let mut ready = pair.0.lock().unwrap();
    while !*ready {
        ready = pair.1.wait(ready).unwrap();
    }
    black_box(*ready)
}

#[inline(never)]
fn park_in_blocking_read(mut s: UnixStream) -> Vec<u8> {
    arrive();
    let mut buf = vec![0u8; 5];
    s.read_exact(&mut buf).unwrap();
    black_box(buf)
}

#[inline(never)]
fn park_in_busy_loop(stop: &AtomicBool) -> u64 {
    arrive();
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

#[inline(never)]
fn park_in_channel_recv(rx: mpsc::Receiver<u32>) -> u32 {
    arrive();
    black_box(rx.recv().unwrap())
}

#[inline(never)]
fn park_in_barrier(b: &Barrier) -> bool {
    arrive();
    black_box(b.wait().is_leader())
}

#[inline(never)]
fn park_in_thread_park(stop: &AtomicBool) -> u32 {
    arrive();
    let mut wakeups = 0;
    while !stop.load(Ordering::Acquire) {
        thread::park();
        wakeups += 1;
    }
    black_box(wakeups)
}

/// The thread named `name`, checked to have `function` on its stack.
fn check<'a>(snap: &'a Snapshot, name: &str, function: &str) -> &'a threads::Thread {
    let t = snap
        .threads()
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no thread {name} in the dump"));
    assert!(t.missing.is_none(), "{name}: {:?}", t.missing);
    assert!(
        t.frames.iter().any(|f| f.function.ends_with(function)),
        "{name}: {function} not on the stack: {:#?}",
        t.frames.iter().map(|f| &f.function).collect::<Vec<_>>()
    );
    t
}

#[test]
fn dump_shows_eight_parked_threads_and_disturbs_none() {
    let _serial = common::serial();
    // Other tests' threads (joined before they let go of `serial`) counted too.
    ARRIVED.store(0, Ordering::SeqCst);
    let held = Arc::new(Mutex::new(7u32));
    let guard = held.lock().unwrap();
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let (mut writer, reader) = UnixStream::pair().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(2));
    let sleep_for = Duration::from_millis(1500);

    let spawn = |name: &str| thread::Builder::new().name(name.into());
    let sleeper = spawn("t-sleep")
        .spawn(move || park_in_sleep(sleep_for))
        .unwrap();
    let locker = {
        let m = held.clone();
        spawn("t-lock")
            .spawn(move || park_in_lock_wait(&m))
            .unwrap()
    };
    let waiter = {
        let p = pair.clone();
        spawn("t-condvar")
            .spawn(move || park_in_condvar_wait(&p))
            .unwrap()
    };
    let reading = spawn("t-read")
        .spawn(move || park_in_blocking_read(reader))
        .unwrap();
    let spinner = {
        let s = stop.clone();
        spawn("t-spin")
            .spawn(move || park_in_busy_loop(&s))
            .unwrap()
    };
    let receiver = spawn("t-recv")
        .spawn(move || park_in_channel_recv(rx))
        .unwrap();
    let at_barrier = {
        let b = barrier.clone();
        spawn("t-barrier")
            .spawn(move || park_in_barrier(&b))
            .unwrap()
    };
    let parked = {
        let s = stop.clone();
        spawn("t-park")
            .spawn(move || park_in_thread_park(&s))
            .unwrap()
    };
    // Every thread in its function (a deadline only against a hang); the waits themselves
    // may still be starting: states are judged by majority over the dumps below.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ARRIVED.load(Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "the threads did not start");
        thread::sleep(Duration::from_millis(5));
    }

    // Several dumps, each interrupting every thread (and the sleep and read several times).
    let mut last = None;
    // (thread, state) → in how many dumps. A waiting thread is briefly running when a
    // signal (the previous dump's) has just woken it, so states are judged by majority.
    let mut states = std::collections::HashMap::new();
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(30));
        let snap = threads::snapshot().unwrap();
        let mut text = Vec::new();
        snap.write_dump(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for (name, function) in [
            ("t-sleep", "park_in_sleep"),
            ("t-lock", "park_in_lock_wait"),
            ("t-condvar", "park_in_condvar_wait"),
            ("t-read", "park_in_blocking_read"),
            ("t-spin", "park_in_busy_loop"),
            ("t-recv", "park_in_channel_recv"),
            ("t-barrier", "park_in_barrier"),
            ("t-park", "park_in_thread_park"),
        ] {
            let t = check(&snap, name, function);
            let header = format!("thread {} \"{name}\" [{}]:", t.id, t.state);
            assert!(text.contains(&header), "{header} not in\n{text}");
            assert!(text.contains(function), "{function} not in the text dump");
            *states.entry((name, t.state)).or_insert(0) += 1;
        }
        // The calling thread is there too, in this test, without the profiler's frames.
        let me = snap
            .threads()
            .iter()
            .find(|t| {
                t.frames
                    .iter()
                    .any(|f| f.function.contains("disturbs_none"))
            })
            .expect("the calling thread");
        assert!(
            !me.frames[0].function.starts_with("profile::"),
            "{:?}",
            me.frames[0]
        );
        last = Some(snap);
    }
    let snap = last.unwrap();
    for name in [
        "t-sleep",
        "t-lock",
        "t-condvar",
        "t-read",
        "t-recv",
        "t-barrier",
        "t-park",
    ] {
        let sleeping = states.get(&(name, ThreadState::Sleeping)).copied();
        assert!(sleeping >= Some(3), "{name}: {states:?}");
    }
    assert_eq!(states.get(&("t-spin", ThreadState::Running)), Some(&5));

    // The profile: one sample per (stack, name), every thread counted once.
    let p = snap.profile();
    assert_eq!(p.sample_types[0].ty, "goroutine");
    assert_eq!(p.total("goroutine"), snap.threads().len() as i64);
    let with = |f: &str| {
        p.samples
            .iter()
            .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with(f)))
            .map(|s| s.values[0])
            .sum::<i64>()
    };
    assert_eq!(with("park_in_busy_loop"), 1);
    assert_eq!(with("park_in_blocking_read"), 1);

    // Release everyone; every wait completes with the right result.
    drop(guard);
    *pair.0.lock().unwrap() = true;
    pair.1.notify_all();
    writer.write_all(b"hello").unwrap();
    tx.send(42).unwrap();
    barrier.wait();
    stop.store(true, Ordering::Release);
    parked.thread().unpark();

    let slept = sleeper.join().unwrap();
    assert!(
        slept >= sleep_for && slept < sleep_for + Duration::from_millis(1000),
        "interrupted sleep lasted {slept:?}, asked {sleep_for:?}"
    );
    assert_eq!(reading.join().unwrap(), b"hello");
    assert_eq!(locker.join().unwrap(), 7);
    assert!(waiter.join().unwrap());
    assert_eq!(receiver.join().unwrap(), 42);
    at_barrier.join().unwrap();
    spinner.join().unwrap();
    parked.join().unwrap();
}

#[test]
fn thread_blocking_the_signal_is_reported_not_waited_for() {
    let _serial = common::serial();
    // Block every signal in a new thread, then dump.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let blocked = thread::Builder::new()
        .name("t-blocked".into())
        .spawn(move || {
            let all = nix::sys::signal::SigSet::all();
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&all),
                None,
            )
            .unwrap();
            ready_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        })
        .unwrap();
    ready_rx.recv().unwrap();
    thread::sleep(Duration::from_millis(100)); // until it waits in recv
    let start = Instant::now();
    let snap = threads::snapshot().unwrap();
    let t = snap
        .threads()
        .iter()
        .find(|t| t.name == "t-blocked")
        .expect("listed");
    assert_eq!(t.missing, Some("the thread blocks the capture signal"));
    assert!(t.frames.is_empty());
    // Not waited for: far below the 100 ms per-thread timeout.
    assert!(start.elapsed() < Duration::from_secs(1));
    let mut text = Vec::new();
    snap.write_dump(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("\"t-blocked\" [sleeping]: stack not captured: the thread blocks"),
        "{text}"
    );
    // The debug=1 form stays readable by pprof (`N @` with no address is malformed to
    // every reader): the stackless thread is a comment.
    let mut counts = Vec::new();
    snap.write_counts(&mut counts).unwrap();
    let counts = String::from_utf8(counts).unwrap();
    assert!(
        counts.contains("without a stack: thread_name \"t-blocked\""),
        "{counts}"
    );
    assert!(
        !counts.lines().any(|l| l.trim_end().ends_with('@')),
        "{counts}"
    );
    if let Some(go) = common::go() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("goroutine.txt");
        std::fs::write(&file, &counts).unwrap();
        let out = std::process::Command::new(go)
            .args(["tool", "pprof", "-raw"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    done_tx.send(()).unwrap();
    blocked.join().unwrap();
}

#[test]
fn counts_text_groups_identical_stacks() {
    let _serial = common::serial();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let s = stop.clone();
            thread::Builder::new()
                .name("t-same".into())
                .spawn(move || park_in_thread_park(&s))
                .unwrap()
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let snap = threads::snapshot().unwrap();
    let mut text = Vec::new();
    snap.write_counts(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.starts_with(&format!(
            "goroutine profile: total {}\n",
            snap.threads().len()
        )),
        "{text}"
    );
    // The four workers share one record with count 4.
    let records = text.split_once('\n').unwrap().1;
    let record = records
        .split("\n\n")
        .find(|r| r.contains("\"t-same\""))
        .expect("a t-same record");
    assert!(record.starts_with("4 @ 0x"), "{record}");
    assert!(record.contains("park_in_thread_park"), "{record}");
    // And one profile sample with four thread_id labels.
    let p = snap.profile();
    let s = p
        .samples
        .iter()
        .find(|s| {
            p.stack_names(s)
                .iter()
                .any(|n| n.ends_with("park_in_thread_park"))
        })
        .unwrap();
    assert_eq!(s.values, vec![4]);
    assert_eq!(s.labels.iter().filter(|l| l.key == "thread_id").count(), 4);
    stop.store(true, Ordering::Release);
    for w in workers {
        w.thread().unpark();
        w.join().unwrap();
    }
}

/// The debug=1 text prints the addresses the profile has (the executable's at link-time
/// addresses, as every other text form), so pprof resolves them against the binary.
/// Before: runtime addresses, which only matched `[binary]`.
#[test]
fn debug1_addresses_are_the_profiles() {
    let snap = profile::runtime::threads::snapshot().unwrap();
    let mut text = Vec::new();
    snap.write_counts(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let known: std::collections::HashSet<u64> =
        snap.profile().locations.iter().map(|l| l.address).collect();
    let mut checked = 0;
    for line in text.lines().filter(|l| l.contains(" @ ")) {
        for word in line.split(" @ ").nth(1).unwrap().split_whitespace() {
            let a = u64::from_str_radix(word.trim_start_matches("0x"), 16).unwrap();
            assert!(
                known.contains(&a),
                "{word} is not a location of the profile:\n{text}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "{text}");
}
