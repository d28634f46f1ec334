//! The crate's signals (clock samples, thread dumps) interrupt blocking calls that Linux
//! never restarts, `SA_RESTART` or not: `poll`, `epoll_wait`, `select`, `nanosleep`,
//! `clock_nanosleep`, and socket calls with a timeout (`SO_RCVTIMEO`). They return `EINTR`
//! about once per signal per blocked thread. This measures how often while a clock profile
//! runs at 100 Hz, and checks that std, parking_lot and tokio recover: every sleep lasts
//! at least what was asked, every wait gets its value, every accept its connection.
//! (Reads, writes, accept without a timeout and futex waits are restarted.)

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::libc;

/// Blocks in `poll` on a pipe nobody writes (500 ms timeout) until `stop`; counts EINTRs.
fn poll_counting_eintr(stop: &AtomicBool, eintr: &AtomicU64, calls: &AtomicU64) {
    let (r, _w) = nix::unistd::pipe().unwrap();
    use std::os::fd::AsRawFd;
    let mut fds = [libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, 500) };
        calls.fetch_add(1, Ordering::Relaxed);
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            eintr.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn blocking_calls_recover_from_the_profilers_signals() {
    let clock = profile::runtime::clock::start(100).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (eintr, calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let poller = {
        let (stop, eintr, calls) = (stop.clone(), eintr.clone(), calls.clone());
        thread::spawn(move || poll_counting_eintr(&stop, &eintr, &calls))
    };
    let started = Instant::now();

    // std: sleeps last at least what was asked (nanosleep's EINTR is retried with the
    // time left).
    let sleeper = thread::spawn(|| {
        for _ in 0..20 {
            let t = Instant::now();
            thread::sleep(Duration::from_millis(50));
            assert!(
                t.elapsed() >= Duration::from_millis(50),
                "thread::sleep cut short"
            );
        }
    });
    // std: channel waits with a timeout get the value.
    let (tx, rx) = std::sync::mpsc::channel();
    let sender = thread::spawn(move || {
        for i in 0..20 {
            thread::sleep(Duration::from_millis(40));
            tx.send(i).unwrap();
        }
    });
    for i in 0..20 {
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), i);
    }
    // std: accept and read on blocking sockets.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        for _ in 0..10 {
            thread::sleep(Duration::from_millis(30));
            let mut s = TcpStream::connect(addr).unwrap();
            thread::sleep(Duration::from_millis(30));
            s.write_all(b"ping").unwrap();
        }
    });
    for _ in 0..10 {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }
    // parking_lot: a condvar's timed wait is woken by the notification, not lost.
    let pair = Arc::new((parking_lot::Mutex::new(0u32), parking_lot::Condvar::new()));
    let notifier = {
        let pair = pair.clone();
        thread::spawn(move || {
            for _ in 0..20 {
                thread::sleep(Duration::from_millis(20));
                *pair.0.lock() += 1;
                pair.1.notify_one();
            }
        })
    };
    let mut seen = 0;
    while seen < 20 {
        let mut g = pair.0.lock();
        while *g == seen {
            let r = pair.1.wait_for(&mut g, Duration::from_secs(60));
            assert!(!r.timed_out(), "parking_lot wait lost its notification");
        }
        seen = *g;
    }
    // tokio: timers and sockets on a multi-threaded runtime (its workers block in
    // epoll_wait, which our signals interrupt).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..10 {
            let t = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(
                t.elapsed() >= Duration::from_millis(50),
                "tokio sleep cut short"
            );
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let c = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
                s.write_all(b"pong").await.unwrap();
            }
        });
        for _ in 0..10 {
            use tokio::io::AsyncReadExt;
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
        }
        c.await.unwrap();
    });
    for t in [sleeper, sender, client, notifier] {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    drop(clock.stop().unwrap());
    let (e, c) = (eintr.load(Ordering::Relaxed), calls.load(Ordering::Relaxed));
    println!(
        "clock profiling at 100 Hz: {e} EINTR from poll in {c} calls over {seconds:.2} s ({:.0}/s)",
        e as f64 / seconds
    );
    // The documented behaviour: poll is interrupted (if it never were, the docs would be
    // wrong the other way).
    assert!(e > 0, "poll never returned EINTR under clock profiling");
}
