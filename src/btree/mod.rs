//! The page-based B-tree engine: one data file of fixed-size pages, a buffer pool, pages updated in place
//! by checkpoints.
//!
//! # Durability: WAL, no-steal, atomic checkpoint
//!
//! A write goes through the commit pipeline both engines share (`crate::pipeline`): under the writer
//! mutex its batch is appended to the WAL ([`crate::wal`]; payload [`WriteBatch::encode`] with the batch's
//! first sequence; each operation takes one sequence), then applied to pages in the buffer pool in log
//! order. A batch's LSN is its last sequence, so LSNs increase but are not consecutive. `Buffered` leaves
//! the record in the WAL's buffer, `Flush` hands it to the OS before returning, `Sync` hands it to the OS
//! under the writer mutex and waits for the fsync (`sync_through`) after releasing it, so concurrent
//! `Sync` writers share fsyncs.
//! [`Engine::sync`] syncs the WAL only. Dirty pages stay in the pool (no-steal) until a checkpoint
//! writes them. The header's LSN says which batches the data file holds. When checkpoints run
//! ([`BTreeOptions::background`]):
//! - `Threads` (default): one checkpoint thread. After a batch, when the dirty pages reach half of
//!   `max_dirty_pages` or the WAL since the last checkpoint reaches `checkpoint_wal_bytes`, the writer
//!   freezes the dirty set (step 1 below) and hands it to the thread, which does steps 2–5 without the
//!   writer mutex while writers go on (and may dirty the same pages again). A writer waits (a stall in
//!   [`Stats`]) only if the dirty pages reach `max_dirty_pages` while a checkpoint is in flight.
//! - `Manual`: the writer that reaches `max_dirty_pages` (or the WAL bound) runs the whole checkpoint
//!   inline; deterministic, for simulated-backend tests.
//!
//! Either way [`Engine::flush`] and close wait for the checkpoint in flight, then run one inline.
//!
//! A checkpoint at batch boundary L:
//! 1. under the writer mutex (readers go on): rotates the WAL to a new segment (sealing and syncing the
//!    old one), so every batch ≤ L is in a segment before the new one, which the new header slot names as
//!    the first live WAL segment; copies every dirty page, sealed,
//!    into the frozen set, installs it in the page store and marks the pool's copies clean. While the
//!    frozen set exists a pool miss is served from it, never from the file (which may lack the page), and
//!    its bytes count as `checkpoint_copy` in [`crate::MemoryUsage`];
//! 2. writes the frozen pages and the new header slot (counter + 1, LSN L) to the doublewrite file
//!    (below), replacing any, fsyncs it and the directory;
//! 3. grows the data file to the new page count (`set_len`), writes the pages in place, fsyncs;
//! 4. writes the header slot its counter selects (the inactive one), fsyncs;
//! 5. deletes the WAL segments up to the sealed one and the doublewrite file, then drops the frozen set.
//!
//! A failure at any step poisons the handle (`Poisoned` on later writes; the frozen set stays, so reads
//! stay correct); a reopen recovers.
//!
//! Recovery at open, each step durable before the next, so a crash during recovery recovers again to the
//! same state:
//! 1. lock the directory, check `IDENTITY`, choose the header slot (valid, highest counter);
//! 2. if a doublewrite file exists, is complete and valid (exact length, CRC, header slot valid and with
//!    the file's LSN, every page passing its check), has an LSN above the chosen header's and the counter
//!    right after it, copy its pages in place, grow the file to its page count, fsync, write its header
//!    slot, fsync (`pages_restored` in the [`RecoveryReport`]); any other doublewrite file is ignored; the
//!    file is deleted either way. Pages restored carry LSNs ≤ L, so the page LSN check below holds;
//! 3. replay the WAL segments from the first live one the header names (0, a header written before that
//!    field existed: every segment; the named one missing is `Corruption`) in order, validating their
//!    chain; a batch whose last sequence is ≤ the header's LSN is already in the data file and skipped,
//!    the others are applied with LSN = their last sequence (checkpointing at the dirty limit; those
//!    headers keep naming the first replayed segment). A torn tail is dropped and counted; damage in synced data and a
//!    missing, emptied or cut segment the chain proves held synced data are `Corruption` (the WAL module
//!    decides);
//! 4. start a new segment numbered one past the last (its LINK names the last replayed one; directory
//!    fsync'd), checkpoint with a header naming it as the first live segment (this makes the replayed
//!    batches durable), then delete every older segment. The next LSN is max(header LSN, last replayed)
//!    + 1. A crash before that header leaves the new segment as an empty trailing one, which replays.
//!
//! The doublewrite file is written and synced before any page is written in place, and deleted only after
//! the header is synced; so a crash leaves either no page changed in place (the doublewrite file is
//! incomplete, or the header does not need it), or a complete doublewrite file that repairs torn and mixed
//! pages. No WAL segment is deleted before the header that includes its batches is durable.
//!
//! # Read-only open
//!
//! With [`BTreeOptions::read_only`] the storage refuses every write ([`Storage::into_read_only`]) and the
//! data file is opened for reading. Open takes a *shared* lock (none if `LOCK` is missing) and changes
//! nothing on disk:
//! - a doublewrite file that recovery would restore is not copied in place: its pages become an
//!   in-memory frozen set (as during a checkpoint) that serves reads of those pages, and its header slot is
//!   used; any other doublewrite file is ignored and left alone;
//! - WAL batches the data file lacks are applied to pages in the buffer pool, which stay dirty and are
//!   never written back. If they need more than `max_dirty_pages` (at most the pool's page count) dirty
//!   pages, open fails with `InvalidArgument` naming the options to raise, rather than write;
//! - skipped: the new WAL segment, the checkpoint, deleting replayed segments and the doublewrite file;
//!   no checkpoint thread runs.
//!
//! # Files
//!
//! `IDENTITY` (see [`crate::identity`]; it records the page size), `LOCK`, the data file `data`, the WAL
//! segments `NNNNNN.log`, and, only during a checkpoint (or after a crash in one), `doublewrite`.
//!
//! # The data file
//!
//! Byte tables beside their codecs: the header slots in [`header`], the page layouts (page header, leaf
//! and internal cells, overflow and free pages) in [`page`], the doublewrite file in [`doublewrite`].
//!
//!
//! Pages of `page_size` bytes (4 KiB by default; 512 B to 16 KiB, a power of two, fixed at creation).
//! Page `n` starts at byte `n × page_size`. Pages 0 and 1 are the header slots; tree, overflow and free
//! pages start at 2. Page number 0 means "none" in every link. All integers are little-endian.
//!
//! # The tree
//!
//! A B+tree: values only in leaves, and no sibling links (scans move between leaves through their
//! parents). Keys may be as long as the LSM engine's (64 KiB; `Limits` are the same for both engines):
//! long keys and separators keep a bounded prefix inline (above). A page that outgrows its page splits by bytes
//! (the halves hold about equal bytes; a leaf split by an append past the rightmost key keeps the left
//! page full, so ascending loads fill their pages) and pushes a separator into its parent, up to a new root. After a
//! delete, a non-root page below a quarter of the usable bytes is merged with an adjacent sibling if the
//! two fit in one page, else the two are redistributed by bytes; a root left with one child is replaced
//! by it. Freed pages go on the free list, so a file under steady delete and insert stops growing (it never
//! shrinks).
//!
//! # Concurrency and snapshots
//!
//! One writer at a time (a writer mutex) applies a batch under the exclusive tree latch, so a batch is
//! visible whole. It first reads the paths to the leaves it will change under the shared latch, so the
//! exclusive part is mostly in-memory edits. Readers take the latch shared for one lookup or one cursor
//! step, and run beside each other. Every read is bounded: descents follow exactly `height` levels (each
//! page's type must match its level); a scan keeps its path from the root and reaches the next (previous)
//! leaf through the deepest ancestor with a child right (left) of the one taken, re-reading at most
//! `height` pages, visits at most `page_count` leaves per run and requires ascending keys across them;
//! overflow chains stop at the length their value or key implies.
//!
//! A batch that fails part-way (the writer met a damaged page, or an I/O error) poisons the handle, and
//! since the tree may then hold part of the batch, reads fail with `Poisoned` too; the data file still holds
//! the last checkpoint, which a reopen reads before replaying the WAL (the failed batch, if its record
//! reached the log, is replayed whole).
//!
//! Snapshots and scans register a version; while one is live, the writer keeps the prior value of every key
//! it writes in the snapshot overlay, which a snapshot read consults before the tree. The overlay is
//! bounded by `snapshot_memory`: past it, the oldest snapshots are released and their reads fail with
//! [`Error::SnapshotTooOld`]. Writers never wait for readers.
//!
//! # Buffer pool
//!
//! The `pool` module: CLOCK replacement, pinning, dirty tracking, no-steal. Memory is the pool
//! (`pool_bytes`), which may exceed its size only while every page in it is dirty or pinned (one batch
//! larger than the pool), plus the frozen copy of a checkpoint in flight (the dirty pages at its batch
//! boundary, about `max_dirty_pages`), plus the overlay (`snapshot_memory`).

