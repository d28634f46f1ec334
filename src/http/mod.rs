//! `/debug/pprof/*` over HTTP, as Go's `net/http/pprof` serves it (cargo feature `http`).
//!
//! ```no_run
//! // A server on a background thread, loopback only; stopped when `server` drops.
//! let server = profile::http::serve("127.0.0.1:6060")?;
//! println!("go tool pprof http://{}/debug/pprof/profile?seconds=30", server.local_addr());
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! Or mount the same endpoints in your own router (axum, actix, hyper...): turn the
//! request into a [`Request`] (method, path, query, body), call [`handle`] on a thread
//! that may block (the CPU profile waits `seconds`), and send the [`Response`] back.
//!
//! | path | what |
//! |---|---|
//! | `/debug/pprof/` | HTML index: every profile, its count, a description, links |
//! | `profile?seconds=N` | CPU profile for N seconds (default 30) |
//! | `heap`, `allocs` | heap profile (in use / allocated); `?seconds=N` → delta, `?debug=1` → text |
//! | `goroutine`, `threads` | every thread's stack; `?debug=1` counts, `?debug=2` full dump |
//! | `block`, `mutex` | contention; `?seconds=N` → delta, `?debug=1` → text |
//! | `threadcreate` | thread creation (feature `threadcreate`) |
//! | `clock?seconds=N` | wall-clock profile for N seconds (default 30) |
//! | `cmdline` | the arguments, NUL-separated |
//! | `symbol` | GET or POST `0xADDR+0xADDR`: `0xADDR name` lines |
//!
//! Go's parameters, content types, `Content-Disposition` file names and error texts; every
//! response has `X-Content-Type-Options: nosniff`. Unlike Go, a delta's in-use heap values
//! are the end state (Go subtracts them too), `seconds` is capped (300 by default: 400
//! beyond), and the server listens on loopback unless told otherwise.

mod server;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub use server::{Server, ServerBuilder, serve};

use crate::kind::{self, Kind, ProfileKind, Taking, Text};
use crate::profile::text;
use crate::{Error, Profile, runtime};

/// The longest query string accepted.
pub const MAX_QUERY: usize = 4096;
/// The default cap on `seconds`.
pub const DEFAULT_MAX_SECONDS: u64 = 300;

/// A request, as any HTTP framework has it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, e.g. `/debug/pprof/heap`.
    pub path: &'a str,
    /// The query string without `?`, e.g. `seconds=5&debug=0`.
    pub query: &'a str,
    /// The body (only `/symbol` reads it).
    pub body: &'a [u8],
}

/// A response, for any HTTP framework to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, in order (`Content-Type` first).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("X-Content-Type-Options".into(), "nosniff".into()),
            ],
            body,
        }
    }

    /// A plain-text error: the message and a newline, as Go's `http.Error` writes it.
    fn error(status: u16, message: &str) -> Response {
        Response::new(status, TEXT, format!("{message}\n").into_bytes())
    }

    fn text(body: Vec<u8>) -> Response {
        Response::new(200, TEXT, body)
    }

    /// A profile, gzipped, as an attachment named `name`.
    fn profile(p: &Profile, name: &str) -> Response {
        let mut body = Vec::new();
        if let Err(e) = p.write_to(&mut body) {
            return Response::error(500, &format!("Could not write profile: {e}"));
        }
        let mut r = Response::new(200, "application/octet-stream", body);
        r.headers.push((
            "Content-Disposition".into(),
            format!("attachment; filename=\"{name}\""),
        ));
        r
    }

    /// A header's value, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

/// The endpoints with their limits: [`handle`] uses the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    max_seconds: u64,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            max_seconds: DEFAULT_MAX_SECONDS,
        }
    }
}

/// Handles one request with the default limits. Blocks for `seconds` on the endpoints
/// that take it.
pub fn handle(request: &Request) -> Response {
    Endpoints::default().handle(request)
}

