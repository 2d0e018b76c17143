//! The buffer pool: a bounded set of page frames with CLOCK replacement, pinning, dirty tracking and
//! write-back on eviction (steal).
//!
//! - **Lookup** goes through a page table split into shards, each behind its own `RwLock`: a hit takes one
//!   shard's lock shared, clones the frame's `Arc` (the pin) and sets its reference bit — no global lock.
//! - **Pinning**: a [`PageRef`] is a pin. Only the table holds a frame besides pins, so a frame is unpinned
//!   exactly when its `Arc` count is 1, which the evictor checks under the shard's write lock (pins are
//!   taken under the read lock, so none can appear meanwhile).
//! - **CLOCK**: resident pages sit in a ring; the hand gives a referenced page a second chance (clears the
//!   bit) and evicts the first unreferenced, unpinned page. Only misses and new pages run the hand.
//! - **Steal**: a dirty page chosen by the hand is written to its own location in the data file (sealed),
//!   still under the shard's write lock, and only then leaves the table; so a miss that follows reads the
//!   bytes just written, and a later dirty copy of the page cannot be overtaken by the older write. This is
//!   safe because the writer only dirties pages no durable header refers to (see [`super::space`]). Without
//!   a file (a read-only handle) dirty pages stay: the pool may then hold more than its capacity.
//!   A failed write-back leaves the page dirty and resident and is reported by [`Pool::take_error`].

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::storage::{File, WritePurpose};

const SHARDS: usize = 16;

/// Hashes a page number with one multiply (Fibonacci hashing) instead of SipHash: page numbers are not
/// attacker-chosen, and the table lookup is on every page access.
#[derive(Default)]
struct PgnoHasher(u64);

impl Hasher for PgnoHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits the table indexes by: page numbers in one shard
        // share their low bits, and a product's low bits depend only on the factor's low bits.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One shard of the page table.
type PageTable = HashMap<u32, PageRef, BuildHasherDefault<PgnoHasher>>;

/// One resident page.
#[derive(Debug)]
pub(crate) struct Frame {
    pgno: u32,
    data: RwLock<Box<[u8]>>,
    referenced: AtomicBool,
    dirty: AtomicBool,
}

impl Frame {
    /// The page number.
    pub fn pgno(&self) -> u32 {
        self.pgno
    }

    /// True until the page is written to its location (by a checkpoint or on eviction).
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// The page bytes.
    pub fn read(&self) -> RwLockReadGuard<'_, Box<[u8]>> {
        self.data.read()
    }

    /// The page bytes, for the writer to edit in place; the writer then calls [`Pool::mark_dirty`].
    pub fn write(&self) -> RwLockWriteGuard<'_, Box<[u8]>> {
        self.data.write()
    }
}

/// A pinned page: the frame cannot be evicted while this lives.
pub(crate) type PageRef = Arc<Frame>;

/// The buffer pool.
#[derive(Debug)]
pub(crate) struct Pool {
    capacity: usize,
    page_size: usize,
    table: Vec<RwLock<PageTable>>,
    clock: Mutex<VecDeque<u32>>,
    dirty: AtomicUsize,
    resident: AtomicU64,
    evictions: AtomicU64,
    /// Where evicted dirty pages go (`None`: no steal).
    file: Option<File>,
    /// The first failed write-back of an evicted page (later evictions skip dirty pages).
    failed: Mutex<Option<Error>>,
}

impl Pool {
    /// A pool of `capacity` frames of `page_size` bytes (at least 2 frames) that writes dirty pages it
    /// evicts to `file` (or never evicts them, without one).
    pub fn new(capacity: usize, page_size: usize, file: Option<File>) -> Self {
        Pool {
            capacity: capacity.max(2),
            page_size,
            table: (0..SHARDS)
                .map(|_| RwLock::new(PageTable::default()))
                .collect(),
            clock: Mutex::new(VecDeque::new()),
            dirty: AtomicUsize::new(0),
            resident: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            file,
            failed: Mutex::new(None),
        }
    }

