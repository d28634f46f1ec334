//! Continuous profiling: a background agent that pushes every configured kind to a
//! Pyroscope server (or Grafana Cloud Profiles) every interval, as `pyroscope-go` does for
//! Go programs.
//!
//! ```no_run
//! # fn main() -> Result<(), profile::Error> {
//! let agent = profile::push::pyroscope("http://127.0.0.1:4040", "my-service")
//!     .tag("env", "prod")
//!     .tag("version", env!("CARGO_PKG_VERSION"))
//!     .start()?;
//! // ... the service runs; every 15 s its profiles are uploaded ...
//! let stats = agent.stop()?; // the last interval is flushed (within 5 s by default)
//! println!("{} uploads, {} dropped", stats.uploads, stats.dropped);
//! # Ok(()) }
//! ```
//!
//! Or without touching the code, for a program that calls [`crate::from_env`]:
//! `PROFILE_PUSH=http://127.0.0.1:4040 PROFILE_APP=my-service ./my-service` (see
//! [`from_env`] for every variable).
//!
//! # What is pushed, per interval
//!
//! | kind | how | Pyroscope profile type |
//! |---|---|---|
//! | CPU (default, 100 Hz) | the samples of the interval: the sampler keeps running, each interval is one [cut](crate::runtime::cpu::CpuProfiler::cut) | `process_cpu:cpu:nanoseconds:cpu:nanoseconds` (and `samples:count`) |
//! | heap (default when [`crate::Allocator`] is installed; 512 KiB if no rate was set) | `inuse_*` now, `alloc_*` since the previous upload | `memory:inuse_space:bytes:space:bytes`, `memory:alloc_space:bytes:space:bytes`, … |
//! | mutex ([`Builder::mutex`]) | the change since the previous upload | `mutex:delay:nanoseconds:contentions:count`, `mutex:contentions:count:…` |
//! | block ([`Builder::block`]) | the change since the previous upload | `block:delay:nanoseconds:contentions:count`, … |
//! | goroutines ([`Builder::goroutines`]) | every thread's stack now | `goroutines:goroutine:count:goroutine:count` |
//! | wall clock ([`Builder::clock`]) | the interval's samples, a cut as CPU | `wall:wall:nanoseconds:wall:nanoseconds` |
//!
//! [`otlp`] sends the same profiles to an OpenTelemetry Collector instead (OTLP/HTTP
//! profiles, one OTLP profile per sample type, labels as attributes).
//!
//! Every upload is named `APP{tags}` (Pyroscope's `name` parameter; it files the
//! series under `service_name = APP`); the agent adds a `hostname` tag, [`Builder::tag`]
//! adds more (`env`, `version`, `region`). Sample labels ([`crate::labels`], `http.route`
//! from the axum middleware, `span_id`/`span_name` from `SpanLayer` with the
//! `push-tracing` feature) become Pyroscope labels, their keys made valid Prometheus names (`http.route` →
//! `http_route`); `thread_id` and `tokio_task_id` are dropped (one series per thread
//! would be unbounded), `thread_name` is kept.
//!
//! # Never hurting the application
//!
//! Collection runs on the agent's thread (`profile-push`), uploads on another
//! (`profile-push-upload`) with a timeout per attempt (10 s by default). While the server
//! is slow, down or answering 5xx/429, uploads wait in a bounded queue (64 uploads or
//! 8 MiB by default: the oldest is dropped to make room, counted in [`PushStats::dropped`]
//! and said in the next profiles' comments) and are retried with exponential backoff
//! (0.5 s doubling to 10 s), as are answers 408, 422 (Pyroscope's while its ingester is
//! not ready), 425 and 429; any other 4xx drops that upload (counted as rejected) rather
//! than retrying it forever. [`Agent::stop`] (and dropping the agent, and SIGINT/SIGTERM
//! through the shutdown hook) uploads the last interval and whatever is queued within the
//! flush deadline (5 s by default), then returns.
//!
//! The CPU sampler is one per process: while the agent pushes CPU, `/debug/pprof/profile`
//! and a `.cpu()` guard get [`Error::AlreadyActive`] (as Go's `StartCPUProfile` while
//! pyroscope-go runs). Choose [`Builder::no_cpu`] to keep those.

mod client;
mod collect;
mod otlp;
mod pyroscope;
mod queue;
#[cfg(feature = "push-tracing")]
mod span;

