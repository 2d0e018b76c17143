//! The memtable: recent writes in internal-key order, in memory, until they are flushed to an L0 table.
//!
//! A `BTreeSet` of single-allocation entries under a `RwLock`: one writer inserts a whole batch under the write lock, readers take the
//! read lock for one lookup or one cursor step and never hold it between calls (cursors keep their
//! position by key and re-seek). Every memtable belongs to one WAL segment: the WAL rotates when the
//! memtable does, so flushing memtable *n* makes WAL segment *n* obsolete.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};

use parking_lot::RwLock;

use super::iter::InternalIter;
use super::key::{self, ValueKind};
use super::range_del::RangeTombstone;
use crate::batch::{BatchOp, WriteBatch};
use crate::error::Result;

/// Bytes charged per entry on top of key and value: the set's 16-byte element with B-tree node slack, the
/// entry's allocation (reference counts and length prefix) and the allocator's header, approximately.
const ENTRY_OVERHEAD: u64 = 64;

/// One version, in a single shared allocation: the internal key's length (4 bytes, little-endian), the
/// internal key, the value. Ordered by [`key::compare`] of the internal keys; cloning shares the bytes.
#[derive(Clone, Debug)]
struct Entry(Arc<[u8]>);

impl Entry {
    fn new(ikey: &[u8], value: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(4 + ikey.len() + value.len());
        bytes.extend_from_slice(&(ikey.len() as u32).to_le_bytes());
        bytes.extend_from_slice(ikey);
        bytes.extend_from_slice(value);
        Entry(bytes.into())
    }

    fn split(&self) -> (&[u8], &[u8]) {
        let (len, rest) = self.0.split_at_checked(4).unwrap_or((&[], &self.0));
        let len = len
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_le_bytes(*b) as usize);
        rest.split_at_checked(len).unwrap_or((rest, &[]))
    }

    fn ikey(&self) -> &[u8] {
        self.split().0
    }

    fn value(&self) -> &[u8] {
        self.split().1
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        key::compare(self.ikey(), other.ikey())
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What the set is ordered by, borrowed: an entry's internal key or a lookup's, so a point lookup
/// searches with the caller's bytes instead of allocating an [`Entry`]. Both order by [`key::compare`],
/// as `Borrow` requires.
trait OrderKey {
    fn order_key(&self) -> &[u8];
}

/// An internal key to search for.
struct Probe<'a>(&'a [u8]);

impl OrderKey for Probe<'_> {
    fn order_key(&self) -> &[u8] {
        self.0
    }
}

impl OrderKey for Entry {
    fn order_key(&self) -> &[u8] {
        self.ikey()
    }
}

impl<'a> std::borrow::Borrow<dyn OrderKey + 'a> for Entry {
    fn borrow(&self) -> &(dyn OrderKey + 'a) {
        self
    }
}

impl PartialEq for dyn OrderKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn OrderKey + '_ {}

impl Ord for dyn OrderKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        key::compare(self.order_key(), other.order_key())
    }
}

impl PartialOrd for dyn OrderKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Recent writes of one WAL segment.
#[derive(Debug)]
pub struct Memtable {
    set: RwLock<BTreeSet<Entry>>,
    /// The range tombstones of its range deletes, in sequence order.
    ranges: RwLock<Vec<RangeTombstone>>,
    /// `ranges` is not empty (read without the lock by every get).
    has_ranges: AtomicBool,
    bytes: AtomicU64,
    segment: u64,
}

impl Memtable {
    /// An empty memtable whose records are logged in WAL segment `segment`.
    pub fn new(segment: u64) -> Self {
        Memtable {
            set: RwLock::new(BTreeSet::new()),
            ranges: RwLock::new(Vec::new()),
            has_ranges: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            segment,
        }
    }

    /// The WAL segment holding this memtable's records.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Approximate memory in use.
    pub fn approximate_bytes(&self) -> u64 {
        self.bytes.load(AtomicOrdering::Relaxed)
    }

    /// Entries (versions) and range tombstones inserted.
    pub fn len(&self) -> u64 {
        (self.set.read().len() + self.ranges.read().len()) as u64
    }

