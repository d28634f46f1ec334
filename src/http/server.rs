//! The built-in server: `std::net` with `httparse` for request heads; one thread per
//! connection, at most `max_concurrent` of them; `Connection: close` after each response.
//!
//! Why not a server crate such as `tiny_http`: its requests give no access to the socket,
//! so a client that goes away during `profile?seconds=30` cannot be noticed before the 30
//! seconds are over, and CPU profiling would stay on for nobody (the bar). Owning
//! the socket, a handler peeks at it between waits and stops profiling at once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Endpoints, Request, Response};
use crate::Error;

/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// The largest body read (`/symbol` POSTs).
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its request, or to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a server on `addr` (a loopback address) with the default settings.
///
/// Errors: [`Error::Io`] if the address cannot be bound or is not a loopback address (use
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
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            allow_remote: false,
            token: None,
            endpoints: Endpoints::default(),
            max_concurrent: 8,
        }
    }
}

impl ServerBuilder {
    /// The defaults: loopback only, no token, `seconds` ≤ 300, 8 requests at a time.
    pub fn new() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Accept a non-loopback address. Profiles reveal code, arguments and memory
    /// contents' sizes: pair this with [`bearer_token`](ServerBuilder::bearer_token).
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

    /// How many requests are served at once (default 8); more get a 503.
    pub fn max_concurrent(mut self, n: usize) -> ServerBuilder {
        self.max_concurrent = n.max(1);
        self
    }

    /// Binds `addr` and serves on a background thread (`profile-http`).
    pub fn serve(self, addr: impl ToSocketAddrs) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).map_err(|e| Error::io("HTTP listen address", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("HTTP listen address", e))?;
        if !self.allow_remote && !local.ip().is_loopback() {
            return Err(Error::io(
                local.to_string(),
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not a loopback address: call ServerBuilder::allow_remote() to serve it",
                ),
            ));
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(local.to_string(), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("profile-http".into())
                .spawn(move || accept_loop(&listener, &stop, Arc::new(self)))
                .map_err(|e| Error::io("the profile-http thread", e))?
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

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, config: Arc<ServerBuilder>) {
    let active = Arc::new(AtomicUsize::new(0));
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
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        if active.fetch_add(1, Ordering::AcqRel) >= config.max_concurrent {
            active.fetch_sub(1, Ordering::AcqRel);
            // Read what the client sent (briefly), so that closing does not reset the
            // connection before it reads the 503.
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut [0u8; 4096]);
            let r = Response::error(503, "too many concurrent requests");
            if write_response(&mut stream, &r, true).is_ok() {
                finish(&mut stream);
            }
            continue;
        }
        let (config, counter) = (config.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("profile-http-req".into())
            .spawn(move || {
                let _ = serve_one(stream, &config);
                counter.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
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

fn serve_one(mut stream: TcpStream, config: &ServerBuilder) -> io::Result<()> {
    let result = serve_request(&mut stream, config);
    if result.is_ok() {
        finish(&mut stream);
    }
    result
}

fn serve_request(stream: &mut TcpStream, config: &ServerBuilder) -> io::Result<()> {
    // Read the head (and a body, for POST) within the limits.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head_len, method, target, content_length, authorization) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
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
    if content_length > MAX_BODY {
        let r = Response::error(413, &format!("request body over {MAX_BODY} bytes"));
        return write_response(stream, &r, true);
    }
    while buf.len() < head_len + content_length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[head_len..head_len + content_length];
    if let Some(token) = &config.token {
        let expected = format!("Bearer {token}");
        if authorization.as_deref().map(str::trim) != Some(expected.as_str()) {
            let mut r = Response::error(401, "missing or wrong bearer token");
            r.headers.push(("WWW-Authenticate".into(), "Bearer".into()));
            return write_response(stream, &r, method != "HEAD");
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let request = Request {
        method: &method,
        path,
        query,
        body,
    };
    let response = config
        .endpoints
        .handle_cancellable(&request, &|| gone(stream));
    if response.status == 499 {
        return Ok(()); // the client went away: nobody to answer
    }
    write_response(stream, &response, method != "HEAD")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
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
