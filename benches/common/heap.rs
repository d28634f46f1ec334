//! Shared by `benches/heap_overhead.rs` and `examples/heap_workload.rs`: a global
//! allocator switchable between System and the wrapper, and the `program` workload.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
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

/// A small allocation-heavy program. Its collections allocate through the global
/// allocator, which `measure` switches between System and the wrapper.
#[inline(never)]
pub fn program(iterations: usize, seed: u64) -> u64 {
    use std::collections::HashMap;
    use std::fmt::Write;
    #[derive(Debug)]
    enum Tree {
        Leaf(u64),
        Node(Box<Tree>, Box<Tree>),
    }
    fn build(depth: u32, x: u64) -> Tree {
        if depth == 0 {
            Tree::Leaf(x)
        } else {
            Tree::Node(
                Box::new(build(depth - 1, x.wrapping_mul(3))),
                Box::new(build(depth - 1, x ^ 0x55)),
            )
        }
    }
    fn sum(t: &Tree) -> u64 {
        match t {
            Tree::Leaf(x) => *x,
            Tree::Node(a, b) => sum(a).wrapping_add(sum(b)),
        }
    }
    let mut total = 0u64;
    for i in 0..iterations {
        let x = seed.wrapping_add(i as u64);
        let mut words: Vec<String> = Vec::new();
        for j in 0..32u64 {
            let mut s = String::new();
            write!(s, "item-{}-{}", x, j * 7919).unwrap();
            words.push(s);
        }
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        for (k, w) in words.iter().enumerate() {
            index
                .entry(w[..w.len().min(9)].to_owned())
                .or_default()
                .push(k as u32);
        }
        let tree = build(5, x);
        total = total
            .wrapping_add(sum(&tree))
            .wrapping_add(index.len() as u64);
        total = total.wrapping_add(words.iter().map(|w| w.len() as u64).sum::<u64>());
    }
    black_box(total)
}
