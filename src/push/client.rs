//! Where uploads go and how one is sent: the server URL (credentials taken out of it),
//! the headers (basic or bearer auth, tenant, user agent), the HTTP client (ureq over
//! rustls with the bundled web roots plus any given CA) and one attempt's outcome.

use std::time::Duration;

use super::queue::{Outcome, Upload};
use crate::Error;

fn push_error(what: impl Into<String>) -> Error {
    Error::Push { what: what.into() }
}

/// Credentials sent with each upload.
#[derive(Clone)]
pub(crate) enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

/// Where uploads go.
pub(crate) struct Target {
    /// `scheme://host[:port]` plus the path prefix, no trailing slash, no credentials.
    pub(crate) base: String,
    /// `user:password@` from the URL.
    userinfo: Option<(String, String)>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, Error> {
        let bad = |why: &str| push_error(format!("invalid server URL {url:?}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http://host:port or https://host"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        if rest.contains(['?', '#']) {
            return Err(bad("no query or fragment is allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                (Some((percent_decode(user), percent_decode(pass))), h)
            }
            None => (None, authority),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("no host"));
        }
        if let Some((_, port)) = host.rsplit_once(':')
            && !host.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(bad("the port is not a number from 0 to 65535"));
        }
        let base = format!("{scheme}://{host}{}", path.trim_end_matches('/'));
        // What the HTTP client will accept (catches what the checks above let through).
        ureq::http::Uri::try_from(format!("{base}/ingest").as_str())
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Target { base, userinfo })
    }

    pub(crate) fn headers(&self, auth: &Auth, tenant: Option<&str>) -> Vec<(String, String)> {
        use base64::Engine as _;
        let mut h = Vec::new();
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        match (auth, &self.userinfo) {
            (Auth::Basic(u, p), _) => h.push(("Authorization".into(), basic(u, p))),
            (Auth::Bearer(t), _) => h.push(("Authorization".into(), format!("Bearer {t}"))),
            (Auth::None, Some((u, p))) => h.push(("Authorization".into(), basic(u, p))),
            (Auth::None, None) => {}
        }
        if let Some(t) = tenant {
            h.push(("X-Scope-OrgID".into(), t.to_owned()));
        }
        h.push((
            "User-Agent".into(),
            format!("profile-guard/{}", env!("CARGO_PKG_VERSION")),
        ));
        h
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP client: rustls with the bundled web roots (plus any given), a timeout per
/// attempt, statuses returned rather than turned into errors.
pub(crate) fn client(
    timeout: Duration,
    root_certificates: &[Vec<u8>],
) -> Result<ureq::Agent, Error> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if !root_certificates.is_empty() {
        let mut certs: Vec<Certificate<'static>> = Vec::new();
        for pem in root_certificates {
            for item in ureq::tls::parse_pem(pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(push_error(format!("root certificate: {e}"))),
                }
            }
        }
        if certs.is_empty() {
            return Err(push_error("root certificate: no certificate in the PEM"));
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build();
    Ok(config.into())
}

/// One upload attempt.
pub(crate) fn send(
    client: &ureq::Agent,
    base: &str,
    headers: &[(String, String)],
    u: &Upload,
) -> Outcome {
    let url = format!("{base}{}", u.target);
    let endpoint = url.split('?').next().unwrap_or(&url);
    let mut req = client.post(&url).header("Content-Type", &u.content_type);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    for (k, v) in u.headers {
        req = req.header(*k, *v);
    }
    match req.send(&u.body[..]) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Outcome::Sent;
            }
            let body = resp
                .body_mut()
                .with_config()
                .limit(2048)
                .read_to_string()
                .unwrap_or_default();
            let why = format!("HTTP {status} from {endpoint}: {}", body.trim());
            // Pyroscope answers 422 for a push its ingesters could not take (starting,
            // restarting) and 400 for a profile it cannot read.
            if matches!(status, 408 | 422 | 425 | 429) || status >= 500 {
                Outcome::Retry(why)
            } else {
                Outcome::Rejected(why)
            }
        }
        Err(e) => Outcome::Retry(format!("{endpoint}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_credentials_taken_out() {
        let t = Target::parse("https://123:tok%40en@profiles.example.net/prefix/").unwrap();
        assert_eq!(t.base, "https://profiles.example.net/prefix");
        assert_eq!(t.base, "https://profiles.example.net/prefix");
        assert_eq!(t.userinfo, Some(("123".into(), "tok@en".into())));
        let h = t.headers(&Auth::None, Some("team-a"));
        assert_eq!(h[0].0, "Authorization");
        assert_eq!(h[0].1, "Basic MTIzOnRva0Blbg==");
        assert_eq!(h[1], ("X-Scope-OrgID".into(), "team-a".into()));
        assert!(Target::parse("http://127.0.0.1:4040").is_ok());
        for bad in [
            "127.0.0.1:4040",
            "ftp://host",
            "http://",
            "http://host:99999",
            "http://host:port",
            "http://host/?a=b",
        ] {
            let e = Target::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.to_string().contains("invalid server URL"), "{e}");
        }
    }
}