#[cfg(feature = "push-tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "push-tracing")))]
pub use span::SpanLayer;

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::Error;
use crate::runtime;
use client::{Auth, Target};
use collect::{Collector, Series, hostname};
pub use queue::PushStats;
use queue::Queue;

/// pyroscope-go's default upload interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Uploads queued at most by default.
pub const DEFAULT_QUEUE_UPLOADS: usize = 64;
/// Bytes queued at most by default.
pub const DEFAULT_QUEUE_BYTES: usize = 8 << 20;
/// How long one upload attempt may take by default.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Agent::stop`] may spend uploading what is left, by default.
pub const DEFAULT_FLUSH_DEADLINE: Duration = Duration::from_secs(5);
/// The mutex fraction set by [`Builder::mutex`] when none was (pyroscope-go's example's 5).
pub const DEFAULT_MUTEX_FRACTION: u64 = collect::MUTEX_FRACTION;
/// The block rate set by [`Builder::block`] when none was: every wait of 10 µs or more,
/// shorter ones in proportion.
pub const DEFAULT_BLOCK_RATE_NS: u64 = collect::BLOCK_RATE_NS;

/// Where and in which form uploads go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    /// Pyroscope's `/ingest` (multipart pprof).
    Pyroscope,
    /// OTLP/HTTP profiles (`/v1development/profiles`, protobuf).
    Otlp,
}

/// Configures an agent; made by [`pyroscope`].
#[must_use = "a push::Builder does nothing until .start()"]
#[derive(Clone)]
pub struct Builder {
    sink: Sink,
    url: String,
    app: String,
    tags: Vec<(String, String)>,
    interval: Duration,
    cpu_hz: Option<u32>,
    clock_hz: Option<u32>,
    heap: bool,
    mutex: bool,
    block: bool,
    goroutines: bool,
    auth: Auth,
    tenant: Option<String>,
    upload_timeout: Duration,
    flush_deadline: Duration,
    queue_uploads: usize,
    queue_bytes: usize,
    root_certificates: Vec<Vec<u8>>,
    shutdown_hook: bool,
    /// From the environment: CPU only if no guard has the sampler (else a note).
    cpu_if_free: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("url", &self.url)
            .field("app", &self.app)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// An agent pushing to the Pyroscope server at `url` (`http://host:4040`, or Grafana
/// Cloud's `https://profiles-prod-NNN.grafana.net`; `https://user:password@host` sets
/// basic auth) under the application name `app`.
///
/// By default: CPU at 100 Hz and the heap (when [`crate::Allocator`] is installed) every
/// 15 s, tag `hostname`, the shutdown hook on.
pub fn pyroscope(url: impl Into<String>, app: impl Into<String>) -> Builder {
    Builder {
        sink: Sink::Pyroscope,
        url: url.into(),
        app: app.into(),
        tags: Vec::new(),
        interval: DEFAULT_INTERVAL,
        cpu_hz: Some(runtime::cpu::DEFAULT_FREQUENCY),
        clock_hz: None,
        heap: true,
        mutex: false,
        block: false,
        goroutines: false,
        auth: Auth::None,
        tenant: None,
        upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
        flush_deadline: DEFAULT_FLUSH_DEADLINE,
        queue_uploads: DEFAULT_QUEUE_UPLOADS,
        queue_bytes: DEFAULT_QUEUE_BYTES,
        root_certificates: Vec::new(),
        shutdown_hook: true,
        cpu_if_free: false,
    }
}

/// An agent exporting the same profiles as OpenTelemetry profiles over OTLP/HTTP to
/// `endpoint` (an OpenTelemetry Collector's OTLP receiver, `http://host:4318`): each
/// upload is an `ExportProfilesServiceRequest` (profiles `v1development`, as the
/// Collector's pdata v1.71 reads it) posted to `{endpoint}/v1development/profiles`, with
/// resource attributes `service.name` = `service_name`, `host.name`, and the tags.
/// Everything else (kinds, interval, queue, auth) as [`pyroscope`]. Labels are kept as
/// they are, as sample attributes.
pub fn otlp(endpoint: impl Into<String>, service_name: impl Into<String>) -> Builder {
    Builder {
        sink: Sink::Otlp,
        ..pyroscope(endpoint, service_name)
    }
}

impl Builder {
    /// How often profiles are cut and uploaded (default 15 s, at least 100 ms).
    pub fn interval(mut self, interval: Duration) -> Builder {
        self.interval = interval;
        self
    }

