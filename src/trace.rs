//! Execution traces (cargo feature `trace`): what happened, when, on which thread —
//! `tracing` spans and events per thread, and the CPU samples taken meanwhile, as a
//! timeline that <https://ui.perfetto.dev> and `chrome://tracing` open.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // Build your subscriber on the recording registry (it records only while a trace
//! // runs; idle, it adds 0–3% to a span enter+exit):
//! let subscriber = profile::trace::registry().with(tracing_subscriber::fmt::layer());
//! tracing::subscriber::set_global_default(subscriber).unwrap();
//!
//! let guard = profile::start().path("./profiles").trace().build()?;
//! tracing::info_span!("request", id = 7).in_scope(|| { /* work */ });
//! guard.stop()?; // ./profiles/trace.json
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! Two ways in, same recording:
//! - [`registry()`] in place of `tracing_subscriber::registry()`, under your layers. The
//!   cheapest: outside a trace its enter and exit test a flag in the registry itself
//!   before the registry's own work.
//! - [`layer()`], added to a subscriber whose registry you do not build yourself
//!   (`tracing_subscriber::fmt().finish().with(profile::trace::layer())`). A layer runs
//!   after the registry, which costs a call frame per enter and exit: ~10% of an idle
//!   enter+exit with a `fmt` layer (`docs/performance.md`).
//!
//! Without a global subscriber, starting a trace installs [`registry()`] — for good, as
//! `tracing` allows only one global subscriber, but it does nothing once the trace stops.
//! With a global subscriber that has neither, spans cannot be seen: the trace still has
//! the threads and their CPU samples, and stderr says why spans are absent.
//!
//! # Format: Chrome trace-event JSON
//!
//! `trace.json` is the Trace Event Format (a `traceEvents` array: `B`/`E` for a span's
//! enter and exit, `i` for events and CPU samples, `M` for thread names): both viewers
//! open it, it streams (written event by event), it is readable and diffable as text,
//! and writing it needs no schema compiler. Perfetto's protobuf is smaller and richer,
//! which matters only for traces far beyond this module's event limit.
//!
//! # Limits
//!
//! At most [`MAX_EVENTS`] span and log events per trace (about 100 MB of memory at the
//! limit); more are counted, not kept, and the count is written into the trace (an event
//! `events dropped` and `otherData.dropped_events`). Timestamps are CLOCK_MONOTONIC,
//! microseconds since the trace started. A span entered before the trace started and
//! exited during it is left out; one still open when the trace stops gets its end at that
//! moment, so every begin has its end.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::Error;

/// Span and log events kept per trace at most.
pub const MAX_EVENTS: usize = 1_000_000;

/// Set while a trace records.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Numbers traces, so a thread's buffer is for one trace.
static SESSION: AtomicU64 = AtomicU64::new(0);
/// Events kept in this trace, and events dropped at the limit.
static KEPT: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Set when a subscriber with this layer is registered.
static LAYER_REGISTERED: AtomicBool = AtomicBool::new(false);
/// Every thread's buffer in this trace.
static BUFFERS: Mutex<Vec<Arc<Mutex<ThreadBuffer>>>> = Mutex::new(Vec::new());
/// A process-wide time origin, and the trace's start as nanoseconds after it (read
/// without a lock on every event).
static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
static START_NANOS: AtomicU64 = AtomicU64::new(0);

fn since_origin() -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// One recorded event.
struct Record {
    /// `B`, `E` or `i`.
    phase: u8,
    /// Nanoseconds since the trace started.
    at: u64,
    name: &'static str,
    target: &'static str,
    fields: Arc<[(&'static str, String)]>,
}

struct ThreadBuffer {
    session: u64,
    tid: i64,
    name: String,
    records: Vec<Record>,
    /// Spans entered during this trace and not yet exited, innermost last.
    open: Vec<(u64, &'static str, &'static str)>,
}

thread_local! {
    static LOCAL: RefCell<Option<Arc<Mutex<ThreadBuffer>>>> = const { RefCell::new(None) };
}

fn thread_id() -> i64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions.
        i64::from(unsafe { nix::libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::thread::current().id().hash(&mut h);
        (h.finish() >> 1) as i64
    }
}

/// Runs `f` on this thread's buffer for the current trace (made on first use).
fn with_buffer(f: impl FnOnce(&mut ThreadBuffer, u64)) {
    let session = SESSION.load(Ordering::Acquire);
    let at = since_origin().saturating_sub(START_NANOS.load(Ordering::Acquire));
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let current = local.as_ref().is_some_and(|b| b.lock().session == session);
        if !current {
            let t = std::thread::current();
            let buffer = Arc::new(Mutex::new(ThreadBuffer {
                session,
                tid: thread_id(),
                name: t
                    .name()
                    .map_or_else(|| format!("{:?}", t.id()), str::to_owned),
                records: Vec::new(),
                open: Vec::new(),
            }));
            BUFFERS.lock().push(buffer.clone());
            *local = Some(buffer);
        }
        if let Some(b) = local.as_ref() {
            f(&mut b.lock(), at);
        }
    });
}

