//! Fast stack capture for heap samples on x86_64 Linux: DWARF CFI unwinding with a rule
//! cache (`framehop`), reading `.eh_frame_hdr` / `.eh_frame` straight from the loaded
//! objects' memory.
//!
//! # Layering rule
//!
//! [`FastUnwinder::capture`] runs inside `GlobalAlloc` (with the sampler's lock held): it
//! must not allocate, take another lock, format or log. framehop's
//! `MustNotAllocateDuringUnwind` policy keeps its evaluation on the stack; the rule cache
//! is allocated once in [`FastUnwinder::new`], on an ordinary thread.
//!
//! Why: libgcc's `_Unwind_Backtrace` costs about 100 ns per frame (1 µs for a 10-frame
//! stack, measured here), which at the default 512 KiB rate made an allocation-heavy
//! workload 1.2× slower; cached rules bring a sample to a fraction of that (see
//! `docs/performance.md`).
//!
//! Limits: modules are listed when sampling starts (each `set_rate`); an address in a
//! library loaded later ends the fast walk, and the caller then falls back to libgcc's
//! unwinder for that sample. A library unloaded (`dlclose`) while sampling is on leaves
//! its section slices dangling; Rust programs rarely unload libraries, and the next
//! `set_rate` rebuilds the list.

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{FrameAddress, MustNotAllocateDuringUnwind, Unwinder};

use crate::sys::objects;

use super::sampler::MAX_DEPTH;

type Data = &'static [u8];

/// The unwinder and its rule cache.
pub(crate) struct FastUnwinder {
    unwinder: UnwinderX86_64<Data, MustNotAllocateDuringUnwind>,
    cache: CacheX86_64<MustNotAllocateDuringUnwind>,
    /// The loader's (loads, unloads) counters when the modules were listed.
    generation: (u64, u64),
}

impl FastUnwinder {
    /// Whether no object was loaded or unloaded since this unwinder listed them (then it
    /// is kept, with its warm rule cache, instead of being rebuilt).
    pub(crate) fn is_current(&self) -> bool {
        objects::generation() == self.generation
    }

    /// Lists the loaded objects. Runs on an ordinary thread (it allocates).
    pub(crate) fn new() -> FastUnwinder {
        let generation = objects::generation();
        let mut unwinder = UnwinderX86_64::new();
        for l in &objects::list(false) {
            // SAFETY: in place, no copy: see the module docs for `dlclose`.
            unwinder.add_module(unsafe { objects::module_in_place(l) });
        }
        FastUnwinder {
            unwinder,
            cache: CacheX86_64::new_in(),
            generation,
        }
    }

    /// Captures the caller's stack (return addresses, leaf first) into `stack`. `None`
    /// when the walk failed before reaching the outermost frame (an unknown module, odd
    /// unwind information): the caller then uses another unwinder.
    #[inline(never)]
    pub(crate) fn capture(&mut self, stack: &mut [u64; MAX_DEPTH]) -> Option<usize> {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers; no memory is touched, no flags changed.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        // Only this thread's stack above the current frame is ever read.
        let limit = sp.saturating_add(256 << 20);
        let mut read_stack = |addr: u64| {
            if addr < sp || addr >= limit || !addr.is_multiple_of(8) {
                return Err(());
            }
            // SAFETY: an aligned address between this frame's stack pointer and the
            // callers' frames that the unwind rules point into; the stack is mapped.
            Ok(unsafe { (addr as *const u64).read_volatile() })
        };
        let mut frames = self.unwinder.iter_frames(
            ip,
            UnwindRegsX86_64::new(ip, sp, bp),
            &mut self.cache,
            &mut read_stack,
        );
        let mut n = 0;
        loop {
            match frames.next() {
                Ok(Some(frame)) => {
                    if n == MAX_DEPTH {
                        return Some(n);
                    }
                    // Skip this function's own frame (the first, an instruction pointer).
                    if let FrameAddress::ReturnAddress(ra) = frame {
                        stack[n] = ra.get();
                        n += 1;
                    }
                }
                Ok(None) => return Some(n),
                Err(_) => return None,
            }
        }
    }
}