    /// A static tag on every upload (`env`, `version`, `region`...). Keys are made valid
    /// label names; a later tag of the same key replaces an earlier one.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Builder {
        let key = key.into();
        self.tags.retain(|(k, _)| *k != key);
        self.tags.push((key, value.into()));
        self
    }

    /// CPU at `hz` samples per CPU-second (default 100).
    pub fn cpu(mut self, hz: u32) -> Builder {
        self.cpu_hz = Some(hz);
        self
    }

    /// No CPU profile (leaves the process's CPU sampler to guards and
    /// `/debug/pprof/profile`).
    pub fn no_cpu(mut self) -> Builder {
        self.cpu_hz = None;
        self
    }

    /// Wall-clock profiles too, at `hz` rounds per second (every thread, running or
    /// waiting; Pyroscope's `wall` type).
    pub fn clock(mut self, hz: u32) -> Builder {
        self.clock_hz = Some(hz);
        self
    }

    /// Whether to push the heap (default: yes, when the allocator wrapper is installed).
    pub fn heap(mut self, on: bool) -> Builder {
        self.heap = on;
        self
    }

    /// Push the mutex profile; if no fraction was set, sets
    /// [`DEFAULT_MUTEX_FRACTION`].
    pub fn mutex(mut self) -> Builder {
        self.mutex = true;
        self
    }

    /// Push the block profile; if no rate was set, sets [`DEFAULT_BLOCK_RATE_NS`].
    pub fn block(mut self) -> Builder {
        self.block = true;
        self
    }

    /// Push every thread's stack (the goroutine profile) each interval.
    pub fn goroutines(mut self) -> Builder {
        self.goroutines = true;
        self
    }

    /// Every kind: CPU, heap, mutex, block and goroutines (clock stays opt-in: it
    /// interrupts every thread each round).
    pub fn all(self) -> Builder {
        self.mutex().block().goroutines()
    }

