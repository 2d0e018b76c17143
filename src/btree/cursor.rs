//! Snapshots and cursors.
//!
//! A snapshot is a registered version `s`: while it lives, the writer records prior values in the overlay
//! (see [`super::overlay`]). A read as of `s` takes the shared tree latch for one lookup or one cursor step,
//! consults the overlay first and falls back to the tree.
//!
//! A cursor keeps its position by key: each refill takes the latch, re-seeks from the root to the position,
//! reads a run of entries (the rest of a leaf or two, at most [`RUN`] entries), merges it with the overlay's
//! entries for `s` in the same key range, and releases the latch. The run is the snapshot's state, which
//! never changes, so buffering it is exact; no latch is held between `next()` calls.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::engine::{Cursor, Iter, KvPair, SnapshotSource};
use crate::error::Result;
use crate::storage::ReadPurpose;

use super::Shared;
use super::overlay::valid_range;
use super::tree::Reader;

/// Entries a cursor reads per latch hold.
const RUN: usize = 64;
/// Bytes (keys and values) after which a run stops early.
const RUN_BYTES: usize = 256 << 10;

/// A registered snapshot version; deregistered on drop.
pub(crate) struct SnapHandle {
    pub shared: Arc<Shared>,
    pub version: u64,
}

impl Drop for SnapHandle {
    fn drop(&mut self) {
        self.shared.release_snapshot(self.version);
    }
}

/// What [`crate::Snapshot`] reads through.
pub(crate) struct BTreeSnapshot(pub Arc<SnapHandle>);

impl SnapshotSource for BTreeSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let h = &self.0;
        let st = h.shared.tree.read();
        h.shared.check_snapshot(&st, h.version)?;
        if let Some(v) = st.overlay.lookup(key, h.version) {
            return Ok(v.map(Bytes::copy_from_slice));
        }
        let mut r = Reader::new(&h.shared.store, &st, ReadPurpose::Get);
        let result = r.get(key);
        h.shared.count_get(&r.tally);
        result.map(|v| v.map(Bytes::from))
    }

    /// Under one hold of the latch, in key order, the previous descent's pages pinned.
    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        let h = &self.0;
        let st = h.shared.tree.read();
        h.shared.check_snapshot(&st, h.version)?;
        let mut r = Reader::new(&h.shared.store, &st, ReadPurpose::Get);
        r.pins = Some(Vec::new());
        let mut gets = 0;
        let out = crate::engine::multi_get_sorted(keys, |key| {
            gets += 1;
            if let Some(v) = st.overlay.lookup(key, h.version) {
                return Ok(v.map(Bytes::copy_from_slice));
            }
            r.get(key).map(|v| v.map(Bytes::from))
        });
        h.shared.count_gets(&r.tally, gets);
        out
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        Ok(Iter::new(Box::new(BTreeCursor::new(
            Arc::clone(&self.0),
            lower,
            upper,
        ))))
    }
}

/// A cursor over one snapshot.
pub(crate) struct BTreeCursor {
    snap: Arc<SnapHandle>,
    /// The scan's bounds.
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// Where the front's next run starts: everything below was read into the front buffer. The back reads
    /// past it (the front may have read ahead of what it yielded); [`Iter`] stops the two ends where they
    /// meet.
    front_pos: Bound<Vec<u8>>,
    /// Where the back's next run starts.
    back_pos: Bound<Vec<u8>>,
    /// Entries read but not yet yielded: slices of their run's buffer.
    front: VecDeque<KvPair>,
    back: VecDeque<KvPair>,
    front_done: bool,
    back_done: bool,
    /// Keys-only iteration: runs skip values (overflow chains are not read).
    skip_values: bool,
}

