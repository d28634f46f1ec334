//! `/debug/pprof/*` over HTTP, as Go's `net/http/pprof` serves it (cargo feature `http`).
//!
//! ```no_run
//! // A server on a background thread, loopback only; stopped when `server` drops.
//! let server = profile::http::serve("127.0.0.1:6060")?;
//! println!("go tool pprof http://{}/debug/pprof/profile?seconds=30", server.local_addr());
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! In an axum application (feature `axum`): `.merge(profile::http::axum::router())`, see
//! [`axum`](mod@self::axum). Or mount the same endpoints in your own router (actix,
//! hyper...): turn the
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
//! Heap sampling starts at Go's default rate (512 KiB) with the first server, router or
//! request, if the allocator wrapper is installed and no code set a rate (not even 0). A
//! kind that records nothing (heap without the wrapper, mutex and block until their rate
//! is set) says so on the index page and in its responses, with the call that turns it
//! on.
//!
//! Go's parameters, content types, `Content-Disposition` file names and error texts; every
//! response has `X-Content-Type-Options: nosniff`. Unlike Go, a delta's in-use heap values
//! are the end state (Go subtracts them too), `seconds` is capped (300 by default: 400
//! beyond), and the server listens on loopback unless told otherwise.

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod endpoints;
mod index;
mod server;

pub use server::{Server, ServerBuilder, serve};

use crate::kind::{self, ProfileKind, Taking};
use crate::{Profile, runtime};

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

/// The 401 for a request whose `Authorization` header is not `Bearer <token>` (the
/// built-in server and the axum router alike); None when it is.
pub(crate) fn bearer_refusal(token: &str, authorization: Option<&str>) -> Option<Response> {
    let expected = format!("Bearer {token}");
    if authorization.map(str::trim) == Some(expected.as_str()) {
        return None;
    }
    let mut r = Response::error(401, "missing or wrong bearer token");
    r.headers.push(("WWW-Authenticate".into(), "Bearer".into()));
    Some(r)
}

/// Go samples the heap by default (`runtime.MemProfileRate` = 512 KiB): so do the
/// endpoints, once, when the allocator wrapper is installed and no code ever set a rate
/// (a rate set to 0 on purpose stays 0). Called when a server starts or a router is made,
/// and by every request (a framework mounting [`handle`] itself).
pub(crate) fn heap_sampling_by_default() {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !DONE.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::heap::sampler::default_rate_if_never_set(runtime::heap::DEFAULT_RATE);
    }
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
        heap_sampling_by_default();
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
            "" => return index::index(),
            "cmdline" => return Response::text(runtime::cmdline().join("\0").into_bytes()),
            "symbol" => return endpoints::symbol_response(request),
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
                match self.timed_profile(&query, cancelled, |d, c| endpoints::timed_kind(k, d, c)) {
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

/// What the endpoint files' tests share.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub(crate) fn get(path: &str, query: &str) -> Response {
        handle(&Request {
            method: "GET",
            path,
            query,
            body: b"",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests_support::get;

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
}
