//! The page-based B-tree engine: one data file of fixed-size pages, a buffer pool that writes dirty pages
//! back whenever it needs room, and copy-on-write checkpoints.
//!
//! # Durability: WAL, steal, copy-on-write checkpoints
//!
//! A write goes through the commit pipeline both engines share (`crate::pipeline`): under the writer
//! mutex its batch is appended to the WAL ([`crate::wal`]; payload [`WriteBatch::encode`] with the batch's
//! first sequence; each operation takes one sequence), then applied to pages in the buffer pool in log
//! order. A batch's LSN is its last sequence, so LSNs increase but are not consecutive. `Buffered` leaves
//! the record in the WAL's buffer, `Flush` hands it to the OS before returning, `Sync` hands it to the OS
//! under the writer mutex and waits for the fsync (`sync_through`) after releasing it, so concurrent
//! `Sync` writers share fsyncs. [`Engine::sync`] syncs the WAL only.
//!
//! The WAL is logical redo: a crash recovers by replaying the batches after the last checkpoint onto the
//! state that checkpoint's header describes. So the one thing the data file must guarantee is that the
//! durable header's state stays intact until a newer header is durable — which copy-on-write gives
//! without a doublewrite file, torn-page protection or a WAL-before-page rule:
//!
//! - **A durable page is never overwritten.** Every page number is durable (part of the state the newest
//!   header, or the checkpoint in flight, describes: a tree page reachable from its root or a page of its
//!   free list), *fresh* (allocated since the last checkpoint froze), free, or freed and waiting for the
//!   next header (the `space` module). The writer changes only fresh pages: before it changes a durable
//!   page it moves it to a fresh one (a copy), top-down from the root, pointing the parent (fresh by then)
//!   or the root at the copy; the old page is freed once the next header is durable.
//! - **Steal.** A dirty page may leave the pool at any time: the pool writes it to its own (fresh)
//!   location first. Nothing durable refers to that location, so a crash, a torn write or a write whose
//!   batch never reached the WAL leaves garbage in a page recovery does not read.
//! - **Checkpoints** are paced by WAL volume ([`BTreeOptions::checkpoint_wal_bytes`]) and time
//!   ([`BTreeOptions::checkpoint_interval`]), PostgreSQL's `max_wal_size` and `checkpoint_timeout`, not by
//!   the pool: a page changed many times between two checkpoints is written once or twice.
//!
//! A checkpoint at batch boundary L:
//! 1. under the writer mutex: rotates the WAL to a new segment (sealing and syncing the old one), so every
//!    batch ≤ L is in a segment before the new one, which the new header names as the first live one;
//!    under the tree latch (briefly): drops free pages at the end of the file, takes pages for the new
//!    free list (free pages and those waiting for this header, sealed now, written in step 2), turns every
//!    fresh page durable, and lists the pages dirty now. Writers go on at once; a later batch that changes
//!    one of those pages moves it to a fresh page first, so the listed pages no longer change;
//! 2. (on the checkpoint thread, or inline) writes the listed pages still dirty (the pool may have written
//!    some back meanwhile) and the free-list pages, growing the file first; fsyncs the data file;
//! 3. writes the header slot its counter selects (the inactive one: root, height, free list, page count,
//!    LSN L, first live WAL segment), fsyncs;
//! 4. deletes the WAL segments up to the sealed one; frees the pages the previous header needed; truncates
//!    the file to its page count if the freeze dropped pages at its end.
//!
//! Failure analysis. A crash before step 3's fsync leaves the previous header valid (the new slot is the
//! other one; a torn slot fails its CRC), and every page it describes intact, since nothing durable was
//! written since; its first live WAL segment is still there (segments are deleted in step 4), so replay
//! restores every batch after it. A crash after step 3's fsync leaves the new header, whose pages were
//! synced in step 2. Pages freed by the new checkpoint are reused only after step 3 (step 4), so neither
//! header's state is ever overwritten while it may be the one open reads. A header slot that is damaged
//! later (bit rot) makes open fall back to the older slot, whose pages may have been reused since: the page
//! check then reports `Corruption` (pages carry checksums over their page number, and LSNs no newer than
//! the last batch applied), never old and new data mixed silently. `Flush` writes survive a process crash
//! through the WAL, `Sync` writes a power loss, exactly as before the checkpoint design changed.
//!
//! In `Threads` mode ([`BTreeOptions::background`], the default) the writer whose batch makes a checkpoint
//! due freezes it (step 1) and hands it to the checkpoint thread, which also starts one itself when the
//! interval passes; writers never wait for a checkpoint. `Manual` runs the whole checkpoint inline in that
//! writer; deterministic, for simulated-backend tests. [`Engine::flush`] and close wait for the checkpoint
//! in flight, then run one inline (and a second if the first freed pages at the end of the file, so the
//! file shrinks).
//!
//! A failure at any step poisons the handle (`Poisoned` on later writes; the pages stay dirty in the pool,
//! so reads stay correct); a reopen recovers. A failed write-back on eviction leaves the page dirty and
//! resident, and poisons the handle at the next batch.
//!
//! Recovery at open, each step durable before the next, so a crash during recovery recovers again to the
//! same state:
//! 1. lock the directory, check `IDENTITY`, choose the header slot (valid, highest counter), read its free
//!    list (every page checked);
//! 2. replay the WAL segments from the first live one the header names in order, validating their chain;
//!    a batch whose last sequence is ≤ the header's LSN is already in the data file and skipped, the others
//!    are applied with LSN = their last sequence (copy-on-write as always: dirty pages the pool evicts go
//!    to fresh pages). A torn tail is dropped and counted; damage in synced data and a missing, emptied
//!    or cut segment the chain proves held synced data are `Corruption` (the WAL module decides);
//! 3. start a new segment numbered one past the last (its LINK names the last replayed one; directory
//!    fsync'd), checkpoint with a header naming it as the first live segment (this makes the replayed
//!    batches durable), then delete every older segment. The next LSN is max(header LSN, last replayed)
//!    + 1. A crash before that header leaves the new segment as an empty trailing one, which replays.
//!
//! # Read-only open
//!
//! With [`BTreeOptions::read_only`] the storage refuses every write ([`Storage::into_read_only`]), the data
//! file is opened for reading, and the pool never writes a page back. Open takes a *shared* lock (none if
//! `LOCK` is missing) and changes nothing on disk: WAL batches the data file lacks are applied to pages in
//! the pool, which stay dirty; if they need more pages than the pool holds, open fails with
//! `InvalidArgument` naming `pool_bytes`, rather than write. No new WAL segment, no checkpoint, no deletion;
//! no checkpoint thread runs.
//!
//! # Files
//!
//! `IDENTITY` (see [`crate::identity`]; it records the page size), `LOCK`, the data file `data`, and the
//! WAL segments `NNNNNN.log`.
//!
//! # The data file
//!
//! Byte tables beside their codecs: the header slots in [`header`], the page layouts (page header, leaf
//! and internal cells, overflow and free-list pages) in [`page`].
//!
//! Pages of `page_size` bytes (4 KiB by default; 512 B to 16 KiB, a power of two, fixed at creation).
//! Page `n` starts at byte `n × page_size`. Pages 0 and 1 are the header slots; tree, overflow and
//! free-list pages start at 2. Page number 0 means "none" in every link. All integers are little-endian.
//! A free page holds whatever was last written there (a stale copy, or garbage after a crash): only the
//! free list says which pages are free.
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
//! # Range deletes
//!
//! A [`WriteBatch::delete_range`] is applied in place, inside its batch, under the exclusive tree latch
//! like every other operation (so readers see all of the batch or none of it): the writer descends to the
//! leaf holding the range's start, drops its covered cells, and moves on leaf by leaf through the
//! separators; a leaf the range covers whole is dropped together with every following sibling under the
//! same parent that the range covers whole, in one edit of that parent (their values, overflow chains
//! and overflow keys freed, their pages freed), then the parent settles as after any delete (merge or
//! redistribution below a quarter). The cost is one leaf read per covered leaf and one parent rewrite
//! per parent, not a descent per key. Snapshots older than the batch still see every removed key: its
//! prior value goes to the overlay, so a range delete under a live snapshot costs overlay memory like
//! the same deletes one by one would (past `snapshot_memory` the oldest snapshots are released).
//!
//! It is not split into chunks applied under separate latches, nor deferred: a B-tree entry carries no
//! sequence, so a lazily applied range could not tell a key written after it from one it covers, and
//! the next checkpoint would have to persist the pending range. The price is that readers wait while a
//! range delete applies. Measured on the 2-core machine with other builds running (load average 5–8):
//! one range delete of 900,000 of 1,000,000 keys took 0.23–0.41 s in the amplification report's
//! `deleterange` workload (8 MiB pool) and 0.40–0.61 s in the `range_delete` example (64 MiB pool),
//! against 4.4 s for the same keys deleted one by one in batches of 1,000. The WAL holds the
//! logical operation, and applying it to a state that already lacks some of its keys removes the rest,
//! so recovery replays it like any batch.
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
//! The `pool` module: CLOCK replacement, pinning, dirty tracking, write-back on eviction. Memory is the
//! pool (`pool_bytes`), which may exceed its size only while every page in it is pinned (or, read-only,
//! dirty), plus the overlay (`snapshot_memory`), plus the allocator's maps (a bit per page of the file for
//! the fresh set, and the free page numbers).
//!
//! # Space
//!
//! Freed pages are reused lowest first, and free pages at the end of the file are dropped at the next
//! checkpoint, so the file tracks the live data plus what copy-on-write holds back: the old copies of the
//! pages changed since the last checkpoint, free once the next header is durable. Free pages in the middle
//! of the file stay until [`Engine::compact`], or a close that finds more than a tenth of the file free,
//! moves the tree pages at its end into them and truncates it (overflow pages are not moved).
//!
mod backup;
mod checkpoint;
mod cursor;
#[cfg(feature = "testing")]
pub(crate) mod fuzz_hooks;
mod handle;
mod header;
pub(crate) mod inspect;
mod open;
mod options;
mod overlay;
mod page;
mod pool;
mod space;
mod store;
mod tree;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::batch::{BatchOp, WriteBatch};
use crate::engine::{Background, Engine, Iter, Limits, Snapshot, WriteOptions};
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
/// added overflow keys, version 4 copy-on-write checkpoints (free-list pages instead of a chain through
/// free pages, no doublewrite file); a database of an older version is `UnsupportedVersion` (there is no upgrade path).
pub const BTREE_FORMAT_VERSION: u32 = 4;

