//! Pyroscope's ingestion API, as its server (v1) reads it and pyroscope-go writes it:
//! `POST {url}/ingest?name=APP{tags}&from=T&until=T&spyName=..&sampleRate=..` with a
//! multipart body holding the gzipped pprof (`profile`) and, for kinds whose sample
//! types Pyroscope would misname, a `sample_type_config` (the block profile's
//! `contentions`/`delay` would otherwise be filed as mutex).
//!
//! The server names each upload's profile type from its sample types (`samples` →
//! `process_cpu`, `wall` → `wall`, `inuse_*`/`alloc_*` → `memory`, `goroutine` →
//! `goroutines`), splits the samples into series by their string labels (which must be
//! valid Prometheus label names) and keeps `span_id` inside the profile for span
//! profiles.

use std::fmt::Write as _;

use crate::{Label, LabelValue, Profile, ProfileKind};

/// The `spyName` our uploads carry (Pyroscope shows it as the `pyroscope_spy` label).
pub(crate) const SPY_NAME: &str = "profile-guard";

/// Label keys dropped before upload: one series per thread or task would make
/// Pyroscope's series unbounded (a `thread_name` is kept: there are few).
const DROPPED_LABELS: &[&str] = &["thread_id", "tokio_task_id"];

/// What one upload says about its profile type.
pub(crate) struct Shape {
    /// A `sample_type_config` JSON part, when the defaults would misname the type.
    pub sample_type_config: Option<&'static str>,
}

/// The shape of a kind's upload.
pub(crate) fn shape(kind: ProfileKind) -> Shape {
    Shape {
        sample_type_config: match kind {
            ProfileKind::Block => Some(
                r#"{"contentions":{"display-name":"block_count","units":"lock_samples","cumulative":true},"delay":{"display-name":"block_duration","units":"lock_nanoseconds","cumulative":true}}"#,
            ),
            ProfileKind::Mutex => Some(
                r#"{"contentions":{"display-name":"mutex_count","units":"lock_samples","cumulative":true},"delay":{"display-name":"mutex_duration","units":"lock_nanoseconds","cumulative":true}}"#,
            ),
            _ => None,
        },
    }
}

/// A label name Pyroscope accepts: Prometheus's `[a-zA-Z_][a-zA-Z0-9_]*` (`http.route`
/// becomes `http_route`).
pub(crate) fn label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The profile as uploaded: label keys made valid, per-thread and per-task ids dropped,
/// a clock profile's `time` sample type called `wall` (what Pyroscope files as wall
/// time), and `notes` added as comments.
pub(crate) fn prepare(mut p: Profile, kind: ProfileKind, notes: &[String]) -> Profile {
    for s in &mut p.samples {
        s.labels
            .retain(|l| !DROPPED_LABELS.contains(&l.key.as_str()));
        for l in &mut s.labels {
            if matches!(l.value, LabelValue::Str(_)) {
                l.key = label_name(&l.key);
            }
        }
        merge_duplicate_keys(&mut s.labels);
    }
    if kind == ProfileKind::Clock {
        for t in &mut p.sample_types {
            if t.ty == "time" {
                t.ty = "wall".into();
            }
        }
    }
    p.comments.extend(notes.iter().cloned());
    p
}

/// Two keys that sanitize alike (`a.b`, `a_b`): the first is kept.
fn merge_duplicate_keys(labels: &mut Vec<Label>) {
    let mut seen: Vec<String> = Vec::new();
    labels.retain(|l| {
        if !matches!(l.value, LabelValue::Str(_)) {
            return true;
        }
        if seen.contains(&l.key) {
            false
        } else {
            seen.push(l.key.clone());
            true
        }
    });
}

