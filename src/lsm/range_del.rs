//! Range tombstones: what a [`WriteBatch::delete_range`](crate::WriteBatch::delete_range) leaves in the
//! LSM tree, and how reads and compactions apply them.
//!
//! A range tombstone `[start, end) @ seq` hides every version with a sequence below `seq` of every user
//! key `k` with `start <= k < end`, for a reader at a sequence `>= seq`. It lives beside the point entries
//! of its source: in a list of the memtable ([`super::memtable`]), and in the range-deletion block of a
//! table (byte table in [`super::sstable`]). Reads never look for tombstones by key range: a read
//! gathers the tombstones of every source it reads (memtables, then every table of its version: they
//! are few and held in memory) into one [`RangeDels`], fragmented for the read's sequence, and asks it
//! for the newest tombstone covering each key it finds. So a covered key stays hidden whatever a bloom
//! filter, a level's key ranges or the order of the sources say.
//!
//! Compaction hands every input tombstone to its outputs, clipped to each output table's share of the
//! key space ([`clip`]), so tables of a level ≥ 1 keep disjoint key ranges; it drops the point entries a
//! tombstone every snapshot sees hides, and drops that tombstone once no table below the output spans any
//! of its keys (the bottom of the tree for that range).

use std::collections::BTreeMap;

use crate::batch::{get_varint64, put_bytes, put_varint, take_bytes};

/// One range tombstone: `[start, end)` deleted at sequence `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeTombstone {
    /// The first user key covered.
    pub start: Vec<u8>,
    /// The first user key above the range (not covered).
    pub end: Vec<u8>,
    /// The sequence of the range delete.
    pub seq: u64,
}

impl RangeTombstone {
    /// Bytes charged for it in memory (memtable accounting).
    pub fn charge(&self) -> u64 {
        (self.start.len() + self.end.len() + 32) as u64
    }
}

/// The tombstones one read honours (those with a sequence at or below the read's), fragmented into
/// sorted, disjoint pieces, each with the newest sequence covering it.
#[derive(Clone, Debug, Default)]
pub struct RangeDels {
    /// `(start, end, seq)`, sorted by `start`, disjoint.
    pieces: Vec<(Vec<u8>, Vec<u8>, u64)>,
}

impl RangeDels {
    /// The tombstones of `all` with a sequence ≤ `read_seq`.
    pub fn new<'a>(all: impl IntoIterator<Item = &'a RangeTombstone>, read_seq: u64) -> Self {
        let visible: Vec<&RangeTombstone> = all
            .into_iter()
            .filter(|t| t.seq <= read_seq && t.start < t.end)
            .collect();
        if visible.is_empty() {
            return RangeDels::default();
        }
        // Sweep over the boundaries, keeping the sequences of the tombstones open at each.
        let mut events: Vec<(&[u8], bool, u64)> = Vec::with_capacity(2 * visible.len());
        for t in &visible {
            events.push((&t.start, true, t.seq));
            events.push((&t.end, false, t.seq));
        }
        events.sort_by(|a, b| a.0.cmp(b.0));
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        let mut pieces: Vec<(Vec<u8>, Vec<u8>, u64)> = Vec::new();
        let mut at: Option<&[u8]> = None;
        let mut i = 0;
        while let Some(&(point, _, _)) = events.get(i) {
            // The piece from the previous boundary to this one, covered by the newest open tombstone.
            if let (Some(from), Some((&newest, _))) = (at, open.last_key_value())
                && from < point
            {
                match pieces.last_mut() {
                    Some(last) if last.1.as_slice() == from && last.2 == newest => {
                        last.1 = point.to_vec();
                    }
                    _ => pieces.push((from.to_vec(), point.to_vec(), newest)),
                }
            }
            while let Some(&(p, is_start, seq)) = events.get(i) {
                if p != point {
                    break;
                }
                if is_start {
                    *open.entry(seq).or_default() += 1;
                } else if let Some(n) = open.get_mut(&seq) {
                    *n -= 1;
                    if *n == 0 {
                        open.remove(&seq);
                    }
                }
                i += 1;
            }
            at = Some(point);
        }
        RangeDels { pieces }
    }

    /// True if no tombstone applies.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The newest sequence of a tombstone covering `user_key`, and the end of the piece it was found in
    /// (every key from `user_key` up to it is covered at least as new); `None` if none covers it.
    pub fn covering(&self, user_key: &[u8]) -> Option<(u64, &[u8])> {
        let at = self
            .pieces
            .partition_point(|(start, _, _)| start.as_slice() <= user_key);
        let (_, end, seq) = self.pieces.get(at.checked_sub(1)?)?;
        (user_key < end.as_slice()).then_some((*seq, end.as_slice()))
    }

    /// As [`RangeDels::covering`], with the start of the piece instead of its end (every key from it up
    /// to `user_key` is covered at least as new).
    pub fn covering_start(&self, user_key: &[u8]) -> Option<(u64, &[u8])> {
        let at = self
            .pieces
            .partition_point(|(start, _, _)| start.as_slice() <= user_key);
        let (start, end, seq) = self.pieces.get(at.checked_sub(1)?)?;
        (user_key < end.as_slice()).then_some((*seq, start.as_slice()))
    }

    /// True if a tombstone newer than `seq` covers `user_key`: a version of it at `seq` is deleted.
    pub fn covers(&self, user_key: &[u8], seq: u64) -> bool {
        self.covering(user_key).is_some_and(|(t, _)| t > seq)
    }
}

/// The smallest user key above `key`: `key` followed by a zero byte.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(key.len() + 1);
    s.extend_from_slice(key);
    s.push(0);
    s
}

