//! `Profile::delta`: the change between two snapshots of a cumulative profile (what
//! `?seconds=N` serves for heap, allocs, mutex and block).

use super::{Index, Label, Profile, Sample};
use std::collections::HashMap;

impl Profile {
    /// The change from `base` to this profile: what happened between two snapshots of a
    /// cumulative profile (heap allocations, mutex and block events), as Go's HTTP
    /// handler serves for `?seconds=N`.
    ///
    /// Samples are matched by their stack (each location's address and function names)
    /// and labels. Cumulative values are subtracted; values of sample types named
    /// `inuse_*` are taken from this profile as they are — they are a state, not a count,
    /// and subtracting them (as Go does, its issues 57765 and 67942) gives meaningless
    /// negative memory. Samples whose values all come out zero are dropped. The result
    /// keeps this profile's locations, functions and mappings; `duration_nanos` is the
    /// time between the two.
    pub fn delta(&self, base: &Profile) -> Profile {
        type Key = (Vec<(u64, Vec<String>)>, Vec<Label>);
        fn key(ix: &Index<'_>, s: &Sample) -> Key {
            let frames = s
                .location_ids
                .iter()
                .map(|id| {
                    let address = ix.locations.get(id).map_or(0, |l| l.address);
                    let names = ix
                        .names(std::slice::from_ref(id))
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    (address, names)
                })
                .collect();
            (frames, s.labels.clone())
        }
        let base_types: Vec<&str> = base.sample_types.iter().map(|t| t.ty.as_str()).collect();
        let base_index = Index::new(base);
        let mut before: HashMap<Key, Vec<i64>> = HashMap::new();
        for s in &base.samples {
            let values = before
                .entry(key(&base_index, s))
                .or_insert_with(|| vec![0; s.values.len()]);
            for (v, x) in values.iter_mut().zip(&s.values) {
                *v += x;
            }
        }
        let index = Index::new(self);
        let mut out = self.clone();
        out.samples.clear();
        for s in &self.samples {
            let old = before.get(&key(&index, s));
            let mut sample = s.clone();
            for (i, v) in sample.values.iter_mut().enumerate() {
                let ty = self.sample_types.get(i).map_or("", |t| t.ty.as_str());
                if ty.starts_with("inuse_") {
                    continue;
                }
                // The same sample type in the base (by name: the types line up in practice).
                let j = base_types.iter().position(|t| *t == ty).unwrap_or(i);
                *v -= old.and_then(|o| o.get(j)).copied().unwrap_or(0);
            }
            if sample.values.iter().any(|&v| v != 0) {
                out.samples.push(sample);
            }
        }
        if self.time_nanos > 0 && base.time_nanos > 0 {
            out.duration_nanos = self.time_nanos - base.time_nanos;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::test_profiles::*;

    #[test]
    fn delta_subtracts_counts_and_keeps_in_use_from_the_end() {
        let base = heap_like(&[(1, 10, 5), (2, 7, 7)], 1_000);
        // Location ids renumbered in the end profile (0x1234 is id 2 there, 0x2000 id 1):
        // samples are matched by address and names, not ids.
        let mut end = heap_like(&[(2, 15, 3), (1, 7, 7)], 5_000);
        end.locations[0].id = 2;
        end.locations[1].id = 1;
        let d = end.delta(&base);
        assert_eq!(d.duration_nanos, 4_000);
        let by_addr = |p: &Profile, s: &Sample| {
            p.locations
                .iter()
                .find(|l| l.id == s.location_ids[0])
                .unwrap()
                .address
        };
        let mut got: Vec<(u64, Vec<i64>)> = d
            .samples
            .iter()
            .map(|s| (by_addr(&d, s), s.values.clone()))
            .collect();
        got.sort();
        // 0x1234: alloc 15 - 10 = 5, in use 3 (the end state, not 3 - 5).
        // 0x2000: alloc 7 - 7 = 0 but in use 7: kept.
        assert_eq!(got, vec![(0x1234, vec![5, 3]), (0x2000, vec![0, 7])]);
    }

    #[test]
    fn delta_drops_samples_that_did_not_change() {
        let base = heap_like(&[(1, 10, 0)], 1);
        let end = heap_like(&[(1, 10, 0)], 2);
        assert!(end.delta(&base).samples.is_empty());
    }
}
