//! The buffer pool: a bounded set of page frames with CLOCK replacement, pinning and dirty tracking.
//!
//! - **Lookup** goes through a page table split into shards, each behind its own `RwLock`: a hit takes one
//!   shard's lock shared, clones the frame's `Arc` (the pin) and sets its reference bit — no global lock.
//! - **Pinning**: a [`PageRef`] is a pin. Besides pins, only the table (and, for a dirty frame, the dirty
//!   set) holds a frame, so a clean frame is unpinned exactly when its `Arc` count is 1, which the evictor
//!   checks under the shard's write lock (pins are taken under the read lock, so none can appear meanwhile).
//! - **CLOCK**: resident pages sit in a ring; the hand gives a referenced page a second chance (clears the
//!   bit) and evicts the first unreferenced, unpinned, clean page. Only misses and new pages run the hand.
//! - **No-steal**: a dirty page is never evicted; a checkpoint's freeze copies it and marks it clean (misses
//!   are then served from the frozen copy until the checkpoint is durable). If every page is dirty or
//!   pinned the pool holds more than its capacity until the next freeze (at `max_dirty_pages` at the latest,
//!   so the excess is bounded by one batch).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

    /// True until a checkpoint writes the page.
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
    dirty: Mutex<Vec<PageRef>>,
    resident: AtomicU64,
    evictions: AtomicU64,
}

impl Pool {
    /// A pool of `capacity` frames of `page_size` bytes (at least 2 frames).
    pub fn new(capacity: usize, page_size: usize) -> Self {
        Pool {
            capacity: capacity.max(2),
            page_size,
            table: (0..SHARDS)
                .map(|_| RwLock::new(PageTable::default()))
                .collect(),
            clock: Mutex::new(VecDeque::new()),
            dirty: Mutex::new(Vec::new()),
            resident: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
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
    pub fn put_dirty(&self, pgno: u32, bytes: Vec<u8>) {
        let existing = self.shard(pgno).read().get(&pgno).cloned();
        let frame = match existing {
            Some(f) => {
                *f.data.write() = bytes.into_boxed_slice();
                f
            }
            None => {
                let f = Arc::new(Frame {
                    pgno,
                    data: RwLock::new(bytes.into_boxed_slice()),
                    referenced: AtomicBool::new(true),
                    dirty: AtomicBool::new(true),
                });
                self.shard(pgno).write().insert(pgno, Arc::clone(&f));
                self.dirty.lock().push(Arc::clone(&f));
                self.admit(pgno);
                return;
            }
        };
        self.mark_dirty(&frame);
    }

    /// Marks a resident frame the writer changed in place as dirty. Writer only.
    pub fn mark_dirty(&self, frame: &PageRef) {
        if !frame.dirty.swap(true, Ordering::AcqRel) {
            self.dirty.lock().push(Arc::clone(frame));
        }
    }

    fn admit(&self, pgno: u32) {
        let mut ring = self.clock.lock();
        ring.push_back(pgno);
        self.resident.store(ring.len() as u64, Ordering::Relaxed);
        self.evict_over_capacity(&mut ring);
    }

    /// Runs the CLOCK hand until the pool is within capacity or no page can go (every one dirty or pinned).
    fn evict_over_capacity(&self, ring: &mut VecDeque<u32>) {
        let mut budget = ring.len() * 2;
        while ring.len() > self.capacity && budget > 0 {
            budget -= 1;
            let Some(pgno) = ring.pop_front() else { break };
            let mut shard = self.shard(pgno).write();
            let evict = match shard.get(&pgno) {
                None => true,
                Some(f) => {
                    if f.referenced.swap(false, Ordering::Relaxed) {
                        false
                    } else {
                        Arc::strong_count(f) == 1 && !f.is_dirty()
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

    /// Evicts clean pages until the pool is within capacity (after a checkpoint made pages clean).
    pub fn trim(&self) {
        let mut ring = self.clock.lock();
        self.evict_over_capacity(&mut ring);
    }

    /// The dirty pages, in page order.
    pub fn dirty_frames(&self) -> Vec<PageRef> {
        let mut v = self.dirty.lock().clone();
        v.sort_by_key(|f| f.pgno);
        v
    }

    /// Marks `frames` clean (a checkpoint wrote them) and drops them from the dirty set.
    pub fn mark_clean(&self, frames: &[PageRef]) {
        let mut dirty = self.dirty.lock();
        for f in frames {
            f.dirty.store(false, Ordering::Release);
        }
        dirty.retain(|f| f.is_dirty());
    }

    /// Dirty pages now.
    pub fn dirty_count(&self) -> usize {
        self.dirty.lock().len()
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
        self.dirty.lock().clear();
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
    fn clock_evicts_clean_unpinned_pages_and_never_dirty_ones() {
        let pool = Pool::new(3, 16);
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
        pool.mark_clean(&pool.dirty_frames());
        drop(pinned);
        pool.trim();
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
        let pool = Pool::new(2, 16);
        pool.insert_clean(2, page(2));
        pool.insert_clean(3, page(3));
        // Touch 2 so the hand skips it once.
        assert_eq!(pool.lookup(2).unwrap().read()[0], 2);
        pool.insert_clean(4, page(4));
        assert!(pool.lookup(4).is_some());
        assert!(pool.resident_bytes() <= 2 * 16);
    }
}
