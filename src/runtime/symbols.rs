//! How profiles name their addresses, and the symbolizer's memory.
//!
//! By default ([`Symbolization::Full`]) every profile is symbolized in the process: each
//! address gets its functions (inlined ones too), files and lines from the binary's DWARF,
//! or from its symbol table where there is no DWARF. That is what `go tool pprof` shows
//! without the binary at hand, but parsing DWARF costs memory and time in the profiled
//! process: on `examples/http_server` (a 29 MB binary with line tables) the first CPU
//! profile took its resident memory from 5 to 80 MB and ~0.7 s (`docs/performance.md`,
//! `cargo bench --bench profiler_memory`).
//!
//! [`Symbolization::Off`] writes addresses, mappings and GNU build IDs only, as `perf`
//! and Go's `-symbolize=none` do; pprof names them from the binary itself when it can
//! find it (`go tool pprof BINARY FILE`, or `PPROF_BINARY_PATH` with the standalone
//! pprof; see `docs/readers.md`). The profiler's own frames are still cut from heap and
//! lock stacks, by the symbol table alone. Set it in code or with `PROFILE_SYMBOLIZE=off`
//! (read at the first profile).
//!
//! The symbolizer keeps the objects it opened between profiles (the next profile is then
//! fast); [`release`] drops them and returns the freed memory to the system.
//!
//! ```
//! use profile::runtime::symbols::{self, Symbolization};
//! symbols::set(Symbolization::Off);
//! assert_eq!(symbols::get(), Symbolization::Off);
//! symbols::set(Symbolization::Full);
//! ```

/// How profiles name their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbolization {
    /// Functions (inlined ones too), files and lines, from DWARF or the symbol table.
    Full,
    /// Addresses, mappings and build IDs only: the reader symbolizes from the binary.
    Off,
}

/// Sets how profiles written from now on name their addresses.
pub fn set(mode: Symbolization) {
    crate::sys::symbolization::set(mode == Symbolization::Full);
}

/// How profiles are symbolized: what [`set`] chose, else `PROFILE_SYMBOLIZE` (`off`,
/// `none`, `0` or `false` for [`Symbolization::Off`]), else [`Symbolization::Full`].
pub fn get() -> Symbolization {
    if crate::sys::symbolization::functions() {
        Symbolization::Full
    } else {
        Symbolization::Off
    }
}

/// Drops the objects the symbolizer opened (their DWARF caches and file mappings) and
/// returns the freed heap to the system (`malloc_trim`, glibc); the next profile opens
/// them again. Waits for a profile being symbolized meanwhile.
pub fn release() {
    crate::sys::release_symbolizer();
}
