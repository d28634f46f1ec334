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
mod message;
mod router;
mod server;

pub use message::{Request, Response};
pub use router::{DEFAULT_MAX_SECONDS, Endpoints, MAX_QUERY, handle};
pub use server::{Server, ServerBuilder, serve};

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