/// The parsed query.
struct Query<'a> {
    seconds: Option<&'a str>,
    debug: Option<&'a str>,
    kind: Option<&'a str>,
    sample_index: Option<&'a str>,
}

impl Endpoints {
    /// The default limits.
    pub fn new() -> Endpoints {
        Endpoints::default()
    }

    /// The largest `seconds` accepted (default 300); more is a 400.
    pub fn max_seconds(mut self, seconds: u64) -> Endpoints {
        self.max_seconds = seconds.max(1);
        self
    }

    /// Handles one request.
    pub fn handle(&self, request: &Request) -> Response {
        self.handle_cancellable(request, &|| false)
    }

    /// Handles one request; `cancelled` is asked now and then while a profile is being
    /// taken: when it says true (the client went away), profiling stops and the response
    /// is a 499 nobody reads.
    pub fn handle_cancellable(&self, request: &Request, cancelled: &dyn Fn() -> bool) -> Response {
        // As Go's mux: `/debug/pprof/NAME` exactly; `/debug/pprof` redirects to the index;
        // `/debug/pprofheap` and `/debug/pprof//heap` are not profiles.
        if request.path == "/debug/pprof" {
            let mut r = Response::error(301, "Moved Permanently");
            r.headers.push(("Location".into(), "/debug/pprof/".into()));
            return r;
        }
        let Some(name) = request.path.strip_prefix("/debug/pprof/") else {
            return Response::error(404, "404 page not found");
        };
        if name.contains('/') {
            return Response::error(404, "404 page not found");
        }
        let method = request.method;
        let symbol = name == "symbol";
        if !(method == "GET" || method == "HEAD" || (symbol && method == "POST")) {
            let mut r = Response::error(405, &format!("Method {method} not allowed"));
            let allow = if symbol {
                "GET, HEAD, POST"
            } else {
                "GET, HEAD"
            };
            r.headers.push(("Allow".into(), allow.into()));
            return r;
        }
        if request.query.len() > MAX_QUERY {
            return Response::error(
                400,
                &format!(
                    "query string too long: {} bytes, limit {MAX_QUERY}",
                    request.query.len()
                ),
            );
        }
        let query = parse_query(request.query);
        match name {
            "" => return index(),
            "cmdline" => return Response::text(runtime::cmdline().join("\0").into_bytes()),
            "symbol" => return symbol_response(request),
            "flamegraph" => return self.flamegraph(&query, cancelled),
            _ => {}
        }
        // A profile: the kinds table says which, and how it is taken.
        let Some(k) = kind::endpoint(name).filter(|k| k.available || k.taking == Taking::Snapshot)
        else {
            return Response::error(404, "Unknown profile");
        };
        match k.kind {
            ProfileKind::Cpu | ProfileKind::Clock => {
                match self.timed_profile(&query, cancelled, |d, c| timed_kind(k, d, c)) {
                    Ok(p) => Response::profile(&p, name),
                    Err(r) => r,
                }
            }
            #[cfg(feature = "trace")]
            ProfileKind::Trace => self.trace(&query, cancelled),
            _ => match k.snapshot {
                Some(take) => self.named(k, take, name, &query, cancelled),
                None => Response::error(404, "Unknown profile"),
            },
        }
    }

    /// `seconds` for `profile` and `clock`: default 30, positive, at most the cap.
    fn seconds(&self, raw: Option<&str>, default: u64) -> Result<u64, Response> {
        let Some(raw) = raw else { return Ok(default) };
        match raw.parse::<u64>() {
            Ok(s) if s > 0 && s <= self.max_seconds => Ok(s),
            Ok(s) if s > self.max_seconds => Err(Response::error(
                400,
                &format!(
                    "invalid value for \"seconds\" - {s} exceeds the limit of {}",
                    self.max_seconds
                ),
            )),
            _ => Err(Response::error(
                400,
                "invalid value for \"seconds\" - must be a positive integer",
            )),
        }
    }

