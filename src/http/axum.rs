//! Every `/debug/pprof/*` endpoint in an axum application, with one line (cargo feature
//! `axum`):
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::SocketAddr;
//!
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .merge(profile::http::axum::router());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! // The client's address tells loopback clients from others:
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The same rules as the built-in server ([`super::ServerBuilder`]):
//!
//! - **Who may ask.** Without a token, only loopback clients (`127.0.0.1`, `::1`): the
//!   router reads the client's address from axum's `ConnectInfo<SocketAddr>` (serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()`); a request without it, or
//!   from another address, gets a 403 that says so. With
//!   [`RouterBuilder::bearer_token`], every request must carry `Authorization: Bearer
//!   <token>` (401 otherwise), from any address. [`RouterBuilder::trust_peers`] serves
//!   every client without either (for an application whose own middleware already
//!   authenticates).
//! - **Limits.** `seconds` at most 300 by default ([`RouterBuilder::max_seconds`]), at
//!   most 8 requests at a time (503 beyond; [`RouterBuilder::max_concurrent`]), request
//!   bodies (`/symbol`) at most 64 KiB (413).
//! - **Off the async workers.** Each request runs on tokio's blocking pool
//!   (`spawn_blocking`): a 30-second CPU profile or a symbolization never holds a worker.
//! - **A request that goes away stops its profile.** When the client disconnects, axum
//!   drops the request's future; that tells the running profile to stop (within 100 ms),
//!   so the next `profile?seconds=N` does not find the CPU profiler busy.
//!
//! - **Tasks.** Built inside a tokio runtime, the router registers it
//!   ([`crate::runtime::tasks::register`]): with `--cfg tokio_unstable`, `goroutine`
//!   lists its tasks' await points.
//!
//! The router is a `tower::Service` too (`axum::Router`), so hyper or tonic servers can
//! mount it through their tower integration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::axum::Router;
use ::axum::body::Body;
use ::axum::extract::{ConnectInfo, Request, State};
use ::axum::http::{HeaderName, HeaderValue, StatusCode, header};
use ::axum::response::IntoResponse;

use super::message::{Response, bearer_refusal};
use super::router::{Endpoints, heap_sampling_by_default};

/// The largest request body read (only `/symbol` has one).
const MAX_BODY: usize = 64 * 1024;

/// The router with the default settings: loopback clients only, no token, `seconds` ≤
/// 300, 8 requests at a time. Merge it into the application's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    RouterBuilder::new().build()
}

/// Settings for [`router`].
#[derive(Debug, Clone)]
pub struct RouterBuilder {
    token: Option<String>,
    trust_peers: bool,
    endpoints: Endpoints,
    max_concurrent: usize,
}

impl Default for RouterBuilder {
    fn default() -> Self {
        RouterBuilder {
            token: None,
            trust_peers: false,
            endpoints: Endpoints::default(),
            max_concurrent: 8,
        }
    }
}

struct Config {
    token: Option<String>,
    trust_peers: bool,
    endpoints: Endpoints,
    slots: Arc<tokio::sync::Semaphore>,
}

impl RouterBuilder {
    /// The defaults (see [`router`]).
    pub fn new() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Requires `Authorization: Bearer <token>` on every request, and then serves any
    /// client address.
    pub fn bearer_token(mut self, token: impl Into<String>) -> RouterBuilder {
        self.token = Some(token.into());
        self
    }

    /// Serves every client without a token or an address check: for applications whose
    /// own middleware authenticates before the router is reached. Profiles reveal code,
    /// arguments and memory sizes.
    pub fn trust_peers(mut self) -> RouterBuilder {
        self.trust_peers = true;
        self
    }

    /// The largest `seconds` accepted (default 300); more is a 400.
    pub fn max_seconds(mut self, seconds: u64) -> RouterBuilder {
        self.endpoints = self.endpoints.max_seconds(seconds);
        self
    }

    /// How many requests run at once (default 8); one more gets a 503.
    pub fn max_concurrent(mut self, n: usize) -> RouterBuilder {
        self.max_concurrent = n.max(1);
        self
    }