    /// HTTP basic auth (Grafana Cloud: the stack's user id and an access token).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Builder {
        self.auth = Auth::Basic(user.into(), password.into());
        self
    }

    /// A bearer token (`Authorization: Bearer ...`).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Builder {
        self.auth = Auth::Bearer(token.into());
        self
    }

    /// The tenant of a multi-tenant Pyroscope (`X-Scope-OrgID`).
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Builder {
        self.tenant = Some(tenant.into());
        self
    }

    /// The longest one upload attempt may take (default 10 s).
    pub fn upload_timeout(mut self, timeout: Duration) -> Builder {
        self.upload_timeout = timeout;
        self
    }

    /// The longest [`Agent::stop`] spends uploading what is left (default 5 s).
    pub fn flush_deadline(mut self, deadline: Duration) -> Builder {
        self.flush_deadline = deadline;
        self
    }

    /// The queue's limits (default 64 uploads, 8 MiB): beyond them the oldest upload is
    /// dropped.
    pub fn queue_limits(mut self, uploads: usize, bytes: usize) -> Builder {
        self.queue_uploads = uploads;
        self.queue_bytes = bytes;
        self
    }

    /// Trust this CA certificate (PEM) for HTTPS, besides the bundled web roots (a
    /// private CA, a self-signed test server).
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Builder {
        self.root_certificates.push(pem.into());
        self
    }

    /// Do not flush on SIGINT/SIGTERM (the application stops the agent itself).
    pub fn no_shutdown_hook(mut self) -> Builder {
        self.shutdown_hook = false;
        self
    }

    /// Checks the settings, starts the profilers and the agent's two threads.
    ///
    /// Errors: [`Error::Push`] for a URL that is not `http(s)://host[:port][/path]`, an
    /// empty application name, an interval under [`MIN_INTERVAL`], zero limits or
    /// timeouts, a certificate that does not parse; [`Error::InvalidFrequency`];
    /// [`Error::Push`] too when another agent runs; [`Error::AlreadyActive`] when CPU (or
    /// clock) is asked for while a CPU (clock) profile runs; what starting a profiler
    /// returns.
    pub fn start(self) -> Result<Agent, Error> {
        let target = Target::parse(&self.url)?;
        if self.app.trim().is_empty() {
            return Err(push_error("the application name is empty"));
        }
        if self.interval < MIN_INTERVAL {
            return Err(push_error(format!(
                "interval {:?} is shorter than the minimum {MIN_INTERVAL:?}",
                self.interval
            )));
        }
        if self.upload_timeout.is_zero() || self.queue_uploads == 0 || self.queue_bytes == 0 {
            return Err(push_error(
                "the upload timeout and the queue limits must be more than zero",
            ));
        }
        if let Some(hz) = self.cpu_hz {
            runtime::cpu::validate(hz)?;
        }
        if let Some(hz) = self.clock_hz {
            runtime::clock::validate(hz)?;
        }
        let client = client::client(self.upload_timeout, &self.root_certificates)?;
        let mut running = RUNNING.lock();
        if running.is_some() {
            return Err(push_error(
                "an agent is already running in this process (stop it first)",
            ));
        }
        let mut collector = Collector::start(&collect::Kinds {
            cpu_hz: self.cpu_hz,
            clock_hz: self.clock_hz,
            heap: self.heap,
            mutex: self.mutex,
            block: self.block,
            goroutines: self.goroutines,
            cpu_if_free: self.cpu_if_free,
        })?;
        let queue = Queue::new(self.queue_uploads, self.queue_bytes);
        let mut tags = self.tags.clone();
        if !tags.iter().any(|(k, _)| k == "hostname")
            && let Some(h) = hostname()
        {
            tags.push(("hostname".into(), h));
        }
        let series = match self.sink {
            Sink::Pyroscope => Series::Pyroscope(pyroscope::series_name(&self.app, &tags)),
            Sink::Otlp => {
                let mut resource = vec![("service.name".to_string(), self.app.clone())];
                for (k, v) in &tags {
                    let k = if k == "hostname" {
                        "host.name"
                    } else {
                        k.as_str()
                    };
                    resource.push((k.to_owned(), v.clone()));
                }
                Series::Otlp(resource)
            }
        };
        // The first interval's baselines: mutex, block and allocations count from here.
        collector.baseline();
        let uploader = {
            let queue = Arc::clone(&queue);
            let endpoint = target.base.clone();
            let headers = target.headers(&self.auth, self.tenant.as_deref());
            std::thread::Builder::new()
                .name("profile-push-upload".into())
                .spawn(move || {
                    // The agent's own allocations are not the program's heap.
                    let _untracked = crate::sys::untracked::Untracked::new();
                    queue::run(&queue, |u| client::send(&client, &endpoint, &headers, u));
                })
                .map_err(|e| Error::system("starting the profile-push-upload thread", e))?
        };
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let interval = self.interval;
        let collector_thread = {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name("profile-push".into())
                .spawn(move || {
                    let _untracked = crate::sys::untracked::Untracked::new();
                    let mut next = Instant::now() + interval;
                    // Until told to stop (or the agent is gone).
                    while let Err(RecvTimeoutError::Timeout) =
                        stop_rx.recv_timeout(next.saturating_duration_since(Instant::now()))
                    {
                        next += interval;
                        if next < Instant::now() {
                            next = Instant::now() + interval;
                        }
                        collector.collect(&queue, &series);
                    }
                    // The last interval, then the profilers stop.
                    collector.collect(&queue, &series);
                    drop(collector); // the profilers stop
                })
        };
        let collector_thread = match collector_thread {
            Ok(t) => t,
            Err(e) => {
                queue.state.lock().flush_until = Some(Instant::now());
                queue.wake.notify_all();
                let _ = uploader.join();
                return Err(Error::system("starting the profile-push thread", e));
            }
        };
        let hook = self.shutdown_hook && crate::guard::hold_hook().is_ok();
        if hook {
            crate::guard::also_on_shutdown(on_shutdown_signal);
        }
        let inner = Arc::new(Inner {
            queue,
            stop: Mutex::new(Some(stop_tx)),
            threads: Mutex::new(Some((collector_thread, uploader))),
            flush_deadline: self.flush_deadline,
            hook,
            pid: std::process::id(),
        });
        *running = Some(Arc::clone(&inner));
        Ok(Agent { inner })
    }
}

