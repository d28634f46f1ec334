//! The profile endpoints: a session kind over `seconds` (CPU, clock, trace), a snapshot
//! kind now or as a delta (heap, allocs, mutex, block, goroutine, threadcreate) in
//! protobuf or Go's text forms, flame graphs of either, and `/symbol`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::message::{Query, Request, Response};
use crate::kind::{self, Kind, ProfileKind, Taking, Text};
use crate::profile::text;
use crate::{Error, Profile, runtime};

/// A profile taken over `seconds` (default 30) by `take`.
pub(super) fn timed_profile(
    max_seconds: u64,
    query: &Query,
    cancelled: &dyn Fn() -> bool,
    take: impl FnOnce(Duration, &dyn Fn() -> bool) -> Result<Profile, Response>,
) -> Result<Profile, Response> {
    let seconds = seconds(query.seconds, 30, max_seconds)?;
    take(Duration::from_secs(seconds), cancelled)
}

/// `/trace?seconds=S`: an execution trace (JSON) of S seconds, S a positive number
/// (fractions allowed, as in Go), default 1.
#[cfg(feature = "trace")]
pub(super) fn trace(max_seconds: u64, query: &Query, cancelled: &dyn Fn() -> bool) -> Response {
    let seconds = match query.seconds.map(str::parse::<f64>) {
        None => 1.0,
        Some(Ok(s)) if s > 0.0 && s <= max_seconds as f64 => s,
        Some(Ok(s)) if s > 0.0 => {
            return Response::error(
                400,
                &format!(
                    "invalid value for \"seconds\" - {s} exceeds the limit of {}",
                    max_seconds
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
    let tracer = match crate::trace::start(runtime::cpu::DEFAULT_FREQUENCY) {
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
pub(super) fn flamegraph(
    max_seconds: u64,
    query: &Query,
    cancelled: &dyn Fn() -> bool,
) -> Response {
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
        Taking::Session => timed_profile(max_seconds, query, cancelled, |d, c| timed_kind(k, d, c)),
        Taking::Snapshot => match k.snapshot {
            Some(take) => {
                named_profile(max_seconds, k, take, path, query, cancelled).map(|(p, _)| p)
            }
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

pub(super) fn named(
    max_seconds: u64,
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
    // A kind that records nothing now says so, with the call that turns it on.
    let off = k.off.and_then(|off| off());
    if debug == 0 {
        return match named_profile(max_seconds, k, take, name, query, cancelled) {
            Ok((mut p, file)) => {
                if let Some(off) = off {
                    p.comments.push(format!("profile: {off}"));
                }
                Response::profile(&p, &file)
            }
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
    if let Some(off) = off {
        out.extend_from_slice(format!("# profile: {off}\n").as_bytes());
    }
    match written {
        Ok(()) => Response::text(out),
        Err(e) => failed(Error::system("writing the response", e)),
    }
}

/// The profile `name` (a snapshot, or with `seconds` a delta over them) and the file
/// name to offer it as.
pub(super) fn named_profile(
    max_seconds: u64,
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
    let seconds = seconds(query.seconds, 30, max_seconds)?;
    let start = take().map_err(failed)?;
    if !wait(Duration::from_secs(seconds), cancelled) {
        return Err(Response::error(499, "client went away"));
    }
    let end = take().map_err(failed)?;
    Ok((end.delta(&start), format!("{name}-delta")))
}

/// `seconds` for the endpoints that take it: `default` if absent, positive, at most
/// `max_seconds`.
fn seconds(raw: Option<&str>, default: u64, max_seconds: u64) -> Result<u64, Response> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<u64>() {
        Ok(s) if s > 0 && s <= max_seconds => Ok(s),
        Ok(s) if s > max_seconds => Err(Response::error(
            400,
            &format!("invalid value for \"seconds\" - {s} exceeds the limit of {max_seconds}"),
        )),
        _ => Err(Response::error(
            400,
            "invalid value for \"seconds\" - must be a positive integer",
        )),
    }
}

/// How a snapshot kind's profile is read now (its row's `snapshot`).
type Snapshot = fn() -> Result<Profile, Error>;

/// The profile of a session kind (CPU, clock) over `d`.
pub(super) fn timed_kind(
    k: &Kind,
    d: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Profile, Response> {
    match k.kind {
        ProfileKind::Clock => run_for(
            d,
            cancelled,
            "clock profiling",
            || runtime::clock::start(runtime::clock::DEFAULT_FREQUENCY),
            runtime::clock::ClockProfiler::stop,
        ),
        _ => run_for(
            d,
            cancelled,
            "CPU profiling",
            || runtime::cpu::start(runtime::cpu::DEFAULT_FREQUENCY),
            runtime::cpu::CpuProfiler::stop,
        ),
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

/// `/symbol`: GET without addresses says symbols are available (`num_symbols: 1`); with
/// `0xADDR+0xADDR` (the query string, or a POST body) it names each address it can.
pub(super) fn symbol_response(request: &Request) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::handle;
    use crate::http::tests_support::get;

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
