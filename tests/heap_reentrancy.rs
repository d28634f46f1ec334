//! The allocator path under hostile conditions, sampling every allocation (rate 1): a
//! signal handler that allocates while the interrupted thread is itself allocating,
//! threads whose thread-local destructors allocate as they exit, and many threads starting
//! at once. Nothing may deadlock or crash, and the profile afterwards must be sane.
//!
//! The wrapped allocator is a bump allocator, which is async-signal-safe, so that an
//! allocation in the signal handler exercises only our layer (glibc's malloc is not
//! async-signal-safe and could deadlock on its own).

#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::RefCell;
use std::hint::black_box;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// A lock-free bump allocator over a fixed arena; frees are no-ops.
struct Bump;

const ARENA: usize = 1 << 30;
static NEXT: AtomicUsize = AtomicUsize::new(0);
static mut MEMORY: [u8; ARENA] = [0; ARENA];

// SAFETY: hands out disjoint, suitably aligned ranges of a static arena (fetch_add makes
// them disjoint), or null when it is exhausted; dealloc does nothing.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size().max(1);
        let align = layout.align();
        let start = NEXT.fetch_add(size + align, Ordering::Relaxed);
        if start + size + align > ARENA {
            return std::ptr::null_mut();
        }
        let base = (&raw mut MEMORY).cast::<u8>() as usize + start;
        let aligned = (base + align - 1) & !(align - 1);
        aligned as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOC: profile::Allocator<Bump> = profile::Allocator::new(Bump);

static HANDLER_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn allocating_handler(_: i32) {
    // Allocating in a signal handler: through our wrapper, possibly while the interrupted
    // code is inside it.
    let b = black_box(Box::new([7u8; 200]));
    drop(b);
    HANDLER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

struct AllocatesOnDrop(Vec<u8>);

impl Drop for AllocatesOnDrop {
    fn drop(&mut self) {
        let v = black_box(vec![1u8; 300]);
        self.0.extend_from_slice(&v);
    }
}

thread_local! {
    static TLS: RefCell<Option<AllocatesOnDrop>> = const { RefCell::new(None) };
}

#[inline(never)]
fn churn(stop: &AtomicBool) -> usize {
    let mut n = 0;
    // Bounded so that the bump arena (frees are no-ops) cannot run out on a fast machine.
    while !stop.load(Ordering::Relaxed) && n < 1_000_000 {
        let v = black_box(vec![n as u8; 64 + n % 512]);
        drop(v);
        n += 1;
    }
    n
}

#[test]
fn every_allocation_sampled_under_signals_tls_destructors_and_thread_churn() {
    assert_eq!(profile::runtime::heap::set_rate(1).unwrap(), 0);
    let action = SigAction::new(
        SigHandler::Handler(allocating_handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler allocates only through the wrapper around an
    // async-signal-safe allocator (the point of this test).
    unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stop = Arc::new(AtomicBool::new(false));
        // A thread allocating continuously, interrupted by allocating signal handlers.
        let churner = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || churn(&stop))
        };
        let target = churner.as_pthread_t();
        // A count of events, not a window of time (on a busy machine a 2 s window held
        // only 19 thread spawns): 150 threads, and 150 handler allocations while the
        // churner runs.
        let mut spawned = 0;
        while spawned < 150
            || (HANDLER_ALLOCATIONS.load(Ordering::Relaxed) < 150 && !churner.is_finished())
        {
            // SAFETY: the churner thread is alive until `stop` is set below.
            unsafe { nix::libc::pthread_kill(target, nix::libc::SIGUSR1) };
            // Threads that allocate at start and in their TLS destructors at exit.
            let t = std::thread::spawn(|| {
                TLS.with(|t| *t.borrow_mut() = Some(AllocatesOnDrop(vec![0u8; 100])));
                black_box(vec![0u8; 1000]);
            });
            t.join().unwrap();
            spawned += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
        stop.store(true, Ordering::Relaxed);
        let churned = churner.join().unwrap();
        done_tx.send((churned, spawned)).unwrap();
    });
    // A deadlock shows up as a timeout here instead of a hung test run.
    let (churned, spawned) = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("allocating threads deadlocked");
    let handled = HANDLER_ALLOCATIONS.load(Ordering::Relaxed);
    println!("{churned} churn allocations, {spawned} threads, {handled} handler allocations");
    assert!(churned > 1000 && spawned > 100 && handled > 100);

    let stats = profile::runtime::heap::stats();
    let p = profile::runtime::heap::profile().unwrap();
    println!("{stats:?}");
    assert!(p.total("alloc_objects") > 0);
    let churn_allocs: i64 = p
        .samples
        .iter()
        .filter(|s| {
            // The handler runs on top of the churner's stack: its allocations are not churn's.
            let names = p.stack_names(s);
            names.iter().any(|n| n.ends_with("::churn"))
                && !names.iter().any(|n| n.ends_with("allocating_handler"))
        })
        .map(|s| s.values[0])
        .sum();
    // Rate 1 records every allocation the churner made (its frees are all matched too,
    // unless the tables filled up, which stats report).
    assert!(churn_allocs > 0);
    if stats.dropped_samples == 0 {
        assert_eq!(churn_allocs as usize, churned);
    }
    profile::runtime::heap::set_rate(0).unwrap();
}
