//! Iterators: the internal-key cursor every source implements, and the user-level cursor that merges the
//! sources of one scan, hides versions newer than the scan's snapshot, shadowed versions and tombstones,
//! and runs both ways.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use super::key::{self, MAX_SEQUENCE, ValueKind};
use super::range_del::RangeDels;
use crate::engine::{Cursor, KvPair};
use crate::error::{Error, Result};

/// A positioned cursor over internal keys in [`key::compare`] order (memtables and tables).
pub trait InternalIter: Send {
    /// Positions at the first entry.
    ///
    /// # Errors
    /// `Corruption` or `Io` reading the source.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Positions at the last entry.
    ///
    /// # Errors
    /// As [`InternalIter::seek_to_first`].
    fn seek_to_last(&mut self) -> Result<()>;
    /// Positions at the first entry `>= target`.
    ///
    /// # Errors
    /// As [`InternalIter::seek_to_first`].
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    /// Positions at the last entry `<= target`.
    ///
    /// # Errors
    /// As [`InternalIter::seek_to_first`].
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()>;
    /// Moves to the next entry.
    ///
    /// # Errors
    /// As [`InternalIter::seek_to_first`].
    fn next(&mut self) -> Result<()>;
    /// Moves to the previous entry.
    ///
    /// # Errors
    /// As [`InternalIter::seek_to_first`].
    fn prev(&mut self) -> Result<()>;
    /// True when positioned on an entry.
    fn valid(&self) -> bool;
    /// The internal key of the entry (empty when not valid).
    fn key(&self) -> &[u8];
    /// The value of the entry (empty when not valid).
    fn value(&self) -> &[u8];
    /// The largest sequence of any entry the source holds, or `u64::MAX` if it does not know (a
    /// memtable, which grows). A scan skips a source's entries under a range tombstone newer than this
    /// with one seek instead of stepping over each.
    fn max_seq(&self) -> u64 {
        u64::MAX
    }
}

/// Builds the sources of a scan; called once per direction, so each end has its own positions.
pub type SourceFactory = Box<dyn Fn() -> Result<Vec<Box<dyn InternalIter>>> + Send>;

/// One direction's merged sources.
struct Merge {
    sources: Vec<Box<dyn InternalIter>>,
}

impl Merge {
    fn pick(&self, smallest: bool) -> Option<usize> {
        pick(&self.sources, smallest)
    }
}

/// The index of the valid source holding the smallest (or largest) current key.
pub fn pick(sources: &[Box<dyn InternalIter>], smallest: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, s) in sources.iter().enumerate() {
        if !s.valid() {
            continue;
        }
        let better = match best.and_then(|b| sources.get(b)) {
            None => true,
            Some(cur) => {
                let ord = key::compare(s.key(), cur.key());
                if smallest {
                    ord == Ordering::Less
                } else {
                    ord == Ordering::Greater
                }
            }
        };
        if better {
            best = Some(i);
        }
    }
    best
}

/// The user-level cursor of one scan: merges the sources, reads at `snapshot`, stays within the bounds.
pub struct MergingCursor {
    factory: SourceFactory,
    snapshot: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: Option<Merge>,
    back: Option<Merge>,
    /// The user key last decided from the front (shared with the key yielded); its older versions are
    /// skipped.
    front_skip: Option<Bytes>,
    /// Keys-only iteration: values are not copied out (they are still read with their blocks).
    skip_values: bool,
    /// The range tombstones the scan honours: a version they cover is deleted.
    dels: Arc<RangeDels>,
}