/// A running agent. [`stop`](Agent::stop) flushes and returns its stats; dropping it
/// does the same, ignoring the outcome.
#[must_use = "dropping the agent stops it at once; keep it for as long as the program runs"]
pub struct Agent {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    queue: Arc<Queue>,
    stop: Mutex<Option<mpsc::Sender<()>>>,
    threads: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
    flush_deadline: Duration,
    hook: bool,
    pid: u32,
}

/// The running agent (one per process).
static RUNNING: Mutex<Option<Arc<Inner>>> = Mutex::new(None);
/// The last agent's stats, once it stopped.
static LAST: Mutex<Option<PushStats>> = Mutex::new(None);

impl Inner {
    /// Collects the last interval, uploads what is queued within the deadline, joins the
    /// threads. Later calls return the same stats.
    fn finish(&self) -> PushStats {
        let threads = self.threads.lock().take();
        if let Some((collector, uploader)) = threads {
            if std::process::id() != self.pid {
                // A fork child: the threads are the parent's.
                return self.queue.state.lock().stats();
            }
            drop(self.stop.lock().take()); // the collector's last round
            let _ = collector.join();
            self.queue.state.lock().flush_until = Some(Instant::now() + self.flush_deadline);
            self.queue.wake.notify_all();
            let _ = uploader.join();
            if self.hook {
                crate::guard::release_hook();
            }
            let mut running = RUNNING.lock();
            if running
                .as_ref()
                .is_some_and(|r| std::ptr::eq(Arc::as_ptr(r), self))
            {
                *running = None;
            }
            let stats = self.queue.state.lock().stats();
            *LAST.lock() = Some(stats.clone());
            return stats;
        }
        self.queue.state.lock().stats()
    }
}

impl Agent {
    /// What the agent has done so far.
    pub fn stats(&self) -> PushStats {
        self.inner.queue.state.lock().stats()
    }

    /// Collects and queues the last interval, uploads what is queued (waiting at most the
    /// flush deadline), stops the profilers and returns the stats. Uploads that did not
    /// make it are counted in [`PushStats::dropped`].
    pub fn stop(self) -> Result<PushStats, Error> {
        Ok(self.inner.finish())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.inner.finish();
    }
}

/// The running agent's stats, else the last one's (None before any).
pub fn stats() -> Option<PushStats> {
    if let Some(r) = RUNNING.lock().as_ref() {
        return Some(r.queue.state.lock().stats());
    }
    LAST.lock().clone()
}

/// Called by the shutdown hook's worker on SIGINT/SIGTERM: flush the running agent.
pub(crate) fn on_shutdown_signal() {
    let running = RUNNING.lock().clone();
    if let Some(inner) = running {
        inner.finish();
    }
}

fn push_error(what: impl Into<String>) -> Error {
    Error::Push { what: what.into() }
}

/// The environment variables [`from_env`] reads.
pub const ENV_PUSH: &str = "PROFILE_PUSH";
/// The application name's variable (default: the executable's file name).
pub const ENV_APP: &str = "PROFILE_APP";

/// Starts an agent from the environment, if `PROFILE_PUSH` is set (and not empty or
/// `off`): the server URL (`https://user:password@host` for basic auth). Also read:
///
/// - `PROFILE_APP`: the application name (default: the executable's file name);
/// - `PROFILE_PUSH_TAGS`: `key=value,key=value` static tags;
/// - `PROFILE_PUSH_KINDS`: `cpu,heap,mutex,block,goroutine,clock` (default `cpu,heap`;
///   `all` for every kind but clock);
/// - `PROFILE_PUSH_INTERVAL`: seconds between uploads (default 15; fractions allowed);
/// - `PROFILE_PUSH_TOKEN`: a bearer token; `PROFILE_PUSH_TENANT`: `X-Scope-OrgID`;
/// - `PROFILE_PUSH_PROTOCOL`: `pyroscope` (the default) or `otlp` (then `PROFILE_PUSH` is
///   a Collector's OTLP/HTTP endpoint, `http://host:4318`).
///
/// [`crate::from_env`] calls this too and keeps the agent running for the rest of the
/// process (flushed at exit and on SIGINT/SIGTERM), so setting the variables turns
/// continuous profiling on in any program that calls `profile::from_env()`.
///
/// Errors: [`Error::Push`] naming the variable whose value does not parse (or the URL
/// that is not one); what [`Builder::start`] returns.
pub fn from_env() -> Result<Option<Agent>, Error> {
    match builder_from(var)? {
        Some((b, url)) => b.start().map(Some).map_err(|e| match e {
            Error::Push { what } if what.starts_with("invalid server URL") => {
                env_error(ENV_PUSH, &url, what)
            }
            other => other,
        }),
        None => Ok(None),
    }
}

