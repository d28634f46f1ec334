//! Focus and ignore (pprof's `-focus`, `-ignore` regexes over function names), and the
//! preparation every report shares: pruned, filtered, the chosen sample type.

use std::collections::HashMap;

use regex::Regex;

use super::graph;
use super::limits::invalid;
use super::options::Options;
use super::prune::pruned;
use crate::Error;
use crate::profile::{Index, Location, Profile, Sample};

pub(super) fn regex(what: &str, pattern: Option<&str>) -> Result<Option<Regex>, Error> {
    pattern
        .filter(|p| !p.is_empty())
        .map(|p| Regex::new(p).map_err(|e| invalid(format!("bad {what} regex {p:?}: {e}"))))
        .transpose()
}

/// Focus and ignore as pprof's `FilterSamplesByName`: a sample is kept if no frame matches
/// `ignore` and (without focus) it has a frame, or a frame matches `focus`.
pub(super) struct Filter {
    pub(super) focus: Option<Regex>,
    pub(super) ignore: Option<Regex>,
}

impl Filter {
    fn new(o: &Options) -> Result<Filter, Error> {
        Ok(Filter {
            focus: regex("focus", o.focus.as_deref())?,
            ignore: regex("ignore", o.ignore.as_deref())?,
        })
    }

    /// Each location's verdict: `Some(false)` ignored, `Some(true)` focused, `None`
    /// neither (pprof's `focusOrIgnore` map).
    fn classify(&self, ix: &Index<'_>, p: &Profile) -> HashMap<u64, bool> {
        let matches = |re: &Regex, l: &Location| {
            l.lines.iter().any(|line| {
                ix.functions
                    .get(&line.function_id)
                    .is_some_and(|f| re.is_match(&f.name) || re.is_match(&f.filename))
            }) || ix
                .mappings
                .get(&l.mapping_id)
                .is_some_and(|m| re.is_match(&m.filename))
        };
        let mut verdicts = HashMap::with_capacity(p.locations.len());
        for l in &p.locations {
            if self.ignore.as_ref().is_some_and(|r| matches(r, l)) {
                verdicts.insert(l.id, false);
            } else if self.focus.as_ref().is_none_or(|r| matches(r, l)) {
                verdicts.insert(l.id, true);
            }
        }
        verdicts
    }
}

/// A `-tagfocus`/`-tagignore` filter (pprof's `compileTagFilter`): `key=regex[,regex]`
/// matches a sample with label `key` whose string value matches one of the regexes;
/// `regex[,regex]` without a key needs each regex to match some `key:value`; `key=range`
/// (`32kb`, `1kb:4kb`, `:64kb`, `4kb:`, with pprof's byte and time units or none) matches
/// numeric labels `key` in the range.
pub(super) struct TagFilter {
    key: Option<String>,
    test: TagTest,
}

enum TagTest {
    Regexes(Vec<Regex>),
    /// Inclusive bounds, in the label's base unit (bytes, nanoseconds, or a plain number).
    Range(Option<f64>, Option<f64>),
}

/// A number with an optional unit, in base units (bytes, nanoseconds).
fn scaled_number(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: f64 = n.parse().ok()?;
    let factor = match unit {
        "" => 1.0,
        "b" | "byte" | "bytes" => 1.0,
        "kb" | "kib" => 1024.0,
        "mb" | "mib" => 1024.0 * 1024.0,
        "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "tib" => 1024f64.powi(4),
        "ns" | "nanosecond" | "nanoseconds" => 1.0,
        "us" | "µs" | "microsecond" | "microseconds" => 1e3,
        "ms" | "millisecond" | "milliseconds" => 1e6,
        "s" | "sec" | "second" | "seconds" => 1e9,
        "m" | "min" | "minute" | "minutes" => 60e9,
        "h" | "hour" | "hours" => 3600e9,
        _ => return None,
    };
    Some(n * factor)
}

