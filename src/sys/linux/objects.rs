//! The loaded objects (executable, shared libraries, vdso) as the dynamic loader lists
//! them, turned into `framehop` modules for the DWARF CFI unwinders (the heap sampler's
//! and the signal-based stack capture's).
//!
//! Everything here runs on an ordinary thread: it allocates and calls
//! `dl_iterate_phdr`, which takes the loader's lock. The unwinders built from it are then
//! used where neither is allowed.

#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]

use std::ffi::CStr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use framehop::{ExplicitModuleSectionInfo, Module};
use nix::libc;

unsafe extern "C" fn read_generation(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call; `data` is
    // the `(u64, u64)` passed by `generation`.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<(u64, u64)>()) };
    *out = (info.dlpi_adds, info.dlpi_subs);
    1 // stop after the first object: the counters are process-wide
}

/// Our threads inside `dl_iterate_phdr`.
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// A fork is being prepared: no new call may start.
static FORKING: AtomicBool = AtomicBool::new(false);

/// `fork()`: glibc does not reset the loader's lock in the child, so a fork while one of
/// our threads (the CPU manager, a dump, the symbolizer) is inside `dl_iterate_phdr` left
/// the child blocked forever in its next one (seen: 1 child in 40). The prepare handler
/// stops new calls and waits for the running ones, before any lock of ours is taken
/// (a call may allocate, which takes the heap sampler's lock).
static FORK_HANDLERS: super::fork::Handlers = super::fork::Handlers {
    prepare: || {
        FORKING.store(true, Ordering::SeqCst);
        while INSIDE.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    },
    parent: || FORKING.store(false, Ordering::SeqCst),
    child: || FORKING.store(false, Ordering::SeqCst),
};

/// Runs `f` (which calls `dl_iterate_phdr`) unless a fork is being prepared; then waits
/// for it (`wait`) or returns `None`.
fn iterate<T>(wait: bool, f: impl FnOnce() -> T) -> Option<T> {
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.swap(true, Ordering::Relaxed) {
        let _ = super::fork::register(super::fork::Slot::Objects, &FORK_HANDLERS);
    }
    loop {
        if FORKING.load(Ordering::SeqCst) {
            if !wait {
                return None;
            }
            std::thread::yield_now();
            continue;
        }
        INSIDE.fetch_add(1, Ordering::SeqCst);
        if FORKING.load(Ordering::SeqCst) {
            INSIDE.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let r = f();
        INSIDE.fetch_sub(1, Ordering::SeqCst);
        return Some(r);
    }
}

/// glibc's counts of objects loaded and unloaded so far: equal counts mean the same set
/// of loaded objects. Never waits: while a fork is being prepared it returns the last
/// value read (it may be called under the heap sampler's lock, which the fork's prepare
/// handlers take after waiting for these calls).
pub(crate) fn generation() -> (u64, u64) {
    static LAST: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    let read = iterate(false, || {
        let mut generation = (0u64, 0u64);
        // SAFETY: `read_generation` only writes the `(u64, u64)` passed here.
        unsafe {
            libc::dl_iterate_phdr(Some(read_generation), (&raw mut generation).cast());
        }
        generation
    });
    match read {
        Some(g) => {
            LAST[0].store(g.0, Ordering::Relaxed);
            LAST[1].store(g.1, Ordering::Relaxed);
            g
        }
        None => (
            LAST[0].load(Ordering::Relaxed),
            LAST[1].load(Ordering::Relaxed),
        ),
    }
}

/// One loaded object's unwind sections, found (and, if asked, copied) while the loader's
/// lock was held: inside a `dl_iterate_phdr` callback the object cannot be unmapped by a
/// concurrent `dlclose`, after it can (reading its headers later crashed a stress test).
pub(crate) struct Loaded {
    name: String,
    bias: u64,
    /// SVMA range of the executable segments.
    text: Range<u64>,
    /// SVMA ranges of `.eh_frame_hdr` and `.eh_frame`.
    eh_frame_hdr: Range<u64>,
    eh_frame: Range<u64>,
    /// Copies of `.eh_frame_hdr` and `.eh_frame`, when listed with `copy`.
    copies: Option<(Vec<u8>, Vec<u8>)>,
}

/// What `collect` is given: the objects so far and whether to copy their sections.
struct Collect {
    objects: Vec<Loaded>,
    copy: bool,
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and
    // `data` is the `&mut Collect` given to it by `list`.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<Collect>()) };
    // (p_vaddr, p_memsz, p_filesz, executable) of each PT_LOAD; PT_GNU_EH_FRAME.
    let mut loads = Vec::new();
    let mut hdr = None;
    for i in 0..usize::from(info.dlpi_phnum) {
        // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        match ph.p_type {
            libc::PT_LOAD => loads.push((
                ph.p_vaddr,
                ph.p_memsz,
                ph.p_filesz,
                ph.p_flags & libc::PF_X != 0,
            )),
            libc::PT_GNU_EH_FRAME => hdr = Some((ph.p_vaddr, ph.p_memsz)),
            _ => {}
        }
    }
    let Some((hdr_svma, hdr_len)) = hdr else {
        return 0;
    };
    let bias = info.dlpi_addr;
    // SAFETY: PT_GNU_EH_FRAME lies in a loaded, readable segment of this object, which
    // stays mapped while this callback runs.
    let hdr = unsafe { memory(bias, hdr_svma, hdr_len) };
    let Some(eh_svma) = eh_frame_svma(hdr, hdr_svma) else {
        return 0;
    };
    // .eh_frame's size is not recorded in memory: give it the rest of its segment's
    // file-backed part (FDEs are found through the header's table, so trailing bytes are
    // never parsed as FDEs).
    let Some(&(seg_vaddr, _, seg_filesz, _)) = loads
        .iter()
        .find(|&&(v, _, f, _)| v <= eh_svma && eh_svma < v + f)
    else {
        return 0;
    };
    let eh_len = seg_vaddr + seg_filesz - eh_svma;
    // The address range of every executable segment (most objects have one).
    let (lo, hi) = loads
        .iter()
        .filter(|s| s.3)
        .fold((u64::MAX, 0), |(lo, hi), s| {
            (lo.min(s.0), hi.max(s.0 + s.1))
        });
    if lo >= hi {
        return 0;
    }
    let copies = out.copy.then(|| {
        // SAFETY: inside a loaded segment's file-backed part, computed above; mapped
        // while this callback runs.
        let eh = unsafe { memory(bias, eh_svma, eh_len) };
        (hdr.to_vec(), eh.to_vec())
    });
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null dlpi_name is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    out.objects.push(Loaded {
        name,
        bias,
        text: lo..hi,
        eh_frame_hdr: hdr_svma..hdr_svma + hdr_len,
        eh_frame: eh_svma..eh_svma + eh_len,
        copies,
    });
    0
}

