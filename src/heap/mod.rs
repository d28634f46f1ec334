//! The global allocator wrapper that feeds heap profiles.
//!
//! ```
//! #[global_allocator]
//! static ALLOC: profile::Allocator = profile::Allocator::system();
//! # fn main() {}
//! ```
//!
//! It wraps any allocator (`profile::Allocator::new(mimalloc::MiMalloc)`). Sampling on or
//! off, an allocation costs one thread-local decrement and branch before the wrapped
//! allocator is tail-called, and a free one relaxed atomic load (plus, for a size that has
//! live samples, a bit of an address filter of 8 KiB that grows with the live samples).
//! For what a sampled allocation costs, see [`crate::runtime::heap`] and
//! `docs/performance.md`.

mod filter;
mod mapped;
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
        // The countdown is charged first, so that nearly every allocation is one
        // thread-local decrement and a tail call of `inner`'s; the sampled one goes
        // through a cold function (a tail call too), so the fast path sets up no frame.
        if !sampler::charge(layout.size()) {
            // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
            return unsafe { self.inner.alloc(layout) };
        }
        // SAFETY: as above.
        unsafe { alloc_sampled(&self.inner, layout, false) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !sampler::charge(layout.size()) {
            // SAFETY: as for `alloc`.
            return unsafe { self.inner.alloc_zeroed(layout) };
        }
        // SAFETY: as for `alloc`.
        unsafe { alloc_sampled(&self.inner, layout, true) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if sampler::size_has_samples(layout.size()) {
            // SAFETY: the caller upholds `dealloc`'s contract, which we pass on.
            return unsafe { dealloc_sampled(&self.inner, ptr, layout) };
        }
        // SAFETY: as above.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Recorded as a free of the old block and an allocation of the new one (what Go's
        // profile shows for a grown slice). The old record goes first: after `realloc`
        // the old address may already belong to another thread.
        let old_gated = sampler::size_has_samples(layout.size());
        let sample = sampler::charge(new_size);
        if !(old_gated | sample) {
            // SAFETY: the caller upholds `realloc`'s contract, which we pass on.
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        }
        // SAFETY: as above.
        unsafe { realloc_sampled(&self.inner, ptr, layout, new_size, old_gated, sample) }
    }
}

/// An allocation whose countdown ran out: made, then shown to the sampler.
///
/// # Safety
///
/// `GlobalAlloc::alloc`'s (or `alloc_zeroed`'s) contract for `layout`.
#[cold]
#[inline(never)]
unsafe fn alloc_sampled<A: GlobalAlloc>(inner: &A, layout: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: the caller upholds the contract, which we pass on.
    let ptr = unsafe {
        if zeroed {
            inner.alloc_zeroed(layout)
        } else {
            inner.alloc(layout)
        }
    };
    sampler::on_alloc_slow(ptr, layout.size());
    ptr
}

/// A reallocation of a block of a size that live samples have (`old_gated`: if the
/// address filter says it may be one, its free is shown to the sampler first, and undone
/// if `inner` refuses), or whose countdown ran out (`sample`: the new block is shown to it
/// once made).
///
/// # Safety
///
/// `GlobalAlloc::realloc`'s contract for `ptr`, `layout` and `new_size`.
#[cold]
#[inline(never)]
unsafe fn realloc_sampled<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    old_gated: bool,
    sample: bool,
) -> *mut u8 {
    let taken = if old_gated && sampler::may_be_sampled(ptr) {
        sampler::on_free_slow(ptr)
    } else {
        None
    };
    // SAFETY: the caller upholds the contract, which we pass on.
    let new = unsafe { inner.realloc(ptr, layout, new_size) };
    if new.is_null()
        && let Some(taken) = taken
    {
        // Refused: the old block is still the caller's, and still a sample.
        sampler::restore(ptr, taken);
    }
    if sample {
        sampler::on_alloc_slow(new, new_size);
    }
    new
}

/// A free of a block of a size that live samples have: shown to the sampler if the
/// address filter says it may be one, then made (a tail call of `inner`'s otherwise).
///
/// # Safety
///
/// `GlobalAlloc::dealloc`'s contract for `ptr` and `layout`.
#[cold]
#[inline(never)]
unsafe fn dealloc_sampled<A: GlobalAlloc>(inner: &A, ptr: *mut u8, layout: Layout) {
    if sampler::may_be_sampled(ptr) {
        sampler::on_free_slow(ptr);
    }
    // SAFETY: the caller upholds the contract, which we pass on.
    unsafe { inner.dealloc(ptr, layout) }
}
