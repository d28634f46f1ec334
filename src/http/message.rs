//! What the endpoints take and give: the request, its parsed query, the response (and
//! the 401 both servers send for a wrong bearer token).

use crate::Profile;

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
    pub(super) fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
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
    pub(super) fn error(status: u16, message: &str) -> Response {
        Response::new(status, TEXT, format!("{message}\n").into_bytes())
    }

    pub(super) fn text(body: Vec<u8>) -> Response {
        Response::new(200, TEXT, body)
    }

    /// A profile, gzipped, as an attachment named `name`.
    pub(super) fn profile(p: &Profile, name: &str) -> Response {
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

pub(super) const TEXT: &str = "text/plain; charset=utf-8";

/// The parsed query.
pub(super) struct Query<'a> {
    pub(super) seconds: Option<&'a str>,
    pub(super) debug: Option<&'a str>,
    pub(super) kind: Option<&'a str>,
    pub(super) sample_index: Option<&'a str>,
}

pub(super) fn parse_query(query: &str) -> Query<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_keeps_the_first_value_of_each_parameter_and_ignores_unknown_ones() {
        let q = parse_query("debug=1&x=9&seconds=5&debug=7&si=alloc_space&kind");
        assert_eq!(q.debug, Some("1"));
        assert_eq!(q.seconds, Some("5"));
        assert_eq!(q.sample_index, Some("alloc_space"));
        assert_eq!(q.kind, Some(""));
        let q = parse_query("");
        assert_eq!(
            (q.seconds, q.debug, q.kind, q.sample_index),
            (None, None, None, None)
        );
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(bearer_refusal("s3cret", Some("Bearer s3cret")).is_none());
        assert!(bearer_refusal("s3cret", Some("  Bearer s3cret ")).is_none());
        for wrong in [
            None,
            Some("Bearer other"),
            Some("Basic s3cret"),
            Some("s3cret"),
        ] {
            let r = bearer_refusal("s3cret", wrong).expect("refused");
            assert_eq!(r.status, 401, "{wrong:?}");
            assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
            assert_eq!(r.header("Content-Type"), Some(TEXT));
        }
    }
}