    /// A profile taken over `seconds` (default 30) by `take`.
    fn timed_profile(
        &self,
        query: &Query,
        cancelled: &dyn Fn() -> bool,
        take: impl FnOnce(Duration, &dyn Fn() -> bool) -> Result<Profile, Response>,
    ) -> Result<Profile, Response> {
        let seconds = self.seconds(query.seconds, 30)?;
        take(Duration::from_secs(seconds), cancelled)
    }

    /// `/trace?seconds=S`: an execution trace (JSON) of S seconds, S a positive number
    /// (fractions allowed, as in Go), default 1.
    #[cfg(feature = "trace")]
    fn trace(&self, query: &Query, cancelled: &dyn Fn() -> bool) -> Response {
        let seconds = match query.seconds.map(str::parse::<f64>) {
            None => 1.0,
            Some(Ok(s)) if s > 0.0 && s <= self.max_seconds as f64 => s,
            Some(Ok(s)) if s > 0.0 => {
                return Response::error(
                    400,
                    &format!(
                        "invalid value for \"seconds\" - {s} exceeds the limit of {}",
                        self.max_seconds
                    ),
                );
            }
            Some(_) => {
                return Response::error(
                    400,
                    "invalid value for \"seconds\" - must be a positive number",
                );
            }
        };
        let tracer = match crate::trace::start(Some(runtime::cpu::DEFAULT_FREQUENCY)) {
            Ok(t) => t,
            Err(e) => return Response::error(500, &format!("Could not enable tracing: {e}")),
        };
        if !wait(Duration::from_secs_f64(seconds), cancelled) {
            drop(tracer);
            return Response::error(499, "client went away");
        }
        match tracer.stop() {
            Ok(trace) => {
                let mut r = Response::new(200, "application/json", trace.json().to_vec());
                r.headers.push((
                    "Content-Disposition".into(),
                    "attachment; filename=\"trace.json\"".into(),
                ));
                r
            }
            Err(e) => Response::error(500, &format!("Could not write trace: {e}")),
        }
    }

    /// `/flamegraph?kind=K&seconds=N&sample_index=T`: the profile `K` (`cpu`, the default,
    /// `heap`, `allocs`, `mutex`, `block`, `goroutine`/`threads`, `clock`, `threadcreate`)
    /// as an SVG flame graph, taken as its own endpoint takes it (CPU and clock for N
    /// seconds, default 30; the others a snapshot, or a delta over N seconds).
    fn flamegraph(&self, query: &Query, cancelled: &dyn Fn() -> bool) -> Response {
        // Every kind that is a pprof profile: all but the trace.
        let drawable = || kind::KINDS.iter().filter(|k| k.kind != ProfileKind::Trace);
        let requested = query.kind.unwrap_or("cpu");
        let Some(k) = kind::find(requested).filter(|k| k.kind != ProfileKind::Trace) else {
            let names: Vec<&str> = drawable()
                .flat_map(|k| {
                    if k.kind == ProfileKind::Cpu {
                        k.names
                    } else {
                        k.endpoints
                    }
                })
                .copied()
                .collect();
            return Response::error(
                400,
                &format!(
                    "invalid value for \"kind\" - {requested:?} must be one of: {}",
                    names.join(", ")
                ),
            );
        };
        // The endpoint named in titles: the one asked for, or the kind's first.
        let path = if k.endpoints.contains(&requested) {
            requested
        } else {
            k.endpoints[0]
        };
        if query.debug.is_some() {
            return Response::error(400, "debug is not supported for flame graphs");
        }
        // Taken as the kind's own endpoint takes it: same caps, cancellation and errors.
        let taken = match k.taking {
            Taking::Session => self.timed_profile(query, cancelled, |d, c| timed_kind(k, d, c)),
            Taking::Snapshot => match k.snapshot {
                Some(take) => self
                    .named_profile(k, take, path, query, cancelled)
                    .map(|(p, _)| p),
                None => return Response::error(400, "this kind has no snapshot"),
            },
        };
        let profile = match taken {
            Ok(p) => p,
            Err(r) => return r,
        };
        let options = crate::report::Options {
            sample_index: query.sample_index.map(str::to_owned),
            ..Default::default()
        };
        if let Err(e) = crate::report::sample_index(&profile, query.sample_index) {
            return Response::error(400, &format!("invalid value for \"sample_index\" - {e}"));
        }
        let flame = crate::report::FlameOptions::default().title(format!("{path} flame graph"));
        match crate::report::flamegraph(&profile, &options, &flame) {
            Ok(svg) => Response::new(200, "image/svg+xml", svg),
            // Nothing sampled (an idle program, no allocations yet): say so in the picture.
            Err(Error::NothingToDraw) => Response::new(
                200,
                "image/svg+xml",
                format!(
                    "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" \
                     width=\"600\" height=\"60\"><text x=\"10\" y=\"35\" \
                     font-family=\"Verdana\" font-size=\"14\">No samples in this {path} \
                     profile.</text></svg>\n"
                )
                .into_bytes(),
            ),
            Err(e) => Response::error(500, &format!("Could not draw the flame graph: {e}")),
        }
    }

