//! Allocations the heap profile must not charge to the program: the profiler's own
//! (the symbolizer's DWARF caches were 97% of `http_server`'s in-use heap).
//!
//! A per-thread depth counter; the heap sampler's slow path skips recording while it is
//! nonzero. `const`-initialized, no destructor: readable from the allocator path.

use std::cell::Cell;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is inside an [`Untracked`] scope.
pub(crate) fn active() -> bool {
    DEPTH.get() != 0
}

/// While alive, this thread's allocations are not sampled by the heap profiler.
pub(crate) struct Untracked(());

impl Untracked {
    pub(crate) fn new() -> Untracked {
        DEPTH.set(DEPTH.get() + 1);
        Untracked(())
    }
}

impl Drop for Untracked {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get().saturating_sub(1));
    }
}
