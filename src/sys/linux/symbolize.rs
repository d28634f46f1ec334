//! Symbolization of this process's addresses: /proc/self/maps → mappings (path, offset,
//! GNU build ID), then each object's DWARF (inlined frames, file:line) through `addr2line`,
//! falling back to its symbol table (function names only, e.g. a release build without
//! debug info, or a stripped libc).
//!
//! Runs on an ordinary thread when a profile is written, never in a signal handler.

use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use object::{Object, ObjectSegment, ObjectSymbol};

use crate::profile::Mapping;
use crate::profile::builder::{Resolve, Resolved, SymFrame};

/// One executable line of /proc/self/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// Parses the executable, named lines of a /proc/PID/maps text.
pub(crate) fn parse_maps(text: &str) -> Vec<MapEntry> {
    text.lines()
        .filter_map(|line| {
            // start-end perms offset dev inode   path
            let mut fields = line.split_ascii_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let offset = fields.next()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            // The path may contain spaces; it is the rest of the line.
            let path = fields.collect::<Vec<_>>().join(" ");
            if !perms.contains('x') || path.is_empty() {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(MapEntry {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path,
            })
        })
        .collect()
}

/// A PT_LOAD segment: (file offset, file size, virtual address).
type Segment = (u64, u64, u64);

/// An object file opened for symbolization.
struct Loaded {
    loader: addr2line::Loader,
    segments: Vec<Segment>,
}

impl Loaded {
    /// The object's own virtual address (what its DWARF and symbols use) for an address
    /// in `entry`.
    fn svma(&self, entry: &MapEntry, address: u64) -> Option<u64> {
        let file_offset = address - entry.start + entry.offset;
        self.segments
            .iter()
            .find(|&&(off, size, _)| off <= file_offset && file_offset < off + size)
            .map(|&(off, _, vaddr)| file_offset - off + vaddr)
    }

    fn frames(&self, svma: u64) -> Vec<SymFrame> {
        let mut out = Vec::new();
        let symbol = self.loader.find_symbol(svma);
        if let Ok(mut frames) = self.loader.find_frames(svma) {
            while let Ok(Some(frame)) = frames.next() {
                let raw = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.raw_name().ok())
                    .map(|n| n.into_owned());
                let (file, line) = frame
                    .location
                    .map(|l| (l.file.unwrap_or("").to_owned(), l.line.unwrap_or(0)))
                    .unwrap_or_default();
                out.push((raw, file, line));
            }
        }
        let last = out.len().wrapping_sub(1);
        let mut frames: Vec<SymFrame> = out
            .into_iter()
            .enumerate()
            .filter_map(|(i, (raw, file, line))| {
                // Line-table-only DWARF names functions briefly (`main`, `spin`) and has no
                // linkage name; the symbol table has the full mangled path of the physical
                // (outermost) function, so prefer it there.
                let raw = match (raw, symbol) {
                    (Some(r), Some(sym)) if i == last && !is_mangled(&r) && is_mangled(sym) => {
                        sym.to_owned()
                    }
                    (Some(r), _) => r,
                    (None, Some(sym)) if i == last => sym.to_owned(),
                    (None, _) => return None,
                };
                Some(sym_frame(&raw, file, line))
            })
            .collect();
        if frames.is_empty()
            && let Some(sym) = symbol
        {
            frames.push(sym_frame(sym, String::new(), 0));
        }
        frames
    }
}

fn is_mangled(name: &str) -> bool {
    name.starts_with("_ZN") || name.starts_with("_R")
}

/// A frame named from `raw`. `system_name` is the mangled name, or empty when `raw` is not
/// mangled: pprof re-demangles a function whose name equals its system name, and its C++
/// demangler mangles Rust generics (`f<T>` → `f`), so an equal pair must not be written.
fn sym_frame(raw: &str, file: String, line: u32) -> SymFrame {
    let name = demangle(raw);
    let system_name = if name == raw {
        String::new()
    } else {
        raw.to_owned()
    };
    SymFrame {
        name,
        system_name,
        file,
        line,
    }
}

/// Demangles a Rust symbol without its hash (`my_crate::f`); other names are kept as they are.
pub(crate) fn demangle(raw: &str) -> String {
    match rustc_demangle::try_demangle(raw) {
        Ok(d) => format!("{d:#}"),
        Err(_) => raw.to_owned(),
    }
}