/// pprof's `parseTagFilterRange`: `V`, `V:`, `:V`, `A:B`.
fn range(s: &str) -> Option<(Option<f64>, Option<f64>)> {
    match s.split_once(':') {
        None => scaled_number(s).map(|v| (Some(v), Some(v))),
        Some(("", hi)) => scaled_number(hi).map(|hi| (None, Some(hi))),
        Some((lo, "")) => scaled_number(lo).map(|lo| (Some(lo), None)),
        Some((lo, hi)) => Some((Some(scaled_number(lo)?), Some(scaled_number(hi)?))),
    }
}

/// A numeric label's value in base units (`kilobytes` → bytes, `milliseconds` → ns).
fn base_value(value: i64, unit: &str) -> f64 {
    let factor = match unit {
        "kilobytes" | "kb" => 1024.0,
        "megabytes" | "mb" => 1024.0 * 1024.0,
        "gigabytes" | "gb" => 1024.0 * 1024.0 * 1024.0,
        "microseconds" | "us" => 1e3,
        "milliseconds" | "ms" => 1e6,
        "seconds" | "s" => 1e9,
        _ => 1.0,
    };
    value as f64 * factor
}

impl TagFilter {
    pub(super) fn new(what: &str, spec: Option<&str>) -> Result<Option<TagFilter>, Error> {
        let Some(spec) = spec.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let (key, value) = match spec.split_once('=') {
            Some((k, v)) => (Some(k.to_owned()), v),
            None => (None, spec),
        };
        if let Some((lo, hi)) = range(value) {
            return Ok(Some(TagFilter {
                key,
                test: TagTest::Range(lo, hi),
            }));
        }
        let regexes = value
            .split(',')
            .map(|r| Regex::new(r).map_err(|e| invalid(format!("bad {what} regex {r:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(TagFilter {
            key,
            test: TagTest::Regexes(regexes),
        }))
    }

    fn matches(&self, s: &Sample) -> bool {
        use crate::profile::LabelValue;
        match (&self.test, &self.key) {
            (TagTest::Range(lo, hi), key) => s.labels.iter().any(|l| match &l.value {
                LabelValue::Num { value, unit } if key.as_ref().is_none_or(|k| *k == l.key) => {
                    let v = base_value(*value, unit);
                    lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
                }
                _ => false,
            }),
            // Every regex matches some `key:value` (pprof's keyless form).
            (TagTest::Regexes(rs), None) => rs.iter().all(|r| {
                s.labels.iter().any(|l| match &l.value {
                    LabelValue::Str(v) => r.is_match(&format!("{}:{v}", l.key)),
                    _ => false,
                })
            }),
            (TagTest::Regexes(rs), Some(key)) => s.labels.iter().any(|l| match &l.value {
                LabelValue::Str(v) if l.key == *key => rs.iter().any(|r| r.is_match(v)),
                _ => false,
            }),
        }
    }
}

/// pprof's `applyFocus` on a copy of `p`, in its order: `FilterSamplesByName` (focus,
/// ignore, hide, show), `ShowFrom`, `FilterSamplesByTag` (tagfocus, tagignore). The
/// report's total is taken before (on every sample), as pprof's.
pub(super) fn apply(p: &Profile, o: &Options) -> Result<Profile, Error> {
    let filter = Filter::new(o)?;
    let hide = regex("hide", o.hide.as_deref())?;
    let show = regex("show", o.show.as_deref())?;
    let show_from = regex("show_from", o.show_from.as_deref())?;
    let tag_focus = TagFilter::new("tagfocus", o.tag_focus.as_deref())?;
    let tag_ignore = TagFilter::new("tagignore", o.tag_ignore.as_deref())?;
    let mut q = p.clone();
    let verdicts = {
        let ix = Index::new(p);
        filter.classify(&ix, p)
    };
    let names: HashMap<u64, (String, String)> = p
        .functions
        .iter()
        .map(|f| (f.id, (f.name.clone(), f.filename.clone())))
        .collect();
    let objects: HashMap<u64, String> = p
        .mappings
        .iter()
        .map(|m| (m.id, m.filename.clone()))
        .collect();
    let line_matches = |re: &Regex, line: &crate::profile::Line| {
        names
            .get(&line.function_id)
            .is_some_and(|(n, f)| re.is_match(n) || re.is_match(f))
    };
    let object_matches =
        |re: &Regex, l: &Location| objects.get(&l.mapping_id).is_some_and(|f| re.is_match(f));
    // Hide and show edit each location's lines; a location left with none is hidden.
    let mut hidden: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for l in &mut q.locations {
        if let Some(re) = &hide {
            if object_matches(re, l) {
                l.lines.clear();
            } else {
                l.lines.retain(|line| !line_matches(re, line));
            }
            if l.lines.is_empty() {
                hidden.insert(l.id);
            }
        }
        if let Some(re) = &show {
            if !object_matches(re, l) {
                l.lines.retain(|line| line_matches(re, line));
            }
            if l.lines.is_empty() {
                hidden.insert(l.id);
            }
        }
    }
    q.samples.retain_mut(|s| {
        let mut focused = false;
        for id in &s.location_ids {
            match verdicts.get(id) {
                Some(false) => return false,
                Some(true) => focused = true,
                None => {}
            }
        }
        if !focused {
            return false;
        }
        if !hidden.is_empty() {
            s.location_ids.retain(|id| !hidden.contains(id));
            if s.location_ids.is_empty() {
                return false;
            }
        }
        true
    });
    // Show from: cut each location above its outermost line whose function matches, and
    // each sample above its outermost such location; samples without one go.
    if let Some(re) = &show_from {
        let mut from: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for l in &mut q.locations {
            if object_matches(re, l) {
                from.insert(l.id);
            } else if let Some(i) = l.lines.iter().rposition(|line| {
                names
                    .get(&line.function_id)
                    .is_some_and(|(n, _)| re.is_match(n))
            }) {
                l.lines.truncate(i + 1);
                from.insert(l.id);
            }
        }
        q.samples.retain_mut(
            |s| match s.location_ids.iter().rposition(|id| from.contains(id)) {
                Some(i) => {
                    s.location_ids.truncate(i + 1);
                    true
                }
                None => false,
            },
        );
    }
    if tag_focus.is_some() || tag_ignore.is_some() {
        q.samples.retain(|s| {
            tag_focus.as_ref().is_none_or(|f| f.matches(s))
                && !tag_ignore.as_ref().is_some_and(|f| f.matches(s))
        });
    }
    Ok(q)
}

/// pprof's "Active filters" lines, in its order.
fn active(o: &Options) -> Vec<String> {
    [
        ("focus", &o.focus),
        ("ignore", &o.ignore),
        ("hide", &o.hide),
        ("show", &o.show),
        ("show_from", &o.show_from),
        ("tagfocus", &o.tag_focus),
        ("tagignore", &o.tag_ignore),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("{k}={v}"))
    })
    .collect()
}

