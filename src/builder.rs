//! The builder returned by [`crate::start`].
//!
//! The mode is part of the builder's type: `start()` gives a `Builder<Unset>`, `.cpu()` turns
//! it into a `Builder<Cpu>`, and only `Builder<Unset>` has mode methods, so choosing a
//! second mode does not compile. Mode-specific options (`.frequency()`) exist only on their
//! mode. A new mode is a new marker type in [`mode`], one method on `Builder<Unset>` and an
//! implementation of the private `ModeImpl` trait; nothing else changes.

use std::path::PathBuf;

use crate::guard::{self, Guard};
use crate::session::{self, Options, Output, Session};
use crate::{Error, ProfileKind};

/// Configures a profiling session; [`build`](Builder::build) starts it.
///
/// Made by [`crate::start`]. `M` is the chosen mode (see [`mode`]).
#[must_use = "a Builder does nothing until .build() is called"]
#[derive(Debug, Clone)]
pub struct Builder<M = mode::Unset> {
    options: Options,
    mode: M,
}

/// The mode marker types that parameterize [`Builder`].
pub mod mode {
    /// No mode chosen yet: `build()` profiles CPU, as pkg/profile does by default.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Unset;

    /// CPU profiling (`cpu.pb.gz`), with its sampling frequency.
    #[derive(Debug, Clone, Copy)]
    pub struct Cpu {
        pub(crate) frequency: u32,
    }

    impl Default for Cpu {
        fn default() -> Self {
            Cpu {
                frequency: crate::runtime::cpu::DEFAULT_FREQUENCY,
            }
        }
    }

    /// Lock contention charged to the code holding the lock (`mutex.pb.gz`).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Mutex;

    /// Time spent waiting, charged to the waiters (`block.pb.gz`).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Block;

    /// Thread dump (`threads.pb.gz`): every thread's stack, taken when the guard stops
    /// (pkg/profile's `GoroutineProfile`).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Threads;

    /// Wall-clock profiling (`clock.pb.gz`): every thread sampled at a fixed rate of real
    /// time, running or waiting (pkg/profile's `ClockProfile`).
    #[derive(Debug, Clone, Copy)]
    pub struct Clock {
        pub(crate) frequency: u32,
    }

    impl Default for Clock {
        fn default() -> Self {
            Clock {
                frequency: crate::runtime::clock::DEFAULT_FREQUENCY,
            }
        }
    }

    /// Execution trace (`trace.json`): `tracing` spans and events per thread, and CPU
    /// samples, on a timeline. Cargo feature `trace`.
    #[cfg(feature = "trace")]
    #[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
    #[derive(Debug, Clone, Copy)]
    pub struct Trace {
        pub(crate) cpu_hz: Option<u32>,
    }

    #[cfg(feature = "trace")]
    impl Default for Trace {
        fn default() -> Self {
            Trace {
                cpu_hz: Some(crate::runtime::cpu::DEFAULT_FREQUENCY),
            }
        }
    }

    /// Thread creation (`threadcreate.pb.gz`): where the threads of this process were
    /// created (pkg/profile's `ThreadcreationProfile`). Cargo feature `threadcreate`.
    #[cfg(feature = "threadcreate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "threadcreate")))]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ThreadCreate;

    /// Heap profiling (`heap.pb.gz`, or `allocs.pb.gz` opening on `alloc_space`), with its
    /// sampling rate.
    #[derive(Debug, Clone, Copy)]
    pub struct Mem {
        pub(crate) rate: usize,
        pub(crate) allocs: bool,
    }
}

pub(crate) mod sealed {
    use crate::session::Session;
    use crate::{Error, ProfileKind};

    /// What a mode marker type must do; private so that only this crate adds modes.
    pub trait ModeImpl {
        /// The kind of profile this mode records.
        fn kind(&self) -> ProfileKind;
        /// Checks the mode's options; runs before anything is started or created.
        fn validate(&self) -> Result<(), Error> {
            Ok(())
        }
        /// Starts the profiler (`crate::session` has one adapter per mode).
        fn start(&self) -> Result<Box<dyn Session>, Error>;
    }
}

impl sealed::ModeImpl for mode::Cpu {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Cpu
    }

    fn validate(&self) -> Result<(), Error> {
        crate::runtime::cpu::validate(self.frequency)
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::cpu(self.frequency)
    }
}

impl sealed::ModeImpl for mode::Mem {
    fn kind(&self) -> ProfileKind {
        if self.allocs {
            ProfileKind::Allocs
        } else {
            ProfileKind::Heap
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.rate == 0 {
            return Err(Error::InvalidRate { rate: 0 });
        }
        if !crate::runtime::heap::is_installed() {
            return Err(Error::AllocatorNotInstalled);
        }
        Ok(())
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::heap(self.rate, self.allocs)
    }
}

impl sealed::ModeImpl for mode::Mutex {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Mutex
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::contention(false)
    }
}