/// The builder the variables describe (`var` reads one), and the URL; None when
/// `PROFILE_PUSH` is unset or off.
fn builder_from(
    var: impl Fn(&'static str) -> Result<Option<String>, Error>,
) -> Result<Option<(Builder, String)>, Error> {
    let Some(url) = var(ENV_PUSH)? else {
        return Ok(None);
    };
    if matches!(url.trim(), "" | "off" | "none" | "0") {
        return Ok(None);
    }
    let app = match var(ENV_APP)? {
        Some(a) if !a.trim().is_empty() => a,
        _ => std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "rust-app".into()),
    };
    let mut b = match var("PROFILE_PUSH_PROTOCOL")?.as_deref().map(str::trim) {
        None | Some("" | "pyroscope") => pyroscope(url.trim(), app),
        Some("otlp") => otlp(url.trim(), app),
        Some(other) => {
            return Err(env_error(
                "PROFILE_PUSH_PROTOCOL",
                other,
                "expected pyroscope or otlp".into(),
            ));
        }
    };
    b.cpu_if_free = true;
    if let Some(tags) = var("PROFILE_PUSH_TAGS")? {
        for kv in tags.split(',').filter(|s| !s.trim().is_empty()) {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(env_error(
                    "PROFILE_PUSH_TAGS",
                    &tags,
                    format!("{kv:?} is not key=value"),
                ));
            };
            b = b.tag(k.trim(), v.trim());
        }
    }
    if let Some(kinds) = var("PROFILE_PUSH_KINDS")? {
        b = b.no_cpu().heap(false);
        for k in kinds.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            b = match k {
                "cpu" => b.cpu(runtime::cpu::DEFAULT_FREQUENCY),
                "heap" | "mem" | "memory" | "allocs" => b.heap(true),
                "mutex" => b.mutex(),
                "block" => b.block(),
                "goroutine" | "goroutines" | "threads" => b.goroutines(),
                "clock" | "wall" => b.clock(runtime::clock::DEFAULT_FREQUENCY),
                "all" => b.cpu(runtime::cpu::DEFAULT_FREQUENCY).heap(true).all(),
                other => {
                    return Err(env_error(
                        "PROFILE_PUSH_KINDS",
                        &kinds,
                        format!(
                            "unknown kind {other:?}; expected cpu, heap, mutex, block, goroutine, clock or all"
                        ),
                    ));
                }
            };
        }
    }
    if let Some(s) = var("PROFILE_PUSH_INTERVAL")? {
        let secs: f64 = s
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x > 0.0)
            .ok_or_else(|| {
                env_error(
                    "PROFILE_PUSH_INTERVAL",
                    &s,
                    "expected a number of seconds, such as 15".into(),
                )
            })?;
        b = b.interval(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    if let Some(t) = var("PROFILE_PUSH_TOKEN")? {
        b = b.bearer_token(t.trim());
    }
    if let Some(t) = var("PROFILE_PUSH_TENANT")? {
        b = b.tenant_id(t.trim());
    }
    Ok(Some((b, url)))
}

fn var(name: &'static str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(env_error(
            name,
            &v.to_string_lossy(),
            "not valid UTF-8".into(),
        )),
    }
}

fn env_error(variable: &'static str, value: &str, reason: String) -> Error {
    push_error(format!("{variable}={value:?}: {reason}"))
}

/// The agent `crate::from_env` started, kept for the rest of the process.
static FROM_ENV: Mutex<Option<Agent>> = Mutex::new(None);

