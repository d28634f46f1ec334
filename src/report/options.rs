//! What a report shows ([`Options`]) and which sample type it reads ([`sample_index`]).

use super::limits::invalid;
use crate::Error;
use crate::profile::Profile;

/// What a report shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The sample type to report (`inuse_space`, `alloc_space`, `delay`, `cpu`, ... or an
    /// index); `None`: the profile's default, else its last (as pprof).
    pub sample_index: Option<String>,
    /// Show at most this many entries (0: all, pprof's `-nodecount`).
    pub node_count: usize,
    /// Drop entries whose cum is below this fraction of the total (pprof's
    /// `-nodefraction`, default 0.005).
    pub node_fraction: f64,
    /// Keep only samples with a frame matching this regex (function name, file or object).
    pub focus: Option<String>,
    /// Drop samples with a frame matching this regex.
    pub ignore: Option<String>,
    /// Remove frames matching this regex from every stack (pprof's `-hide`).
    pub hide: Option<String>,
    /// Keep only frames matching this regex in every stack (pprof's `-show`).
    pub show: Option<String>,
    /// Drop frames above (callers of) the outermost frame matching this regex; samples
    /// without one go (pprof's `-show_from`).
    pub show_from: Option<String>,
    /// Keep only samples with a matching label: `key=regex`, `regex` (any `key:value`) or
    /// `key=range` for numeric labels (pprof's `-tagfocus`).
    pub tag_focus: Option<String>,
    /// Drop samples with a matching label, the same forms (pprof's `-tagignore`).
    pub tag_ignore: Option<String>,
    /// Sort the top table by cumulative value (pprof's `-cum`).
    pub cum: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sample_index: None,
            node_count: 0,
            node_fraction: 0.005,
            focus: None,
            ignore: None,
            hide: None,
            show: None,
            show_from: None,
            tag_focus: None,
            tag_ignore: None,
            cum: false,
        }
    }
}

impl Options {
    /// Default options with this sample type.
    pub fn sample_index(mut self, index: impl Into<String>) -> Self {
        self.sample_index = Some(index.into());
        self
    }

    /// Sets the node count (0: all).
    pub fn node_count(mut self, count: usize) -> Self {
        self.node_count = count;
        self
    }

    /// Sets the node fraction (0: keep every entry).
    pub fn node_fraction(mut self, fraction: f64) -> Self {
        self.node_fraction = fraction;
        self
    }

    /// Sets the focus regex.
    pub fn focus(mut self, regex: impl Into<String>) -> Self {
        self.focus = Some(regex.into());
        self
    }

    /// Sets the ignore regex.
    pub fn ignore(mut self, regex: impl Into<String>) -> Self {
        self.ignore = Some(regex.into());
        self
    }

    /// Sets the hide regex (frames removed).
    pub fn hide(mut self, regex: impl Into<String>) -> Self {
        self.hide = Some(regex.into());
        self
    }

    /// Sets the show regex (only matching frames kept).
    pub fn show(mut self, regex: impl Into<String>) -> Self {
        self.show = Some(regex.into());
        self
    }

    /// Sets the show-from regex (callers of the outermost match dropped).
    pub fn show_from(mut self, regex: impl Into<String>) -> Self {
        self.show_from = Some(regex.into());
        self
    }

    /// Sets the tag focus (`key=regex`, `regex`, `key=range`).
    pub fn tag_focus(mut self, spec: impl Into<String>) -> Self {
        self.tag_focus = Some(spec.into());
        self
    }

    /// Sets the tag ignore (`key=regex`, `regex`, `key=range`).
    pub fn tag_ignore(mut self, spec: impl Into<String>) -> Self {
        self.tag_ignore = Some(spec.into());
        self
    }

    /// Sorts the top table by cumulative value.
    pub fn cum(mut self, cum: bool) -> Self {
        self.cum = cum;
        self
    }
}

/// The index of the sample type `name` (pprof's `SampleIndexByName`): a type name, a type
/// with `inuse_` dropped, or a number; `None` picks the default type, else the last.
pub fn sample_index(profile: &Profile, name: Option<&str>) -> Result<usize, Error> {
    if profile.sample_types.is_empty() {
        return Err(invalid("the profile has no sample types"));
    }
    let last = profile.sample_types.len() - 1;
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(profile
            .default_sample_type
            .as_deref()
            .and_then(|d| profile.sample_types.iter().position(|t| t.ty == d))
            .unwrap_or(last));
    };
    if let Ok(i) = name.parse::<i64>() {
        return usize::try_from(i)
            .ok()
            .filter(|&i| i <= last)
            .ok_or_else(|| invalid(format!("sample index {name} is outside [0..{last}]")));
    }
    let no_inuse = name.strip_prefix("inuse_").unwrap_or(name);
    profile
        .sample_types
        .iter()
        .position(|t| t.ty == name || t.ty == no_inuse)
        .ok_or_else(|| {
            let types: Vec<&str> = profile.sample_types.iter().map(|t| t.ty.as_str()).collect();
            invalid(format!(
                "sample index {name:?} must be one of: {}",
                types.join(", ")
            ))
        })
}
