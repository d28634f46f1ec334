//! Stubs for platforms other than Linux: everything returns [`Error::Unsupported`].

/// Nothing is symbolized on this platform: nothing to release.
pub(crate) fn release_symbolizer() {}

/// CPU sampling.
pub(crate) mod cpu {
    use crate::Error;
    use crate::profile::Profile;

    /// Never constructed on this platform.
    pub(crate) struct Sampler(());

    /// One CPU sample with its time (never made on this platform).
    #[cfg(feature = "trace")]
    #[allow(dead_code)]
    pub(crate) struct TimedSample {
        pub at_nanos: u64,
        pub tid: i32,
        pub thread_name: String,
        pub function: String,
        pub labels: Option<std::sync::Arc<crate::labels::LabelSet>>,
    }

    /// The handler's counters.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Counters {
        pub signals: u64,
        pub lost: u64,
        pub leaf_only: u64,
        pub handler_nanos: u64,
        pub frames: u64,
        pub handler_median_nanos: u64,
    }

    /// No handler runs here: zero.
    pub(crate) fn counters() -> Counters {
        Counters::default()
    }

    impl Sampler {
        pub(crate) fn start(_hz: u32) -> Result<Sampler, Error> {
            Err(Error::Unsupported {
                what: "CPU profiling",
            })
        }

        pub(crate) fn discard(self) {}

        pub(crate) fn cut(&mut self) -> Result<Profile, Error> {
            Err(Error::Unsupported {
                what: "CPU profiling",
            })
        }

        pub(crate) fn stop(self) -> Result<Profile, Error> {
            Err(Error::Unsupported {
                what: "CPU profiling",
            })
        }

        #[cfg(feature = "trace")]
        pub(crate) fn start_timeline(_hz: u32) -> Result<Sampler, Error> {
            Sampler::start(0)
        }

        #[cfg(feature = "trace")]
        pub(crate) fn stop_timeline(self) -> Result<(Profile, Vec<TimedSample>, u64), Error> {
            Err(Error::Unsupported {
                what: "CPU profiling",
            })
        }
    }
}

/// The profiler's own allocations (nothing to exclude where nothing is symbolized).
pub(crate) mod untracked {
    pub(crate) fn active() -> bool {
        false
    }

    /// A scope of the profiler's own allocations (nothing to exclude here).
    pub(crate) struct Untracked(());

    impl Untracked {
        pub(crate) fn new() -> Untracked {
            Untracked(())
        }
    }
}

/// `fork()` handlers: nothing to register where nothing is profiled.
pub(crate) mod fork {
    /// One kind's handlers (unused here).
    #[allow(dead_code)]
    pub(crate) struct Handlers {
        pub prepare: fn(),
        pub parent: fn(),
        pub child: fn(),
    }

    /// Where a kind's handlers go.
    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    pub(crate) enum Slot {
        Objects,
        Symbolizer,
        Capture,
        Hook,
        Contention,
        ThreadCreate,
        Heap,
    }

    pub(crate) fn register(_slot: Slot, _handlers: &'static Handlers) -> Result<(), i32> {
        Ok(())
    }
}

/// The shutdown hook.
pub(crate) mod hook {
    use crate::Error;

    /// What the hook would call back into (never called here).
    #[allow(dead_code)]
    pub(crate) struct Hooks {
        pub on_signal: fn(i32),
        pub before_dying: fn(),
    }

    pub(crate) fn install(_hooks: &'static Hooks) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "the shutdown hook",
        })
    }

    pub(crate) fn remove() {}
}

/// Stack capture: libgcc's (or the platform's) unwinder through `backtrace`, no fast
/// walker.
pub(crate) mod stack {
    /// The deepest stack `capture_here` records.
    pub(crate) const MAX_DEPTH: usize = 64;

    /// Nothing to prepare: every capture is `backtrace`'s.
    pub(crate) fn prepare_here() {}

    /// The calling thread's stack; never fast here.
    pub(crate) fn capture_here(out: &mut [u64; MAX_DEPTH]) -> (usize, bool) {
        let mut n = 0;
        // SAFETY: as on Linux: not called concurrently with symbolization through
        // backtrace's lock, and the callback does not unwind.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                let ip = frame.ip() as u64;
                if ip == 0 {
                    return false;
                }
                out[n] = ip;
                n += 1;
                n < MAX_DEPTH
            });
        }
        (n, false)
    }
}

