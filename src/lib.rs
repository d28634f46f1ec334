//! Go-style profiling for Rust programs: wrap `main` in a guard, run the program, open the
//! profile with `go tool pprof`.
//!
//! This is what Go programmers get from `defer profile.Start().Stop()` (pkg/profile) and
//! `runtime/pprof`: a builder returns a guard, and when the guard stops (explicitly or by
//! being dropped) a gzipped pprof protobuf (`.pb.gz`) is written that `go tool pprof`, and
//! every tool that reads pprof, opens with no warnings: real addresses, mappings with build
//! IDs, demangled function names, file:line and inlined frames.
//!
//! The package is `profile-guard` (not on crates.io yet: depend on a checkout by path or
//! git); the library is imported as `profile`:
//!
//! ```toml
//! [dependencies]
//! profile = { package = "profile-guard", path = "../profile" } # not on crates.io yet
//! ```
//!
//! # Quick start
//!
//! ```no_run
//! fn main() -> Result<(), profile::Error> {
//!     let guard = profile::start().path("./profiles").cpu().no_shutdown_hook().build()?;
//!     work();
//!     guard.stop()?; // or let it drop: ./profiles/cpu.pb.gz is written either way
//!     Ok(())
//! }
//! # fn work() {}
//! ```
//!
//! On stderr (silence it with [`Builder::quiet`]):
//!
//! ```text
//! profile: cpu profiling enabled, ./profiles/cpu.pb.gz
//! profile: cpu profiling disabled, ./profiles/cpu.pb.gz
//! ```
//!
//! # Reading the output
//!
//! - `go tool pprof -top ./profiles/cpu.pb.gz`: functions by CPU time (flat and cumulative).
//! - `go tool pprof -http=:8080 ./profiles/cpu.pb.gz`: the web UI, with a flame graph
//!   (View → Flame Graph), source view and disassembly.
//! - `go tool pprof -traces ./profiles/cpu.pb.gz`: every sampled stack.
//! - Without Go: `profile-report top ./profiles/cpu.pb.gz` (feature `cli`) prints the same
//!   table as `go tool pprof -top`; `profile-report flamegraph -o cpu.svg` draws a flame
//!   graph to open in a browser. The library side is [`report`] (feature `report`).
//!
//! Function names come from the symbol table, which every build has. File and line numbers
//! (and inlined frames) need line tables: in a release build add
//! `[profile.release] debug = "line-tables-only"` to `Cargo.toml`. Stacks are correct
//! without it and without frame pointers (unwinding uses `.eh_frame`).
//!
//! # Modes
//!
//! One mode per guard, chosen on the builder; choosing a second one does not compile:
//!
//! | builder | file | what |
//! |---|---|---|
//! | `.cpu()` (default), `.frequency(hz)` | `cpu.pb.gz` | CPU time of every thread, sampled at 100 Hz by default (1..=10000), labels `thread_name`, `thread_id` and [`labels::with`]'s |
//! | `.mem()`, `.rate(bytes)` | `heap.pb.gz` | live heap and allocations by stack (opens on `inuse_space`) |
//! | `.allocs()`, `.rate(bytes)` | `allocs.pb.gz` | the same data, opening on `alloc_space` |
//! | `.mutex()` | `mutex.pb.gz` | lock contention, charged to the code holding the lock |
//! | `.block()` | `block.pb.gz` | time spent waiting (locks, condvars, [`sync::blocking`]), charged to the waiters |
//! | `.threads()` | `threads.pb.gz` | every thread's stack when the guard stops (Go's goroutine profile) |
//! | `.clock()`, `.frequency(hz)` | `clock.pb.gz` | every thread sampled over wall time, running or waiting, 99 Hz by default |
//! | `.threadcreate()` (feature `threadcreate`) | `threadcreate.pb.gz` | the stacks that created threads |
//! | `.trace()` (feature `trace`) | `trace.json` | spans, events and CPU samples per thread on a timeline |
//!
//! # Heap profiles
//!
//! Heap modes need [`Allocator`] as the global allocator, one line in the binary (it wraps
//! any allocator: `profile::Allocator::new(mimalloc::MiMalloc)`):
//!
//! ```
//! #[global_allocator]
//! static ALLOC: profile::Allocator = profile::Allocator::system();
//! # fn main() {}
//! ```
//!
//! Without it `.mem()` / `.allocs()` return [`Error::AllocatorNotInstalled`] with that
//! line. Allocations are sampled as Go and tcmalloc do (on average one per `rate` bytes,
//! default 512 KiB, `.rate(1)` records every allocation) and the values are unbiased with
//! Go's formula; frees of sampled blocks are matched, so in-use values are right. Stacks
//! start at the code that asked for memory: the wrapper's and std's allocation frames
//! (`alloc::*`, `hashbrown`) are trimmed. Read them with
//! `go tool pprof -sample_index=inuse_space -top heap.pb.gz` (what is live) or
//! `-sample_index=alloc_space` (what was allocated). While sampling is off the wrapper
//! costs one load per allocation and free; see [`runtime::heap`] for the rest.
//!
//! # Mutex and block profiles
//!
//! [`sync`] has drop-in `parking_lot` locks (`use profile::sync::{Mutex, RwLock,
//! Condvar};`) that feed Go's two contention profiles: **mutex** (how long waiters were
//! delayed, charged to the code that held the lock and released it: what to shorten) and
//! **block** (how long threads waited, charged to the waiters; also condition variables
//! and any call wrapped in [`sync::blocking`]). Only contended paths are instrumented; an
//! uncontended lock costs what parking_lot's does. `.mutex()` and `.block()` guards
//! record every event while active; [`runtime::mutex`] and [`runtime::block`] set Go's
//! sampling fraction and rate.
//!
//! # Thread dumps and wall-clock profiles
//!
//! A hung or idle process shows nothing in a CPU profile. [`runtime::threads`] dumps
//! every thread's stack from inside the process, like jstack: a `goroutine/count` profile
//! (labels `thread_name`, `thread_id`), Go's `debug=1` text, and a full dump with each
//! thread's name, id, state (running, sleeping, disk wait...) and frames with file:line.
//! One call prints it from a watchdog: [`runtime::threads::dump_to_stderr`]. `.clock()`
//! (and [`runtime::clock`]) samples every thread at a fixed wall-clock rate whether it
//! runs or waits, so time spent sleeping, waiting for locks or in I/O shows up
//! (pkg/profile's ClockProfile, Go's fgprof); `go tool pprof -tagfocus
//! thread_name=worker-1` narrows it to one thread.
//!
//! Both interrupt each thread with a real-time signal (the first free one from
//! `SIGRTMIN+8`) and walk its stack inside the handler with DWARF CFI: correct without
//! frame pointers, no allocation or lock in the handler (a thread stopped inside `malloc`
//! or the dynamic loader cannot deadlock it). A thread
//! that blocks the signal or does not answer within 100 ms is listed with the reason. The
//! pause per thread is under a microsecond; a dump of 200 threads takes ~15 ms
//! (`docs/performance.md`).
//!
//! ## Interrupted system calls
//!
//! The handlers are installed with `SA_RESTART`, so calls Linux restarts — `read`,
//! `write`, `accept`, `connect`, `wait`, futex waits (std's and parking_lot's locks,
//! condvars and channels) — resume unnoticed. Linux never restarts `poll`, `ppoll`,
//! `epoll_wait`, `select`, `pselect`, `nanosleep`, `clock_nanosleep`, `sigtimedwait` and
//! socket calls on a socket with `SO_RCVTIMEO`/`SO_SNDTIMEO`, whatever the flag says:
//! they return `EINTR`, about once per signal per thread blocked in them — under a clock
//! profile at 100 Hz, ~100 per second per blocked thread (measured by `tests/eintr.rs`),
//! under a thread dump one per thread. std (`thread::sleep` sleeps the rest;
//! `TcpListener::accept`, `mpsc` timeouts), parking_lot and tokio (its workers wait in
//! `epoll_wait`) retry on `EINTR`, checked by the same test; code that calls `poll` or
//! `epoll_wait` itself must retry too, as it must for any signal.
//!
//! To run several profilers at once, use the lower level [`runtime`] module, which returns
//! [`Profile`] values instead of writing files. [`runtime::cmdline`] returns the process's
//! arguments.
//!
//! # Profiling at any moment
//!
//! [`toggle::on_signal`] starts a capture on each delivery of a signal and writes it on
//! the next (`cpu-1.pb.gz`, `cpu-2.pb.gz`...); [`toggle::Toggle`] does the same from code
//! (start, stop, is_running); [`from_env`] starts the profile the `PROFILE` variable names
//! (`PROFILE=cpu`, `PROFILE=mem,path=./profiles,rate=4096`).
//!
//! # The guard
//!
//! - One guard may be live per process: a second [`Builder::build`] returns
//!   [`Error::AlreadyActive`] naming the running mode. After a guard stops, a new one can
//!   start.
//! - [`Guard::stop`] writes the file and returns its path or the error. Dropping the guard
//!   does the same best-effort (also while a panic unwinds) and reports a failure on stderr.
//! - Files are written completely or not at all: a temp file beside the target, synced,
//!   then renamed over it. An earlier profile at that path stays until the new one is whole.
//! - Without `.path()` or `.file()`, profiles go to a fresh directory `profile*` under the
//!   system temp directory, kept after exit (as pkg/profile does). That directory is
//!   private (0700): a profile holds the command line, code paths and labels. Files get
//!   0666 less the umask, as `File::create` gives, wherever they go.
//! - The target must be new, a regular file, or a link to one: a device (`/dev/null`),
//!   FIFO or socket there is refused with [`Error::Io`] (a rename would replace the node
//!   itself). Empty names, NUL bytes and names too long for the temp name (the name plus
//!   12 bytes must fit the file system's limit, 255 on Linux) fail at [`Builder::build`].
//!
//! # `fork()`
//!
//! A forked child (daemonizing, pre-fork workers, `pre_exec`) never hangs on the
//! profiler's locks: the heap sampler's, the contention tables' and thread creation's are
//! held by the forking thread across the fork (`pthread_atfork`), and the symbolizer and
//! stack-capture locks, if another thread held them, are reset in the child. What a child
//! inherits:
//!
//! - Heap sampling, at the parent's rate; its heap profile includes the sampled objects it
//!   inherited (they are in its heap too). Mutex/block recording likewise.
//! - No CPU or clock sampling: timers and the sampler threads are not inherited. Stopping
//!   an inherited guard or [`runtime`] CPU/clock profiler in the child returns
//!   [`Error::ForkedChild`] and writes nothing; the parent's profile is unaffected.
//! - The shutdown hook's dispositions are put back in the child (SIGINT/SIGTERM act as
//!   before the guard), since the hook's thread is the parent's.
//! - Thread dumps and profiles written in the child work (its own threads).
//! - A signal toggle's signal does nothing in the child (its `profile-toggle` thread is
//!   the parent's).
//!
//! None of the crate's threads is inside `dl_iterate_phdr` at a fork (glibc does not reset
//! the loader's lock in the child): the prepare handler waits for them. Locks inside
//! `parking_lot` itself (its parking table), and the loader's lock held by the
//! application's own threads, are outside this crate's reach.
//!
//! # The shutdown hook
//!
//! Unless [`Builder::no_shutdown_hook`] is called, SIGINT (Ctrl-C) and SIGTERM stop the
//! profile and write it completely; then the signal is delivered again to the disposition
//! that was there before, so a default-disposition process ends as the signal would have
//! ended it (exit status 130 or 143, not 0), and an application's own handler runs as
//! usual. A second Ctrl-C while the profile is being written ends the process at once,
//! removing the temp file of the write in progress (no `.cpu.pb.gz.XXXXXX.tmp` is left). A
//! signal whose disposition is "ignore" (`nohup`) is left alone. The hook is removed when
//! the guard stops; a handler the application installed meanwhile is not clobbered. The
//! signal handler only wakes a thread (`profile-signal`); all work happens there.
//!
//! # When no profile gets written
//!
//! - `std::process::exit`, `abort`, or returning from `main` while the guard lives in a
//!   static: destructors do not run. Stop the guard first.
//! - `panic = "abort"`: a panic does not unwind, so the guard is not dropped.
//! - SIGKILL, or a signal other than SIGINT/SIGTERM that ends the process.
//! - `std::mem::forget(guard)`.
//! - `let _ = profile::start().build();`: a guard bound to `_` is dropped at once, so the
//!   profile covers nothing. Bind it to a name (`let _guard = ...`).
//!
//! # Platforms
//!
//! Linux on x86_64 and aarch64 is supported. Elsewhere the crate compiles and
//! [`Builder::build`] and the [`runtime`] profilers return [`Error::Unsupported`];
//! [`Profile`] encoding and decoding work everywhere.
//!
//! # Feature flags
//!
//! - `http` (off by default): [`http`] serves `/debug/pprof/*` as Go's `net/http/pprof`
//!   does (`http::serve("127.0.0.1:6060")`), or mounts the endpoints in any framework
//!   (`http::handle`).
//! - `axum` (off by default; includes `http` and `tokio`): [`http::axum`] mounts every
//!   endpoint in an axum application with one `Router::merge`, and labels handlers by
//!   route.
//! - `tokio` (off by default): [`sync::tokio`]'s async locks with tokio's API feeding the
//!   mutex and block profiles; tokio tasks in goroutine profiles (`runtime::tasks`) when
//!   the application is built with `--cfg tokio_unstable`.
//! - `push` (off by default): [`push`] uploads every kind to a Pyroscope server (or
//!   Grafana Cloud Profiles) every interval from a background agent, as pyroscope-go
//!   does, or as OTLP profiles to an OpenTelemetry Collector; `PROFILE_PUSH=url` turns it
//!   on from [`from_env`]. `push-tracing` adds `push::SpanLayer` (span profiles:
//!   `span_id`/`span_name` labels); `push-otel` makes `span_id` the OpenTelemetry span id
//!   of spans `tracing-opentelemetry` (0.34) exports.
//! - `trace` (off by default): execution traces ([`trace`], `.trace()`): `tracing` spans
//!   and events per thread plus CPU samples, as Chrome trace-event JSON for
//!   ui.perfetto.dev.
//! - `report` (off by default): [`report`] reads profiles offline — `top`/`diff` tables
//!   as `go tool pprof -top` prints them, collapsed stacks, flame graph SVGs, debug=1
//!   text. `http` includes it (for `/debug/pprof/flamegraph`).
//! - `cli` (off by default): the `profile-report` command over [`report`].
//! - `criterion` (off by default): [`criterion::Profiler`] writes a CPU profile per
//!   benchmark under `cargo bench -- --profile-time N`.
//! - `threadcreate` (off by default): thread-creation profiles (`.threadcreate()`,
//!   `runtime::threadcreate`). The crate then defines `pthread_create` to record the
//!   stacks that create threads; threads created by shared libraries are not seen. See
//!   the module docs for the mechanism and its limits.

#![deny(unsafe_op_in_unsafe_fn)]
// docs.rs (nightly, `--cfg docsrs`) shows which cargo feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod builder;
#[cfg(feature = "criterion")]
#[cfg_attr(docsrs, doc(cfg(feature = "criterion")))]
pub mod criterion;
mod env;
mod error;
mod guard;
mod heap;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod kind;
pub mod labels;
mod output;
mod profile;
#[cfg(feature = "push")]
#[cfg_attr(docsrs, doc(cfg(feature = "push")))]
pub mod push;
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub mod report;
pub mod runtime;
mod session;
pub mod sync;
mod sys;
#[cfg(test)]
mod test_alloc;
pub mod toggle;
#[cfg(feature = "trace")]
#[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
pub mod trace;

pub use builder::{Builder, mode, start};
pub use env::{ENV_VAR, from_env};
pub use error::Error;
pub use guard::Guard;
pub use heap::Allocator;
pub use kind::ProfileKind;
pub use profile::{
    Function, Label, LabelValue, Line, Location, MAX_DECODED_BYTES, Mapping, Profile, Sample,
    ValueType,
};