/// The objects loaded now that have unwind information; with `copy`, their unwind
/// sections are copied. Each is also remembered in [`seen`].
pub(crate) fn list(copy: bool) -> Vec<Loaded> {
    let mut out = Collect {
        objects: Vec::new(),
        copy,
    };
    // Waits while a fork is being prepared: never called under a lock the fork's prepare
    // handlers take.
    iterate(true, || {
        // SAFETY: `collect` matches the callback signature and only uses `data` as the
        // `Collect` passed here, which outlives the call.
        unsafe {
            libc::dl_iterate_phdr(Some(collect), (&raw mut out).cast());
        }
    });
    remember(&out.objects);
    out.objects
}

/// A shared object seen loaded by [`list`]: its path, load bias and the runtime range of
/// its executable segments. Samples taken in a library that is unloaded (`dlclose`)
/// before the profile is written are named through these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub name: String,
    pub bias: u64,
    pub text: Range<u64>,
}

/// Objects remembered at most (the oldest is forgotten first).
pub(crate) const MAX_SEEN: usize = 256;

/// Every walker rebuild (after a load or unload) lists the objects, so an object a sample
/// could be unwound through was listed while it was loaded. Only ordinary threads lock it.
pub(crate) static SEEN: parking_lot::Mutex<std::collections::VecDeque<Seen>> =
    parking_lot::Mutex::new(std::collections::VecDeque::new());

fn remember(objects: &[Loaded]) {
    let mut seen = SEEN.lock();
    for o in objects {
        // Only files: the executable and the vdso never go away.
        if !o.name.starts_with('/') {
            continue;
        }
        let text = o.bias + o.text.start..o.bias + o.text.end;
        if seen.iter().any(|s| s.name == o.name && s.text == text) {
            continue;
        }
        if seen.len() >= MAX_SEEN {
            seen.pop_front();
        }
        seen.push_back(Seen {
            name: o.name.clone(),
            bias: o.bias,
            text,
        });
    }
}

/// The objects [`list`] has seen loaded (some may be unloaded now).
pub(crate) fn seen() -> Vec<Seen> {
    SEEN.lock().iter().cloned().collect()
}

/// A slice of this process's memory at `svma + bias`.
///
/// # Safety
///
/// The range must be mapped readable for as long as the slice is used (a loaded
/// object's segment, until the object is unloaded).
unsafe fn memory(bias: u64, svma: u64, len: u64) -> &'static [u8] {
    // SAFETY: per the function's contract.
    unsafe { std::slice::from_raw_parts((bias + svma) as *const u8, len as usize) }
}

/// The SVMA of `.eh_frame`, from the `eh_frame_ptr` field of `.eh_frame_hdr`.
fn eh_frame_svma(hdr: &[u8], hdr_svma: u64) -> Option<u64> {
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

/// The framehop module of `l` with its unwind sections given as `hdr` and `eh`.
///
/// Only `.eh_frame_hdr` and `.eh_frame` are given: for such a module framehop unwinds by
/// CFI alone and never reads the code (`.text` is for its Mach-O and PE paths). CFI on
/// x86_64 and aarch64 Linux is asynchronous (exact at every instruction), which is what a
/// signal landing in a prologue needs.
fn module<D>(l: &Loaded, hdr: D, eh: D) -> Module<D>
where
    D: std::ops::Deref<Target = [u8]> + Default,
{
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(l.text.clone()),
        eh_frame_svma: Some(l.eh_frame.clone()),
        eh_frame: Some(eh),
        eh_frame_hdr_svma: Some(l.eh_frame_hdr.clone()),
        eh_frame_hdr: Some(hdr),
        ..Default::default()
    };
    let avma = l.bias + l.text.start..l.bias + l.text.end;
    Module::new(l.name.clone(), avma, l.bias, info)
}

/// A module over the copies of the sections (from `list(true)`): usable after the
/// object is unloaded. `None` if the object was listed without copies.
pub(crate) fn module_copied(mut l: Loaded) -> Option<Module<Vec<u8>>> {
    let (hdr, eh) = l.copies.take()?;
    Some(module(&l, hdr, eh))
}
