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

/// glibc's counts of objects loaded and unloaded so far: equal counts mean the same set
/// of loaded objects.
pub(crate) fn generation() -> (u64, u64) {
    let mut generation = (0u64, 0u64);
    // SAFETY: `read_generation` only writes the `(u64, u64)` passed here.
    unsafe {
        libc::dl_iterate_phdr(Some(read_generation), (&raw mut generation).cast());
    }
    generation
}

/// One loaded object as `dl_iterate_phdr` describes it.
pub(crate) struct Loaded {
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
    // `data` is the `&mut Vec<Loaded>` given to it by `list`.
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

/// The objects loaded now.
pub(crate) fn list() -> Vec<Loaded> {
    let mut loaded: Vec<Loaded> = Vec::new();
    // SAFETY: `collect` matches the callback signature and only uses `data` as the
    // `Vec<Loaded>` passed here, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(collect), (&raw mut loaded).cast());
    }
    loaded
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

/// The framehop module of `l`, its unwind sections given as `data(live slice)`: the
/// live slice itself (no copy; valid until the object is unloaded) or an owned copy
/// (valid forever, so an unwinder holding it survives `dlclose`).
///
/// Only `.eh_frame_hdr` and `.eh_frame` are given: for such a module framehop unwinds by
/// CFI alone and never reads the code (`.text` is for its Mach-O and PE paths). CFI on
/// x86_64 and aarch64 Linux is asynchronous (exact at every instruction), which is what a
/// signal landing in a prologue needs.
pub(crate) fn module<D>(l: &Loaded, data: impl Fn(&'static [u8]) -> D) -> Option<Module<D>>
where
    D: std::ops::Deref<Target = [u8]> + Default,
{
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
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(text_vaddr..text_vaddr + text_memsz),
        eh_frame_svma: Some(eh_svma..eh_svma + eh_len),
        // SAFETY: inside a loaded segment's file-backed part, computed above.
        eh_frame: Some(data(unsafe { memory(l.bias, eh_svma, eh_len) })),
        eh_frame_hdr_svma: Some(hdr_svma..hdr_svma + hdr_len),
        eh_frame_hdr: Some(data(hdr)),
        ..Default::default()
    };
    // The address range of every executable segment (most objects have one).
    let (lo, hi) = l
        .loads
        .iter()
        .filter(|s| s.3)
        .fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.0), hi.max(s.0 + s.1)));
    Some(Module::new(
        l.name.clone(),
        l.bias + lo..l.bias + hi,
        l.bias,
        info,
    ))
}