/// A tag value in the `name` parameter: Pyroscope's key parser ends a value at `,` or
/// `}` and splits at `=`, so those (and spaces, quotes) become `_`.
fn tag_value(v: &str) -> String {
    v.chars()
        .map(|c| {
            if matches!(c, ',' | '}' | '{' | '=' | '"' | ' ' | '\\') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// `app{k=v,...}` for the `name` parameter (tags sorted by key, names made valid).
pub(crate) fn series_name(app: &str, tags: &[(String, String)]) -> String {
    // Sorted by key; a later tag of a key replaces an earlier one.
    let tags: std::collections::BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| (label_name(k), tag_value(v)))
        .collect();
    let mut out = tag_value(app);
    out.push('{');
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}={v}");
    }
    out.push('}');
    out
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The query string of one upload; `from` and `until` in Unix nanoseconds (the server
/// reads 19 digits as nanoseconds, 10 as seconds).
pub(crate) fn query(name: &str, from: u64, until: u64, sample_rate: u32) -> String {
    format!(
        "name={}&from={from}&until={until}&spyName={SPY_NAME}&sampleRate={sample_rate}",
        query_escape(name)
    )
}

/// A multipart/form-data body: the profile (already gzipped pprof) and the optional
/// sample type config. Returns (content type, body).
pub(crate) fn multipart(
    profile_gz: &[u8],
    sample_type_config: Option<&str>,
    seed: u64,
) -> (String, Vec<u8>) {
    // A boundary that cannot occur in the gzip stream by chance in practice (and is
    // checked: a collision picks another).
    let mut seed = seed | 1;
    let boundary = loop {
        let b = format!("profile-guard-{seed:016x}{:016x}", seed.rotate_left(17));
        if !contains(profile_gz, b.as_bytes()) {
            break b;
        }
        seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    };
    let mut body = Vec::with_capacity(profile_gz.len() + 512);
    let part = |body: &mut Vec<u8>, name: &str, file: Option<&str>, ct: &str| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(format!("Content-Type: {ct}\r\n\r\n").as_bytes());
    };
    part(
        &mut body,
        "profile",
        Some("profile.pprof"),
        "application/octet-stream",
    );
    body.extend_from_slice(profile_gz);
    body.extend_from_slice(b"\r\n");
    if let Some(config) = sample_type_config {
        part(
            &mut body,
            "sample_type_config",
            Some("sample_type_config.json"),
            "application/json",
        );
        body.extend_from_slice(config.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sample, ValueType};

    #[test]
    fn label_names_are_made_valid_prometheus_names() {
        assert_eq!(label_name("http.route"), "http_route");
        assert_eq!(label_name("span_id"), "span_id");
        assert_eq!(label_name("9lives"), "_9lives");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("ünï"), "_n_");
    }

    #[test]
    fn series_names_sort_and_sanitize_tags() {
        let tags = vec![
            ("version".to_string(), "1.2.3".to_string()),
            ("env".to_string(), "dup".to_string()),
            ("env".to_string(), "prod,eu".to_string()),
            ("host.name".to_string(), "a=b}".to_string()),
        ];
        assert_eq!(
            series_name("my app", &tags),
            "my_app{env=prod_eu,host_name=a_b_,version=1.2.3}"
        );
        assert_eq!(series_name("svc", &[]), "svc{}");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_escape("a{b=c,d}"), "a%7Bb%3Dc%2Cd%7D");
        assert!(query("x{}", 1, 2, 100).starts_with("name=x%7B%7D&from=1&until=2&"));
    }

    #[test]
    fn prepare_drops_thread_ids_renames_keys_and_calls_clock_time_wall() {
        let mut p = Profile {
            sample_types: vec![
                ValueType::new("samples", "count"),
                ValueType::new("time", "nanoseconds"),
            ],
            ..Profile::default()
        };
        let str_label = |k: &str, v: &str| Label {
            key: k.into(),
            value: LabelValue::Str(v.into()),
        };
        let mut s = Sample::new(vec![], vec![1, 10]);
        s.labels = vec![
            str_label("thread_id", "7"),
            str_label("thread_name", "main"),
            str_label("http.route", "/a"),
            str_label("http_route", "/b"),
            Label {
                key: "bytes".into(),
                value: LabelValue::Num {
                    value: 8,
                    unit: "bytes".into(),
                },
            },
        ];
        p.samples.push(s);
        let out = prepare(p, ProfileKind::Clock, &["note".into()]);
        let keys: Vec<&str> = out.samples[0]
            .labels
            .iter()
            .map(|l| l.key.as_str())
            .collect();
        assert_eq!(keys, ["thread_name", "http_route", "bytes"]);
        assert_eq!(out.samples[0].labels[1].value, LabelValue::Str("/a".into()));
        assert_eq!(out.sample_types[1].ty, "wall");
        assert_eq!(out.comments, ["note"]);
    }

    #[test]
    fn multipart_body_has_both_parts_and_a_boundary_not_in_the_profile() {
        let (ct, body) = multipart(b"\x1f\x8bdata", Some("{}"), 42);
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"profile\"; filename=\"profile.pprof\""));
        assert!(text.contains("name=\"sample_type_config\""));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        // A profile that happens to hold the first boundary gets another one.
        let first = format!("profile-guard-{:016x}{:016x}", 43u64, 43u64.rotate_left(17));
        let (ct2, _) = multipart(first.as_bytes(), None, 43);
        assert!(!ct2.ends_with(&first));
    }
}