impl MergingCursor {
    /// A cursor reading the sources `factory` builds, as of sequence `snapshot`, within the bounds.
    pub fn new(
        factory: SourceFactory,
        snapshot: u64,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Self {
        MergingCursor {
            factory,
            snapshot,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            front: None,
            back: None,
            front_skip: None,
            skip_values: false,
            dels: Arc::default(),
        }
    }

    /// The cursor honouring the range tombstones `dels` (fragmented at the cursor's sequence).
    pub fn with_range_dels(mut self, dels: Arc<RangeDels>) -> Self {
        self.dels = dels;
        self
    }

    fn below_upper(&self, user: &[u8]) -> bool {
        match &self.upper {
            Bound::Included(u) => user <= u.as_slice(),
            Bound::Excluded(u) => user < u.as_slice(),
            Bound::Unbounded => true,
        }
    }

    fn above_lower(&self, user: &[u8]) -> bool {
        match &self.lower {
            Bound::Included(l) => user >= l.as_slice(),
            Bound::Excluded(l) => user > l.as_slice(),
            Bound::Unbounded => true,
        }
    }

    fn start_front(&mut self) -> Result<Merge> {
        let mut sources = (self.factory)()?;
        for s in &mut sources {
            match &self.lower {
                Bound::Included(l) | Bound::Excluded(l) => {
                    s.seek(&key::encode(l, MAX_SEQUENCE, ValueKind::Put))?
                }
                Bound::Unbounded => s.seek_to_first()?,
            }
        }
        Ok(Merge { sources })
    }

    fn start_back(&mut self) -> Result<Merge> {
        let mut sources = (self.factory)()?;
        for s in &mut sources {
            match &self.upper {
                Bound::Included(u) | Bound::Excluded(u) => {
                    s.seek_for_prev(&key::encode(u, 0, ValueKind::Delete))?
                }
                Bound::Unbounded => s.seek_to_last()?,
            }
        }
        Ok(Merge { sources })
    }

    fn step_front(&mut self) -> Result<Option<KvPair>> {
        let mut merge = match self.front.take() {
            Some(m) => m,
            None => self.start_front()?,
        };
        let result = self.scan_front(&mut merge);
        self.front = Some(merge);
        result
    }

    fn scan_front(&mut self, merge: &mut Merge) -> Result<Option<KvPair>> {
        loop {
            let Some(i) = merge.pick(true) else {
                return Ok(None);
            };
            let Some(src) = merge.sources.get_mut(i) else {
                return Ok(None);
            };
            let (user, seq, kind) = decode(src.key())?;
            if !self.below_upper(user) {
                return Ok(None);
            }
            let skip = self.front_skip.as_deref() == Some(user)
                || seq > self.snapshot
                || !self.above_lower(user);
            if skip {
                src.next()?;
                continue;
            }
            // Every entry of this source from here to the end of the covering piece is older than the
            // tombstone: seek past them all at once (the mass-delete case: no per-entry walk).
            if let Some((t, end)) = self.dels.covering(user)
                && src.max_seq() < t
            {
                src.seek(&key::encode(end, MAX_SEQUENCE, ValueKind::Put))?;
                continue;
            }
            let user = Bytes::copy_from_slice(user);
            let value = if self.skip_values {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(src.value())
            };
            src.next()?;
            self.front_skip = Some(user.clone());
            if kind == ValueKind::Put && !self.dels.covers(&user, seq) {
                return Ok(Some((user, value)));
            }
        }
    }

    fn step_back(&mut self) -> Result<Option<KvPair>> {
        let mut merge = match self.back.take() {
            Some(m) => m,
            None => self.start_back()?,
        };
        let result = self.scan_back(&mut merge);
        self.back = Some(merge);
        result
    }

    fn scan_back(&mut self, merge: &mut Merge) -> Result<Option<KvPair>> {
        loop {
            let Some(i) = merge.pick(false) else {
                return Ok(None);
            };
            let Some(src) = merge.sources.get(i) else {
                return Ok(None);
            };
            let user = Bytes::copy_from_slice(decode(src.key())?.0);
            if !self.above_lower(&user) {
                return Ok(None);
            }
            // As forward: skip this source's entries under a newer tombstone, down to the piece's start.
            if let Some((t, start)) = self.dels.covering_start(&user)
                && src.max_seq() < t
                && let Some(src) = merge.sources.get_mut(i)
            {
                src.seek_for_prev(&key::encode(start, MAX_SEQUENCE, ValueKind::Put))?;
                continue;
            }
            let wanted = self.below_upper(&user);
            // Going backwards, one user key's versions come oldest first: the last visible one seen is
            // the newest the snapshot can see.
            let mut newest: Option<(ValueKind, Bytes, u64)> = None;
            while let Some(i) = merge.pick(false) {
                let Some(src) = merge.sources.get_mut(i) else {
                    break;
                };
                let (u, seq, kind) = decode(src.key())?;
                if u != user {
                    break;
                }
                if wanted && seq <= self.snapshot {
                    let value = if self.skip_values {
                        Bytes::new()
                    } else {
                        Bytes::copy_from_slice(src.value())
                    };
                    newest = Some((kind, value, seq));
                }
                src.prev()?;
            }
            if let Some((ValueKind::Put, value, seq)) = newest
                && !self.dels.covers(&user, seq)
            {
                return Ok(Some((user, value)));
            }
        }
    }
}

fn decode(ikey: &[u8]) -> Result<(&[u8], u64, ValueKind)> {
    key::decode(ikey)
        .ok_or_else(|| Error::corruption("<internal key>", None, "malformed internal key"))
}

impl Cursor for MergingCursor {
    fn next_front(&mut self) -> Option<Result<KvPair>> {
        self.step_front().transpose()
    }

