//! Linux: the `pprof` crate's sampler, /proc/self/maps + DWARF symbolization, and the
//! shutdown hook on SIGINT/SIGTERM.

pub(crate) mod contention;
pub(crate) mod cpu;
pub(crate) mod heap;
pub(crate) mod hook;
pub(crate) mod symbolize;
pub(crate) mod trim;
