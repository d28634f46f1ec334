//! The global allocator wrapper that feeds heap profiles.
//!
//! ```
//! #[global_allocator]
//! static ALLOC: profile::Allocator = profile::Allocator::system();
//! # fn main() {}
//! ```
//!
//! It wraps any allocator (`profile::Allocator::new(mimalloc::MiMalloc)`). While heap
//! profiling is off it costs one relaxed atomic load per allocation and per free; while on,
//! see [`crate::runtime::heap`] and `docs/performance.md`.

pub(crate) mod profile;
pub(crate) mod sampler;

use std::alloc::{GlobalAlloc, Layout, System};

/// A global allocator that records sampled allocations for heap profiles, wrapping `A`.
///
/// Install it once, in the binary:
///
/// ```
/// #[global_allocator]
/// static ALLOC: profile::Allocator = profile::Allocator::system();
/// # fn main() {}
/// ```
///
/// Then `.mem()` / `.allocs()` guards and [`crate::runtime::heap`] work. Without it they
/// return [`crate::Error::AllocatorNotInstalled`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Allocator<A = System> {
    inner: A,
}

impl Allocator<System> {
    /// The wrapper around the system allocator (`malloc`).
    pub const fn system() -> Self {
        Allocator { inner: System }
    }
}

impl<A> Allocator<A> {
    /// The wrapper around `inner`, e.g. `profile::Allocator::new(mimalloc::MiMalloc)`.
    pub const fn new(inner: A) -> Self {
        Allocator { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to `inner` with the caller's arguments unchanged and
// returns its result, so `inner`'s guarantees are ours. The sampler only observes
// pointers and sizes: it never writes to the blocks, and it records a free before the
// block goes back to `inner` (so the address cannot be handed out and sampled again while
// its old record exists).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Allocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            sampler::on_alloc(ptr, layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            sampler::on_alloc(ptr, layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sampler::on_free(ptr, layout.size());
        // SAFETY: the caller upholds `dealloc`'s contract, which we pass on.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Recorded as a free of the old block and an allocation of the new one (what Go's
        // profile shows for a grown slice). The old record goes first: after `realloc`
        // the old address may already belong to another thread.
        sampler::on_free(ptr, layout.size());
        // SAFETY: the caller upholds `realloc`'s contract, which we pass on.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            sampler::on_alloc(new, new_size);
        }
        new
    }
}