/// The separate debug file for a build ID, where the system keeps one
/// (`/usr/lib/debug/.build-id/ab/cdef….debug`).
fn debug_file(build_id: &str) -> Option<std::path::PathBuf> {
    if build_id.len() < 3 {
        return None;
    }
    let path = Path::new("/usr/lib/debug/.build-id")
        .join(&build_id[..2])
        .join(format!("{}.debug", &build_id[2..]));
    path.is_file().then_some(path)
}

/// An object's function symbols alone, copied out of the file (no DWARF parsed, no file
/// kept mapped): what names frames when profiles are not symbolized. addr2line's loader
/// touched ~20 MB of a 17.6 MB binary to open it; this keeps the names only.
struct SymbolTable {
    /// (address, size, mangled name), by address.
    symbols: Vec<(u64, u64, Box<str>)>,
}

impl SymbolTable {
    /// The function symbols of the object at `path` (of its separate debug file when the
    /// system has one: a stripped libc's names are there).
    /// With the object's segments (read once, for both).
    fn read(path: &Path) -> Option<(SymbolTable, Vec<Segment>)> {
        let (build_id, segments) = read_object_info(path)?;
        let debug = debug_file(&build_id);
        let file = fs::File::open(debug.as_deref().unwrap_or(path)).ok()?;
        // SAFETY: read-only, dropped before returning; see `read_object_info`.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let obj = object::File::parse(&*map).ok()?;
        let take = |syms: object::SymbolIterator<'_, '_>| {
            syms.filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
                .filter_map(|s| Some((s.address(), s.size(), Box::from(s.name().ok()?))))
                .collect::<Vec<_>>()
        };
        let mut symbols = take(obj.symbols());
        if symbols.is_empty() {
            symbols = take(obj.dynamic_symbols());
        }
        symbols.sort_by_key(|&(address, size, _)| (address, std::cmp::Reverse(size)));
        symbols.dedup_by_key(|s| s.0);
        symbols.shrink_to_fit();
        Some((SymbolTable { symbols }, segments))
    }

    /// The function containing `svma` (a symbol of size 0 covers up to the next one).
    fn find(&self, svma: u64) -> Option<&str> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= svma)
            .checked_sub(1)?;
        let (start, size, name) = &self.symbols[i];
        (*size == 0 || svma < start + size).then_some(&**name)
    }
}

/// Reads the GNU build ID (lower-case hex) and PT_LOAD segments of an object file.
fn read_object_info(path: &Path) -> Option<(String, Vec<Segment>)> {
    let file = fs::File::open(path).ok()?;
    // SAFETY: the map is read-only and dropped before this function returns. A shared
    // library or executable mapped into this process is not truncated while it runs;
    // if someone does truncate it, the worst case is a SIGBUS while reading headers,
    // the same risk every symbolizer (addr2line's own loader included) takes.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let obj = object::File::parse(&*map).ok()?;
    let build_id = obj
        .build_id()
        .ok()
        .flatten()
        .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default();
    let segments = obj
        .segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (off, size, s.address())
        })
        .collect();
    Some((build_id, segments))
}

/// Map entries for objects seen loaded (by a walker rebuild) that are no longer mapped,
/// and whose addresses no mapped object has taken: samples taken in a library before its
/// `dlclose` keep its name, file and build ID (before: `<unknown>` with no mapping). The
/// file is read again from its path; one that is gone or changed (another build ID than
/// when it was loaded cannot be told apart) is skipped.
fn unloaded(mapped: &[MapEntry]) -> Vec<MapEntry> {
    let mut out: Vec<MapEntry> = Vec::new();
    for seen in super::objects::seen() {
        let overlaps = |a: &MapEntry| a.start < seen.text.end && seen.text.start < a.end;
        if mapped.iter().any(overlaps) || out.iter().any(overlaps) {
            continue;
        }
        let Some((_, segments)) = read_object_info(Path::new(&seen.name)) else {
            continue;
        };
        for &(off, size, vaddr) in &segments {
            let start = seen.bias + vaddr;
            let end = start + size;
            if start < seen.text.end && seen.text.start < end {
                out.push(MapEntry {
                    start,
                    end,
                    offset: off,
                    path: seen.name.clone(),
                });
            }
        }
    }
    out
}

