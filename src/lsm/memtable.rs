//! The memtable: recent writes in internal-key order, in memory, until they are flushed to an L0 table.
//!
//! A `BTreeMap` under a `RwLock`: one writer inserts a whole batch under the write lock, readers take the
//! read lock for one lookup or one cursor step and never hold it between calls (cursors keep their
//! position by key and re-seek). Every memtable belongs to one WAL segment: the WAL rotates when the
//! memtable does, so flushing memtable *n* makes WAL segment *n* obsolete.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use parking_lot::RwLock;

use super::iter::InternalIter;
use super::key::{self, ValueKind};
use crate::batch::{BatchOp, WriteBatch};
use crate::error::Result;

/// Bytes charged per entry on top of key and value (map node and allocation overhead, approximately).
const ENTRY_OVERHEAD: u64 = 48;

/// An internal key ordered by [`key::compare`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct IKey(Vec<u8>);

impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        key::compare(&self.0, &other.0)
    }
}

impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Recent writes of one WAL segment.
#[derive(Debug)]
pub struct Memtable {
    map: RwLock<BTreeMap<IKey, Vec<u8>>>,
    bytes: AtomicU64,
    segment: u64,
}

impl Memtable {
    /// An empty memtable whose records are logged in WAL segment `segment`.
    pub fn new(segment: u64) -> Self {
        Memtable {
            map: RwLock::new(BTreeMap::new()),
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

    /// True if nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }

    /// Inserts every entry of `batch`, entry `i` with sequence `first_seq + i`, under one write lock.
    pub fn insert_batch(&self, first_seq: u64, batch: &WriteBatch) {
        let mut map = self.map.write();
        let mut added = 0u64;
        for (i, op) in batch.iter().enumerate() {
            let seq = first_seq + i as u64;
            let (k, kind, value) = match op {
                BatchOp::Put { key, value } => (key, ValueKind::Put, value),
                BatchOp::Delete { key } => (key, ValueKind::Delete, &[][..]),
            };
            added += (k.len() + key::TRAILER_LEN + value.len()) as u64 + ENTRY_OVERHEAD;
            map.insert(IKey(key::encode(k, seq, kind)), value.to_vec());
        }
        self.bytes.fetch_add(added, AtomicOrdering::Relaxed);
    }

    /// The newest version of `user_key` with sequence ≤ `seq`: its kind and value.
    pub fn get(&self, user_key: &[u8], seq: u64) -> Option<(ValueKind, Vec<u8>)> {
        let target = IKey(key::encode(user_key, seq, ValueKind::Put));
        let map = self.map.read();
        let (k, v) = map.range(target..).next()?;
        let (found, _, kind) = key::decode(&k.0)?;
        (found == user_key).then(|| (kind, v.clone()))
    }

    /// Every entry in internal-key order (for flushing).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .read()
            .iter()
            .map(|(k, v)| (k.0.clone(), v.clone()))
            .collect()
    }

    fn first_after(&self, bound: Bound<IKey>) -> Option<(Vec<u8>, Vec<u8>)> {
        let map = self.map.read();
        map.range((bound, Bound::Unbounded))
            .next()
            .map(|(k, v)| (k.0.clone(), v.clone()))
    }

    fn last_before(&self, bound: Bound<IKey>) -> Option<(Vec<u8>, Vec<u8>)> {
        let map = self.map.read();
        map.range((Bound::Unbounded, bound))
            .next_back()
            .map(|(k, v)| (k.0.clone(), v.clone()))
    }
}

/// A cursor over a shared memtable that re-seeks on every step, holding no lock between calls.
pub struct MemtableIter {
    mem: std::sync::Arc<Memtable>,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl MemtableIter {
    /// An unpositioned cursor.
    pub fn new(mem: std::sync::Arc<Memtable>) -> Self {
        MemtableIter { mem, current: None }
    }
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
        self.current = self.mem.first_after(Bound::Included(IKey(target.to_vec())));
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.current = self.mem.last_before(Bound::Included(IKey(target.to_vec())));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if let Some((k, _)) = self.current.take() {
            self.current = self.mem.first_after(Bound::Excluded(IKey(k)));
        }
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        if let Some((k, _)) = self.current.take() {
            self.current = self.mem.last_before(Bound::Excluded(IKey(k)));
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(k, _)| k)
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