/// No symbolizer here: every profile built from addresses is unsupported.
pub(crate) fn with_symbolizer<R>(
    what: &'static str,
    _f: impl FnOnce(&mut dyn crate::profile::builder::Resolve) -> Result<R, crate::Error>,
) -> Result<R, crate::Error> {
    Err(crate::Error::Unsupported { what })
}

/// Thread dumps.
pub(crate) mod threads {
    use crate::Error;

    /// One listed thread and what its capture gave (never made here).
    #[allow(dead_code)]
    pub(crate) struct Captured {
        pub tid: i32,
        pub name: String,
        pub state: char,
        pub stack: Result<RawStack, &'static str>,
        pub own: bool,
    }

    /// A captured stack (never made here).
    #[allow(dead_code)]
    pub(crate) struct RawStack {
        pub frames: Vec<u64>,
        pub complete: bool,
        pub pause: std::time::Duration,
    }

    pub(crate) fn prepare() -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "thread dumps",
        })
    }

    pub(crate) fn capture(
        _budget: std::time::Duration,
        _per_thread: std::time::Duration,
    ) -> Result<(Vec<Captured>, std::time::Duration), Error> {
        Err(Error::Unsupported {
            what: "thread dumps",
        })
    }
}

/// Wall-clock sampling.
pub(crate) mod clock {
    use crate::Error;

    /// A stopped sampler's recording (never made here).
    #[allow(dead_code)]
    pub(crate) struct Recorded {
        pub collected: Collected,
        pub hz: u32,
        pub start_nanos: i64,
        pub duration: std::time::Duration,
    }

    /// A clock sample's identity: stack, thread id, labels.
    pub(crate) type Key = (
        Vec<u64>,
        i32,
        Option<std::sync::Arc<crate::labels::LabelSet>>,
    );

    /// What a sampler collected (never made here).
    #[allow(dead_code)]
    #[derive(Default)]
    pub(crate) struct Collected {
        pub samples: std::collections::HashMap<Key, (i64, i64)>,
        pub names: std::collections::HashMap<i32, String>,
        pub misses: std::collections::HashMap<&'static str, u64>,
        pub failed_rounds: u64,
        pub rounds: u64,
        pub late_rounds: u64,
        pub max_late: std::time::Duration,
    }

    /// No sampler ever runs here: the counters stay 0.
    pub(crate) static ROUNDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    pub(crate) static LATE_ROUNDS: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0);
    pub(crate) static MISSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// Never constructed on this platform.
    pub(crate) struct Sampler(());

    impl Sampler {
        pub(crate) fn start(_hz: u32) -> Result<Sampler, Error> {
            Err(Error::Unsupported {
                what: "wall-clock profiling",
            })
        }

        pub(crate) fn discard(self) {}

        pub(crate) fn cut(&mut self) -> Result<Recorded, Error> {
            Err(Error::Unsupported {
                what: "wall-clock profiling",
            })
        }

        pub(crate) fn stop(self) -> Result<Recorded, Error> {
            Err(Error::Unsupported {
                what: "wall-clock profiling",
            })
        }
    }
}

#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate_supported() -> Result<(), crate::Error> {
    Err(crate::Error::Unsupported {
        what: "thread-creation profiles",
    })
}

#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate_state() -> (usize, u64, usize) {
    (0, 0, 0)
}

#[cfg(feature = "threadcreate")]
pub(crate) fn threadcreate_stacks() -> (Vec<(Vec<u64>, u64)>, u64) {
    (Vec::new(), 0)
}

#[cfg(feature = "http")]
pub(crate) fn function_name(_address: u64) -> Option<String> {
    None
}

pub(crate) fn thread_count() -> usize {
    0
}

/// Toggling by signal.
pub(crate) mod toggle {
    use crate::Error;

    pub(crate) const SIGUSR1: i32 = 10;
    pub(crate) const SIGUSR2: i32 = 12;

    /// Never constructed on this platform.
    #[derive(Debug)]
    pub(crate) struct Listener(());

    impl Listener {
        pub(crate) fn start(
            _signal: i32,
            _on_toggle: impl Fn() + Send + 'static,
        ) -> Result<Listener, Error> {
            Err(Error::Unsupported {
                what: "toggling profiles by signal",
            })
        }

        pub(crate) fn stop(self) {}
    }
}

/// CLOCK_MONOTONIC (unused off Linux: there are no CPU samples to place).
#[cfg(feature = "trace")]
pub(crate) fn monotonic_nanos() -> u64 {
    0
}