    fn named(
        &self,
        k: &Kind,
        take: Snapshot,
        name: &str,
        query: &Query,
        cancelled: &dyn Fn() -> bool,
    ) -> Response {
        let debug = match query.debug.map(str::parse::<u8>) {
            None => 0,
            Some(Ok(d)) if d <= 2 => d,
            Some(_) => {
                return Response::error(400, "invalid value for \"debug\" - must be 0, 1 or 2");
            }
        };
        if query.seconds.is_some() && debug != 0 {
            return Response::error(400, "seconds and debug params are incompatible");
        }
        if debug == 0 {
            return match self.named_profile(k, take, name, query, cancelled) {
                Ok((p, file)) => Response::profile(&p, &file),
                Err(r) => r,
            };
        }
        let failed = |e: Error| Response::error(500, &format!("Could not get {name} profile: {e}"));
        let mut out = Vec::new();
        let written = if k.text == Text::Threads {
            let snap = match runtime::threads::snapshot() {
                Ok(s) => s,
                Err(e) => return failed(e),
            };
            if debug == 1 {
                snap.write_counts(&mut out)
            } else {
                snap.write_dump(&mut out)
            }
        } else {
            let p = match take() {
                Ok(p) => p,
                Err(e) => return failed(e),
            };
            match k.text {
                Text::Heap => text::write_heap(&p, &mut out),
                Text::Contention { mutex } => text::write_contention(&p, mutex, &mut out),
                _ => text::write_counts(&p, name, &mut out),
            }
        };
        match written {
            Ok(()) => Response::text(out),
            Err(e) => failed(Error::system("writing the response", e)),
        }
    }

