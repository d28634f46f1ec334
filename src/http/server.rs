//! The built-in server: `std::net` with `httparse` for request heads; one thread per
//! connection; `Connection: close` after each response.
//!
//! # Who waits for whom
//!
//! ```text
//! accept ──► reading (≤ max_pending connections, one deadline for head + body)
//!              │ a full table evicts the connection that has been reading longest
//!              ├─ bad / too large / wrong token ──► 4xx, never a serving slot
//!              ▼ complete and authorised
//!            serving (≤ max_concurrent handlers; 503 when full) ──► response written,
//!                                                                  slot already free
//! ```
//!
//! - The accept thread only accepts and spawns: it never reads or writes a connection,
//!   so idle connections cannot stall it.
//! - A request's head and body get one deadline together (`request_timeout`, default
//!   10 s), not one per read: a client sending a byte a second is cut off at the deadline.
//! - Connections still being read do not count against `max_concurrent`, and a client
//!   that never finishes its request (or is not authorised) never holds a serving slot.
//!   When `max_pending` connections are all still reading, a new one evicts the oldest:
//!   slow or idle clients cannot lock out ones that send their request at once.
//! - The serving slot is released when the handler returns, before the response is
//!   written and the connection drained.
//!
//! Why not a server crate such as `tiny_http`: its requests give no access to the socket,
//! so a client that goes away during `profile?seconds=30` cannot be noticed before the 30
//! seconds are over, and CPU profiling would stay on for nobody (the issue's bar). Owning
//! the socket, a handler peeks at it between waits and stops profiling at once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::message::{Request, Response, bearer_refusal};
use super::router::{Endpoints, heap_sampling_by_default};
use crate::Error;

/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// The largest body read (`/symbol` POSTs).
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its whole request (head and body), by default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections reading their request at once, by default.
const MAX_PENDING: usize = 64;

/// Starts a server on `addr` (a loopback address) with the default settings.
///
/// Errors: [`Error::System`] if the address cannot be bound or is not a loopback address (use
/// [`ServerBuilder::allow_remote`] to serve others).
pub fn serve(addr: impl ToSocketAddrs) -> Result<Server, Error> {
    ServerBuilder::new().serve(addr)
}

/// Settings for [`serve`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    allow_remote: bool,
    token: Option<String>,
    endpoints: Endpoints,
    max_concurrent: usize,
    max_pending: usize,
    request_timeout: Duration,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            allow_remote: false,
            token: None,
            endpoints: Endpoints::default(),
            max_concurrent: 8,
            max_pending: MAX_PENDING,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

impl ServerBuilder {
    /// The defaults: loopback only, no token, `seconds` ≤ 300, 8 requests at a time.
    pub fn new() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Accept a non-loopback address. Profiles reveal code, arguments and memory
    /// contents' sizes, so a non-loopback address also needs
    /// [`bearer_token`](ServerBuilder::bearer_token): without one, `serve` refuses it.
    pub fn allow_remote(mut self) -> ServerBuilder {
        self.allow_remote = true;
        self
    }

    /// Require `Authorization: Bearer TOKEN` on every request (401 otherwise).
    pub fn bearer_token(mut self, token: impl Into<String>) -> ServerBuilder {
        self.token = Some(token.into());
        self
    }

    /// The largest `seconds` accepted (default 300).
    pub fn max_seconds(mut self, seconds: u64) -> ServerBuilder {
        self.endpoints = self.endpoints.max_seconds(seconds);
        self
    }

    /// How many requests are served at once (default 8); more get a 503. Only complete,
    /// authorised requests count, and only while their handler runs.
    pub fn max_concurrent(mut self, n: usize) -> ServerBuilder {
        self.max_concurrent = n.max(1);
        self
    }

    /// How many connections may be reading their request at once (default 64). When all
    /// are, a new connection evicts the one that has been reading longest.
    pub fn max_pending(mut self, n: usize) -> ServerBuilder {
        self.max_pending = n.max(1);
        self
    }

    /// How long a client has to send its whole request, head and body (default 10 s);
    /// then the server answers 408 and closes the connection. At least 1 ms.
    pub fn request_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Binds `addr` and serves on a background thread (`profile-http`).
    pub fn serve(self, addr: impl ToSocketAddrs) -> Result<Server, Error> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| Error::system("resolving the HTTP listen address", e))?
            .collect();
        let named = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let listener = TcpListener::bind(&addrs[..])
            .map_err(|e| Error::system(format!("listening on {named}"), e))?;
        heap_sampling_by_default();
        let local = listener
            .local_addr()
            .map_err(|e| Error::system(format!("listening on {named}"), e))?;
        if !self.allow_remote && !local.ip().is_loopback() {
            return Err(Error::system(
                format!("serving on {local}"),
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not a loopback address: call ServerBuilder::allow_remote() to serve it",
                ),
            ));
        }
        if !local.ip().is_loopback() && self.token.is_none() {
            return Err(Error::system(
                format!("serving on {local}"),
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not a loopback address and no bearer token: call ServerBuilder::bearer_token() too (anyone who reaches the port could read the profiles)",
                ),
            ));
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::system(format!("serving on {local}"), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("profile-http".into())
                .spawn(move || {
                    // The server's allocations are the profiler's, not the program's.
                    let _untracked = crate::sys::untracked::Untracked::new();
                    accept_loop(&listener, &stop, Arc::new(self))
                })
                .map_err(|e| Error::system("starting the profile-http thread", e))?
        };
        Ok(Server {
            local,
            stop,
            thread: Some(thread),
        })
    }
}

