//! Focus and ignore (pprof's `-focus`, `-ignore` regexes over function names), and the
//! preparation every report shares: pruned, filtered, the chosen sample type.

use std::collections::HashMap;

use regex::Regex;

use super::prune::pruned;
use super::{Options, graph, invalid};
use crate::Error;
use crate::profile::{Index, Location, Profile};

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

    fn active(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(f) = &self.focus {
            v.push(format!("focus={f}"));
        }
        if let Some(i) = &self.ignore {
            v.push(format!("ignore={i}"));
        }
        v
    }
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
    let filter = Filter::new(o)?;
    let ty = profile.sample_types[index].clone();
    let mut paths = graph::Paths::default();
    let p = pruned(profile)?;
    let ix = Index::new(&p);
    paths.add(&ix, &p, index, 1, &filter.classify(&ix, &p));
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
        let ix = Index::new(&b);
        paths.add(&ix, &b, index, -1, &filter.classify(&ix, &b));
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
        filters: filter.active(),
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
            filter(Some("a"), Some("b")).active(),
            vec!["focus=a".to_string(), "ignore=b".to_string()]
        );
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