    /// The profile `name` (a snapshot, or with `seconds` a delta over them) and the file
    /// name to offer it as.
    fn named_profile(
        &self,
        k: &Kind,
        take: Snapshot,
        name: &str,
        query: &Query,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(Profile, String), Response> {
        let failed = |e: Error| Response::error(500, &format!("Could not get {name} profile: {e}"));
        if query.seconds.is_none() {
            return Ok((take().map_err(failed)?, name.to_owned()));
        }
        if k.kind == ProfileKind::Threads {
            return Err(Response::error(
                400,
                "seconds is not supported for thread dumps",
            ));
        }
        let seconds = self.seconds(query.seconds, 30)?;
        let start = take().map_err(failed)?;
        if !wait(Duration::from_secs(seconds), cancelled) {
            return Err(Response::error(499, "client went away"));
        }
        let end = take().map_err(failed)?;
        Ok((end.delta(&start), format!("{name}-delta")))
    }
}

/// How a snapshot kind's profile is read now (its row's `snapshot`).
type Snapshot = fn() -> Result<Profile, Error>;

/// The profile of a session kind (CPU, clock) over `d`.
fn timed_kind(k: &Kind, d: Duration, cancelled: &dyn Fn() -> bool) -> Result<Profile, Response> {
    match k.kind {
        ProfileKind::Clock => clock_profile(d, cancelled),
        _ => cpu_profile(d, cancelled),
    }
}

/// Waits `d`, asking `cancelled` every 100 ms; false if it said true.
fn wait(d: Duration, cancelled: &dyn Fn() -> bool) -> bool {
    let end = Instant::now() + d;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        if cancelled() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Runs a profiler for `d` (or until the client leaves): `start` starts it, `stop`
/// stops it; `what` names it in Go's error texts ("CPU profiling").
fn run_for<P>(
    d: Duration,
    cancelled: &dyn Fn() -> bool,
    what: &str,
    start: impl FnOnce() -> Result<P, Error>,
    stop: impl FnOnce(P) -> Result<Profile, Error>,
) -> Result<Profile, Response> {
    let kind = what.split(' ').next().unwrap_or(what).to_lowercase();
    let profiler = start().map_err(|e| match e {
        Error::AlreadyActive { .. } => Response::error(
            500,
            &format!("Could not enable {what}: {kind} profiling already in use"),
        ),
        e => Response::error(500, &format!("Could not enable {what}: {e}")),
    })?;
    if !wait(d, cancelled) {
        drop(profiler); // stops sampling now
        return Err(Response::error(499, "client went away"));
    }
    stop(profiler)
        .map_err(|e| Response::error(500, &format!("Could not write {kind} profile: {e}")))
}

fn cpu_profile(d: Duration, cancelled: &dyn Fn() -> bool) -> Result<Profile, Response> {
    run_for(
        d,
        cancelled,
        "CPU profiling",
        || runtime::cpu::start(runtime::cpu::DEFAULT_FREQUENCY),
        runtime::cpu::CpuProfiler::stop,
    )
}

fn clock_profile(d: Duration, cancelled: &dyn Fn() -> bool) -> Result<Profile, Response> {
    run_for(
        d,
        cancelled,
        "clock profiling",
        || runtime::clock::start(runtime::clock::DEFAULT_FREQUENCY),
        runtime::clock::ClockProfiler::stop,
    )
}

fn parse_query(query: &str) -> Query<'_> {
    let mut q = Query {
        seconds: None,
        debug: None,
        kind: None,
        sample_index: None,
    };
    // A repeated parameter counts once, with its first value (Go's `FormValue`).
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "seconds" => &mut q.seconds,
            "debug" => &mut q.debug,
            "kind" => &mut q.kind,
            "sample_index" | "si" => &mut q.sample_index,
            _ => continue,
        };
        slot.get_or_insert(v);
    }
    q
}

/// `/symbol`: GET without addresses says symbols are available (`num_symbols: 1`); with
/// `0xADDR+0xADDR` (the query string, or a POST body) it names each address it can.
fn symbol_response(request: &Request) -> Response {
    let list = if request.method == "POST" {
        String::from_utf8_lossy(request.body).into_owned()
    } else {
        request.query.to_owned()
    };
    let mut out = String::from("num_symbols: 1\n");
    for word in list.split(['+', ' ', '\n', '\r']) {
        let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) else {
            continue;
        };
        if let Ok(address) = u64::from_str_radix(hex, 16)
            && let Some(name) = crate::sys::function_name(address)
        {
            let _ = writeln!(out, "{address:#x} {name}");
        }
    }
    Response::text(out.into_bytes())
}

