//! The snapshot overlay: prior values of keys written while a snapshot older than the write was live.
//!
//! The tree holds only the newest state. A batch with version `w` that writes key `k` while some live
//! snapshot has a version `< w` records `(w, value of k before the batch)`. A snapshot at version `s` reads
//! `k` as the prior value of the first record with `w > s`, or from the tree if there is none. Records are
//! appended in version order, so pruning those no live snapshot needs (`w ≤` the oldest live version) pops
//! them from the front of one queue.
//!
//! The writer alone changes the overlay, under the exclusive tree latch; readers consult it under the
//! shared latch, so a snapshot read sees the overlay and the tree of the same moment.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

/// Bytes charged per record beyond its key and value: the map node, queue entry and vectors.
const RECORD_OVERHEAD: u64 = 64;

type Records = VecDeque<(u64, Option<Vec<u8>>)>;

/// Prior values by key, each key's records in version order.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    map: BTreeMap<Vec<u8>, Records>,
    order: VecDeque<(u64, Vec<u8>)>,
    bytes: u64,
}

fn cost(key: &[u8], prior: Option<&Vec<u8>>) -> u64 {
    2 * key.len() as u64 + prior.map_or(0, |v| v.len() as u64) + RECORD_OVERHEAD
}

impl Overlay {
    /// Records that batch `w` changes `key`, whose value before the batch was `prior`. Only the first change
    /// of a key within a batch is recorded.
    pub fn record(&mut self, key: &[u8], w: u64, prior: Option<Vec<u8>>) {
        let recs = self.map.entry(key.to_vec()).or_default();
        if recs.back().is_some_and(|(v, _)| *v == w) {
            return;
        }
        self.bytes += cost(key, prior.as_ref());
        recs.push_back((w, prior));
        self.order.push_back((w, key.to_vec()));
    }

    /// True if the batch `w` already recorded `key` (so its prior value need not be read again).
    pub fn has(&self, key: &[u8], w: u64) -> bool {
        self.map
            .get(key)
            .and_then(|r| r.back())
            .is_some_and(|(v, _)| *v == w)
    }

    /// The value of `key` as of version `s` if the overlay overrides the tree: `Some(None)` if it was absent.
    pub fn lookup(&self, key: &[u8], s: u64) -> Option<Option<&[u8]>> {
        first_after(self.map.get(key)?, s)
    }

    /// Keys in `(lower, upper)` the overlay overrides for version `s`, with their value as of `s`, ascending
    /// (or descending if `rev`), at most `max`.
    pub fn range(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        s: u64,
        rev: bool,
        max: usize,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        if self.map.is_empty() || !valid_range(lower, upper) {
            return Vec::new();
        }
        let range = self.map.range::<[u8], _>((lower, upper));
        let pick = |(k, recs): (&Vec<u8>, &Records)| {
            first_after(recs, s).map(|v| (k.clone(), v.map(<[u8]>::to_vec)))
        };
        if rev {
            range.rev().filter_map(pick).take(max).collect()
        } else {
            range.filter_map(pick).take(max).collect()
        }
    }

    /// Drops every record no snapshot at a version ≥ `oldest` needs (those with `w ≤ oldest`).
    pub fn prune_through(&mut self, oldest: u64) {
        while let Some((w, _)) = self.order.front() {
            if *w > oldest {
                break;
            }
            let Some((w, key)) = self.order.pop_front() else {
                break;
            };
            if let Some(recs) = self.map.get_mut(&key) {
                if recs.front().is_some_and(|(v, _)| *v == w)
                    && let Some((_, prior)) = recs.pop_front()
                {
                    self.bytes = self.bytes.saturating_sub(cost(&key, prior.as_ref()));
                }
                if recs.is_empty() {
                    self.map.remove(&key);
                }
            }
        }
    }

    /// Drops everything (no snapshot is live).
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Bytes charged to the overlay.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True if nothing is recorded.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn first_after(recs: &Records, s: u64) -> Option<Option<&[u8]>> {
    recs.iter().find(|(w, _)| *w > s).map(|(_, v)| v.as_deref())
}

/// False for ranges `BTreeMap::range` would panic on (inverted, or equal bounds both excluded).
pub(crate) fn valid_range(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l <= u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l < u,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_the_value_before_the_first_later_write() {
        let mut o = Overlay::default();
        o.record(b"k", 5, None);
        o.record(b"k", 5, Some(b"ignored".to_vec()));
        o.record(b"k", 8, Some(b"v5".to_vec()));
        assert_eq!(o.lookup(b"k", 3), Some(None));
        assert_eq!(o.lookup(b"k", 5), Some(Some(&b"v5"[..])));
        assert_eq!(o.lookup(b"k", 8), None);
        assert_eq!(
            o.range(Bound::Unbounded, Bound::Unbounded, 4, false, 10),
            vec![(b"k".to_vec(), None)]
        );
        o.prune_through(5);
        assert_eq!(o.lookup(b"k", 6), Some(Some(&b"v5"[..])));
        o.prune_through(8);
        assert!(o.is_empty());
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn inverted_ranges_are_empty() {
        let mut o = Overlay::default();
        o.record(b"a", 1, None);
        assert!(
            o.range(Bound::Excluded(b"b"), Bound::Excluded(b"b"), 0, false, 9)
                .is_empty()
        );
        assert!(
            o.range(Bound::Included(b"c"), Bound::Included(b"a"), 0, true, 9)
                .is_empty()
        );
    }
}