/// Every location focused: for a profile [`apply`] already filtered.
fn all_focused(p: &Profile) -> HashMap<u64, bool> {
    p.locations.iter().map(|l| (l.id, true)).collect()
}

/// Everything a top-like report needs, from one or two profiles.
pub(super) struct Prepared {
    pub(super) paths: graph::Paths,
    pub(super) total: i64,
    pub(super) unit: String,
    pub(super) sample_type: String,
    pub(super) filters: Vec<String>,
}

/// The paths and totals of `profile` (minus `base`) for sample type `index`.
pub(super) fn prepare(
    profile: &Profile,
    base: Option<&Profile>,
    index: usize,
    o: &Options,
) -> Result<Prepared, Error> {
    let ty = profile.sample_types[index].clone();
    let mut paths = graph::Paths::default();
    let p = pruned(profile)?;
    let q = apply(&p, o)?;
    let ix = Index::new(&q);
    paths.add(&ix, &q, index, 1, &all_focused(&q));
    // pprof computes the total before focus/ignore ("to get percentages on all samples"),
    // over every sample, with or without a stack.
    let sum = |p: &Profile| {
        p.samples
            .iter()
            .map(|s| s.values.get(index).map_or(0, |v| v.unsigned_abs()))
            .fold(0u64, u64::saturating_add)
    };
    let mut total = sum(&p);
    if let Some(base) = base {
        if base.sample_types != profile.sample_types {
            return Err(invalid(format!(
                "incompatible sample types: {} and the base's {}",
                describe_types(profile),
                describe_types(base)
            )));
        }
        let b = pruned(base)?;
        let bq = apply(&b, o)?;
        let ix = Index::new(&bq);
        paths.add(&ix, &bq, index, -1, &all_focused(&bq));
        let base_total = sum(&b);
        if base_total > 0 {
            total = base_total;
        }
    }
    Ok(Prepared {
        paths,
        total: i64::try_from(total).unwrap_or(i64::MAX),
        unit: ty.unit.clone(),
        sample_type: ty.ty.clone(),
        filters: active(o),
    })
}

