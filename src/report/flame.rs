//! Collapsed stacks (`folded`, Brendan Gregg's format) and flame graph SVGs (inferno).

use std::collections::HashMap;

use super::filter::prepare;
use super::limits::{Bounded, MAX_OUTPUT_BYTES, invalid, output_too_large};
use super::options::{Options, sample_index};
use crate::Error;
use crate::profile::Profile;

/// A frame name as collapsed stacks carry it: `;` separates frames, so one inside a name
/// (`<[u8; 4] as Trait>::f`) becomes `:`.
pub fn folded_name(name: &str) -> String {
    name.replace(';', ":").replace(['\n', '\r'], " ")
}

/// Collapsed stacks (`root;caller;leaf VALUE`, one line per distinct stack, sorted), the
/// input of flame graph tools (inferno, Brendan Gregg's flamegraph.pl, speedscope).
/// Negative values (only in hand-made profiles) are left out.
pub fn folded(profile: &Profile, options: &Options) -> Result<String, Error> {
    let index = sample_index(profile, options.sample_index.as_deref())?;
    let prep = prepare(profile, None, index, options)?;
    let mut stacks: HashMap<String, i64> = HashMap::new();
    // Bytes of the distinct stacks so far: the output is about that, so it is bounded
    // before any of it is built.
    let mut size = 0usize;
    let names: Vec<String> = prep.paths.names.iter().map(|n| folded_name(n)).collect();
    for p in &prep.paths.paths {
        if p.value <= 0 || p.frames.is_empty() {
            continue;
        }
        let len = p
            .frames
            .iter()
            .map(|&(n, _)| names[n].len() + 1)
            .sum::<usize>();
        if size + len > MAX_OUTPUT_BYTES {
            return Err(output_too_large("collapsed stacks"));
        }
        let mut key = String::with_capacity(len);
        for (i, &(n, _)) in p.frames.iter().enumerate() {
            if i > 0 {
                key.push(';');
            }
            key.push_str(&names[n]);
        }
        match stacks.get_mut(&key) {
            Some(e) => *e = e.saturating_add(p.value),
            None => {
                size += len + 21;
                stacks.insert(key, p.value);
            }
        }
    }
    let mut lines: Vec<(String, i64)> = stacks.into_iter().collect();
    lines.sort();
    let mut out = String::new();
    for (stack, v) in lines {
        out.push_str(&stack);
        out.push(' ');
        out.push_str(&v.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// Flame graph settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlameOptions {
    /// The title; `None`: the sample type and unit.
    pub title: Option<String>,
    /// Frames narrower than this many pixels are left out (inferno's default 0.1; 0 keeps
    /// every frame).
    pub min_width: f64,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: None,
            min_width: 0.1,
        }
    }
}

impl FlameOptions {
    /// Sets the minimum frame width in pixels.
    pub fn min_width(mut self, pixels: f64) -> Self {
        self.min_width = pixels;
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

/// An interactive SVG flame graph (inferno: click to zoom, search, tooltips) of the sample
/// type `options` picks. A profile with no samples of that type is an error.
pub fn flamegraph(
    profile: &Profile,
    options: &Options,
    flame: &FlameOptions,
) -> Result<Vec<u8>, Error> {
    let stacks = folded(profile, options)?;
    if stacks.is_empty() {
        return Err(Error::NothingToDraw);
    }
    if !(flame.min_width >= 0.0 && flame.min_width.is_finite()) {
        return Err(invalid(format!(
            "minimum frame width {} is not a non-negative number",
            flame.min_width
        )));
    }
    let index = sample_index(profile, options.sample_index.as_deref())?;
    let ty = &profile.sample_types[index];
    let mut o = inferno::flamegraph::Options::default();
    o.title = flame
        .title
        .clone()
        .unwrap_or_else(|| format!("{} ({})", ty.ty, ty.unit));
    o.count_name = if ty.unit.is_empty() {
        "samples".into()
    } else {
        ty.unit.clone()
    };
    o.min_width = flame.min_width;
    o.deterministic = true;
    let mut svg = Vec::new();
    let mut out = Bounded {
        out: &mut svg,
        hit: false,
    };
    let drawn = inferno::flamegraph::from_lines(&mut o, stacks.lines(), &mut out);
    if out.hit {
        return Err(output_too_large("flame graph"));
    }
    drawn.map_err(|e| invalid(format!("cannot draw the flame graph: {e}")))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_names_keep_the_separator_meaning() {
        assert_eq!(folded_name("<[u8; 4] as T>::f"), "<[u8: 4] as T>::f");
    }
}
