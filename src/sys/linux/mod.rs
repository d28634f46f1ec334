//! Linux: the `pprof` crate's sampler, /proc/self/maps + DWARF symbolization, the
//! shutdown hook on SIGINT/SIGTERM, and signal-based capture of other threads' stacks.

pub(crate) mod capture;
pub(crate) mod clock;
pub(crate) mod contention;
pub(crate) mod cpu;
pub(crate) mod heap;
pub(crate) mod hook;
pub(crate) mod objects;
pub(crate) mod symbolize;
pub(crate) mod tasks;
pub(crate) mod threads;
pub(crate) mod trim;
