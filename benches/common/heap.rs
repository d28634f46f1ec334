//! Shared by `benches/heap_overhead.rs` and `examples/heap_workload.rs`: a global
//! allocator switchable between System and the wrapper, and the `program` workload.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// The global allocator of this benchmark: `System` or the wrapper, switched between
/// rounds, so that the `program` workload (which allocates through std's collections) can
/// be compared with itself. A switch happens only when no sampled block is live, so every
/// block is freed by an allocator that accepts it.
pub struct Switch;

pub static USE_WRAPPER: AtomicBool = AtomicBool::new(true);
static WRAPPER: profile::Allocator = profile::Allocator::system();

// SAFETY: forwards to System or to the wrapper around System. Unsampled blocks of either
// are plain System blocks, so either may free them; sampled blocks (which only the wrapper
// may free) are all freed before `use_wrapper(false)` switches away (it checks).
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                WRAPPER.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                WRAPPER.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if USE_WRAPPER.load(Ordering::Relaxed) {
                WRAPPER.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        }
    }
}

pub fn use_wrapper(on: bool) {
    if !on {
        let live = profile::runtime::heap::stats().live_samples;
        assert_eq!(
            live, 0,
            "sampled blocks still live: cannot switch to System"
        );
    }
    USE_WRAPPER.store(on, Ordering::SeqCst);
}

#[path = "heap_program.rs"]
mod heap_program;
pub use heap_program::program;
