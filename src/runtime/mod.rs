//! The lower level, like Go's `runtime/pprof`: start and stop profilers directly and get
//! [`Profile`](crate::Profile) values back instead of files. Profilers of different kinds
//! may run at the same time here (a guard allows one mode); each kind allows one running
//! profiler per process.

pub mod block;
pub mod cpu;
pub mod heap;
pub mod mutex;