impl sealed::ModeImpl for mode::Block {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Block
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::contention(true)
    }
}

impl sealed::ModeImpl for mode::Threads {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Threads
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::threads()
    }
}

impl sealed::ModeImpl for mode::Clock {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Clock
    }

    fn validate(&self) -> Result<(), Error> {
        crate::runtime::clock::validate(self.frequency)
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::clock(self.frequency)
    }
}

#[cfg(feature = "threadcreate")]
impl sealed::ModeImpl for mode::ThreadCreate {
    fn kind(&self) -> ProfileKind {
        ProfileKind::ThreadCreate
    }

    fn validate(&self) -> Result<(), Error> {
        crate::runtime::threadcreate::check()
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::threadcreate()
    }
}

#[cfg(feature = "trace")]
impl sealed::ModeImpl for mode::Trace {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Trace
    }

    fn validate(&self) -> Result<(), Error> {
        self.cpu_hz.map_or(Ok(()), crate::runtime::cpu::validate)
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        session::trace(self.cpu_hz)
    }
}

impl sealed::ModeImpl for mode::Unset {
    fn kind(&self) -> ProfileKind {
        mode::Cpu::default().kind()
    }

    fn validate(&self) -> Result<(), Error> {
        mode::Cpu::default().validate()
    }

    fn start(&self) -> Result<Box<dyn Session>, Error> {
        mode::Cpu::default().start()
    }
}

/// Starts configuring a profile: `profile::start().path("./profiles").cpu().build()?`.
///
/// With no mode chosen, [`Builder::build`] profiles CPU at 100 Hz.
pub fn start() -> Builder<mode::Unset> {
    Builder {
        options: Options {
            output: Output::TempDir,
            quiet: false,
            shutdown_hook: true,
        },
        mode: mode::Unset,
    }
}

impl<M> Builder<M> {
    /// Writes the profile into this directory, under the mode's file name
    /// (`DIR/cpu.pb.gz`). The directory (and its parents) is created if missing.
    ///
    /// Without `.path()` or `.file()`, a fresh directory `profile*` is made under the system
    /// temp dir and kept. The last of `.path()` / `.file()` wins.
    pub fn path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.output = Output::Dir(dir.into());
        self
    }

    /// Writes the profile to exactly this file (its directory is created if missing). An
    /// existing file there is replaced only once the new profile is complete.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Self {
        self.options.output = Output::File(file.into());
        self
    }

    /// No `profile: ... enabled/disabled` messages on stderr. Errors still come back
    /// through `Result`, and a failure in `Drop` is still reported on stderr.
    pub fn quiet(mut self) -> Self {
        self.options.quiet = true;
        self
    }

    /// Do not install the shutdown hook (see the crate docs): SIGINT and SIGTERM keep
    /// whatever disposition they have, and a profile is lost if they end the process.
    pub fn no_shutdown_hook(mut self) -> Self {
        self.options.shutdown_hook = false;
        self
    }
}

impl Builder<mode::Unset> {
    /// Profile CPU time (`cpu.pb.gz`), sampled at 100 Hz unless
    /// [`frequency`](Builder::frequency) says otherwise.
    pub fn cpu(self) -> Builder<mode::Cpu> {
        Builder {
            options: self.options,
            mode: mode::Cpu::default(),
        }
    }
}

impl Builder<mode::Unset> {
    /// Profile the heap (`heap.pb.gz`): live objects and bytes by allocation stack, plus
    /// what was allocated. pkg/profile's `MemProfileHeap`. Needs [`crate::Allocator`] as
    /// the global allocator. Sampling rate: [`rate`](Builder::rate), default 512 KiB.
    pub fn mem(self) -> Builder<mode::Mem> {
        Builder {
            options: self.options,
            mode: mode::Mem {
                rate: crate::runtime::heap::DEFAULT_RATE,
                allocs: false,
            },
        }
    }

    /// Profile allocations (`allocs.pb.gz`): the same data as [`mem`](Builder::mem),
    /// opening on `alloc_space`. pkg/profile's `MemProfileAllocs`.
    pub fn allocs(self) -> Builder<mode::Mem> {
        Builder {
            options: self.options,
            mode: mode::Mem {
                rate: crate::runtime::heap::DEFAULT_RATE,
                allocs: true,
            },
        }
    }
}

impl Builder<mode::Unset> {
    /// Profile lock contention (`mutex.pb.gz`): the delay waiters on [`crate::sync`] locks
    /// suffered, charged to the code that held the lock. pkg/profile's `MutexProfile`.
    /// Records every event while active; the previous fraction is restored at stop.
    pub fn mutex(self) -> Builder<mode::Mutex> {
        Builder {
            options: self.options,
            mode: mode::Mutex,
        }
    }