    /// The router: `/debug/pprof`, `/debug/pprof/` and everything below it.
    pub fn build<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        heap_sampling_by_default();
        // The goroutine profile lists this runtime's tasks (with tokio's task dumps).
        if let Ok(handle) = ::tokio::runtime::Handle::try_current() {
            crate::runtime::tasks::register(handle);
        }
        let config = Arc::new(Config {
            token: self.token,
            trust_peers: self.trust_peers,
            endpoints: self.endpoints,
            slots: Arc::new(tokio::sync::Semaphore::new(self.max_concurrent)),
        });
        Router::new()
            .route("/debug/pprof", ::axum::routing::any(serve))
            .route("/debug/pprof/", ::axum::routing::any(serve))
            .route("/debug/pprof/{*name}", ::axum::routing::any(serve))
            .with_state(config)
    }
}

/// Sets the flag when dropped: the request's future went away (the client disconnected)
/// or finished.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether the request may be served: None, or the refusal.
fn refusal(config: &Config, request: &Request) -> Option<Response> {
    if let Some(token) = &config.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        return bearer_refusal(token, given);
    }
    if config.trust_peers {
        return None;
    }
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) if peer.ip().is_loopback() => None,
        Some(ConnectInfo(peer)) => Some(Response::error(
            403,
            &format!(
                "profiles are served to loopback clients only ({peer} is not one): give the router a bearer token (RouterBuilder::bearer_token)"
            ),
        )),
        None => Some(Response::error(
            403,
            "the client's address is unknown, and profiles are served to loopback clients only: serve the app with into_make_service_with_connect_info::<SocketAddr>(), or give the router a bearer token (RouterBuilder::bearer_token)",
        )),
    }
}

async fn serve(State(config): State<Arc<Config>>, request: Request) -> ::axum::response::Response {
    if let Some(r) = refusal(&config, &request) {
        return into_axum(r);
    }
    let Ok(permit) = config.slots.clone().try_acquire_owned() else {
        return into_axum(Response::error(503, "too many concurrent requests"));
    };
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = match ::axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return into_axum(Response::error(
                413,
                &format!("request body over {MAX_BODY} bytes"),
            ));
        }
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    // Dropped with this future: when the client goes away, the profile stops.
    let _cancel = CancelOnDrop(cancelled.clone());
    let endpoints = config.endpoints;
    let run = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let request = super::message::Request {
            method: &method,
            path: &path,
            query: &query,
            body: &body,
        };
        endpoints.handle_cancellable(&request, &|| cancelled.load(Ordering::Relaxed))
    });
    match run.await {
        Ok(r) => into_axum(r),
        Err(e) => into_axum(Response::error(
            500,
            &format!("the profile request failed: {e}"),
        )),
    }
}

/// Our response as axum's.
fn into_axum(r: Response) -> ::axum::response::Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Body::from(r.body)).into_response();
    let headers = response.headers_mut();
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.insert(k, v);
        }
    }
    response
}

/// Middleware that labels each request's handler with its route and method
/// (`http.route=/users/{id}`, `http.method=GET`): CPU and clock samples taken while the
/// handler's future is polled carry them, so `go tool pprof -tagfocus http.route=/users/{id}`
/// keeps one endpoint. Add it with `route_layer` (after the routes, so that the matched
/// route is known):
///
/// ```
/// let app: axum::Router = axum::Router::new()
///     .route("/users/{id}", axum::routing::get(|| async { "user" }))
///     .route_layer(axum::middleware::from_fn(profile::http::axum::label_requests))
///     .merge(profile::http::axum::router());
/// ```
///
/// Work the handler moves elsewhere (`tokio::spawn`, `spawn_blocking`) is not polled
/// inside it: label that with [`crate::labels::LabelExt::with_labels`] or
/// [`crate::labels::with`].
pub async fn label_requests(
    request: Request,
    next: ::axum::middleware::Next,
) -> ::axum::response::Response {
    use crate::labels::LabelExt;
    let route = match request.extensions().get::<::axum::extract::MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None => request.uri().path().to_owned(),
    };
    let method = request.method().as_str().to_owned();
    next.run(request)
        .with_labels(&[("http.route", &route), ("http.method", &method)])
        .await
}