/// The HTML index: every profile of the kinds table (by endpoint), its count where one
/// is cheap (a table's size, nothing symbolized), and the other endpoints.
fn index() -> Response {
    let mut rows: Vec<(&str, String, &str)> = vec![
        (
            "cmdline",
            String::new(),
            "The command line invocation of the current program",
        ),
        (
            "flamegraph",
            String::new(),
            "An SVG flame graph to look at: ?kind=cpu|heap|allocs|mutex|block|goroutine|clock (default cpu) &seconds=N &sample_index=T",
        ),
        (
            "symbol",
            String::new(),
            "Function names of program counters",
        ),
    ];
    for k in kind::KINDS.iter().filter(|k| k.available) {
        let count = k.count.map(|c| c().to_string()).unwrap_or_default();
        for (i, endpoint) in k.endpoints.iter().enumerate() {
            let description = if i == 0 {
                k.description
            } else {
                "The same as goroutine"
            };
            rows.push((endpoint, count.clone(), description));
        }
    }
    rows.sort_by_key(|r| r.0);
    let linked_bare = |name: &str| {
        ["cmdline", "symbol"].contains(&name)
            || kind::endpoint(name).is_some_and(|k| k.taking == Taking::Session)
    };
    let mut html = String::from(
        "<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n/debug/pprof/\n<br>\n\
         <p>Set debug=1 as a query parameter to export in legacy text format</p>\n<br>\n\
         Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n",
    );
    for (name, count, _) in &rows {
        let link = if linked_bare(name) {
            name.to_string()
        } else if *name == "flamegraph" {
            "flamegraph?kind=heap".to_string()
        } else {
            format!("{name}?debug=1")
        };
        let _ = writeln!(
            html,
            "<tr><td>{count}</td><td><a href='{link}'>{name}</a></td></tr>"
        );
    }
    html.push_str("</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n");
    for (name, _, description) in &rows {
        let _ = writeln!(
            html,
            "<li><div class=profile-name>{name}: </div> {description}</li>"
        );
    }
    html.push_str("</ul>\n</p>\n</body>\n</html>\n");
    Response::new(200, "text/html; charset=utf-8", html.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, query: &str) -> Response {
        handle(&Request {
            method: "GET",
            path,
            query,
            body: b"",
        })
    }

    #[test]
    fn routes_and_repeated_parameters_as_go() {
        assert_eq!(get("/debug/pprofheap", "").status, 404);
        assert_eq!(get("/debug/pprof//heap", "").status, 404);
        assert_eq!(get("/debug/pprof/heap/x", "").status, 404);
        let r = get("/debug/pprof", "");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("Location"), Some("/debug/pprof/"));
        // The first value counts: debug=7 after a valid debug=1 is ignored, and a bad
        // first value is not rescued by a good second one.
        assert_eq!(get("/debug/pprof/heap", "debug=1&debug=7").status, 200);
        assert_eq!(get("/debug/pprof/heap", "debug=7&debug=1").status, 400);
    }

    #[test]
    fn errors_have_go_texts_and_status_codes() {
        let r = get("/debug/pprof/nope", "");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (404, &b"Unknown profile\n"[..])
        );
        for q in ["seconds=abc", "seconds=0", "seconds=-3"] {
            let r = get("/debug/pprof/heap", q);
            assert_eq!(r.status, 400, "{q}");
            assert_eq!(
                r.body, b"invalid value for \"seconds\" - must be a positive integer\n",
                "{q}"
            );
        }
        let r = get("/debug/pprof/profile", "seconds=301");
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body).contains("exceeds the limit of 300"));
        let r = get("/debug/pprof/heap", "seconds=1&debug=1");
        assert_eq!(r.body, b"seconds and debug params are incompatible\n");
        let r = get("/debug/pprof/heap", "debug=7");
        assert_eq!(r.status, 400);
        let r = get("/debug/pprof/heap", &"x".repeat(MAX_QUERY + 1));
        assert_eq!(r.status, 400);
        let r = handle(&Request {
            method: "DELETE",
            path: "/debug/pprof/heap",
            query: "",
            body: b"",
        });
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        for r in [
            get("/debug/pprof/nope", ""),
            get("/debug/pprof/heap", "debug=7"),
        ] {
            assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
            assert_eq!(r.header("Content-Type"), Some(TEXT));
        }
    }

    #[test]
    fn cmdline_is_nul_separated_and_index_links_every_profile() {
        let r = get("/debug/pprof/cmdline", "");
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            runtime::cmdline().join("\0")
        );
        let r = get("/debug/pprof/", "");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        let html = String::from_utf8(r.body).unwrap();
        for link in [
            "heap?debug=1",
            "goroutine?debug=2",
            "'profile'",
            "mutex?debug=1",
        ] {
            assert!(html.contains(link), "{link} missing:\n{html}");
        }
    }

    #[test]
    fn symbol_names_addresses_of_this_program() {
        let r = get("/debug/pprof/symbol", "");
        assert_eq!(r.body, b"num_symbols: 1\n");
        let address = symbol_response as *const () as usize as u64;
        let r = handle(&Request {
            method: "POST",
            path: "/debug/pprof/symbol",
            query: "",
            body: format!("{address:#x}+0x1").as_bytes(),
        });
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.starts_with("num_symbols: 1\n"), "{text}");
        assert!(text.contains("symbol_response"), "{text}");
    }

    #[cfg(feature = "trace")]
    #[test]
    fn trace_endpoint_serves_json_and_checks_seconds() {
        let r = get("/debug/pprof/trace", "seconds=0.2");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["traceEvents"].is_array());
        for q in ["seconds=x", "seconds=-1", "seconds=0"] {
            assert_eq!(get("/debug/pprof/trace", q).status, 400, "{q}");
        }
    }

    #[test]
    fn flamegraph_endpoint_draws_svg_and_checks_parameters() {
        #[inline(never)]
        fn parked_for_the_flame_graph(rx: std::sync::mpsc::Receiver<()>) {
            let _ = std::hint::black_box(rx.recv());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || parked_for_the_flame_graph(rx));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let r = get("/debug/pprof/flamegraph", "kind=goroutine");
        drop(tx);
        waiter.join().unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("Content-Type"), Some("image/svg+xml"));
        let svg = String::from_utf8_lossy(&r.body);
        assert!(
            svg.contains("<svg") && svg.contains("goroutine flame graph"),
            "{svg}"
        );
        // The waiting thread's frame is drawn.
        assert!(svg.contains("parked_for_the_flame_graph"), "{svg}");
        let r = get("/debug/pprof/flamegraph", "kind=cpu&seconds=1");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(String::from_utf8_lossy(&r.body).contains("<svg"));
        for (q, text) in [
            ("kind=bogus", "must be one of: cpu, heap"),
            ("kind=cpu&seconds=abc", "seconds"),
            ("kind=goroutine&seconds=1", "not supported for thread dumps"),
            ("kind=goroutine&sample_index=nope", "sample_index"),
            ("kind=heap&debug=1", "debug is not supported"),
        ] {
            let r = get("/debug/pprof/flamegraph", q);
            let body = String::from_utf8_lossy(&r.body);
            assert_eq!(r.status, 400, "{q}: {body}");
            assert!(body.contains(text), "{q}: {body}");
        }
    }

    #[test]
    fn thread_dump_text_forms() {
        let r = get("/debug/pprof/goroutine", "debug=2");
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).starts_with("thread dump of process"));
        let r = get("/debug/pprof/goroutine", "debug=1");
        assert!(String::from_utf8_lossy(&r.body).starts_with("goroutine profile: total "));
        let r = get("/debug/pprof/goroutine", "");
        assert_eq!(
            r.header("Content-Disposition"),
            Some("attachment; filename=\"goroutine\"")
        );
        assert!(Profile::decode(&r.body).is_ok());
    }
}