mod checkpoint;
mod cursor;
mod doublewrite;
#[cfg(feature = "testing")]
pub(crate) mod fuzz_hooks;
mod handle;
mod header;
mod open;
mod options;
mod overlay;
mod page;
mod pool;
mod store;
mod tree;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::{Mutex, RwLock};

use crate::batch::{BatchOp, WriteBatch};
use crate::engine::{
    Background, Engine, Iter, LSM_MAX_KEY_LEN, Limits, MAX_BATCH_LEN, MAX_VALUE_LEN, Snapshot,
    WriteOptions,
};
use crate::error::{EngineKind, Error, Result};
use crate::identity;
use crate::pipeline::{self, Core, EngineCore};
use crate::stats::{ReadCounters, RecoveryReport, Stats, VerifyReport};
use crate::storage::{File, ReadPurpose, Storage, WritePurpose};
use crate::wal::{self, RecoveryMode, WalWriter};

pub use options::BTreeOptions;
pub(crate) use options::owns_file;

use cursor::{BTreeCursor, BTreeSnapshot, SnapHandle};
use header::{Header, SLOT_BYTES};
use page::{DATA_FILE, Geometry, LeafNode};
use pool::Pool;
use store::{Frozen, PageStore, Tally};
use tree::{Reader, TreeState};