/// Where a maps entry goes in the profile: (memory_start, memory_limit, file_offset, bias),
/// where a profile address is the runtime address minus `bias`.
///
/// The mapping starts where the maps entry does, page aligned (`p_offset` 0x4d7b0 is
/// mapped from 0x4d000, and the mapping says start 0x4e000 - bias, offset 0x4d000), as
/// `/proc/self/maps` and Go write them. Go ≥ 1.23 and the newest google/pprof compute the
/// executable's base by rounding the segment's address down to `p_align` and compare it
/// with the mapping's start: a mapping starting at the segment's unaligned first byte put
/// every address off by the remainder (0x7b0), and `-disasm` found nothing. The address ↔
/// file relation is the same either way (start - offset is unchanged).
///
/// - The main executable (`rebase`) is written at its link-time addresses: `go tool pprof`
///   (Go's own object reader, as in Go 1.19) compares profile addresses directly with the
///   executable's symbol addresses for `-disasm`, which for a position-independent
///   executable (Rust's default) only works at link-time addresses. Those are also the
///   addresses `objdump -d` and `addr2line -e` use. Shared libraries keep their runtime
///   addresses, so mappings never overlap.
fn placement(entry: &MapEntry, segments: &[Segment], rebase: bool) -> (u64, u64, u64, u64) {
    let len = entry.end - entry.start;
    let segment = segments
        .iter()
        .filter(|&&(off, _, _)| off >= entry.offset && off < entry.offset + len)
        .min_by_key(|&&(off, _, _)| off);
    match segment {
        None => (entry.start, entry.end, entry.offset, 0),
        Some(&(off, _, vaddr)) => {
            let segment_start = entry.start + (off - entry.offset);
            let bias = if rebase { segment_start - vaddr } else { 0 };
            (entry.start - bias, entry.end - bias, entry.offset, bias)
        }
    }
}

/// The process-wide symbolizer, kept while no object is loaded or unloaded: the DWARF of
/// the executable and libraries is opened and parsed once, not for every profile written
/// (a thread dump of a debug build took 300 ms, 250 of them reloading DWARF). Only
/// ordinary threads take this lock.
static SHARED: Mutex<Option<((u64, u64), Symbolizer)>> = Mutex::new(None);

/// `fork()`: a child whose parent was symbolizing at the fork finds SHARED held by a
/// thread it does not have; it frees the lock and abandons the half-updated symbolizer
/// (leaked, never dropped), so its first profile builds a fresh one.
static FORK_HANDLERS: super::fork::Handlers = super::fork::Handlers {
    prepare: super::fork::nothing,
    parent: super::fork::nothing,
    child: || {
        super::fork::release_in_child(&super::objects::SEEN);
        if super::fork::release_in_child(&SHARED)
            && let Some(mut slot) = SHARED.try_lock()
        {
            std::mem::forget(slot.take());
        }
    },
};

/// The shared symbolizer, locked; this thread's allocations are not heap-sampled while
/// it is held.
pub(crate) struct Shared {
    // Dropped first: the lock is released before the scope ends.
    guard: MappedMutexGuard<'static, Symbolizer>,
    _untracked: super::untracked::Untracked,
}

impl std::ops::Deref for Shared {
    type Target = Symbolizer;
    fn deref(&self) -> &Symbolizer {
        &self.guard
    }
}

impl std::ops::DerefMut for Shared {
    fn deref_mut(&mut self) -> &mut Symbolizer {
        &mut self.guard
    }
}

