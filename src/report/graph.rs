//! The function-level graph behind `top` and `diff`, computed as google/pprof's
//! `internal/graph` does for `-top` (granularity `functions`, inlined frames kept): a node per
//! printable name; per sample, `cum` once per node on the stack and `flat` to the leaf.

use std::collections::{HashMap, HashSet};

use crate::profile::{Index, Location, Profile};

/// One sample reduced to node indices (root first) and the chosen value.
pub(crate) struct Path {
    /// Node index and whether the edge into it is inline (the frame is inlined into the
    /// next frame towards the root, within one location).
    pub frames: Vec<(usize, bool)>,
    pub value: i64,
}

/// Node names and the samples as paths over them.
#[derive(Default)]
pub(crate) struct Paths {
    pub names: Vec<String>,
    index: HashMap<String, usize>,
    pub paths: Vec<Path>,
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Paths {
    fn node(&mut self, name: String) -> usize {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.names.len();
        self.index.insert(name.clone(), i);
        self.names.push(name);
        i
    }

    /// Adds `profile`'s samples with value index `value`, multiplied by `sign`. A sample
    /// counts if one of its locations is focused (`verdicts` true) and none ignored
    /// (false), as pprof's `FilterSamplesByName`; samples without locations never count.
    pub(crate) fn add(
        &mut self,
        ix: &Index<'_>,
        profile: &Profile,
        value: usize,
        sign: i64,
        verdicts: &HashMap<u64, bool>,
    ) {
        // Node indices of each location's frames, outermost (caller) first.
        let mut location_nodes: HashMap<u64, Vec<usize>> = HashMap::new();
        for s in &profile.samples {
            let w = s
                .values
                .get(value)
                .copied()
                .unwrap_or(0)
                .saturating_mul(sign);
            if w == 0 {
                continue;
            }
            let locs: Vec<&Location> = s
                .location_ids
                .iter()
                .filter_map(|id| ix.locations.get(id).copied())
                .collect();
            let mut focused = false;
            let mut ignored = false;
            for id in &s.location_ids {
                match verdicts.get(id) {
                    Some(true) => focused = true,
                    Some(false) => ignored = true,
                    None => {}
                }
            }
            if ignored || !focused {
                continue;
            }
            let mut frames = Vec::new();
            for l in locs.iter().rev() {
                if let std::collections::hash_map::Entry::Vacant(entry) = location_nodes.entry(l.id)
                {
                    // pprof's printable name at function granularity: the function,
                    // else `[object]`, else `<unknown>`.
                    let object = ix.mappings.get(&l.mapping_id).map_or("", |m| &m.filename);
                    let mut name_of = |function: &str| {
                        self.node(match (function, object) {
                            ("", "") => "<unknown>".to_owned(),
                            ("", object) => format!("[{}]", base_name(object)),
                            (function, _) => function.to_owned(),
                        })
                    };
                    let nodes: Vec<usize> = if l.lines.is_empty() {
                        vec![name_of("")]
                    } else {
                        l.lines
                            .iter()
                            .rev()
                            .map(|line| {
                                name_of(ix.functions.get(&line.function_id).map_or("", |f| &f.name))
                            })
                            .collect()
                    };
                    entry.insert(nodes);
                }
                let nodes = &location_nodes[&l.id];
                for (i, &n) in nodes.iter().enumerate() {
                    frames.push((n, i != 0));
                }
            }
            self.paths.push(Path { frames, value: w });
        }
    }
}

/// A node's totals.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    pub index: usize,
    pub flat: i64,
    pub cum: i64,
    pub inline_in: bool,
    pub noinline_in: bool,
}

/// Nodes with nonzero flat or cum, over the paths, counting only nodes in `kept` (all when
/// `None`): a dropped frame is skipped, and a sample whose leaf was dropped adds no flat.
/// Edges lighter than `edge_cutoff` are dropped before the inline labels are decided (as
/// pprof's `TrimLowFrequencyEdges`).
pub(crate) fn nodes(paths: &Paths, kept: Option<&HashSet<usize>>, edge_cutoff: i64) -> Vec<Node> {
    let mut nodes: Vec<Node> = (0..paths.names.len())
        .map(|index| Node {
            index,
            ..Node::default()
        })
        .collect();
    // Edge weight, and inline unless ever added as a call.
    let mut edges: HashMap<(usize, usize), (i64, bool)> = HashMap::new();
    let mut seen = HashSet::new();
    let mut seen_edges = HashSet::new();
    for p in &paths.paths {
        seen.clear();
        seen_edges.clear();
        let mut parent: Option<usize> = None;
        let mut residual = false;
        for &(n, inline) in &p.frames {
            if kept.is_some_and(|k| !k.contains(&n)) {
                residual = true;
                continue;
            }
            if seen.insert(n) {
                nodes[n].cum = nodes[n].cum.saturating_add(p.value);
            }
            if let Some(parent) = parent
                && parent != n
                && seen_edges.insert((parent, n))
            {
                let e = edges.entry((parent, n)).or_insert((0, inline));
                e.0 = e.0.saturating_add(p.value);
                if !inline {
                    e.1 = false;
                }
            }
            parent = Some(n);
            residual = false;
        }
        if let Some(leaf) = parent
            && !residual
        {
            nodes[leaf].flat = nodes[leaf].flat.saturating_add(p.value);
        }
    }
    for (&(_, to), &(weight, inline)) in &edges {
        if weight.saturating_abs() < edge_cutoff {
            continue;
        }
        if inline {
            nodes[to].inline_in = true;
        } else {
            nodes[to].noinline_in = true;
        }
    }
    nodes.retain(|n| n.flat != 0 || n.cum != 0);
    nodes
}

/// Go's `FlatNameOrder`: |flat| descending, then name, then |cum| descending.
/// pprof's `CumNameOrder`: cum descending, then name, then flat descending.
pub(crate) fn sort_cum(nodes: &mut [Node], names: &[String]) {
    nodes.sort_by(|a, b| {
        b.cum
            .unsigned_abs()
            .cmp(&a.cum.unsigned_abs())
            .then_with(|| names[a.index].cmp(&names[b.index]))
            .then_with(|| b.flat.unsigned_abs().cmp(&a.flat.unsigned_abs()))
    });
}

pub(crate) fn sort_flat(nodes: &mut [Node], names: &[String]) {
    nodes.sort_by(|a, b| {
        b.flat
            .unsigned_abs()
            .cmp(&a.flat.unsigned_abs())
            .then_with(|| names[a.index].cmp(&names[b.index]))
            .then_with(|| b.cum.unsigned_abs().cmp(&a.cum.unsigned_abs()))
    });
}