fn push(buffer: &mut ThreadBuffer, record: Record) {
    if KEPT.fetch_add(1, Ordering::Relaxed) < MAX_EVENTS {
        buffer.records.push(record);
    } else {
        KEPT.fetch_sub(1, Ordering::Relaxed);
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A span's fields, kept in its extensions (shared by each enter's record).
struct Fields(Arc<[(&'static str, String)]>);

struct Collect<'a>(&'a mut Vec<(&'static str, String)>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.push((field.name(), s));
    }
}

/// The `tracing_subscriber` layer that records spans and events while a trace runs.
/// Outside a trace each callback costs one relaxed atomic load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layer;

/// The layer, to add to a subscriber whose registry you do not build yourself; prefer
/// [`registry()`] when you do.
pub fn layer() -> Layer {
    Layer
}

// The callbacks only test `ACTIVE` and return: the recording is out of line (and cold),
// so the test inlines into the subscriber's enter/exit. With the recording inlined, an
// idle enter+exit cost 2 ns more than with an empty layer.
impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, _subscriber: &tracing::Dispatch) {
        LAYER_REGISTERED.store(true, Ordering::Release);
    }

    #[inline]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if ACTIVE.load(Ordering::Relaxed) {
            record_new_span(attrs, ctx.span(id));
        }
    }

    #[inline]
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if ACTIVE.load(Ordering::Relaxed) {
            record_enter(id, ctx.span(id));
        }
    }

    #[inline]
    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if ACTIVE.load(Ordering::Relaxed) {
            record_exit(id);
        }
    }

    #[inline]
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if ACTIVE.load(Ordering::Relaxed) {
            record_event(event);
        }
    }
}

/// A `tracing_subscriber` registry that records spans and events while a trace runs: use
/// it where you would use `tracing_subscriber::registry()`, and add your layers to it as
/// usual. The cheapest way in: outside a trace, an enter or exit costs one relaxed load
/// and a branch *before* the registry's own work, so the call into the registry stays a
/// tail call (a [`Layer`] runs after the registry and costs a call frame; see
/// `docs/performance.md`).
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = profile::trace::registry().with(tracing_subscriber::fmt::layer());
/// tracing::subscriber::set_global_default(subscriber).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct Registry {
    /// This registry's copy of `ACTIVE`: tested in `enter`/`exit` with one load relative
    /// to `self` (a static is reached through the GOT, a load more). Set by `set_active`
    /// through the dispatches in `REGISTRIES`.
    active: OwnLine,
    inner: tracing_subscriber::Registry,
}

/// The flag on a cache line of its own: sharing the first line of the registry made
/// every idle enter+exit 8–22% slower under a `fmt` layer (`docs/performance.md`), for
/// the same 6 extra instructions that cost 0–1.3% on a line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct OwnLine(AtomicBool);

impl std::ops::Deref for OwnLine {
    type Target = AtomicBool;

    fn deref(&self) -> &AtomicBool {
        &self.0
    }
}

/// The dispatches holding a [`Registry`], weakly (pruned when their subscriber is gone).
static REGISTRIES: Mutex<Vec<tracing_core::dispatcher::WeakDispatch>> = Mutex::new(Vec::new());

/// Turns recording on or off: `ACTIVE` for the layer, and each live registry's flag.
fn set_active(on: bool) {
    let mut registries = REGISTRIES.lock();
    ACTIVE.store(on, Ordering::Release);
    registries.retain(|weak| match weak.upgrade() {
        Some(dispatch) => {
            if let Some(r) = dispatch.downcast_ref::<Registry>() {
                r.active.store(on, Ordering::Release);
            }
            true
        }
        None => false,
    });
}