/// The largest user key below `end` when it is representable (`end` is some key's [`successor`]), else
/// `end` itself: a key range that includes its result covers every key of `[.., end)`.
pub fn last_covered(end: &[u8]) -> &[u8] {
    match end.split_last() {
        Some((0, head)) => head,
        _ => end,
    }
}

/// The parts of `tombstones` inside `[lower, upper)` (`None`: unbounded), empty parts left out.
pub fn clip(
    tombstones: &[RangeTombstone],
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> Vec<RangeTombstone> {
    tombstones
        .iter()
        .filter_map(|t| {
            let start = match lower {
                Some(l) if l > t.start.as_slice() => l,
                _ => t.start.as_slice(),
            };
            let end = match upper {
                Some(u) if u < t.end.as_slice() => u,
                _ => t.end.as_slice(),
            };
            (start < end).then(|| RangeTombstone {
                start: start.to_vec(),
                end: end.to_vec(),
                seq: t.seq,
            })
        })
        .collect()
}

/// Sorts `tombstones` by start and joins the pieces of one range delete that overlap or touch (a
/// compaction reading two tables a tombstone was split between gets its pieces back whole).
pub fn coalesce(mut tombstones: Vec<RangeTombstone>) -> Vec<RangeTombstone> {
    tombstones.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.start.cmp(&b.start)));
    let mut out: Vec<RangeTombstone> = Vec::with_capacity(tombstones.len());
    for t in tombstones {
        match out.last_mut() {
            Some(last) if last.seq == t.seq && t.start <= last.end => {
                if t.end > last.end {
                    last.end = t.end;
                }
            }
            _ => out.push(t),
        }
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| b.seq.cmp(&a.seq)));
    out
}

/// Encodes a range-deletion block's contents (layout in [`super::sstable`]).
pub fn encode_block(tombstones: &[RangeTombstone]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, tombstones.len() as u64);
    for t in tombstones {
        put_bytes(&mut out, &t.start);
        put_bytes(&mut out, &t.end);
        put_varint(&mut out, t.seq);
    }
    out
}

/// Decodes a range-deletion block's contents; `None` if malformed (a count past the bytes, a length past
/// the end, trailing bytes, an empty or inverted range, a key over `max_key`).
pub fn decode_block(bytes: &[u8], max_key: usize) -> Option<Vec<RangeTombstone>> {
    let (count, mut rest) = get_varint64(bytes)?;
    // Each tombstone takes at least 3 bytes: a count beyond that is damage, not an allocation size.
    if count > (rest.len() / 3) as u64 {
        return None;
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (start, r) = take_bytes(rest)?;
        let (end, r) = take_bytes(r)?;
        let (seq, r) = get_varint64(r)?;
        if start >= end || end.len() > max_key || start.len() > max_key {
            return None;
        }
        out.push(RangeTombstone {
            start: start.to_vec(),
            end: end.to_vec(),
            seq,
        });
        rest = r;
    }
    rest.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: &str, end: &str, seq: u64) -> RangeTombstone {
        RangeTombstone {
            start: start.into(),
            end: end.into(),
            seq,
        }
    }

    #[test]
    fn fragments_keep_the_newest_sequence_per_piece() {
        let all = [
            t("b", "f", 5),
            t("d", "h", 9),
            t("a", "c", 2),
            t("x", "x", 7),
        ];
        let dels = RangeDels::new(&all, 100);
        assert_eq!(dels.covering(b"a"), Some((2, &b"b"[..])));
        assert_eq!(dels.covering(b"b"), Some((5, &b"d"[..])));
        assert_eq!(dels.covering(b"c"), Some((5, &b"d"[..])));
        assert_eq!(dels.covering(b"e"), Some((9, &b"h"[..])));
        assert_eq!(dels.covering_start(b"e"), Some((9, &b"d"[..])));
        assert_eq!(dels.covering_start(b"h"), None);
        assert_eq!(dels.covering(b"h"), None);
        assert_eq!(dels.covering(b"x"), None, "an empty range covers nothing");
        assert!(dels.covers(b"e", 8));
        assert!(!dels.covers(b"e", 9));
        // At sequence 6 the newest tombstone is not visible yet.
        let older = RangeDels::new(&all, 6);
        assert_eq!(older.covering(b"e"), Some((5, &b"f"[..])));
        assert_eq!(older.covering(b"g"), None);
        assert!(RangeDels::new(&all, 1).is_empty());
    }

    #[test]
    fn clip_coalesce_and_block_round_trip() {
        let all = vec![t("b", "m", 5), t("k", "z", 3)];
        let left = clip(&all, None, Some(&successor(b"k")));
        assert_eq!(left, vec![t("b", "k\0", 5), t("k", "k\0", 3)]);
        let right = clip(&all, Some(&successor(b"k")), None);
        assert_eq!(right, vec![t("k\0", "m", 5), t("k\0", "z", 3)]);
        let mut both = left.clone();
        both.extend(right);
        assert_eq!(coalesce(both), vec![t("b", "m", 5), t("k", "z", 3)]);
        assert_eq!(last_covered(b"k\0"), b"k");
        assert_eq!(last_covered(b"k"), b"k");
        let block = encode_block(&all);
        assert_eq!(decode_block(&block, 64), Some(all.clone()));
        for len in 0..block.len() {
            assert_eq!(decode_block(&block[..len], 64), None, "cut at {len}");
        }
        assert_eq!(decode_block(&encode_block(&[t("b", "a", 1)]), 64), None);
        assert_eq!(decode_block(&block, 0), None, "keys over the limit");
    }
}