/// `crate::from_env`'s part: start the agent the environment asks for and keep it,
/// flushing at exit.
pub(crate) fn start_from_env_for_process() -> Result<(), Error> {
    if FROM_ENV.lock().is_some() {
        return Ok(());
    }
    if let Some(agent) = from_env()? {
        *FROM_ENV.lock() = Some(agent);
        extern "C" fn flush_at_exit() {
            // Exit runs this on the exiting thread; the agent's threads still run.
            if let Some(agent) = FROM_ENV.lock().take() {
                drop(agent);
            }
        }
        // SAFETY: `flush_at_exit` is an `extern "C" fn()` that never unwinds (it only
        // stops the agent, which catches nothing and panics nowhere on this path).
        unsafe { libc_atexit(flush_at_exit) };
    }
    Ok(())
}

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> std::ffi::c_int;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&'static str) -> Result<Option<String>, Error> {
        move |name| {
            Ok(pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned()))
        }
    }

    #[test]
    fn the_environment_sets_url_app_tags_kinds_and_interval() {
        assert!(builder_from(vars(&[])).unwrap().is_none());
        assert!(
            builder_from(vars(&[("PROFILE_PUSH", "off")]))
                .unwrap()
                .is_none()
        );
        let (b, url) = builder_from(vars(&[
            ("PROFILE_PUSH", "http://127.0.0.1:4040"),
            ("PROFILE_APP", "svc"),
            ("PROFILE_PUSH_TAGS", "env=prod, region=eu"),
            ("PROFILE_PUSH_KINDS", "cpu,mutex,goroutine"),
            ("PROFILE_PUSH_INTERVAL", "2.5"),
            ("PROFILE_PUSH_TOKEN", "t"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(url, "http://127.0.0.1:4040");
        assert_eq!(b.app, "svc");
        assert_eq!(
            b.tags,
            [
                ("env".into(), "prod".into()),
                ("region".into(), "eu".into())
            ]
        );
        assert_eq!(b.cpu_hz, Some(100));
        assert!(b.mutex && b.goroutines && !b.heap && !b.block && b.clock_hz.is_none());
        assert_eq!(b.interval, Duration::from_millis(2500));
        assert!(matches!(b.auth, Auth::Bearer(ref t) if t == "t"));
        assert_eq!(b.sink, Sink::Pyroscope);
        let (b, _) = builder_from(vars(&[
            ("PROFILE_PUSH", "http://127.0.0.1:4318"),
            ("PROFILE_PUSH_PROTOCOL", "otlp"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(b.sink, Sink::Otlp);
        // The application name defaults to the executable's.
        let (b, _) = builder_from(vars(&[("PROFILE_PUSH", "http://h:1")]))
            .unwrap()
            .unwrap();
        assert!(!b.app.is_empty());
        for (bad, names) in [
            (
                &[
                    ("PROFILE_PUSH", "http://h:1"),
                    ("PROFILE_PUSH_KINDS", "cpu,gpu"),
                ][..],
                "PROFILE_PUSH_KINDS",
            ),
            (
                &[
                    ("PROFILE_PUSH", "http://h:1"),
                    ("PROFILE_PUSH_TAGS", "novalue"),
                ][..],
                "PROFILE_PUSH_TAGS",
            ),
            (
                &[
                    ("PROFILE_PUSH", "http://h:1"),
                    ("PROFILE_PUSH_PROTOCOL", "grpc"),
                ][..],
                "PROFILE_PUSH_PROTOCOL",
            ),
            (
                &[
                    ("PROFILE_PUSH", "http://h:1"),
                    ("PROFILE_PUSH_INTERVAL", "-1"),
                ][..],
                "PROFILE_PUSH_INTERVAL",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(bad.to_vec().into_boxed_slice());
            let e = builder_from(vars(pairs)).err().unwrap();
            assert!(e.to_string().contains(names), "{e}");
        }
    }

    #[test]
    fn bad_settings_are_refused_before_anything_starts() {
        let e = pyroscope("http://127.0.0.1:1", " ").start().unwrap_err();
        assert!(e.to_string().contains("application name"), "{e}");
        let e = pyroscope("http://127.0.0.1:1", "a")
            .interval(Duration::from_millis(1))
            .start()
            .unwrap_err();
        assert!(e.to_string().contains("interval"), "{e}");
        let e = pyroscope("http://127.0.0.1:1", "a")
            .cpu(0)
            .start()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidFrequency { .. }), "{e}");
        let e = pyroscope("http://127.0.0.1:1", "a")
            .queue_limits(0, 1)
            .start()
            .unwrap_err();
        assert!(e.to_string().contains("queue"), "{e}");
        let e = pyroscope("http://127.0.0.1:1", "a")
            .root_certificate_pem(b"not a pem".to_vec())
            .start()
            .unwrap_err();
        assert!(e.to_string().contains("certificate"), "{e}");
    }
}