/// The recording registry, to build your subscriber on: `profile::trace::registry()
/// .with(fmt::layer())`.
pub fn registry() -> Registry {
    Registry::default()
}

impl Subscriber for Registry {
    #[inline]
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        LAYER_REGISTERED.store(true, Ordering::Release);
        {
            // Under the lock, so a trace starting or stopping now is not missed.
            let mut registries = REGISTRIES.lock();
            // Dropped dispatches go, so a program making many keeps the list short.
            registries.retain(|weak| weak.upgrade().is_some());
            registries.push(subscriber.downgrade());
            self.active
                .store(ACTIVE.load(Ordering::Acquire), Ordering::Release);
        }
        self.inner.on_register_dispatch(subscriber);
    }

    #[inline]
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    #[inline]
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    #[inline]
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.inner.max_level_hint()
    }

    #[inline]
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.inner.new_span(attrs);
        if self.active.load(Ordering::Relaxed) {
            record_new_span(attrs, self.inner.span(&id));
        }
        id
    }

    #[inline]
    fn record(&self, span: &Id, values: &tracing::span::Record<'_>) {
        self.inner.record(span, values);
    }

    #[inline]
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows);
    }

    #[inline]
    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner.event_enabled(event)
    }

    #[inline]
    fn event(&self, event: &Event<'_>) {
        if self.active.load(Ordering::Relaxed) {
            record_event(event);
        }
        self.inner.event(event);
    }

    // Both paths end in a tail call into the registry; the recording path is a separate
    // cold function, so the idle path needs no stack frame (no saved registers).
    #[inline]
    fn enter(&self, id: &Id) {
        if self.active.load(Ordering::Relaxed) {
            return self.enter_recording(id);
        }
        self.inner.enter(id);
    }

    #[inline]
    fn exit(&self, id: &Id) {
        if self.active.load(Ordering::Relaxed) {
            return self.exit_recording(id);
        }
        self.inner.exit(id);
    }

    #[inline]
    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    #[inline]
    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }

    #[inline]
    fn current_span(&self) -> tracing_core::span::Current {
        self.inner.current_span()
    }

    #[inline]
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: forwarded with the caller's promise; layers find the inner
        // `tracing_subscriber::Registry` this way (for its close guard).
        unsafe { self.inner.downcast_raw(id) }
    }
}

impl Registry {
    #[cold]
    #[inline(never)]
    fn enter_recording(&self, id: &Id) {
        record_enter(id, self.inner.span(id));
        self.inner.enter(id);
    }

    #[cold]
    #[inline(never)]
    fn exit_recording(&self, id: &Id) {
        record_exit(id);
        self.inner.exit(id);
    }
}

impl<'a> LookupSpan<'a> for Registry {
    type Data = <tracing_subscriber::Registry as LookupSpan<'a>>::Data;

    #[inline]
    fn span_data(&'a self, id: &Id) -> Option<Self::Data> {
        self.inner.span_data(id)
    }

    fn register_filter(&mut self) -> tracing_subscriber::filter::FilterId {
        self.inner.register_filter()
    }
}

#[cold]
#[inline(never)]
fn record_new_span<R>(attrs: &Attributes<'_>, span: Option<SpanRef<'_, R>>)
where
    R: for<'a> LookupSpan<'a>,
{
    let mut fields = Vec::new();
    attrs.record(&mut Collect(&mut fields));
    if let Some(span) = span {
        span.extensions_mut().insert(Fields(fields.into()));
    }
}

