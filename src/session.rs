//! What a guard runs: one [`Session`] per mode, started by the builder's mode and
//! finished by the guard (its `Drop` or `.stop()`, the shutdown hook, a toggle).
//!
//! Every mode honours the one method, [`Session::finish`]: it stops what the mode started
//! and hands back the file's contents, a profile (CPU, heap, allocs, mutex, block,
//! threads, clock, threadcreate) or bytes written as they are (a trace's JSON). The
//! adapters below are thin: each calls its kind's `runtime` module, where the kind's
//! logic lives. A new mode is one adapter here, one marker in `builder::mode`, and its
//! entry in the kinds table (`kind.rs`).

use std::path::PathBuf;

use crate::{Error, Profile};

/// Where the profile file goes.
#[derive(Debug, Clone)]
pub(crate) enum Output {
    /// A fresh `profile*` directory under the system temp dir (pkg/profile's default).
    TempDir,
    /// This directory, with the mode's file name (`cpu.pb.gz`).
    Dir(PathBuf),
    /// Exactly this file.
    File(PathBuf),
}

/// Options every mode shares.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) output: Output,
    pub(crate) quiet: bool,
    pub(crate) shutdown_hook: bool,
}

/// What a stopped session hands the guard to write.
pub enum Finished {
    /// A pprof profile (boxed: it is large, and moved once).
    Profile(Box<Profile>),
    /// A file's bytes.
    Bytes(Vec<u8>),
}

/// A profiler started by a guard. (`pub` in a private module: nameable by `ModeImpl`,
/// a sealed trait, outside the crate not at all.)
pub trait Session: Send {
    /// Stops it and returns the file's contents.
    fn finish(self: Box<Self>) -> Result<Finished, Error>;
}

/// A session whose file is a profile, made by a closure at stop.
struct Profiled<F>(F);

impl<F: FnOnce() -> Result<Profile, Error> + Send> Session for Profiled<F> {
    fn finish(self: Box<Self>) -> Result<Finished, Error> {
        (self.0)().map(|p| Finished::Profile(Box::new(p)))
    }
}

fn profiled(f: impl FnOnce() -> Result<Profile, Error> + Send + 'static) -> Box<dyn Session> {
    Box::new(Profiled(f))
}

/// CPU time at `hz`.
pub(crate) fn cpu(hz: u32) -> Result<Box<dyn Session>, Error> {
    let profiler = crate::runtime::cpu::start(hz)?;
    Ok(profiled(move || profiler.stop()))
}

/// Wall-clock time at `hz`.
pub(crate) fn clock(hz: u32) -> Result<Box<dyn Session>, Error> {
    let profiler = crate::runtime::clock::start(hz)?;
    Ok(profiled(move || profiler.stop()))
}

/// The heap (or allocations, `allocs`) sampled at `rate`: the rate is set now and the
/// previous one restored at stop.
pub(crate) fn heap(rate: usize, allocs: bool) -> Result<Box<dyn Session>, Error> {
    let previous = crate::runtime::heap::set_rate(rate)?;
    Ok(profiled(move || {
        let profile = if allocs {
            crate::runtime::heap::allocs_profile()
        } else {
            crate::runtime::heap::profile()
        };
        // Restoring a rate that was in force cannot be refused (0 never is).
        let _ = crate::runtime::heap::set_rate(previous);
        profile
    }))
}

/// Mutex (`block` false) or block contention: every event recorded while active (fraction
/// / rate 1), the previous setting restored at stop; the file has only the events of the
/// session's own window.
pub(crate) fn contention(block: bool) -> Result<Box<dyn Session>, Error> {
    use crate::sync::contention::Which;
    let window =
        crate::sync::profile::Window::start(if block { Which::Block } else { Which::Mutex });
    Ok(profiled(move || window.finish()))
}

/// Every thread's stack, taken at stop.
pub(crate) fn threads() -> Result<Box<dyn Session>, Error> {
    // Fails now, not at stop, where capture is impossible (no free signal, platform).
    crate::sys::threads::prepare()?;
    Ok(profiled(crate::runtime::threads::profile))
}

/// Thread creation since the process started (cumulative, as in Go): read at stop.
#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate() -> Result<Box<dyn Session>, Error> {
    crate::runtime::threadcreate::check()?;
    Ok(profiled(crate::runtime::threadcreate::profile))
}

/// An execution trace with CPU samples at `cpu_hz` (None: spans and events only); its
/// file is the trace's JSON.
#[cfg(feature = "trace")]
pub(crate) fn trace(cpu_hz: Option<u32>) -> Result<Box<dyn Session>, Error> {
    struct Tracing(crate::trace::Tracer);
    impl Session for Tracing {
        fn finish(self: Box<Self>) -> Result<Finished, Error> {
            self.0.stop().map(|t| Finished::Bytes(t.json().to_vec()))
        }
    }
    Ok(Box::new(Tracing(crate::trace::start_with(cpu_hz)?)))
}
