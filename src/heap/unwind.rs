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

use std::ffi::CStr;
use std::ops::Range;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder,
};
use nix::libc;

use super::sampler::MAX_DEPTH;

type Data = &'static [u8];

/// The unwinder and its rule cache.
pub(crate) struct FastUnwinder {
    unwinder: UnwinderX86_64<Data, MustNotAllocateDuringUnwind>,
    cache: CacheX86_64<MustNotAllocateDuringUnwind>,
    /// The loader's (loads, unloads) counters when the modules were listed.
    generation: (u64, u64),
}

unsafe extern "C" fn read_generation(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: as in `collect`; `data` is the `(u64, u64)` passed by `loader_generation`.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<(u64, u64)>()) };
    *out = (info.dlpi_adds, info.dlpi_subs);
    1 // stop after the first object: the counters are process-wide
}

/// glibc's counts of objects loaded and unloaded so far.
fn loader_generation() -> (u64, u64) {
    let mut generation = (0u64, 0u64);
    // SAFETY: `read_generation` only writes the `(u64, u64)` passed here.
    unsafe {
        libc::dl_iterate_phdr(Some(read_generation), (&raw mut generation).cast());
    }
    generation
}

/// One loaded object as `dl_iterate_phdr` describes it.
struct Loaded {
    name: String,
    bias: u64,
    /// (p_vaddr, p_memsz, p_filesz, executable) of each PT_LOAD.
    loads: Vec<(u64, u64, u64, bool)>,
    /// PT_GNU_EH_FRAME: (p_vaddr, p_memsz).
    eh_frame_hdr: Option<(u64, u64)>,
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and
    // `data` is the `&mut Vec<Loaded>` given to it below.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Loaded>>()) };
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null dlpi_name is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let mut loaded = Loaded {
        name,
        bias: info.dlpi_addr,
        loads: Vec::new(),
        eh_frame_hdr: None,
    };
    for i in 0..usize::from(info.dlpi_phnum) {
        // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        match ph.p_type {
            libc::PT_LOAD => loaded.loads.push((
                ph.p_vaddr,
                ph.p_memsz,
                ph.p_filesz,
                ph.p_flags & libc::PF_X != 0,
            )),
            libc::PT_GNU_EH_FRAME => loaded.eh_frame_hdr = Some((ph.p_vaddr, ph.p_memsz)),
            _ => {}
        }
    }
    out.push(loaded);
    0
}

/// A slice of this process's memory at `svma + bias`.
///
/// # Safety
///
/// The range must be mapped readable for as long as the slice is used (a loaded
/// object's segment, until the object is unloaded).
unsafe fn memory(bias: u64, svma: u64, len: u64) -> Data {
    // SAFETY: per the function's contract.
    unsafe { std::slice::from_raw_parts((bias + svma) as *const u8, len as usize) }
}

/// The SVMA of `.eh_frame`, from the `eh_frame_ptr` field of `.eh_frame_hdr`.
fn eh_frame_svma(hdr: Data, hdr_svma: u64) -> Option<u64> {
    let (&version, &enc) = (hdr.first()?, hdr.get(1)?);
    if version != 1 {
        return None;
    }
    let field = hdr.get(4..12)?;
    // DW_EH_PE format (low nibble) and application (high nibble).
    let value = match enc & 0x0f {
        0x03 => u64::from(u32::from_le_bytes(field[..4].try_into().ok()?)), // udata4
        0x0b => i64::from(i32::from_le_bytes(field[..4].try_into().ok()?)) as u64, // sdata4
        0x04 | 0x0c => u64::from_le_bytes(field.try_into().ok()?),          // (u|s)data8
        _ => return None,
    };
    match enc & 0x70 {
        0x00 => Some(value),                              // absolute
        0x10 => Some((hdr_svma + 4).wrapping_add(value)), // pcrel
        0x30 => Some(hdr_svma.wrapping_add(value)),       // datarel (relative to hdr)
        _ => None,
    }
}

fn module(l: &Loaded) -> Option<Module<Data>> {
    let (hdr_svma, hdr_len) = l.eh_frame_hdr?;
    let &(text_vaddr, text_memsz, _, _) = l.loads.iter().find(|s| s.3)?;
    // SAFETY: PT_GNU_EH_FRAME lies in a loaded, readable segment of this object.
    let hdr = unsafe { memory(l.bias, hdr_svma, hdr_len) };
    let eh_svma = eh_frame_svma(hdr, hdr_svma)?;
    // .eh_frame's size is not recorded in memory: give it the rest of its segment's
    // file-backed part (FDEs are found through the header's table, so trailing bytes are
    // never parsed as FDEs).
    let &(seg_vaddr, _, seg_filesz, _) = l
        .loads
        .iter()
        .find(|&&(v, _, f, _)| v <= eh_svma && eh_svma < v + f)?;
    let eh_len = seg_vaddr + seg_filesz - eh_svma;
    let text_range: Range<u64> = text_vaddr..text_vaddr + text_memsz;
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(text_range.clone()),
        // SAFETY: the executable segment is mapped readable (r-x).
        text: Some(unsafe { memory(l.bias, text_vaddr, text_memsz) }),
        eh_frame_svma: Some(eh_svma..eh_svma + eh_len),
        // SAFETY: inside a loaded segment's file-backed part, computed above.
        eh_frame: Some(unsafe { memory(l.bias, eh_svma, eh_len) }),
        eh_frame_hdr_svma: Some(hdr_svma..hdr_svma + hdr_len),
        eh_frame_hdr: Some(hdr),
        ..Default::default()
    };
    let avma = l.bias + text_range.start..l.bias + text_range.end;
    Some(Module::new(l.name.clone(), avma, l.bias, info))
}

impl FastUnwinder {
    /// Whether no object was loaded or unloaded since this unwinder listed them (then it
    /// is kept, with its warm rule cache, instead of being rebuilt).
    pub(crate) fn is_current(&self) -> bool {
        loader_generation() == self.generation
    }

    /// Lists the loaded objects. Runs on an ordinary thread (it allocates).
    pub(crate) fn new() -> FastUnwinder {
        let generation = loader_generation();
        let mut loaded: Vec<Loaded> = Vec::new();
        // SAFETY: `collect` matches the callback signature and only uses `data` as the
        // `Vec<Loaded>` passed here, which outlives the call.
        unsafe {
            libc::dl_iterate_phdr(Some(collect), (&raw mut loaded).cast());
        }
        let mut unwinder = UnwinderX86_64::new();
        for l in &loaded {
            if let Some(m) = module(l) {
                unwinder.add_module(m);
            }
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