#[cold]
#[inline(never)]
fn record_enter<R>(id: &Id, span: Option<SpanRef<'_, R>>)
where
    R: for<'a> LookupSpan<'a>,
{
    let Some(span) = span else { return };
    let (name, target) = (span.name(), span.metadata().target());
    let fields = span
        .extensions()
        .get::<Fields>()
        .map(|f| f.0.clone())
        .unwrap_or_else(|| Arc::new([]));
    with_buffer(|b, at| {
        b.open.push((id.into_u64(), name, target));
        push(
            b,
            Record {
                phase: b'B',
                at,
                name,
                target,
                fields,
            },
        );
    });
}

#[cold]
#[inline(never)]
fn record_exit(id: &Id) {
    with_buffer(|b, at| {
        // Only spans whose enter this trace saw, innermost first.
        if b.open.last().is_some_and(|o| o.0 == id.into_u64()) {
            let (_, name, target) = b.open.pop().unwrap_or((0, "", ""));
            push(
                b,
                Record {
                    phase: b'E',
                    at,
                    name,
                    target,
                    fields: Arc::new([]),
                },
            );
        }
    });
}

#[cold]
#[inline(never)]
fn record_event(event: &Event<'_>) {
    let mut fields = Vec::new();
    event.record(&mut Collect(&mut fields));
    let meta = event.metadata();
    with_buffer(|b, at| {
        push(
            b,
            Record {
                phase: b'i',
                at,
                name: meta.name(),
                target: meta.target(),
                fields: fields.into(),
            },
        );
    });
}

/// A running trace; [`stop`](Tracer::stop) returns it.
#[must_use = "dropping a Tracer stops it and discards the trace; call .stop()"]
pub struct Tracer {
    cpu: Option<crate::sys::cpu::Sampler>,
    /// The CPU profiler's claim while `cpu` samples (one CPU sampler per process).
    _cpu_claim: Option<crate::runtime::shared::Claim>,
    started: Instant,
    _claim: crate::runtime::shared::Claim,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("cpu_samples", &self.cpu.is_some())
            .finish_non_exhaustive()
    }
}

static EXCLUSIVE: crate::runtime::shared::Exclusive =
    crate::runtime::shared::Exclusive::new(crate::ProfileKind::Trace);

/// Starts a trace: spans and events through [`Layer`], and CPU samples at `hz` (as
/// `runtime::cpu::start` takes it) as instant events. Installs a global subscriber with
/// the layer if the program has none.
///
/// Errors: [`Error::AlreadyActive`] if a trace runs; [`Error::InvalidFrequency`]. If the
/// CPU profiler is in use elsewhere, the trace runs without CPU samples (said on stderr).
pub fn start(hz: u32) -> Result<Tracer, Error> {
    start_with(Some(hz))
}

/// Starts a trace of spans and events only, no CPU samples.
///
/// Errors: [`Error::AlreadyActive`] if a trace runs.
pub fn start_without_cpu() -> Result<Tracer, Error> {
    start_with(None)
}

/// [`start`] with CPU samples at `cpu_hz`, or [`start_without_cpu`] (None).
pub(crate) fn start_with(cpu_hz: Option<u32>) -> Result<Tracer, Error> {
    if let Some(hz) = cpu_hz {
        crate::runtime::cpu::validate(hz)?;
    }
    let claim = EXCLUSIVE.claim()?;
    if !tracing::dispatcher::has_been_set() {
        let _ = tracing::subscriber::set_global_default(registry());
    }
    if !LAYER_REGISTERED.load(Ordering::Acquire) {
        eprintln!(
            "profile: trace: the global tracing subscriber is not built on profile::trace::registry() \
             and has no profile::trace::layer(): spans and events are not recorded (threads and \
             CPU samples are); build it on `profile::trace::registry()` or add \
             `.with(profile::trace::layer())`"
        );
    }
    BUFFERS.lock().clear();
    KEPT.store(0, Ordering::Relaxed);
    DROPPED.store(0, Ordering::Relaxed);
    START_NANOS.store(since_origin(), Ordering::Release);
    SESSION.fetch_add(1, Ordering::AcqRel);
    // The CPU sampler is one per process: a CPU profile that runs keeps it, and the trace
    // goes without CPU samples.
    let (cpu, cpu_claim) = match cpu_hz {
        Some(hz) => match crate::runtime::cpu::claim()
            .and_then(|c| Ok((crate::sys::cpu::Sampler::start_timeline(hz)?, c)))
        {
            Ok((s, c)) => (Some(s), Some(c)),
            Err(e) => {
                eprintln!("profile: trace: no CPU samples in this trace: {e}");
                (None, None)
            }
        },
        None => (None, None),
    };
    set_active(true);
    Ok(Tracer {
        cpu,
        _cpu_claim: cpu_claim,
        started: Instant::now(),
        _claim: claim,
    })
}

/// A finished trace.
#[derive(Debug, Clone)]
pub struct Trace {
    json: Vec<u8>,
    events: usize,
    dropped: u64,
}

