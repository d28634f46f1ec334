//! Shared by `benches/heap_overhead.rs`, `examples/heap_workload.rs` and
//! `benches/jemalloc`: a global allocator switchable between a base allocator and the
//! wrapper around it, the `churn` stress loop, and the `program` workload.
#![allow(dead_code)] // each user takes what it needs

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

/// The global allocator of a heap benchmark: `base` itself or the wrapper around it,
/// switched between rounds, so that the `program` workload (which allocates through std's
/// collections) can be compared with itself. A switch happens only when no sampled block
/// is live, so every block is freed by an allocator that accepts it.
pub struct Switch<A: 'static> {
    base: A,
    wrapper: profile::Allocator<A>,
}

impl<A: Copy> Switch<A> {
    /// Over `base` (System, jemalloc), starting on the wrapper.
    pub const fn new(base: A) -> Self {
        Switch {
            base,
            wrapper: profile::Allocator::new(base),
        }
    }
}

pub static USE_WRAPPER: AtomicBool = AtomicBool::new(true);

// SAFETY: forwards to `base` or to the wrapper around it. Unsampled blocks of either are
// plain `base` blocks, so either may free them; sampled blocks (which only the wrapper may
// free) are all freed before `use_wrapper(false)` switches away (it checks).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Switch<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                self.wrapper.alloc(layout)
            } else {
                self.base.alloc(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                self.wrapper.dealloc(ptr, layout)
            } else {
                self.base.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                self.wrapper.realloc(ptr, layout, new_size)
            } else {
                self.base.realloc(ptr, layout, new_size)
            }
        }
    }
}

/// `ops` allocations through `a` of 16 B << (0..=max_shift) (a ring of 256 live blocks),
/// each written whole (`init`) or in its first byte only; returns a checksum.
#[inline(never)]
pub fn churn<A: GlobalAlloc>(a: &A, seed: u64, ops: usize, max_shift: u64, init: bool) -> u64 {
    let mut ring = [(std::ptr::null_mut::<u8>(), 0usize); 256];
    let mut x = seed | 1;
    let mut sum = 0u64;
    for i in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 16usize << (x % (max_shift + 1));
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: layout has a nonzero size; the block is written within bounds and freed
        // once with the layout it was allocated with.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            if init {
                p.write_bytes(i as u8, size);
            } else {
                p.write(i as u8);
            }
            sum += u64::from(*std::hint::black_box(p));
            let slot = &mut ring[i % 256];
            if !slot.0.is_null() {
                a.dealloc(slot.0, Layout::from_size_align(slot.1, 8).unwrap());
            }
            *slot = (p, size);
        }
    }
    for (p, size) in ring {
        if !p.is_null() {
            // SAFETY: allocated above with this size and alignment, freed once.
            unsafe { a.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
        }
    }
    sum
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu() -> std::time::Duration {
    use nix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    std::time::Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

pub fn use_wrapper(on: bool) {
    if !on {
        let live = profile::runtime::heap::stats().live_samples;
        assert_eq!(
            live, 0,
            "sampled blocks still live: cannot switch to the base allocator"
        );
    }
    USE_WRAPPER.store(on, Ordering::SeqCst);
}

#[path = "heap_program.rs"]
mod heap_program;
pub use heap_program::program;
