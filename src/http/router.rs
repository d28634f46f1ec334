//! Routing: which endpoint answers a request (as Go's `net/http/pprof` mux does), with
//! the limits every endpoint shares.

use super::message::{Request, Response, parse_query};
use super::{endpoints, index};
use crate::kind::{self, ProfileKind, Taking};
use crate::runtime;

/// The longest query string accepted.
pub const MAX_QUERY: usize = 4096;
/// The default cap on `seconds`.
pub const DEFAULT_MAX_SECONDS: u64 = 300;

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
            "flamegraph" => return endpoints::flamegraph(self.max_seconds, &query, cancelled),
            _ => {}
        }
        // A profile: the kinds table says which, and how it is taken.
        let Some(k) = kind::endpoint(name).filter(|k| k.available || k.taking == Taking::Snapshot)
        else {
            return Response::error(404, "Unknown profile");
        };
        match k.kind {
            ProfileKind::Cpu | ProfileKind::Clock => {
                match endpoints::timed_profile(self.max_seconds, &query, cancelled, |d, c| {
                    endpoints::timed_kind(k, d, c)
                }) {
                    Ok(p) => Response::profile(&p, name),
                    Err(r) => r,
                }
            }
            #[cfg(feature = "trace")]
            ProfileKind::Trace => endpoints::trace(self.max_seconds, &query, cancelled),
            _ => match k.snapshot {
                Some(take) => endpoints::named(self.max_seconds, k, take, name, &query, cancelled),
                None => Response::error(404, "Unknown profile"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::message::TEXT;
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