impl Trace {
    /// The trace as Chrome trace-event JSON.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// Events written (spans' begins and ends, events, CPU samples, thread names).
    pub fn events(&self) -> usize {
        self.events
    }

    /// Events not kept because the limit was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes the JSON to `w`.
    pub fn write_to<W: Write>(&self, mut w: W) -> io::Result<()> {
        w.write_all(&self.json)
    }
}

struct Out {
    json: Vec<u8>,
    events: usize,
}

impl Out {
    fn event(&mut self, value: serde_json::Value) {
        if self.events > 0 {
            self.json.push(b',');
        }
        self.json.push(b'\n');
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.json, &value);
        self.events += 1;
    }
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

impl Tracer {
    /// Stops recording and returns the trace.
    pub fn stop(mut self) -> Result<Trace, Error> {
        set_active(false);
        let elapsed = self.started.elapsed().as_nanos() as u64;
        let (samples, samples_dropped) = match self.cpu.take() {
            Some(s) => {
                let (_, timeline, dropped) = s.stop_timeline()?;
                (timeline, dropped)
            }
            None => (Vec::new(), 0),
        };
        let buffers: Vec<_> = std::mem::take(&mut *BUFFERS.lock());
        let pid = std::process::id();
        let mut out = Out {
            json: b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[".to_vec(),
            events: 0,
        };
        use serde_json::json;
        out.event(json!({"name":"process_name","ph":"M","pid":pid,"tid":0,
            "args":{"name": crate::runtime::shared::cmdline().first().cloned().unwrap_or_default()}}));
        let mut named = std::collections::HashSet::new();
        for buffer in &buffers {
            let mut b = buffer.lock();
            named.insert(b.tid);
            out.event(
                json!({"name":"thread_name","ph":"M","pid":pid,"tid":b.tid,"args":{"name":b.name}}),
            );
            let tid = b.tid;
            for r in &b.records {
                let args: serde_json::Map<String, serde_json::Value> = r
                    .fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                    .collect();
                let mut e = json!({"name":r.name,"cat":r.target,"ph":(r.phase as char).to_string(),
                    "ts":micros(r.at),"pid":pid,"tid":tid});
                if !args.is_empty() {
                    e["args"] = serde_json::Value::Object(args);
                }
                if r.phase == b'i' {
                    e["s"] = json!("t");
                }
                out.event(e);
            }
            // Spans still open end now, innermost first.
            let open = std::mem::take(&mut b.open);
            for (_, name, target) in open.iter().rev() {
                out.event(json!({"name":name,"cat":target,"ph":"E","ts":micros(elapsed),"pid":pid,"tid":tid}));
            }
        }
        // Sample times are CLOCK_MONOTONIC (as `Instant` on Linux); place them after the
        // trace's start.
        let since_start = since_origin().saturating_sub(START_NANOS.load(Ordering::Acquire));
        let now_mono = crate::sys::monotonic_nanos();
        for s in &samples {
            if named.insert(i64::from(s.tid)) {
                out.event(json!({"name":"thread_name","ph":"M","pid":pid,"tid":s.tid,"args":{"name":s.thread_name}}));
            }
            let at = (s.at_nanos + since_start).saturating_sub(now_mono);
            let mut e = json!({"name":s.function,"cat":"cpu","ph":"i","s":"t","ts":micros(at),
                "pid":pid,"tid":s.tid});
            // The sample's labels (`labels::with`, `Labeled`) as the event's args.
            if let Some(labels) = &s.labels {
                e["args"] = labels
                    .0
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            out.event(e);
        }
        let dropped = DROPPED.load(Ordering::Relaxed);
        if dropped + samples_dropped > 0 {
            out.event(json!({"name":format!("{} events dropped (limit {MAX_EVENTS}), {} CPU samples dropped", dropped, samples_dropped),
                "cat":"profile","ph":"i","s":"g","ts":micros(elapsed),"pid":pid,"tid":0}));
        }
        let _ = write!(
            out.json,
            "\n],\"otherData\":{{\"dropped_events\":{dropped},\"dropped_cpu_samples\":{samples_dropped}}}}}\n"
        );
        Ok(Trace {
            events: out.events,
            json: out.json,
            dropped,
        })
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        set_active(false);
        if let Some(s) = self.cpu.take() {
            s.discard();
        }
        // Dropped without `stop`: free the records now rather than at the next trace.
        BUFFERS.lock().clear();
    }
}