/// A running server; dropping it (or [`shutdown`](Server::shutdown)) stops accepting.
/// Requests in progress finish on their own threads.
#[derive(Debug)]
pub struct Server {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the port chosen, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting connections.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The connections still reading their request: a clone of each socket, to evict the
/// oldest when the table is full.
#[derive(Default)]
struct Pending {
    next_id: u64,
    /// (id, socket), oldest first.
    reading: std::collections::VecDeque<(u64, TcpStream)>,
}

impl Pending {
    /// Adds a connection, evicting the oldest if `max` are reading. Returns its id.
    fn add(&mut self, stream: &TcpStream, max: usize) -> Option<u64> {
        while self.reading.len() >= max {
            if let Some((_, oldest)) = self.reading.pop_front() {
                // Its reader sees end of stream (or an error) at once and gives up.
                let _ = oldest.shutdown(std::net::Shutdown::Both);
            }
        }
        let clone = stream.try_clone().ok()?;
        self.next_id += 1;
        self.reading.push_back((self.next_id, clone));
        Some(self.next_id)
    }

    fn remove(&mut self, id: u64) {
        self.reading.retain(|(i, _)| *i != id);
    }
}

struct Shared {
    config: ServerBuilder,
    pending: parking_lot::Mutex<Pending>,
    serving: AtomicUsize,
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, config: Arc<ServerBuilder>) {
    let shared = Arc::new(Shared {
        config: (*config).clone(),
        pending: parking_lot::Mutex::new(Pending::default()),
        serving: AtomicUsize::new(0),
    });
    while !stop.load(Ordering::Acquire) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => continue,
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let Some(id) = shared
            .pending
            .lock()
            .add(&stream, shared.config.max_pending)
        else {
            continue;
        };
        let shared2 = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("profile-http-req".into())
            .spawn(move || {
                let _untracked = crate::sys::untracked::Untracked::new();
                let mut stream = stream;
                if serve_request(&mut stream, &shared2, id).is_ok() {
                    finish(&mut stream);
                }
                shared2.pending.lock().remove(id);
            });
        if spawned.is_err() {
            shared.pending.lock().remove(id);
        }
    }
}

/// Whether the client closed its side: a non-blocking peek that sees end of stream.
fn gone(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// Closes our side after a response and drains what the client still sends (up to
/// 64 KiB, 200 ms), so that the close does not turn into a reset that could destroy the
/// response before the client reads it.
fn finish(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Reads from `stream` before `deadline`; a timeout is `TimedOut`.
fn read_before(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(Some(left))?;
    match stream.read(buf) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(io::ErrorKind::TimedOut.into())
        }
        other => other,
    }
}

/// Answers 408 to a client whose request did not arrive in time.
fn too_slow(stream: &mut TcpStream) -> io::Result<()> {
    let r = Response::error(408, "request not received in time");
    write_response(stream, &r, true)
}

fn serve_request(stream: &mut TcpStream, shared: &Shared, id: u64) -> io::Result<()> {
    let config = &shared.config;
    let deadline = Instant::now() + config.request_timeout;
    // Read the head (and a body, for POST) within the limits and the one deadline.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head_len, method, target, content_length, authorization) = loop {
        let n = match read_before(stream, &mut chunk, deadline) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return too_slow(stream),
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let content_length = header("Content-Length")
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (
                    len,
                    req.method.unwrap_or("").to_owned(),
                    req.path.unwrap_or("").to_owned(),
                    content_length,
                    header("Authorization"),
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                let r = Response::error(431, "request header too large");
                return write_response(stream, &r, true);
            }
            Err(e) => {
                let r = Response::error(400, &format!("malformed request: {e}"));
                return write_response(stream, &r, true);
            }
        }
    };
    // The token is checked as soon as the head is in: an unauthorised client's body is
    // never waited for.
    if let Some(token) = &config.token
        && let Some(r) = bearer_refusal(token, authorization.as_deref())
    {
        return write_response(stream, &r, method != "HEAD");
    }
    if content_length > MAX_BODY {
        let r = Response::error(413, &format!("request body over {MAX_BODY} bytes"));
        return write_response(stream, &r, true);
    }
    while buf.len() < head_len + content_length {
        match read_before(stream, &mut chunk, deadline) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return too_slow(stream),
            Err(e) => return Err(e),
        }
    }
    // The request is complete: it no longer competes with connections still reading.
    shared.pending.lock().remove(id);
    let body = &buf[head_len..head_len + content_length];
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let request = Request {
        method: &method,
        path,
        query,
        body,
    };
    if shared.serving.fetch_add(1, Ordering::AcqRel) >= config.max_concurrent {
        shared.serving.fetch_sub(1, Ordering::AcqRel);
        let r = Response::error(503, "too many concurrent requests");
        return write_response(stream, &r, method != "HEAD");
    }
    let response = config
        .endpoints
        .handle_cancellable(&request, &|| gone(stream));
    // The slot is free before the response is written: a slow reader holds no slot.
    shared.serving.fetch_sub(1, Ordering::AcqRel);
    if response.status == 499 {
        return Ok(()); // the client went away: nobody to answer
    }
    write_response(stream, &response, method != "HEAD")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(stream: &mut TcpStream, r: &Response, with_body: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}
