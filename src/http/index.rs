//! `/debug/pprof/`: the HTML index, one row per endpoint of the kinds table with its
//! count where one is cheap, and the other endpoints.

use std::fmt::Write as _;

use super::message::Response;
use crate::kind::{self, Taking};

/// The HTML index: every profile of the kinds table (by endpoint), its count where one
/// is cheap (a table's size, nothing symbolized), and the other endpoints.
pub(super) fn index() -> Response {
    let mut rows: Vec<(&str, String, String)> = vec![
        (
            "cmdline",
            String::new(),
            "The command line invocation of the current program".into(),
        ),
        (
            "flamegraph",
            String::new(),
            "An SVG flame graph to look at: ?kind=cpu|heap|allocs|mutex|block|goroutine|clock (default cpu) &seconds=N &sample_index=T".into(),
        ),
        (
            "symbol",
            String::new(),
            "Function names of program counters".into(),
        ),
    ];
    for k in kind::KINDS.iter().filter(|k| k.available) {
        let count = k.count.map(|c| c().to_string()).unwrap_or_default();
        let off = k.off.and_then(|off| off());
        for (i, endpoint) in k.endpoints.iter().enumerate() {
            let mut description = if i == 0 {
                k.description.to_string()
            } else {
                "The same as goroutine".to_string()
            };
            if let Some(off) = off {
                description = format!("{description} <b>Off</b>: {}.", escape(off));
            }
            rows.push((endpoint, count.clone(), description));
        }
    }
    rows.sort_by_key(|r| r.0);
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let linked_bare = |name: &str| {
        ["cmdline", "symbol"].contains(&name)
            || kind::endpoint(name).is_some_and(|k| k.taking == Taking::Session)
    };
    let mut html = String::from(
        "<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n/debug/pprof/\n<br>\n\
         <p>Set debug=1 as a query parameter to export in legacy text format</p>\n<br>\n\
         Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n",
    );
    for (name, count, _) in &rows {
        let link = if linked_bare(name) {
            name.to_string()
        } else if *name == "flamegraph" {
            "flamegraph?kind=heap".to_string()
        } else {
            format!("{name}?debug=1")
        };
        let _ = writeln!(
            html,
            "<tr><td>{count}</td><td><a href='{link}'>{name}</a></td></tr>"
        );
    }
    html.push_str("</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n");
    for (name, _, description) in &rows {
        let _ = writeln!(
            html,
            "<li><div class=profile-name>{name}: </div> {description}</li>"
        );
    }
    html.push_str("</ul>\n</p>\n</body>\n</html>\n");
    Response::new(200, "text/html; charset=utf-8", html.into_bytes())
}

#[cfg(test)]
mod tests {
    use crate::http::tests_support::get;
    use crate::runtime;

    #[test]
    fn cmdline_is_nul_separated_and_index_links_every_profile() {
        let r = get("/debug/pprof/cmdline", "");
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            runtime::cmdline().join("\0")
        );
        let r = get("/debug/pprof/", "");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        let html = String::from_utf8(r.body).unwrap();
        // Nothing in the unit tests turns the mutex profile on: the page says how.
        assert!(
            html.contains("mutex profiling is off: call profile::runtime::mutex::set_fraction(1)"),
            "{html}"
        );
        let text = String::from_utf8(get("/debug/pprof/mutex", "debug=1").body).unwrap();
        assert!(
            text.ends_with("# profile: mutex profiling is off: call profile::runtime::mutex::set_fraction(1) (only profile::sync locks are recorded)\n"),
            "{text}"
        );
        let p = crate::Profile::decode(&get("/debug/pprof/mutex", "").body).unwrap();
        assert!(
            p.comments
                .iter()
                .any(|c| c.contains("mutex profiling is off")),
            "{:?}",
            p.comments
        );
        for link in [
            "heap?debug=1",
            "goroutine?debug=2",
            "'profile'",
            "mutex?debug=1",
        ] {
            assert!(html.contains(link), "{link} missing:\n{html}");
        }
    }
}
