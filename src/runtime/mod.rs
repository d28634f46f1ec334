//! The lower level, like Go's `runtime/pprof`: start and stop profilers directly and get
//! [`Profile`](crate::Profile) values back instead of files. Profilers of different kinds
//! may run at the same time here (a guard allows one mode); each kind allows one running
//! profiler per process.

pub mod block;
pub mod clock;
pub mod cpu;
pub mod heap;
pub mod mutex;
pub mod symbols;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tasks;
#[cfg(feature = "threadcreate")]
#[cfg_attr(docsrs, doc(cfg(feature = "threadcreate")))]
pub mod threadcreate;
pub mod threads;

/// Execution traces at the runtime level (cargo feature `trace`): [`start`](trace::start)
/// returns a [`Tracer`](trace::Tracer) whose `stop` returns the [`Trace`](trace::Trace).
/// See [`crate::trace`].
#[cfg(feature = "trace")]
#[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
pub mod trace {
    pub use crate::trace::{Trace, Tracer, start, start_without_cpu};
}

pub(crate) mod shared;

pub use shared::cmdline;