    /// Profile blocking (`block.pb.gz`): time spent waiting on [`crate::sync`] locks,
    /// condition variables and [`crate::sync::blocking`] calls, charged to the waiters.
    /// pkg/profile's `BlockProfile`. Records every event while active.
    pub fn block(self) -> Builder<mode::Block> {
        Builder {
            options: self.options,
            mode: mode::Block,
        }
    }
}

impl Builder<mode::Unset> {
    /// Thread dump: every thread's stack, captured when the guard stops, written as
    /// `threads.pb.gz` (`goroutine/count`, labels `thread_name` and `thread_id`). For a dump
    /// at any other moment see [`crate::runtime::threads`].
    pub fn threads(self) -> Builder<mode::Threads> {
        Builder {
            options: self.options,
            mode: mode::Threads,
        }
    }

    /// Wall-clock profiling: every thread sampled 99 times per second of real time,
    /// whether it runs or waits, written as `clock.pb.gz` (`samples/count`,
    /// `time/nanoseconds`). [`frequency`](Builder::<mode::Clock>::frequency) changes the
    /// rate.
    pub fn clock(self) -> Builder<mode::Clock> {
        Builder {
            options: self.options,
            mode: mode::Clock::default(),
        }
    }

    /// Thread creation: the stacks that created this process's threads since it started,
    /// written as `threadcreate.pb.gz` (`threadcreate/count`). Needs the cargo feature
    /// `threadcreate`; see [`crate::runtime::threadcreate`] for how and its limits.
    #[cfg(feature = "threadcreate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "threadcreate")))]
    pub fn threadcreate(self) -> Builder<mode::ThreadCreate> {
        Builder {
            options: self.options,
            mode: mode::ThreadCreate,
        }
    }
}

impl Builder<mode::Unset> {
    /// Execution trace: `tracing` spans and events per thread, plus CPU samples (100 Hz)
    /// as instant events, written as `trace.json` (Chrome trace-event JSON: open it in
    /// <https://ui.perfetto.dev> or `chrome://tracing`). Cargo feature `trace`; see
    /// [`crate::trace`] for the subscriber layer.
    #[cfg(feature = "trace")]
    #[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
    pub fn trace(self) -> Builder<mode::Trace> {
        Builder {
            options: self.options,
            mode: mode::Trace::default(),
        }
    }
}

#[cfg(feature = "trace")]
impl Builder<mode::Trace> {
    /// CPU samples per CPU-second in the trace (default 100).
    pub fn cpu_samples(mut self, hz: u32) -> Self {
        self.mode.cpu_hz = Some(hz);
        self
    }

    /// No CPU samples in the trace (spans and events only).
    pub fn no_cpu_samples(mut self) -> Self {
        self.mode.cpu_hz = None;
        self
    }
}

impl Builder<mode::Clock> {
    /// Samples per wall-clock second, 1..=1000 (default 99). Checked by `build()`.
    pub fn frequency(mut self, hz: u32) -> Self {
        self.mode.frequency = hz;
        self
    }
}

impl Builder<mode::Mem> {
    /// Sample on average one allocation per `bytes` allocated (pkg/profile's
    /// `MemProfileRate`); 1 records every allocation. Default 512 KiB. The previous rate
    /// is restored when the guard stops. Checked by `build()` (0 is an error).
    pub fn rate(mut self, bytes: usize) -> Self {
        self.mode.rate = bytes;
        self
    }
}

impl Builder<mode::Cpu> {
    /// Samples per CPU-second, 1..=10000 (default 100). Checked by `build()`.
    pub fn frequency(mut self, hz: u32) -> Self {
        self.mode.frequency = hz;
        self
    }
}

impl<M: sealed::ModeImpl> Builder<M> {
    /// The kind this builder profiles.
    pub(crate) fn kind(&self) -> ProfileKind {
        self.mode.kind()
    }

    /// The mode's own checks (what `build` checks first).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.mode.validate()
    }

    /// Where the profile would go.
    pub(crate) fn output(&self) -> &Output {
        &self.options.output
    }

    /// Validates the options, starts profiling and returns the guard that writes the file.
    ///
    /// Everything is checked before a timer or signal handler is touched: a bad frequency
    /// ([`Error::InvalidFrequency`]), an output path that is a file or cannot be written
    /// ([`Error::Io`] naming the path). Only one guard may be live per process:
    /// [`Error::AlreadyActive`] names the running one's mode. Off Linux:
    /// [`Error::Unsupported`].
    pub fn build(self) -> Result<Guard, Error> {
        self.mode.validate()?;
        let kind = self.mode.kind();
        match &self.options.output {
            Output::TempDir => {}
            Output::Dir(dir) => {
                crate::output::prepare_dir(dir)?;
                crate::output::prepare_target_in(dir, kind.file_name())?;
            }
            Output::File(file) => crate::output::prepare_file(file)?,
        }
        guard::activate(kind, &self.options, || self.mode.start())
    }
}
