//! The crate's one error type.

use std::io;

use crate::ProfileKind;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Every variant carries what it is about (the path, the mode, the value) so that the
/// message alone says what to fix.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A guard (or, at the `runtime` level, a profiler of the same kind) is already running.
    #[error("profile: a {mode} profile is already running; stop it before starting another")]
    AlreadyActive {
        /// The mode of the profile that is running.
        mode: ProfileKind,
    },

    /// A capture was asked to stop, but none runs.
    #[error("profile: no {mode} capture is running")]
    NotRunning {
        /// The kind of capture.
        mode: ProfileKind,
    },

    /// A guard or profiler started by one process was stopped in a `fork()` child of it.
    /// The child has none of the parent's profiler threads or timers and the profile is
    /// the parent's (which writes it when it stops): the child writes nothing.
    #[error(
        "profile: the {mode} profile was started by process {parent}; its fork child {child} cannot stop it, so nothing was written (the parent's profile is unaffected)"
    )]
    ForkedChild {
        /// The kind of profile.
        mode: ProfileKind,
        /// The process that started it.
        parent: u32,
        /// The process that tried to stop it.
        child: u32,
    },

    /// An environment variable that selects profiling has a value that does not parse.
    #[error(
        "profile: {variable}={value:?}: {reason}; expected MODE[,option...], e.g. \"cpu\" or \"mem,path=./profiles,rate=4096\" (modes: {modes}; options: path=DIR, file=FILE, rate=BYTES, hz=N, quiet, no_shutdown_hook)"
    )]
    InvalidEnv {
        /// The variable's name.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// The modes accepted.
        modes: &'static str,
    },

    /// A sampling frequency outside 1..=`max` Hz.
    #[error("profile: invalid {what} sampling frequency {hz} Hz: must be between 1 and {max} Hz")]
    InvalidFrequency {
        /// Which sampler: "CPU" (CPU profiles, traces' CPU samples) or "wall-clock".
        what: &'static str,
        /// The frequency that was asked for.
        hz: u32,
        /// The largest frequency accepted.
        max: u32,
    },

    /// A heap sampling rate of 0 where a rate is required (1 samples every allocation).
    #[error(
        "profile: invalid heap sampling rate {rate}: must be at least 1 byte (1 records every allocation)"
    )]
    InvalidRate {
        /// The rate that was asked for.
        rate: usize,
    },

    /// Heap profiling was asked for, but [`crate::Allocator`] is not the global allocator.
    #[error(
        "profile: heap profiling needs profile::Allocator as the global allocator; add this line to your binary:\n    #[global_allocator] static ALLOC: profile::Allocator = profile::Allocator::system();"
    )]
    AllocatorNotInstalled,

    /// An I/O error on a path: the output directory or file cannot be created or written.
    #[error("profile: {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// An operating-system call that is not about a path failed: starting one of the
    /// profiler's threads, listening on an address, writing to a stream.
    #[error("profile: {what}: {source}")]
    System {
        /// What was being done (e.g. "starting the profile-cpu thread", "listening on
        /// 127.0.0.1:6060").
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Something the crate can do, but not as built: a cargo feature is off.
    #[error("profile: {what} needs the `{feature}` cargo feature")]
    FeatureDisabled {
        /// The feature to enable.
        feature: &'static str,
        /// What was asked for.
        what: &'static str,
    },

    /// Installing or removing a signal disposition failed.
    #[error("profile: cannot change the disposition of signal {signal}: {source}")]
    Signal {
        /// The signal number.
        signal: i32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A signal the crate needs already has a handler the application installed (or, for
    /// SIGPROF, the application's `ITIMER_PROF` is armed): the crate refuses rather than
    /// silently replace it.
    #[error(
        "profile: {what} needs signal {signal} ({name}), but {reason}; the crate will not replace it (remove it, or pick another signal where one can be chosen)"
    )]
    SignalInUse {
        /// The signal number.
        signal: i32,
        /// Its name (`SIGPROF`).
        name: &'static str,
        /// What needed it (`CPU profiling`).
        what: &'static str,
        /// What is in the way.
        reason: &'static str,
    },

    /// Every real-time signal that stack capture could use already has a handler.
    #[error(
        "profile: no free real-time signal for capturing thread stacks: signals {first}..={last} all have handlers"
    )]
    NoFreeSignal {
        /// The first signal tried.
        first: i32,
        /// The last signal tried.
        last: i32,
    },

    /// Bytes that are not a pprof profile (bad gzip, bad protobuf, indices out of range).
    #[error("profile: cannot decode profile: {reason}")]
    Decode {
        /// What was wrong with the input.
        reason: String,
    },

    /// A report could not be made as asked (unknown sample type, bad regex, incompatible
    /// base profile, nothing to draw).
    #[error("profile: report: {reason}")]
    Report {
        /// What was wrong.
        reason: String,
    },

    /// A flame graph (or another drawing) was asked of a profile with no samples of the
    /// chosen type: an empty profile, or focus/ignore left none. Not a malformed request:
    /// `/debug/pprof/flamegraph` draws a picture that says so.
    #[error(
        "profile: report: no samples with a positive value to draw (empty profile, or focus/ignore left none)"
    )]
    NothingToDraw,

    /// A guard's profile failed to be written by an earlier stop (the shutdown hook's, a
    /// toggle's, or a first `stop()`); this is a later call asking for the outcome.
    #[error("profile: writing the {mode} profile to {path} failed earlier: {reason}")]
    FailedEarlier {
        /// The guard's mode.
        mode: ProfileKind,
        /// The file it was writing.
        path: PathBuf,
        /// The first failure, as it was reported then.
        reason: String,
    },

    /// Continuous profiling (`profile::push`) cannot start as configured: a bad server
    /// URL, an empty application name, an interval too short, a certificate that does
    /// not parse, a second agent.
    #[error("profile: push: {what}")]
    Push {
        /// What is wrong.
        what: String,
    },

    /// This platform cannot do what was asked.
    #[error("profile: {what} is not supported on this platform (Linux only)")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
}

impl Error {
    pub(crate) fn system(what: impl Into<String>, source: io::Error) -> Self {
        Error::System {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