    /// True if nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.set.read().is_empty() && self.ranges.read().is_empty()
    }

    /// Inserts every entry of `batch`, entry `i` with sequence `first_seq + i`, under one write lock (and
    /// the range deletes under the range list's). Readers see none of it before the pipeline publishes
    /// the batch's sequence, so the two locks need not be held together.
    pub fn insert_batch(&self, first_seq: u64, batch: &WriteBatch) {
        let mut ikey = Vec::new();
        let mut ranges = Vec::new();
        let entries: Vec<Entry> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, op)| {
                let seq = first_seq + i as u64;
                let (k, kind, value) = match op {
                    BatchOp::Put { key, value } => (key, ValueKind::Put, value),
                    BatchOp::Delete { key } => (key, ValueKind::Delete, &[][..]),
                    BatchOp::DeleteRange { start, end } => {
                        if start < end {
                            ranges.push(RangeTombstone {
                                start: start.to_vec(),
                                end: end.to_vec(),
                                seq,
                            });
                        }
                        return None;
                    }
                };
                ikey.clear();
                key::encode_into(&mut ikey, k, seq, kind);
                Some(Entry::new(&ikey, value))
            })
            .collect();
        // Charged by the bytes each entry holds; the entries are built before the lock is taken.
        let added: u64 = entries
            .iter()
            .map(|e| e.0.len() as u64 + ENTRY_OVERHEAD)
            .chain(ranges.iter().map(RangeTombstone::charge))
            .sum();
        if !entries.is_empty() {
            self.set.write().extend(entries);
        }
        if !ranges.is_empty() {
            self.ranges.write().extend(ranges);
            self.has_ranges.store(true, AtomicOrdering::Release);
        }
        self.bytes.fetch_add(added, AtomicOrdering::Relaxed);
    }

    /// The range tombstones, in sequence order.
    pub fn range_tombstones(&self) -> Vec<RangeTombstone> {
        self.ranges.read().clone()
    }

    /// True if the memtable holds a range tombstone.
    pub fn has_range_tombstones(&self) -> bool {
        self.has_ranges.load(AtomicOrdering::Acquire)
    }

    /// The newest version of `user_key` with sequence ≤ `seq`: its kind and value (range tombstones are
    /// the caller's). Tests, fuzz targets and benches.
    #[cfg(any(test, feature = "testing"))]
    pub fn get(&self, user_key: &[u8], seq: u64) -> Option<(ValueKind, Vec<u8>)> {
        self.get_versioned(user_key, seq).map(|(k, v, _)| (k, v))
    }

    /// The newest version of `user_key` with sequence ≤ `seq`: its kind, value and sequence.
    pub fn get_versioned(&self, user_key: &[u8], seq: u64) -> Option<(ValueKind, Vec<u8>, u64)> {
        let target = key::encode(user_key, seq, ValueKind::Put);
        let probe = Probe(&target);
        let set = self.set.read();
        let e = set
            .range::<dyn OrderKey, _>((Bound::Included(&probe as &dyn OrderKey), Bound::Unbounded))
            .next()?;
        let (found, found_seq, kind) = key::decode(e.ikey())?;
        (found == user_key).then(|| (kind, e.value().to_vec(), found_seq))
    }

    /// Runs `f` over every entry (internal key, value) in internal-key order, borrowed under the read
    /// lock: for flushing a sealed memtable (no writer changes it) without copying it.
    pub fn with_entries<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = (&[u8], &[u8])>) -> R,
    ) -> R {
        let set = self.set.read();
        f(&mut set.iter().map(|e| (e.ikey(), e.value())))
    }

    fn first_after(&self, bound: Bound<Entry>) -> Option<Entry> {
        self.set
            .read()
            .range((bound, Bound::Unbounded))
            .next()
            .cloned()
    }

    fn last_before(&self, bound: Bound<Entry>) -> Option<Entry> {
        self.set
            .read()
            .range((Bound::Unbounded, bound))
            .next_back()
            .cloned()
    }
}

/// A cursor over a shared memtable that re-seeks on every step, holding no lock between calls. The entry
/// it stands on is shared with the memtable, not copied.
pub struct MemtableIter {
    mem: Arc<Memtable>,
    current: Option<Entry>,
}

impl MemtableIter {
    /// An unpositioned cursor.
    pub fn new(mem: Arc<Memtable>) -> Self {
        MemtableIter { mem, current: None }
    }
}

/// A search bound for an internal key given as bytes.
fn bound_for(ikey: &[u8]) -> Entry {
    Entry::new(ikey, &[])
}

impl InternalIter for MemtableIter {
    fn seek_to_first(&mut self) -> Result<()> {
        self.current = self.mem.first_after(Bound::Unbounded);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.current = self.mem.last_before(Bound::Unbounded);
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.current = self.mem.first_after(Bound::Included(bound_for(target)));
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.current = self.mem.last_before(Bound::Included(bound_for(target)));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if let Some(e) = self.current.take() {
            self.current = self.mem.first_after(Bound::Excluded(e));
        }
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        if let Some(e) = self.current.take() {
            self.current = self.mem.last_before(Bound::Excluded(e));
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], Entry::ikey)
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], Entry::value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_visible_version_wins() {
        let m = Memtable::new(1);
        let mut b = WriteBatch::new();
        b.put(b"k", b"v1");
        m.insert_batch(1, &b);
        let mut b = WriteBatch::new();
        b.delete(b"k").put(b"k", b"v3").put(b"other", b"x");
        m.insert_batch(2, &b);
        assert_eq!(m.get(b"k", 1), Some((ValueKind::Put, b"v1".to_vec())));
        assert_eq!(m.get(b"k", 2), Some((ValueKind::Delete, vec![])));
        assert_eq!(m.get(b"k", 3), Some((ValueKind::Put, b"v3".to_vec())));
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(m.get(b"j", 9), None);
        assert!(m.approximate_bytes() > 0);
    }

    #[test]
    fn cursor_walks_both_ways() {
        let m = Arc::new(Memtable::new(1));
        let mut b = WriteBatch::new();
        b.put(b"a", b"1").put(b"c", b"3").put(b"b", b"2");
        m.insert_batch(10, &b);
        let mut it = MemtableIter::new(Arc::clone(&m));
        it.seek_to_first().unwrap();
        let mut fwd = Vec::new();
        while it.valid() {
            fwd.push(key::user_key(it.key()).to_vec());
            it.next().unwrap();
        }
        assert_eq!(fwd, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        it.seek_for_prev(&key::encode(b"b", 0, ValueKind::Delete))
            .unwrap();
        assert_eq!(key::user_key(it.key()), b"b");
        it.prev().unwrap();
        assert_eq!(key::user_key(it.key()), b"a");
        it.prev().unwrap();
        assert!(!it.valid());
    }
}
