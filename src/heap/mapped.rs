//! Zeroed memory for the heap sampler's tables, taken from the system, never from an
//! allocator (the tables are made while the allocator wrapper may be the global
//! allocator), and kept for the process's lifetime.

use std::sync::atomic::AtomicU64;

/// A zeroed slice for the process's lifetime whose pages become resident only when
/// touched: an anonymous mapping on Linux (calloc would often come from the heap and
/// write every byte), zeroed memory from the system allocator elsewhere.
pub(super) fn zeroed<T: Copy>(len: usize) -> &'static mut [T] {
    let bytes = (len * size_of::<T>()).max(1);
    #[cfg(target_os = "linux")]
    let ptr = {
        // SAFETY: a fresh private anonymous mapping with no address hint; the result is
        // checked below.
        let p = unsafe {
            nix::libc::mmap(
                std::ptr::null_mut(),
                bytes,
                nix::libc::PROT_READ | nix::libc::PROT_WRITE,
                nix::libc::MAP_PRIVATE | nix::libc::MAP_ANONYMOUS | nix::libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == nix::libc::MAP_FAILED {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::array::<T>(len).unwrap_or(std::alloc::Layout::new::<T>()),
            );
        }
        p.cast::<T>()
    };
    #[cfg(not(target_os = "linux"))]
    let ptr = {
        // At least a word's alignment: `zeroed_atomic` hands the memory out as atomics.
        let align = align_of::<T>().max(align_of::<AtomicU64>());
        let layout =
            std::alloc::Layout::from_size_align(bytes, align).expect("table size fits a layout");
        // SAFETY: a nonzero-size layout.
        let p = unsafe {
            <std::alloc::System as std::alloc::GlobalAlloc>::alloc_zeroed(
                &std::alloc::System,
                layout,
            )
        };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        p.cast::<T>()
    };
    // SAFETY: `ptr` points to `bytes` zeroed, writable bytes, aligned for T and for
    // `AtomicU64` (page-aligned, or by the layout), never freed and not aliased; T is only instantiated with
    // integer-only types (Bucket, Live, u8, u32, u64), for which all-zero is a valid
    // value.
    unsafe { std::slice::from_raw_parts_mut(ptr, len) }
}

/// [`zeroed`] words shared with lock-free readers.
pub(super) fn zeroed_atomic(len: usize) -> &'static [AtomicU64] {
    let words = zeroed::<u64>(len);
    // SAFETY: `AtomicU64` has the size of `u64`, `zeroed` aligns for it, and the
    // exclusive borrow is given up here: from now on the words are only accessed
    // atomically.
    unsafe { std::slice::from_raw_parts(words.as_mut_ptr().cast::<AtomicU64>(), len) }
}