/// The B-tree's format version (data file and header). Version 2 dropped the leaf sibling links, version 3
/// added overflow keys; a database of an older version is `UnsupportedVersion` (there is no upgrade path).
pub const BTREE_FORMAT_VERSION: u32 = 3;

/// The page-based B-tree engine: one data file of fixed-size pages updated in place by checkpoints, a
/// buffer pool, and the write-ahead log every write goes to first.
///
/// Use it through the [`Engine`] trait. Pages a writer changes stay in memory until a checkpoint writes
/// them (through a doublewrite file, so a torn page is repaired at open); [`Engine::flush`] runs one.
/// While snapshots and scans are open, writers keep the prior values they need in an in-memory overlay
/// bounded by [`BTreeOptions::snapshot_memory`]: past it the oldest snapshots are released and their
/// reads fail with [`Error::SnapshotTooOld`]. [`Engine::compact`] is [`Error::Unsupported`]. `docs/architecture.md`
/// and `docs/formats.md` in the repository describe the design and the files.
///
/// # Examples
///
/// ```
/// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
/// let dir = tempfile::tempdir()?;
/// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
/// db.put(b"k", b"v")?;
/// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"v"[..]));
/// db.close()?;
/// # Ok::<(), rumdb::Error>(())
/// ```
pub struct BTreeEngine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BTreeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BTreeEngine").finish_non_exhaustive()
    }
}

/// What the handle, its snapshots and its iterators share.
pub(crate) struct Shared {
    /// The commit pipeline and lifecycle (WAL, writer mutex, sequences, poison, snapshots, worker). The
    /// writer mutex is also held by checkpoints that run inline.
    core: Core,
    store: PageStore,
    /// The tree latch.
    tree: RwLock<TreeState>,
    checkpoint_counter: AtomicU64,
    max_dirty: usize,
    /// `Threads`: dirty pages that start a background checkpoint.
    soft_dirty: usize,
    checkpoint_wal_bytes: u64,
    /// `Threads`: a frozen set handed to the checkpoint worker, not yet taken.
    job: Mutex<Option<Arc<Frozen>>>,
    /// `Threads`: a frozen set exists that is not yet durable (handed over or being written).
    in_flight: AtomicBool,
    snapshot_memory: u64,
    checkpoints: AtomicU64,
    /// The first live WAL segment the durable header names (0: not recorded).
    wal_first: AtomicU64,
    /// The first live WAL segment a checkpoint without a WAL (during recovery) names.
    recovery_first: AtomicU64,
}