    fn next_back(&mut self) -> Option<Result<KvPair>> {
        self.step_back().transpose()
    }

    fn skip_values(&mut self) {
        self.skip_values = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteBatch;
    use crate::engine::Iter;
    use crate::lsm::memtable::{Memtable, MemtableIter};
    use std::sync::Arc;

    fn cursor(mems: Vec<Arc<Memtable>>, snap: u64, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Iter {
        let factory: SourceFactory = Box::new(move || {
            Ok(mems
                .iter()
                .map(|m| Box::new(MemtableIter::new(Arc::clone(m))) as Box<dyn InternalIter>)
                .collect())
        });
        Iter::new(Box::new(MergingCursor::new(factory, snap, lo, hi)))
    }

    #[test]
    fn merges_hides_shadowed_and_deleted_both_ways() {
        let old = Arc::new(Memtable::new(1));
        let new = Arc::new(Memtable::new(2));
        let mut b = WriteBatch::new();
        b.put(b"a", b"old-a")
            .put(b"b", b"old-b")
            .put(b"c", b"old-c")
            .put(b"d", b"old-d");
        old.insert_batch(1, &b); // seqs 1..=4
        let mut b = WriteBatch::new();
        b.put(b"a", b"new-a").delete(b"c").put(b"e", b"new-e");
        new.insert_batch(5, &b); // seqs 5..=7
        let all = |snap, lo, hi| {
            let fwd: Vec<_> = cursor(vec![Arc::clone(&new), Arc::clone(&old)], snap, lo, hi)
                .map(|r| r.unwrap())
                .collect();
            let mut bwd: Vec<_> = cursor(vec![Arc::clone(&old), Arc::clone(&new)], snap, lo, hi)
                .rev()
                .map(|r| r.unwrap())
                .collect();
            bwd.reverse();
            assert_eq!(fwd, bwd, "both directions agree at snapshot {snap}");
            fwd.into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8(k.to_vec()).unwrap(),
                        String::from_utf8(v.to_vec()).unwrap()
                    )
                })
                .collect::<Vec<_>>()
        };
        use Bound::*;
        assert_eq!(
            all(7, Unbounded, Unbounded),
            ["a=new-a", "b=old-b", "d=old-d", "e=new-e"]
        );
        assert_eq!(
            all(4, Unbounded, Unbounded),
            ["a=old-a", "b=old-b", "c=old-c", "d=old-d"]
        );
        assert_eq!(all(6, Excluded(b"a"), Included(b"c")), ["b=old-b"]);
        assert_eq!(
            all(7, Included(b"b"), Excluded(b"e")),
            ["b=old-b", "d=old-d"]
        );
        assert_eq!(all(0, Unbounded, Unbounded), Vec::<String>::new());
    }
}