    #[expect(
        clippy::indexing_slicing,
        reason = "the table has SHARDS entries and the index is taken modulo SHARDS"
    )]
    fn shard(&self, pgno: u32) -> &RwLock<PageTable> {
        &self.table[pgno as usize % SHARDS]
    }

    /// The resident page `pgno`, pinned, or `None` on a miss.
    pub fn lookup(&self, pgno: u32) -> Option<PageRef> {
        let frame = self.shard(pgno).read().get(&pgno).cloned()?;
        frame.referenced.store(true, Ordering::Relaxed);
        Some(frame)
    }

    /// Adds a clean page read from storage (after a miss), returning the resident frame: if another reader
    /// added the page meanwhile, theirs.
    pub fn insert_clean(&self, pgno: u32, bytes: Box<[u8]>) -> PageRef {
        let frame = {
            let mut shard = self.shard(pgno).write();
            if let Some(f) = shard.get(&pgno) {
                return Arc::clone(f);
            }
            let f = Arc::new(Frame {
                pgno,
                data: RwLock::new(bytes),
                referenced: AtomicBool::new(true),
                dirty: AtomicBool::new(false),
            });
            shard.insert(pgno, Arc::clone(&f));
            f
        };
        self.admit(pgno);
        frame
    }

    /// Replaces (or adds) page `pgno` with `bytes` and marks it dirty. Writer only.
    pub fn put_dirty(&self, pgno: u32, bytes: Vec<u8>) -> PageRef {
        let existing = self.shard(pgno).read().get(&pgno).cloned();
        match existing {
            Some(f) => {
                *f.data.write() = bytes.into_boxed_slice();
                self.mark_dirty(&f);
                f
            }
            None => {
                let f = Arc::new(Frame {
                    pgno,
                    data: RwLock::new(bytes.into_boxed_slice()),
                    referenced: AtomicBool::new(true),
                    dirty: AtomicBool::new(true),
                });
                self.dirty.fetch_add(1, Ordering::AcqRel);
                self.shard(pgno).write().insert(pgno, Arc::clone(&f));
                self.admit(pgno);
                f
            }
        }
    }

    /// Marks a resident frame the writer changed in place as dirty. Writer only.
    pub fn mark_dirty(&self, frame: &PageRef) {
        if !frame.dirty.swap(true, Ordering::AcqRel) {
            self.dirty.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Drops page `pgno` from the pool: always if `garbage` (its content is no longer needed, even if
    /// dirty), else only if it is clean.
    pub fn discard(&self, pgno: u32, garbage: bool) {
        let mut shard = self.shard(pgno).write();
        let Some(f) = shard.get(&pgno) else { return };
        if garbage {
            if f.dirty.swap(false, Ordering::AcqRel) {
                self.dirty.fetch_sub(1, Ordering::AcqRel);
            }
        } else if f.is_dirty() {
            return;
        }
        shard.remove(&pgno);
    }

    /// Writes `frame` to its location if it is dirty, sealed, and marks it clean; returns whether it wrote.
    /// REQUIRES: no one changes the frame meanwhile (it is unpinned under the shard's write lock, or a
    /// page a checkpoint froze).
    ///
    /// # Errors
    /// `Io`; the frame stays dirty.
    pub fn write_back(&self, frame: &Frame, file: &File, purpose: WritePurpose) -> Result<bool> {
        if !frame.is_dirty() {
            return Ok(false);
        }
        let mut buf = frame.read().to_vec();
        super::page::seal(&mut buf, frame.pgno);
        file.write_at(frame.pgno as u64 * self.page_size as u64, &buf, purpose)?;
        if frame.dirty.swap(false, Ordering::AcqRel) {
            self.dirty.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(true)
    }

    fn admit(&self, pgno: u32) {
        let mut ring = self.clock.lock();
        ring.push_back(pgno);
        self.resident.store(ring.len() as u64, Ordering::Relaxed);
        self.evict_over_capacity(&mut ring);
    }

    /// Runs the CLOCK hand until the pool is within capacity or no page can go (every one pinned, or dirty
    /// without a file to write it to).
    fn evict_over_capacity(&self, ring: &mut VecDeque<u32>) {
        let mut budget = ring.len() * 2;
        while ring.len() > self.capacity && budget > 0 {
            budget -= 1;
            let Some(pgno) = ring.pop_front() else { break };
            let mut shard = self.shard(pgno).write();
            let evict = match shard.get(&pgno) {
                // A page discarded since it was admitted: its ring entry just goes.
                None => continue,
                Some(f) => {
                    if f.referenced.swap(false, Ordering::Relaxed) || Arc::strong_count(f) != 1 {
                        false
                    } else if !f.is_dirty() {
                        true
                    } else {
                        self.steal(f)
                    }
                }
            };
            if evict {
                shard.remove(&pgno);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            } else {
                ring.push_back(pgno);
            }
        }
        self.resident.store(ring.len() as u64, Ordering::Relaxed);
    }

    /// Writes an unpinned dirty frame back so it can go; false if it must stay.
    fn steal(&self, f: &Frame) -> bool {
        let Some(file) = &self.file else { return false };
        let mut failed = self.failed.lock();
        if failed.is_some() {
            return false;
        }
        match self.write_back(f, file, WritePurpose::PageEviction) {
            Ok(_) => true,
            Err(e) => {
                *failed = Some(e);
                false
            }
        }
    }

    /// The error of a failed write-back on eviction, once.
    pub fn take_error(&self) -> Option<Error> {
        self.failed.lock().take()
    }

    /// The dirty pages, in page order.
    pub fn dirty_frames(&self) -> Vec<PageRef> {
        let mut v: Vec<PageRef> = self
            .table
            .iter()
            .flat_map(|s| {
                s.read()
                    .values()
                    .filter(|f| f.is_dirty())
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort_by_key(|f| f.pgno);
        v
    }

    /// Dirty pages now.
    pub fn dirty_count(&self) -> usize {
        self.dirty.load(Ordering::Acquire)
    }

    /// The dirty copy of `pgno`, if it is resident and dirty.
    pub fn dirty_copy(&self, pgno: u32) -> Option<Vec<u8>> {
        let f = self.shard(pgno).read().get(&pgno).cloned()?;
        f.is_dirty().then(|| f.read().to_vec())
    }

    /// Bytes of resident pages.
    pub fn resident_bytes(&self) -> u64 {
        self.resident.load(Ordering::Relaxed) * self.page_size as u64
    }

    /// Pages evicted so far.
    #[cfg(test)]
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Drops every page (at close).
    pub fn clear(&self) {
        let mut ring = self.clock.lock();
        for s in &self.table {
            s.write().clear();
        }
        ring.clear();
        self.dirty.store(0, Ordering::Release);
        self.resident.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(b: u8) -> Box<[u8]> {
        vec![b; 16].into_boxed_slice()
    }

    #[test]
    fn without_a_file_clock_evicts_clean_unpinned_pages_and_never_dirty_ones() {
        let pool = Pool::new(3, 16, None);
        for p in 2..5 {
            pool.insert_clean(p, page(p as u8));
        }
        let pinned = pool.lookup(2);
        pool.put_dirty(5, vec![5; 16]);
        assert_eq!(pool.resident_bytes(), 3 * 16);
        assert!(pool.lookup(5).is_some(), "dirty pages stay");
        for p in 6..20 {
            pool.insert_clean(p, page(p as u8));
        }
        assert!(pool.lookup(5).is_some(), "dirty pages stay");
        assert!(
            pinned.is_some() && pool.lookup(2).is_some(),
            "pinned pages stay"
        );
        assert!(pool.evictions() > 0);
        assert_eq!(pool.dirty_count(), 1);
        pool.discard(5, true);
        assert_eq!(pool.dirty_count(), 0);
        drop(pinned);
        pool.insert_clean(30, page(30));
        assert!(pool.resident_bytes() <= 3 * 16);
    }

    #[test]
    fn page_numbers_of_one_shard_spread_over_the_low_hash_bits() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<PgnoHasher>::default();
        let buckets: std::collections::HashSet<u64> = (0..1024u32)
            .map(|m| build.hash_one(m * SHARDS as u32 + 5) & 1023)
            .collect();
        assert!(buckets.len() > 512, "{} of 1024 buckets", buckets.len());
    }

    #[test]
    fn a_hit_returns_the_bytes_and_the_second_chance_is_honoured() {
        let pool = Pool::new(2, 16, None);
        pool.insert_clean(2, page(2));
        pool.insert_clean(3, page(3));
        // Touch 2 so the hand skips it once.
        assert_eq!(pool.lookup(2).unwrap().read()[0], 2);
        pool.insert_clean(4, page(4));
        assert!(pool.lookup(4).is_some());
        assert!(pool.resident_bytes() <= 2 * 16);
    }
}