/// Drops the shared symbolizer (its objects' DWARF caches and file mappings) and returns
/// the freed heap to the system (see `runtime::symbols::release`).
pub(crate) fn release() {
    let _untracked = super::untracked::Untracked::new();
    let old = SHARED.lock().take();
    drop(old);
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; it only returns free memory to the system.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The shared symbolizer, rebuilt first if the loaded objects changed since it was made
/// (or the symbolization mode did).
pub(crate) fn shared() -> Shared {
    let _ = super::fork::register(super::fork::Slot::Symbolizer, &FORK_HANDLERS);
    // Everything the symbolizer allocates (DWARF caches, the address cache) is the
    // profiler's, not the program's: kept out of heap profiles while the guard lives.
    let untracked = super::untracked::Untracked::new();
    let generation = super::objects::generation();
    let functions = crate::sys::symbolization::functions();
    let mut slot = SHARED.lock();
    match slot.take() {
        Some((g, mut symbolizer)) if g == generation => {
            if symbolizer.functions != functions {
                // Another mode: resolved addresses are no longer right.
                symbolizer.cache = HashMap::new();
                symbolizer.functions = functions;
            }
            *slot = Some((g, symbolizer));
        }
        // Objects were loaded or unloaded: re-read the mappings, but keep the objects
        // already opened (a program that loads and unloads a library in a loop would
        // otherwise reload every object's DWARF for every profile).
        Some((_, old)) => {
            let mut new = Symbolizer::new().reusing(old);
            new.functions = functions;
            *slot = Some((generation, new));
        }
        None => {
            let mut new = Symbolizer::new();
            new.functions = functions;
            *slot = Some((generation, new));
        }
    }
    let guard = MutexGuard::map(slot, |s| match s {
        Some((_, symbolizer)) => symbolizer,
        None => unreachable!("set just above"),
    });
    Shared {
        guard,
        _untracked: untracked,
    }
}

/// Symbolizes addresses of the current process; caches every object and every address.
pub(crate) struct Symbolizer {
    entries: Vec<MapEntry>,
    /// Mapping id and address bias of each entry (index-aligned with `entries`).
    entry_mapping: Vec<(u64, u64)>,
    mappings: Vec<Mapping>,
    objects: HashMap<String, Option<Loaded>>,
    /// Symbol tables alone, by path (for `names` when profiles are not symbolized), with
    /// each object's segments.
    symbol_tables: HashMap<String, Option<(SymbolTable, Vec<Segment>)>>,
    cache: HashMap<u64, Resolved>,
    /// Profiles get functions, files and lines (`Symbolization::Full`); else only
    /// addresses and mappings, and `names` reads the symbol table alone.
    functions: bool,
}

impl Symbolizer {
    /// Reads /proc/self/maps now: objects loaded later are unknown to this symbolizer.
    pub(crate) fn new() -> Symbolizer {
        let text = fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let exe = fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut entries = parse_maps(&text);
        entries.extend(unloaded(&entries));
        Symbolizer::from_entries(entries, &exe)
    }

    fn from_entries(mut entries: Vec<MapEntry>, exe: &str) -> Symbolizer {
        // pprof treats the first mapping as the main binary: put the executable first.
        entries.sort_by_key(|e| (e.path != exe, e.start));
        let mut infos: HashMap<String, Option<(String, Vec<Segment>)>> = HashMap::new();
        let mut mappings = Vec::with_capacity(entries.len());
        let mut entry_mapping = Vec::with_capacity(entries.len());
        for e in &entries {
            let info = infos.entry(e.path.clone()).or_insert_with(|| {
                if e.path.starts_with('[') {
                    None
                } else {
                    read_object_info(Path::new(&e.path))
                }
            });
            let (build_id, (memory_start, memory_limit, file_offset, bias)) = match info {
                Some((id, segments)) => (id.clone(), placement(e, segments, e.path == exe)),
                None => (String::new(), (e.start, e.end, e.offset, 0)),
            };
            let id = mappings.len() as u64 + 1;
            mappings.push(Mapping {
                id,
                memory_start,
                memory_limit,
                file_offset,
                filename: e.path.clone(),
                build_id,
                ..Mapping::default()
            });
            entry_mapping.push((id, bias));
        }
        Symbolizer {
            entries,
            entry_mapping,
            mappings,
            objects: HashMap::new(),
            symbol_tables: HashMap::new(),
            cache: HashMap::new(),
            functions: true,
        }
    }

    /// Takes over the objects `old` opened, for the paths still mapped (a path names the
    /// same file while it stays mapped; the address cache is not kept, as an address may
    /// now belong to another object).
    fn reusing(mut self, old: Symbolizer) -> Symbolizer {
        let mapped: std::collections::HashSet<&str> =
            self.entries.iter().map(|e| e.path.as_str()).collect();
        let kept: HashMap<String, Option<Loaded>> = old
            .objects
            .into_iter()
            .filter(|(path, _)| mapped.contains(path.as_str()))
            .collect();
        self.objects = kept;
        self
    }

    fn object(&mut self, path: &str) -> Option<&Loaded> {
        self.objects
            .entry(path.to_owned())
            .or_insert_with(|| {
                if path.starts_with('[') {
                    // [vdso], [vsyscall]: no file to read.
                    return None;
                }
                let (build_id, segments) = read_object_info(Path::new(path))?;
                // Separate debug info (Debian's *-dbg / *-dbgsym packages) has the full
                // symbol table and DWARF of a stripped library such as libc; it is found
                // by build ID and uses the same addresses as the object itself.
                let loader = debug_file(&build_id)
                    .and_then(|debug| addr2line::Loader::new(debug).ok())
                    .or_else(|| addr2line::Loader::new(path).ok())?;
                Some(Loaded { loader, segments })
            })
            .as_ref()
    }

    /// The name of the function at `address` as a profile holds it (for `/symbol`):
    /// a runtime address, or a link-time address of the main executable (profiles write
    /// the executable at link-time addresses; see `docs/architecture.md`).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    ///
    /// The addresses come from requests (untrusted): they are resolved without entering
    /// the address cache, so `/symbol` cannot grow it (before: 130 → 425 MB over 2.6 M
    /// distinct addresses).
    pub(crate) fn function_name(&mut self, address: u64) -> Option<String> {
        if !self.functions {
            // Unsymbolized profiles: pprof asks `/symbol` for their names, which the
            // symbol table gives without DWARF.
            return self.names(address).pop().or_else(|| {
                let bias = self.executable_bias()?;
                self.names(address.checked_add(bias)?).pop()
            });
        }
        let outermost = |r: &Resolved| r.frames.last().map(|f| f.name.clone());
        if let Some(name) = outermost(&self.lookup(address, false)) {
            return Some(name);
        }
        let bias = self.executable_bias()?;
        outermost(&self.lookup(address.checked_add(bias)?, false))
    }

    /// The executable's bias (a runtime address minus its link-time one), if not zero.
    fn executable_bias(&self) -> Option<u64> {
        // The executable is mapping 1; its bias turns a link-time address into a runtime one.
        let bias = self
            .entry_mapping
            .iter()
            .find(|&&(id, _)| id == 1)
            .map(|&(_, bias)| bias)?;
        (bias != 0).then_some(bias)
    }

    /// The function names an address resolves to (innermost first); for tests and for
    /// trimming the sampler's own frames.
    pub(crate) fn names(&mut self, address: u64) -> Vec<String> {
        if !self.functions {
            return self
                .symbol_frames(address)
                .into_iter()
                .map(|f| f.name)
                .collect();
        }
        self.resolve(address)
            .frames
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    /// The symbol table's function at `address` (a runtime address), if any.
    fn symbol_frames(&mut self, address: u64) -> Vec<SymFrame> {
        let Some(i) = self
            .entries
            .iter()
            .position(|e| e.start <= address && address < e.end)
        else {
            return Vec::new();
        };
        let entry = &self.entries[i];
        let table = self
            .symbol_tables
            .entry(entry.path.clone())
            .or_insert_with(|| {
                if entry.path.starts_with('[') {
                    return None;
                }
                let path = Path::new(&entry.path);
                SymbolTable::read(path)
            });
        let Some((table, segments)) = table else {
            return Vec::new();
        };
        let file_offset = address - entry.start + entry.offset;
        segments
            .iter()
            .find(|&&(off, size, _)| off <= file_offset && file_offset < off + size)
            .and_then(|&(off, _, vaddr)| table.find(file_offset - off + vaddr))
            .map(|name| vec![sym_frame(name, String::new(), 0)])
            .unwrap_or_default()
    }
}

impl Resolve for Symbolizer {
    fn mappings(&self) -> Vec<Mapping> {
        self.mappings.clone()
    }

    fn resolve(&mut self, address: u64) -> Resolved {
        self.lookup(address, true)
    }

    fn symbolizes(&self) -> bool {
        self.functions
    }

    fn names(&mut self, address: u64) -> Vec<String> {
        Symbolizer::names(self, address)
    }
}

/// Addresses kept in the cache at most; a full cache is emptied (a profile with more
/// distinct addresses is still right, only slower to symbolize).
pub(crate) const MAX_CACHED_ADDRESSES: usize = 64 * 1024;

impl Symbolizer {
    /// Resolves `address`, through the cache; `remember` enters the result (bounded by
    /// [`MAX_CACHED_ADDRESSES`]).
    fn lookup(&mut self, address: u64, remember: bool) -> Resolved {
        if let Some(r) = self.cache.get(&address) {
            return r.clone();
        }
        let index = self
            .entries
            .iter()
            .position(|e| e.start <= address && address < e.end);
        let resolved = match index {
            None => Resolved {
                address,
                ..Resolved::default()
            },
            Some(i) => {
                let entry = self.entries[i].clone();
                let (mapping_id, bias) = self.entry_mapping[i];
                let frames = match self.functions.then(|| self.object(&entry.path)).flatten() {
                    Some(obj) => obj
                        .svma(&entry, address)
                        .map(|svma| obj.frames(svma))
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                Resolved {
                    mapping_id,
                    address: address - bias,
                    frames: Arc::from(frames),
                }
            }
        };
        if remember {
            if self.cache.len() >= MAX_CACHED_ADDRESSES {
                self.cache = HashMap::new();
            }
            self.cache.insert(address, resolved.clone());
        }
        resolved
    }

    /// Addresses in the cache (for tests).
    #[cfg(test)]
    pub(crate) fn cached_addresses(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/symbol` names addresses without caching them, and profiles' addresses are
    /// cached only up to the bound.
    #[test]
    fn the_address_cache_is_bounded() {
        let mut s = Symbolizer::new();
        let base = the_address_cache_is_bounded as fn() as usize as u64;
        for i in 0..200_000u64 {
            let _ = s.function_name(base + i);
        }
        assert_eq!(
            s.cached_addresses(),
            0,
            "untrusted lookups entered the cache"
        );
        for i in 0..(MAX_CACHED_ADDRESSES as u64 + 10) {
            let _ = s.resolve(base + i % 4096 * 7 + i / 4096 * 100_000);
        }
        assert!(s.cached_addresses() <= MAX_CACHED_ADDRESSES);
        assert!(s.cached_addresses() > 0);
    }

    #[test]
    fn parses_executable_named_lines_only() {
        let text = "\
55d0c0a00000-55d0c0a40000 r--p 00000000 08:01 1234    /usr/bin/my app
55d0c0a40000-55d0c0b00000 r-xp 00040000 08:01 1234    /usr/bin/my app
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f1000000000-7f1000180000 r-xp 00028000 08:01 99      /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1c5f0000-7ffd1c5f2000 r-xp 00000000 00:00 0       [vdso]
";
        let entries = parse_maps(text);
        assert_eq!(
            entries,
            vec![
                MapEntry {
                    start: 0x55d0c0a40000,
                    end: 0x55d0c0b00000,
                    offset: 0x40000,
                    path: "/usr/bin/my app".into()
                },
                MapEntry {
                    start: 0x7f1000000000,
                    end: 0x7f1000180000,
                    offset: 0x28000,
                    path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into()
                },
                MapEntry {
                    start: 0x7ffd1c5f0000,
                    end: 0x7ffd1c5f2000,
                    offset: 0,
                    path: "[vdso]".into()
                },
            ]
        );
    }

    #[test]
    fn demangles_without_hash() {
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("memcpy"), "memcpy");
    }

    #[inline(never)]
    fn a_function_to_find() -> u64 {
        std::hint::black_box(42)
    }

    /// Symbolization off: no frames in profiles, same mapping and address; `names`
    /// still finds the function, from the symbol table alone (libc's too).
    #[test]
    fn without_functions_addresses_stay_and_names_come_from_symbols() {
        let mut s = Symbolizer::new();
        let addr = a_function_to_find as *const () as usize as u64 + 1;
        assert_eq!(a_function_to_find(), 42);
        let full = s.resolve(addr);
        let mut s = Symbolizer::new();
        s.functions = false;
        let off = s.resolve(addr);
        assert!(off.frames.is_empty(), "{off:?}");
        assert_eq!(
            (off.mapping_id, off.address),
            (full.mapping_id, full.address)
        );
        assert!(!s.symbolizes());
        let names = s.names(addr);
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with("a_function_to_find"), "{names:?}");
        assert!(s.objects.is_empty(), "no DWARF opened");
        // `/symbol` names it too, at its runtime and its link-time address.
        assert!(
            s.function_name(addr)
                .is_some_and(|n| n.ends_with("a_function_to_find"))
        );
        assert!(
            s.function_name(off.address)
                .is_some_and(|n| n.ends_with("a_function_to_find"))
        );
        assert!(s.objects.is_empty(), "no DWARF opened for /symbol");
        let getpid = libc_getpid_address();
        assert!(
            s.names(getpid).iter().any(|n| n.contains("getpid")),
            "{:?}",
            s.names(getpid)
        );
    }

    #[test]
    fn resolves_this_process_with_file_and_line() {
        let mut s = Symbolizer::new();
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let main = &s.mappings()[0];
        assert_eq!(Path::new(&main.filename), exe, "main binary first");
        assert!(!main.build_id.is_empty(), "rustc links a GNU build ID");

        let addr = a_function_to_find as *const () as usize as u64 + 1;
        assert_eq!(a_function_to_find(), 42);
        let r = s.resolve(addr);
        assert_eq!(r.mapping_id, 1);
        // The main executable is written at link-time addresses, inside its mapping.
        assert!(
            r.address < addr,
            "rebased: {:#x} vs runtime {addr:#x}",
            r.address
        );
        assert!(main.memory_start <= r.address && r.address < main.memory_limit);
        let f = r.frames.last().expect("a frame");
        assert!(f.name.ends_with("a_function_to_find"), "{f:?}");
        assert!(
            f.system_name.starts_with("_ZN") || f.system_name.starts_with("_R"),
            "{f:?}"
        );
        assert!(f.file.ends_with("symbolize.rs"), "{f:?}");
        assert!(f.line > 0);
    }

    #[test]
    fn resolves_libc_by_symbol_table() {
        let mut s = Symbolizer::new();
        let addr = libc_getpid_address();
        let names = s.names(addr);
        assert!(names.iter().any(|n| n.contains("getpid")), "{names:?}");
    }

    fn libc_getpid_address() -> u64 {
        nix::libc::getpid as *const () as usize as u64
    }
}

/// Symbolization speed over thousands of distinct addresses of this binary: not a test
/// (it asserts nothing), a measurement for docs/performance.md:
/// `cargo test --release --lib symbolize_throughput -- --ignored --nocapture`.
#[cfg(test)]
mod throughput {
    use super::*;
    use crate::profile::ValueType;
    use crate::profile::builder::ProfileBuilder;
    use std::time::Instant;

    #[test]
    #[ignore = "a measurement; run it with --ignored --nocapture"]
    fn symbolize_throughput() {
        let t = Instant::now();
        let mut s = Symbolizer::new();
        let main = s.mappings()[0].clone();
        let new = t.elapsed();
        // 5000 addresses spread over the executable's code, 100 frames per stack.
        let step = (main.memory_limit - main.memory_start) / 5000;
        let addrs: Vec<u64> = (0..5000)
            .map(|i| main.memory_start + i * step + 1)
            .collect();
        let t = Instant::now();
        let mut b = ProfileBuilder::new(&mut s, vec![ValueType::new("samples", "count")]);
        for stack in addrs.chunks(100) {
            b.add(stack, false, &[1], Vec::new());
        }
        let p = b.finish();
        let first = t.elapsed();
        let t = Instant::now();
        let mut b = ProfileBuilder::new(&mut s, vec![ValueType::new("samples", "count")]);
        for stack in addrs.chunks(100) {
            b.add(stack, false, &[1], Vec::new());
        }
        let again = t.elapsed();
        drop(b);
        let mut encoded = Vec::new();
        let t = Instant::now();
        p.write_to(&mut encoded).unwrap();
        let encode = t.elapsed();
        println!(
            "read maps + build IDs: {:.1} ms; {} locations, {} functions: symbolized in {:.1} ms \
             ({:.1} us/address), again from the cache in {:.2} ms; gzip-encoded to {} bytes in {:.1} ms",
            new.as_secs_f64() * 1e3,
            p.locations.len(),
            p.functions.len(),
            first.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e6 / p.locations.len() as f64,
            again.as_secs_f64() * 1e3,
            encoded.len(),
            encode.as_secs_f64() * 1e3
        );
    }
}