impl BTreeCursor {
    pub fn new(snap: Arc<SnapHandle>, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Self {
        BTreeCursor {
            snap,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            front_pos: lower.map(<[u8]>::to_vec),
            back_pos: upper.map(<[u8]>::to_vec),
            front: VecDeque::new(),
            back: VecDeque::new(),
            front_done: false,
            back_done: false,
            skip_values: false,
        }
    }

    /// Reads the next run from one end into its buffer.
    fn refill(&mut self, rev: bool) -> Result<()> {
        let snap = Arc::clone(&self.snap);
        let shared = &snap.shared;
        let s = snap.version;
        let st = shared.tree.read();
        shared.check_snapshot(&st, s)?;
        let (lower, upper) = if rev {
            (bound_ref(&self.lower), bound_ref(&self.back_pos))
        } else {
            (bound_ref(&self.front_pos), bound_ref(&self.upper))
        };
        if !valid_range(lower, upper) {
            drop(st);
            self.set_done(rev);
            return Ok(());
        }
        let mut r = Reader::new(&shared.store, &st, ReadPurpose::Scan);
        r.skip_values = self.skip_values;
        let (run, exhausted) = if rev {
            r.run_backward(lower, upper, RUN, RUN_BYTES)?
        } else {
            r.run_forward(lower, upper, RUN, RUN_BYTES)?
        };
        // The overlay's keys in the part of the range this run covers.
        let reached = run.last().map(|(k, _)| &k[..]);
        let over = match (rev, exhausted, reached) {
            (false, false, Some(k)) => {
                st.overlay
                    .range(lower, Bound::Included(k), s, false, usize::MAX)
            }
            (true, false, Some(k)) => {
                st.overlay
                    .range(Bound::Included(k), upper, s, true, usize::MAX)
            }
            _ => st.overlay.range(lower, upper, s, rev, usize::MAX),
        };
        let next_pos = if exhausted {
            None
        } else {
            reached.map(<[u8]>::to_vec)
        };
        drop(st);
        let merged = merge(run, over, rev);
        let buf = if rev { &mut self.back } else { &mut self.front };
        buf.extend(merged);
        match next_pos {
            None => self.set_done(rev),
            Some(k) if rev => self.back_pos = Bound::Excluded(k),
            Some(k) => self.front_pos = Bound::Excluded(k),
        }
        Ok(())
    }

    fn set_done(&mut self, rev: bool) {
        if rev {
            self.back_done = true;
        } else {
            self.front_done = true;
        }
    }

    fn next_from(&mut self, rev: bool) -> Option<Result<KvPair>> {
        loop {
            let (buf, done) = if rev {
                (&mut self.back, self.back_done)
            } else {
                (&mut self.front, self.front_done)
            };
            if let Some(kv) = buf.pop_front() {
                return Some(Ok(kv));
            }
            if done {
                return None;
            }
            if let Err(e) = self.refill(rev) {
                self.front_done = true;
                self.back_done = true;
                return Some(Err(e));
            }
        }
    }
}

impl Cursor for BTreeCursor {
    fn next_front(&mut self) -> Option<Result<KvPair>> {
        self.next_from(false)
    }

    fn next_back(&mut self) -> Option<Result<KvPair>> {
        self.next_from(true)
    }

    fn skip_values(&mut self) {
        self.skip_values = true;
    }
}

fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Merges a run of tree entries with the overlay's entries for the same range (both in the run's order):
/// the overlay wins where both have a key, and an overlay entry of `None` hides the key.
fn merge(run: Vec<KvPair>, over: Vec<(Vec<u8>, Option<Vec<u8>>)>, rev: bool) -> Vec<KvPair> {
    if over.is_empty() {
        return run;
    }
    let before = |a: &[u8], b: &[u8]| if rev { a > b } else { a < b };
    let pair = |k: Vec<u8>, v: Vec<u8>| (Bytes::from(k), Bytes::from(v));
    let mut out = Vec::with_capacity(run.len() + over.len());
    let mut o = over.into_iter().peekable();
    for (k, v) in run {
        while let Some((ok, ov)) = o.next_if(|(ok, _)| before(ok, &k)) {
            if let Some(ov) = ov {
                out.push(pair(ok, ov));
            }
        }
        match o.next_if(|(ok, _)| ok[..] == k[..]) {
            Some((ok, Some(ov))) => out.push(pair(ok, ov)),
            Some((_, None)) => {}
            None => out.push((k, v)),
        }
    }
    out.extend(o.filter_map(|(k, v)| v.map(|v| pair(k, v))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KvPair {
        (Bytes::from(k.to_owned()), Bytes::from(v.to_owned()))
    }

    #[test]
    fn the_overlay_overrides_hides_and_adds() {
        let run = vec![kv("a", "1"), kv("c", "3"), kv("e", "5")];
        let over = vec![
            (b"b".to_vec(), Some(b"old-b".to_vec())),
            (b"c".to_vec(), None),
            (b"e".to_vec(), Some(b"old-e".to_vec())),
            (b"f".to_vec(), Some(b"old-f".to_vec())),
        ];
        assert_eq!(
            merge(run, over, false),
            vec![
                kv("a", "1"),
                kv("b", "old-b"),
                kv("e", "old-e"),
                kv("f", "old-f")
            ]
        );
        let run = vec![kv("e", "5"), kv("c", "3")];
        let over = vec![
            (b"d".to_vec(), Some(b"old-d".to_vec())),
            (b"c".to_vec(), None),
        ];
        assert_eq!(merge(run, over, true), vec![kv("e", "5"), kv("d", "old-d")]);
    }
}
