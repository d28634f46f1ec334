//! Mounting the `/debug/pprof` endpoints in another HTTP server: here `tiny_http`, but any
//! framework works the same way — turn its request into a `profile::http::Request`, call
//! `profile::http::handle` on a thread that may block, send the `Response` back.
//!
//! ```text
//! cargo run --features http --example http_mount        # serves 127.0.0.1:6061
//! go tool pprof -top http://127.0.0.1:6061/debug/pprof/goroutine
//! ```
//!
//! With axum, the handler would be
//! `tokio::task::spawn_blocking(move || profile::http::handle(&request))` and a
//! conversion of the response's status, headers and body.

fn main() {
    let server = tiny_http::Server::http("127.0.0.1:6061").expect("bind 127.0.0.1:6061");
    println!("serving http://127.0.0.1:6061/debug/pprof/ (and / for this app)");
    for mut request in server.incoming_requests() {
        // Your application's routes would come first; everything under /debug/pprof/
        // goes to the profiler, each request on its own thread (profiles take seconds).
        if !request.url().starts_with("/debug/pprof") {
            let _ = request.respond(tiny_http::Response::from_string("hello\n"));
            continue;
        }
        std::thread::spawn(move || {
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            let method = request.method().to_string();
            let url = request.url().to_owned();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            let response = profile::http::handle(&profile::http::Request {
                method: &method,
                path,
                query,
                body: &body,
            });
            let mut out =
                tiny_http::Response::from_data(response.body).with_status_code(response.status);
            for (name, value) in &response.headers {
                if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                    out.add_header(h);
                }
            }
            let _ = request.respond(out);
        });
    }
}
