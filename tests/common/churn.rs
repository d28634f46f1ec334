//! Background churn for the stress tests: threads that allocate and free, and that load
//! and unload shared libraries, until told to stop.

use std::ffi::CStr;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use nix::libc;

/// Shared libraries of glibc itself, present wherever glibc is, rarely loaded already.
pub const LIBRARIES: [&CStr; 3] = [c"libBrokenLocale.so.1", c"libresolv.so.2", c"libanl.so.1"];

/// Allocates and frees blocks of assorted sizes, keeping up to 64 alive.
#[inline(never)]
pub fn heap(stop: &AtomicBool, ops: &AtomicU64) {
    let mut keep: Vec<Vec<u8>> = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        i = i.wrapping_mul(31).wrapping_add(7);
        keep.push(vec![i as u8; 16 + i % 4000]);
        if keep.len() > 64 {
            keep.swap_remove(i % keep.len());
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
    black_box(keep);
}

/// Loads and unloads `LIBRARIES` in turn; returns how many loads succeeded.
#[inline(never)]
pub fn libraries(stop: &AtomicBool, ops: &AtomicU64) -> usize {
    let mut loaded = 0;
    while !stop.load(Ordering::Relaxed) {
        for name in LIBRARIES {
            // SAFETY: dlopen/dlclose of glibc's own small libraries, whose constructors do
            // nothing this program could notice.
            unsafe {
                let h = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                if !h.is_null() {
                    loaded += 1;
                    libc::dlclose(h);
                }
            }
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
    loaded
}

/// Spawns and joins short-lived threads named `short-lived`, each doing a little work.
#[inline(never)]
pub fn threads(stop: &AtomicBool, ops: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        let t = std::thread::Builder::new()
            .name("short-lived".into())
            .spawn(|| black_box((0..20_000u64).map(|i| i * i).sum::<u64>()))
            .unwrap();
        t.join().unwrap();
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// A churn job: runs until `stop`, counting its rounds in the counter.
pub type Job = fn(&AtomicBool, &AtomicU64);

/// Starts each job on a thread named `churn-NAME`; returns the threads and the jobs'
/// round counters (in the jobs' order).
pub fn start(
    stop: &Arc<AtomicBool>,
    jobs: &[(&str, Job)],
) -> (Vec<JoinHandle<()>>, Arc<Vec<AtomicU64>>) {
    let counters: Arc<Vec<AtomicU64>> = Arc::new(jobs.iter().map(|_| AtomicU64::new(0)).collect());
    let threads = jobs
        .iter()
        .enumerate()
        .map(|(i, &(name, job))| {
            let (stop, counters) = (stop.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("churn-{name}"))
                .spawn(move || job(&stop, &counters[i]))
                .unwrap()
        })
        .collect();
    (threads, counters)
}

/// `libraries`, checking that at least one library could be loaded.
pub fn libraries_checked(stop: &AtomicBool, ops: &AtomicU64) {
    assert!(libraries(stop, ops) > 0, "no library could be loaded");
}
