//! Linux: the CPU sampler (per-thread CPU-time timers), /proc/self/maps + DWARF
//! symbolization, the shutdown hook on SIGINT/SIGTERM, and signal-based capture of other
//! threads' stacks.

pub(crate) mod capture;
pub(crate) mod clock;
pub(crate) mod cpu;
pub(crate) mod cpu_signal;
pub(crate) mod fork;
pub(crate) mod hook;
pub(crate) mod objects;
pub(crate) mod sigsafe;
pub(crate) mod stack;
pub(crate) mod symbolize;
pub(crate) mod tasks;
#[cfg(feature = "threadcreate")]
pub(crate) mod threadcreate;
pub(crate) mod threads;
pub(crate) mod toggle;
pub(crate) mod untracked;

#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate_supported() -> Result<(), crate::Error> {
    Ok(())
}

/// The creation stacks recorded so far and how many creations were not recorded.
#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate_stacks() -> (Vec<(Vec<u64>, u64)>, u64) {
    threadcreate::stacks()
}

/// The thread-creation table: (distinct stacks, creations dropped, most stacks kept).
#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate_state() -> (usize, u64, usize) {
    let (stacks, dropped) = threadcreate::state();
    (stacks, dropped, threadcreate::MAX_STACKS)
}

/// Runs `f` with this process's symbolizer (locked; see `symbolize::shared`). `what`
/// names the profile for platforms without one.
pub(crate) fn with_symbolizer<R>(
    _what: &'static str,
    f: impl FnOnce(&mut dyn crate::profile::builder::Resolve) -> Result<R, crate::Error>,
) -> Result<R, crate::Error> {
    let mut symbolizer = symbolize::shared();
    f(&mut *symbolizer)
}

/// Drops the symbolizer's objects and returns the freed memory (`runtime::symbols`).
pub(crate) fn release_symbolizer() {
    symbolize::release();
}

/// The function at `address` (a runtime address, or a link-time one of the executable).
#[cfg(feature = "http")]
pub(crate) fn function_name(address: u64) -> Option<String> {
    symbolize::shared().function_name(address)
}

/// How many threads this process has.
pub(crate) fn thread_count() -> usize {
    tasks::tids().map_or(0, |t| t.len())
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of CPU samples' times).
#[cfg(feature = "trace")]
pub(crate) use sigsafe::monotonic_nanos;