/// The page-based B-tree engine: one data file of fixed-size pages, a buffer pool, copy-on-write
/// checkpoints, and the write-ahead log every write goes to first.
///
/// Use it through the [`Engine`] trait. Pages a writer changes stay in the pool until it needs room or a
/// checkpoint writes them, always to pages the last checkpoint does not use, so a crash never damages
/// it; [`Engine::flush`] runs a checkpoint.
/// While snapshots and scans are open, writers keep the prior values they need in an in-memory overlay
/// bounded by [`BTreeOptions::snapshot_memory`]: past it the oldest snapshots are released and their
/// reads fail with [`Error::SnapshotTooOld`]. [`Engine::compact`] shrinks the data file (close does too when more than a tenth of it is free). `docs/architecture.md`
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
    checkpoint_wal_bytes: u64,
    checkpoint_interval: Duration,
    /// When the last checkpoint became durable (or the handle opened).
    last_checkpoint: Mutex<Instant>,
    /// LSN of the durable header.
    durable_lsn: AtomicU64,
    /// `Threads`: a frozen checkpoint handed to the worker, not yet taken.
    job: Mutex<Option<Frozen>>,
    /// `Threads`: a frozen checkpoint exists that is not yet durable (handed over or being written).
    in_flight: AtomicBool,
    snapshot_memory: u64,
    checkpoints: AtomicU64,
    /// The first live WAL segment the durable header names (0: not recorded).
    wal_first: AtomicU64,
    /// The first live WAL segment a checkpoint without a WAL (during recovery) names.
    recovery_first: AtomicU64,
    /// Held by a checkpoint from its header write until it has released the pages the previous header
    /// needed, and by a backup while it copies the data file: so the durable header's pages stay as they
    /// are while a backup copies them (see `backup`).
    header_gate: Mutex<()>,
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
                for (i, op) in batch.into_iter().enumerate() {
                    // Pages already in the pool need no warming: a batch whose first keys found every
                    // page there (a hot working set, an ascending load) skips the second descent.
                    let missed = r.tally.data_fetches + r.tally.index_fetches > 0;
                    if (i >= 8 && !missed) || r.warm(op.key()).is_err() {
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
        self.store
            .max_lsn
            .store(lsn, std::sync::atomic::Ordering::Release);
        let applied = (|| {
            let mut w = writer::Writer::new(&self.store, &mut st, lsn, oldest.is_some());
            for op in batch {
                match op {
                    BatchOp::Put { key, value } => w.put(key, value)?,
                    BatchOp::Delete { key } => w.delete(key)?,
                    BatchOp::DeleteRange { start, end } => w.delete_range(start, end)?,
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
        crate::engine::LIMITS
    }
}