pub(super) fn describe_types(p: &Profile) -> String {
    let v: Vec<String> = p
        .sample_types
        .iter()
        .map(|t| format!("{}/{}", t.ty, t.unit))
        .collect();
    format!("[{}]", v.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::test_profiles::sample_profile;

    fn filter(focus: Option<&str>, ignore: Option<&str>) -> Filter {
        Filter::new(&Options {
            focus: focus.map(str::to_owned),
            ignore: ignore.map(str::to_owned),
            ..Options::default()
        })
        .unwrap()
    }

    /// As pprof's `focusOrIgnore`: a location matching `ignore` is ignored (whatever
    /// focus says), one matching `focus` is focused, any other has no verdict under a
    /// focus and is kept without one. Names, files and objects all match.
    #[test]
    fn verdicts_per_location_as_pprof() {
        let p = sample_profile();
        let ix = Index::new(&p);
        // Location 1 holds app::inner (inlined) and app::main; location 2 app::main.
        let v = filter(Some("inner"), None).classify(&ix, &p);
        assert_eq!((v.get(&1), v.get(&2)), (Some(&true), None));
        let v = filter(Some("main"), Some("inner")).classify(&ix, &p);
        assert_eq!((v.get(&1), v.get(&2)), (Some(&false), Some(&true)));
        let v = filter(None, None).classify(&ix, &p);
        assert_eq!((v.get(&1), v.get(&2)), (Some(&true), Some(&true)));
        // The object's file name matches too.
        let v = filter(None, Some("^/bin/app$")).classify(&ix, &p);
        assert_eq!((v.get(&1), v.get(&2)), (Some(&false), Some(&false)));
        assert_eq!(
            active(&Options {
                focus: Some("a".into()),
                ignore: Some("b".into()),
                show_from: Some("c".into()),
                tag_focus: Some("k=v".into()),
                ..Options::default()
            }),
            vec!["focus=a", "ignore=b", "show_from=c", "tagfocus=k=v"]
        );
    }

    #[test]
    fn tag_filter_forms_as_pprof() {
        use crate::profile::{Label, LabelValue};
        let sample = |labels: Vec<Label>| Sample {
            location_ids: vec![1],
            values: vec![1],
            labels,
        };
        let s = sample(vec![
            Label {
                key: "route".into(),
                value: LabelValue::Str("/users".into()),
            },
            Label {
                key: "bytes".into(),
                value: LabelValue::Num {
                    value: 2048,
                    unit: "bytes".into(),
                },
            },
        ]);
        let t = |spec: &str| TagFilter::new("tagfocus", Some(spec)).unwrap().unwrap();
        assert!(t("route=/us").matches(&s), "key=regex, unanchored");
        assert!(!t("route=/orders").matches(&s));
        assert!(
            t("route=/orders,/users").matches(&s),
            "any regex of the list"
        );
        assert!(t("route:/users").matches(&s), "keyless: key:value");
        assert!(!t("other=/users").matches(&s));
        assert!(t("bytes=1kb:4kb").matches(&s), "a numeric range");
        assert!(t("bytes=2kb").matches(&s), "one value");
        assert!(!t("bytes=:1kb").matches(&s));
        assert!(t("bytes=2048:").matches(&s));
        assert!(TagFilter::new("tagfocus", Some("route=(")).is_err());
        assert!(TagFilter::new("tagfocus", Some("")).unwrap().is_none());
    }

    #[test]
    fn a_bad_regex_names_the_option() {
        let e = Filter::new(&Options {
            focus: Some("(".into()),
            ..Options::default()
        })
        .err()
        .unwrap();
        assert!(e.to_string().contains("bad focus regex"), "{e}");
    }
}