impl Shared {
    fn poison(&self, e: &Error) {
        self.core.note_poison(e);
    }

    /// `Closed`, or `Poisoned` if a batch failed part-way, for a read of the current tree.
    pub(crate) fn check_readable(&self, st: &TreeState) -> Result<()> {
        if st.closed {
            return Err(Error::Closed);
        }
        if let Some(cause) = &st.torn {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    /// [`Shared::check_readable`], or `SnapshotTooOld`, for a read as of version `s`.
    pub(crate) fn check_snapshot(&self, st: &TreeState, s: u64) -> Result<()> {
        self.check_readable(st)?;
        if st.too_old_through.is_some_and(|t| s <= t) {
            return Err(Error::SnapshotTooOld);
        }
        Ok(())
    }

    fn register_snapshot(self: &Arc<Self>) -> Result<Arc<SnapHandle>> {
        let st = self.tree.read();
        if st.closed {
            return Err(Error::Closed);
        }
        // Pinned under the latch: no batch applies between reading the version and pinning it.
        let version = self.core.snapshots.pin(|| st.version);
        drop(st);
        Ok(Arc::new(SnapHandle {
            shared: Arc::clone(self),
            version,
        }))
    }

    pub(crate) fn release_snapshot(&self, version: u64) {
        self.core.snapshots.release(version);
    }

    /// The oldest live snapshot version that has not been released for memory.
    fn oldest_active(&self, st: &TreeState) -> Option<u64> {
        self.core.snapshots.oldest_after(st.too_old_through)
    }

    /// Applies a non-empty batch as version `lsn` (after the current one). REQUIRES: the writer mutex.
    fn apply(&self, batch: &WriteBatch, lsn: u64) -> Result<()> {
        // Read the pages the batch will change under the shared latch first, so that readers wait for the
        // batch's in-memory edits only, not for its page reads. Errors are left for the apply to report.
        {
            let st = self.tree.read();
            if self.check_readable(&st).is_ok() {
                let mut r = Reader::new(&self.store, &st, ReadPurpose::Compaction);
                for op in batch {
                    if r.warm(op.key()).is_err() {
                        break;
                    }
                }
            }
        }
        let mut st = self.tree.write();
        let oldest = self.oldest_active(&st);
        match oldest {
            None => st.overlay.clear(),
            Some(s) => st.overlay.prune_through(s),
        }
        st.version = lsn;
        let applied = (|| {
            let mut w = writer::Writer::new(&self.store, &mut st, lsn, oldest.is_some());
            for op in batch {
                match op {
                    BatchOp::Put { key, value } => w.put(key, value)?,
                    BatchOp::Delete { key } => w.delete(key)?,
                }
            }
            Ok(())
        })();
        if let Err(e) = applied {
            st.torn = Some(format!("a batch failed part-way: {e}"));
            return Err(e);
        }
        // Bound the overlay: release the oldest snapshots until it fits.
        while st.overlay.bytes() > self.snapshot_memory {
            let Some(oldest) = self.oldest_active(&st) else {
                st.overlay.clear();
                break;
            };
            st.too_old_through = Some(oldest);
            match self.oldest_active(&st) {
                None => st.overlay.clear(),
                Some(s) => st.overlay.prune_through(s),
            }
        }
        Ok(())
    }

    /// Counts one point lookup and the pages it touched and fetched.
    pub(crate) fn count_get(&self, tally: &Tally) {
        self.count_gets(tally, 1);
    }

    /// Counts `gets` point lookups and the pages they touched and fetched.
    pub(crate) fn count_gets(&self, tally: &Tally, gets: u64) {
        self.core.counters.reads.add(&ReadCounters {
            gets,
            data_fetches: tally.data_fetches,
            index_fetches: tally.index_fetches,
            data_touches: tally.data_touches,
            index_touches: tally.index_touches,
            cache_hits: tally.hits,
            ..ReadCounters::default()
        });
    }

    fn limits(&self) -> Limits {
        Limits {
            max_key_len: LSM_MAX_KEY_LEN,
            max_value_len: MAX_VALUE_LEN,
            max_batch_len: MAX_BATCH_LEN,
        }
    }
}
