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
//! # The doublewrite file
//!
//! All integers little-endian. `n` = page count.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RUMDB-DW` |
//! | 8 | 4 | format version (the B-tree's, 3) |
//! | 12 | 4 | page size |
//! | 16 | 8 | checkpoint LSN L |
//! | 24 | 4 | page count `n` |
//! | 28 | 32 | zero |
//! | 60 | 4 | CRC-32 of bytes 0..60 followed by bytes 64..end |
//! | 64 | 64 | the header slot the checkpoint writes (its own format and CRC, below) |
//! | 128 | 4 × n | page numbers |
//! | 128 + 4n | page_size × n | the pages, sealed (as they go in place) |
//!
//! The file is valid only if its length is exactly `128 + n × (4 + page_size)` (which also bounds what
//! recovery reads), the CRC matches and the page size is the database's. A complete file with a valid
//! CRC whose header slot or pages do not check is `Corruption` (file `doublewrite` and offset). Bytes are
//! counted as [`WritePurpose::TornPage`]; pages in place as `PageWriteback`, header slots as `Header`.
//!
//! # The data file
//!
//! Pages of `page_size` bytes (4 KiB by default; 512 B to 16 KiB, a power of two, fixed at creation).
//! Page `n` starts at byte `n × page_size`. Pages 0 and 1 are the header slots; tree, overflow and free
//! pages start at 2. Page number 0 means "none" in every link. All integers are little-endian.
//!
//! ## Header slot (page 0 or 1; 64 bytes, the rest of the page zero)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RUMDB-BT` |
//! | 8 | 4 | format version (3; any other is `UnsupportedVersion`) |
//! | 12 | 4 | page size (must equal `IDENTITY`'s) |
//! | 16 | 8 | checkpoint counter; the slot is `counter % 2` |
//! | 24 | 8 | LSN: the last batch the checkpoint includes |
//! | 32 | 4 | root page |
//! | 36 | 4 | height: levels of internal pages above the leaves (≤ 40) |
//! | 40 | 4 | free list head (0: empty) |
//! | 44 | 4 | free list length |
//! | 48 | 4 | page count of the file (header pages included) |
//! | 52 | 8 | first live WAL segment: the one the checkpoint's WAL rotation started (0: not recorded) |
//! | 60 | 4 | CRC-32 of bytes 0..60 |
//!
//! A checkpoint writes the slot its new counter selects, so the previous checkpoint's slot is never
//! overwritten; open takes the valid slot with the highest counter (both invalid: `Corruption`). The slot
//! fits in the first 512-byte sector, which the media assumption (atomic 512 B sector writes) keeps whole.
//!
//! ## Page header (every page from 2 on; 32 bytes)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | type: 1 leaf, 2 internal, 3 overflow, 4 free |
//! | 1 | 1 | page format (3) |
//! | 2 | 2 | cell count (leaf, internal); 0 otherwise |
//! | 4 | 4 | CRC-32 over the page number (4 bytes), bytes 0..4 and bytes 8..page_size |
//! | 8 | 8 | LSN of the batch that last changed the page |
//! | 16 | 4 | internal: leftmost child; overflow: next overflow page; free: next free page; leaf: 0 |
//! | 20 | 4 | overflow: data bytes in this page; otherwise 0 |
//! | 24 | 2 | leaf, internal: offset of the cell area (lowest cell) |
//! | 26 | 6 | zero |
//!
//! Bytes 16..24 of a leaf and 20..24 of an internal page are reserved: a nonzero byte is `Corruption`. (Format 1
//! kept leaf sibling links at 16 and 20; format 2 dropped them, so that a page can move to a new page
//! number without touching its neighbours, as copy-on-write checkpoints need; format 3 added overflow keys.
//! A database of an older format is `UnsupportedVersion` at open: `IDENTITY` and the header slots carry the
//! version.)
//!
//! The checksum covers the page number, so a page written to the wrong place fails as a damaged one does.
//! A page read from storage must also have an LSN no newer than the header in use: after falling back to
//! the older header slot, a page rewritten since is `Corruption`, never old data mixed with new.
//!
//! ## Leaf and internal pages (slotted)
//!
//! After the header, a slot array of `count` little-endian `u16` cell offsets, in key order; cells are
//! packed from the end of the page down to the cell area offset. Lookups binary-search the slot array in
//! place.
//!
//! Leaf cell:
//!
//! | size | field |
//! |---|---|
//! | 2 | inline key bytes `p` |
//! | 1 | flags: bit 0 value in an overflow chain, bit 1 key in an overflow chain; other bits 0 |
//! | 4 | value length |
//! | 4 | (bit 0) first page of the value's chain |
//! | 4 | (bit 1) key length (up to 64 KiB, the LSM's limit) |
//! | 4 | (bit 1) first page of the key's chain |
//! | p | the key (bit 1 clear), or its first `p` bytes |
//! | value length | (bit 0 clear) value |
//!
//! Internal cell:
//!
//! | size | field |
//! |---|---|
//! | 2 | inline key bytes `p` |
//! | 1 | flags: bit 1 key in an overflow chain; other bits 0 |
//! | 4 | child page |
//! | 4 | (bit 1) key length |
//! | 4 | (bit 1) first page of the key's chain |
//! | p | the separator (bit 1 clear), or its first `p` bytes |
//!
//! Long keys (as SQLite stores them): a key of at most `max_inline_key` = `(page_size − 32) / 8` bytes (60 at
//! 512-byte pages, 508 at 4 KiB) is whole in its cell; a longer one keeps exactly its first
//! `max_inline_key` bytes inline and the rest (key length − `max_inline_key` bytes) in an overflow chain of
//! its own. Any other form is `Corruption`. So an internal cell is at most 77 bytes at 512-byte pages (an
//! internal page holds at least 6 separators) and a leaf at least 4 cells. A search compares the inline
//! bytes first, which decide unless the key sought starts with them and is longer; only then does it read
//! the chain, page by page, stopping at the first difference.
//!
//! A value stays inline if its cell (slot included) takes at most a quarter of the usable page
//! (`(page_size − 32) / 4`); otherwise it goes to an overflow chain.
//!
//! The internal page's leftmost child is in its header; the child right of separator `k` holds the keys
//! `≥ k`, and the separators bound the keys below them (the fence keys `verify` checks). Separators only
//! route: when a leaf splits or is redistributed, the writer stores the shortest prefix of the right page's
//! first key that is above the left page's last key (LevelDB's index keys), so a separator is often a few
//! bytes even when keys are long; when even that is longer than `max_inline_key` (keys sharing a long
//! prefix), it is stored like a long leaf key, with a chain owned by the separator (never shared with a
//! leaf cell). A separator that moves up in a split or down in a merge of internal pages keeps its chain;
//! one that is dropped (a merge of leaves) or replaced (a redistribution of leaves) has its chain freed.
//!
//! ## Overflow pages
//!
//! Data bytes at offset 32, as many as the header's offset 20 says: every page of a chain is full
//! (`page_size − 32` bytes) except the last. A chain has exactly `⌈len / (page_size − 32)⌉` pages and its
//! last page links to 0; anything else is `Corruption`. A chain holds a value (`len` = value length) or the
//! rest of a long key or separator (`len` = key length − `max_inline_key`). Value chains are freed when their
//! value is overwritten or deleted, key chains when their key is deleted (an overwrite keeps the stored key),
//! separator chains as above.
//!
//! ## Free pages
//!
//! Only the header: the next free page at offset 16. The free list is a chain from the header's head with
//! exactly the header's count of pages; allocation takes its head before growing the file.
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

mod cursor;
mod doublewrite;
#[cfg(feature = "testing")]
pub(crate) mod fuzz_hooks;
mod header;
mod overlay;
mod page;
mod pool;
mod store;
mod tree;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::batch::{BatchOp, WriteBatch};
use crate::engine::{
    Background, Engine, Iter, LSM_MAX_KEY_LEN, Limits, MAX_BATCH_LEN, MAX_VALUE_LEN, Snapshot,
    WriteOptions,
};
use crate::error::{EngineKind, Error, Result};
use crate::identity::{self, CreateOptions};
use crate::pipeline::{self, Core, EngineCore};
use crate::stats::{ReadCounters, RecoveryReport, Stats, VerifyReport};
use crate::storage::{File, ReadPurpose, Storage, WritePurpose};
use crate::wal::{self, RecoveryMode, WalWriter};

use cursor::{BTreeCursor, BTreeSnapshot, SnapHandle};
use header::{Header, SLOT_BYTES};
use page::{DATA_FILE, Geometry, LeafNode};
use pool::Pool;
use store::{Frozen, PageStore, Tally};
use tree::{Reader, TreeState};

/// The B-tree's format version (data file and header). Version 2 dropped the leaf sibling links, version 3
/// added overflow keys; a database of an older version is `UnsupportedVersion` (there is no upgrade path).
pub const BTREE_FORMAT_VERSION: u32 = 3;

/// Options of [`BTreeEngine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BTreeOptions {
    /// Bytes per page, fixed at creation: a power of two from 512 (for tests) to 16 KiB; default 4 KiB.
    /// An existing database keeps the page size it was created with.
    pub page_size: usize,
    /// Bytes of the buffer pool (default 64 MiB); at least two pages.
    pub pool_bytes: usize,
    /// Dirty pages at which a writer waits for a checkpoint (default 8,192; at most the pool's page
    /// count). In `Threads` mode the background checkpoint starts at half of it; in `Manual` mode the
    /// writer that reaches it runs the checkpoint inline.
    pub max_dirty_pages: usize,
    /// WAL bytes written since the last checkpoint that trigger one (default 64 MiB): bounds the log a
    /// reopen replays when few pages are dirty.
    pub checkpoint_wal_bytes: u64,
    /// Where checkpoints run (default `Threads`: one background thread; `Manual`: inline, deterministic,
    /// for simulated-backend tests).
    pub background: Background,
    /// Bytes the snapshot overlay may hold before the oldest snapshot is released (default 64 MiB).
    ///
    /// While a snapshot or a scan is open, every write keeps the key's prior value in this in-memory
    /// overlay so the snapshot can still read it. When the overlay passes this size the oldest snapshots
    /// are released: their reads (and the reads of scan iterators as old) then fail with
    /// [`Error::SnapshotTooOld`]. Writers never wait for readers. Raise it for long-lived snapshots
    /// under heavy writes.
    pub snapshot_memory: usize,
    /// Creation rules.
    pub create: CreateOptions,
    /// Open read-only (default false): a shared lock, no file created, written, renamed or deleted; WAL
    /// batches the data file lacks are applied to pages in the buffer pool that are never written back;
    /// writes, `sync`, `flush` and `compact` are [`Error::ReadOnly`]. See the module docs' "Read-only
    /// open".
    pub read_only: bool,
}

impl Default for BTreeOptions {
    fn default() -> Self {
        BTreeOptions {
            page_size: 4096,
            pool_bytes: 64 << 20,
            max_dirty_pages: 8192,
            checkpoint_wal_bytes: 64 << 20,
            background: Background::Threads,
            snapshot_memory: 64 << 20,
            create: CreateOptions::default(),
            read_only: false,
        }
    }
}

impl BTreeOptions {
    /// Small pages and a pool of a few pages: splits, merges, overflow chains and eviction happen with
    /// little data; checkpoints inline (`Manual`). For tests.
    pub fn tiny() -> Self {
        BTreeOptions {
            page_size: 512,
            pool_bytes: 16 * 512,
            max_dirty_pages: 12,
            checkpoint_wal_bytes: 64 << 20,
            background: Background::Manual,
            snapshot_memory: 1 << 20,
            create: CreateOptions::default(),
            read_only: false,
        }
    }

    /// Checks that the options describe a working engine, so a bad value is an `InvalidArgument` at open,
    /// before the directory is touched, rather than a failure later.
    ///
    /// # Errors
    /// `InvalidArgument` naming the bad option.
    pub fn check(&self) -> Result<()> {
        if !valid_page_size(self.page_size) {
            return Err(Error::invalid(format!(
                "page size {} is not a power of two from 512 to 16384",
                self.page_size
            )));
        }
        if self.pool_bytes < 2 * self.page_size
            || self.max_dirty_pages == 0
            || self.checkpoint_wal_bytes == 0
        {
            return Err(Error::invalid(
                "the pool must hold two pages, max_dirty_pages and checkpoint_wal_bytes be at least 1",
            ));
        }
        Ok(())
    }
}

/// True for the name of a file the B-tree engine writes (besides the WAL, `IDENTITY` and `LOCK`).
pub(crate) fn owns_file(name: &str) -> bool {
    name == DATA_FILE || name == doublewrite::DOUBLEWRITE_FILE
}

fn valid_page_size(n: usize) -> bool {
    n.is_power_of_two() && (512..=16384).contains(&n)
}

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
/// use rumdb::{BTreeEngine, BTreeOptions, Engine};
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

impl BTreeEngine {
    /// Opens the B-tree database in `dir`, creating it (and the directory) if there is none and
    /// `options.create` allows. Opening recovers after a crash: it repairs torn pages from the
    /// doublewrite file, replays the WAL and checkpoints; what it found is in
    /// [`Stats::recovery`](crate::Stats::recovery). The page size is fixed when the database is created.
    /// The handle holds the directory's lock until it is closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine};
    /// let dir = tempfile::tempdir()?;
    /// let options = BTreeOptions { page_size: 8192, ..BTreeOptions::default() };
    /// let db = BTreeEngine::open(dir.path(), options)?;
    /// db.put(b"k", b"v")?;
    /// db.close()?;
    /// // An existing database keeps its page size, whatever the options say.
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`]: a bad option (checked before the directory is touched), a database
    ///   exists and `options.create.error_if_exists` is set, or none exists and
    ///   `options.create.create_if_missing` is false (a read-only open never creates one);
    /// - [`Error::Locked`]: another handle, in this process or another, has the database open;
    /// - [`Error::WrongEngine`]: the directory holds a database of the other engine;
    /// - [`Error::UnsupportedVersion`]: it was written by a newer format version;
    /// - [`Error::NotADatabase`]: the directory holds files that are not a database;
    /// - [`Error::Corruption`]: damaged or missing files (the data file, both header slots, a WAL segment the header names;
    ///   damage in synced WAL records);
    /// - [`Error::Io`]: the directory cannot be created or read, or a file operation failed (the
    ///   message names the path).
    ///
    /// # Read-only
    ///
    /// With `options.read_only` the directory must exist and hold a database; nothing in it is created
    /// or changed (it may be on a read-only filesystem).
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine, Error};
    /// let dir = tempfile::tempdir()?;
    /// BTreeEngine::open(dir.path(), BTreeOptions::default())?.put(b"k", b"v")?;
    /// let ro = BTreeEngine::open(dir.path(), BTreeOptions { read_only: true, ..BTreeOptions::default() })?;
    /// assert_eq!(ro.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(matches!(ro.flush(), Err(Error::ReadOnly(_))));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    pub fn open(dir: &Path, options: BTreeOptions) -> Result<Self> {
        options.check()?;
        let storage = if options.read_only {
            Storage::os(dir, false)?.into_read_only()
        } else {
            Storage::os(dir, options.create.create_if_missing)?
        };
        Self::open_with(storage, options)
    }

    /// Opens (or creates) a B-tree database on any storage: test machinery (the simulated disk of
    /// `rumdb::testing`), hidden from the documentation.
    ///
    /// # Errors
    /// `InvalidArgument` (bad options, `error_if_exists`, nothing to open), `Locked`, `WrongEngine`,
    /// `UnsupportedVersion`, `Corruption` (damaged or missing data file, both header slots bad), `Io`.
    #[doc(hidden)]
    pub fn open_with(storage: Storage, options: BTreeOptions) -> Result<Self> {
        options.check()?;
        let read_only = options.read_only;
        let storage = if read_only {
            storage.into_read_only()
        } else {
            storage
        };
        let opened = identity::open_dir(
            &storage,
            EngineKind::BTree,
            BTREE_FORMAT_VERSION,
            options.page_size as u32,
            options.create,
            read_only,
        )?;
        if opened.identity.format_version != BTREE_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: opened.identity.format_version,
                supported: BTREE_FORMAT_VERSION,
            });
        }
        let page_size = opened.identity.page_size as usize;
        if !valid_page_size(page_size) {
            return Err(Error::corruption(
                identity::IDENTITY_FILE,
                Some(16),
                format!("page size {page_size}"),
            ));
        }
        let geo = Geometry { page_size };
        let mut report = RecoveryReport::default();
        let mut frozen = None;
        let (file, header, other_slot_bad) = if opened.creating {
            let (file, header) = create_data_file(&storage, &geo)?;
            (file, header, None)
        } else if read_only {
            let (file, header, other_bad) = open_data_file(&storage, &geo, false)?;
            let (header, image) = doublewrite_in_memory(&storage, &geo, header, &mut report)?;
            frozen = image;
            (file, header, other_bad)
        } else {
            let (file, header, other_bad) = open_data_file(&storage, &geo, true)?;
            let header = restore_doublewrite(&storage, &file, &geo, header, &mut report)?;
            (file, header, other_bad)
        };
        if !read_only {
            doublewrite::remove(&storage)?;
        }
        let capacity = options.pool_bytes / page_size;
        let core = if read_only {
            Core::new_read_only(storage, opened.lock, header.lsn)
        } else {
            Core::new(storage, opened.lock, options.background, header.lsn)
        };
        let shared = Shared {
            core,
            store: PageStore {
                geo,
                file,
                pool: Pool::new(capacity, page_size),
                durable_lsn: AtomicU64::new(header.lsn),
                frozen: RwLock::new(frozen),
            },
            tree: RwLock::new(TreeState {
                root: header.root,
                height: header.height,
                page_count: header.page_count,
                free_head: header.free_head,
                free_count: header.free_count,
                version: header.lsn,
                overlay: overlay::Overlay::default(),
                too_old_through: None,
                closed: false,
                torn: None,
            }),
            checkpoint_counter: AtomicU64::new(header.counter),
            max_dirty: options.max_dirty_pages.min(capacity).max(1),
            soft_dirty: (options.max_dirty_pages.min(capacity) / 2).max(1),
            checkpoint_wal_bytes: options.checkpoint_wal_bytes,
            job: Mutex::new(None),
            in_flight: AtomicBool::new(false),
            snapshot_memory: options.snapshot_memory as u64,
            checkpoints: AtomicU64::new(0),
            wal_first: AtomicU64::new(header.wal_first),
            recovery_first: AtomicU64::new(header.wal_first),
        };
        // Replay the batches the data file does not hold from the segments at or above the first live
        // one the header names (0: not recorded, every segment), start the new segment, make the
        // replayed batches durable with a checkpoint whose header names the new segment, and only then
        // drop the replayed segments (older ones are orphans a crashed checkpoint left).
        let storage = &shared.core.storage;
        let all = wal::list_segments(storage)?;
        let first = (header.wal_first != 0).then_some(header.wal_first);
        if let (Some(f), Some(why)) = (first, &other_slot_bad)
            && !all.contains(&f)
        {
            // The usual cause: the newest slot is damaged, and the older one names a segment the newer
            // checkpoint deleted. The damage is in the data file.
            return Err(Error::corruption(
                DATA_FILE,
                Some(0),
                format!(
                    "the header slot in use names WAL segment {} as the first live one, which is \
                     missing (a later checkpoint deleted it), and the other slot is invalid ({why})",
                    wal::segment_name(f)
                ),
            ));
        }
        let segments: Vec<u64> = all
            .iter()
            .copied()
            .filter(|s| first.is_none_or(|f| *s >= f))
            .collect();
        // Checkpoints at the dirty limit during replay keep naming the first replayed segment.
        if let Some(&f) = segments.first() {
            shared.recovery_first.store(f, Ordering::Release);
        }
        let mut applied = 0u64;
        let outcome = wal::replay(
            storage,
            &segments,
            first,
            RecoveryMode::TolerateCorruptedTail,
            |rec| {
                let name = wal::segment_name(rec.segment);
                let (seq, batch) = WriteBatch::decode(rec.payload, &name, rec.offset)?;
                // The batch's operations took sequences seq..=last; the data file holds every batch whose
                // last sequence is at most its header's LSN.
                let last = seq.saturating_add(batch.len() as u64).saturating_sub(1);
                let version = shared.tree.read().version;
                if batch.is_empty() || last <= version {
                    return Ok(());
                }
                // Never backwards (a log written with one sequence per batch could), so page LSNs stay
                // at most the header's.
                shared.apply(&batch, last.max(version + 1))?;
                applied += 1;
                if shared.store.pool.dirty_count() >= shared.max_dirty {
                    if read_only {
                        return Err(Error::invalid(format!(
                            "read-only open: the WAL holds batches the data file lacks, and applying \
                             them in memory needs more than {} dirty pages (max_dirty_pages, at most \
                             the pool's page count); raise pool_bytes and max_dirty_pages, or open \
                             read-write once to checkpoint them",
                            shared.max_dirty
                        )));
                    }
                    shared.checkpoint()?;
                }
                Ok(())
            },
        )?;
        if read_only {
            report.segments_replayed = outcome.segments;
            report.records_replayed = applied;
            report.truncated_bytes = outcome.truncated_bytes;
            report.truncated_at = outcome.truncated_at;
            let last_seq = shared.tree.read().version;
            shared.core.start_read_only(last_seq, report);
            return Ok(BTreeEngine {
                shared: Arc::new(shared),
            });
        }
        // The new segment exists durably (LINK to the last replayed one, directory fsync'd) before the
        // header names it: a crash in between leaves it as an empty trailing segment, which replay
        // accepts.
        let next_segment = all.last().map_or(1, |s| s + 1);
        let writer = WalWriter::create(storage, next_segment, outcome.next_link)?;
        crate::crash_point::hit("wal.open.before_named");
        shared.recovery_first.store(next_segment, Ordering::Release);
        shared.checkpoint()?;
        for s in all.iter().filter(|s| **s < next_segment) {
            storage.remove(&wal::segment_name(*s))?;
        }
        let wal = writer;
        if opened.creating {
            identity::finish_create(storage, &opened.identity)?;
        }
        report.segments_replayed = outcome.segments;
        report.records_replayed = applied;
        report.truncated_bytes = outcome.truncated_bytes;
        report.truncated_at = outcome.truncated_at;
        let last_seq = shared.tree.read().version;
        shared.core.start(wal, last_seq, report);
        let shared = Arc::new(shared);
        if options.background == Background::Threads {
            pipeline::spawn_worker(&shared, "rumdb-btree-checkpoint")?;
        }
        Ok(BTreeEngine { shared })
    }
}

/// Writes a new data file: header slot 0 (counter 0), an empty slot 1, and an empty root leaf at page 2.
fn create_data_file(storage: &Storage, geo: &Geometry) -> Result<(File, Header)> {
    let header = Header {
        version: BTREE_FORMAT_VERSION,
        page_size: geo.page_size as u32,
        counter: 0,
        lsn: 0,
        root: 2,
        height: 0,
        free_head: 0,
        free_count: 0,
        page_count: 3,
        wal_first: 0,
    };
    let file = storage.create_new(DATA_FILE)?;
    let mut headers = vec![0u8; 2 * geo.page_size];
    page::put_at(&mut headers, 0, &header.encode());
    file.write_at(0, &headers, WritePurpose::Header)?;
    let mut root = LeafNode::default().encode(0, geo);
    page::seal(&mut root, 2);
    file.write_at(geo.offset(2), &root, WritePurpose::PageWriteback)?;
    file.sync_data()?;
    storage.sync_dir()?;
    Ok((file, header))
}

/// Opens the data file and picks its header slot; also returns why the other slot is invalid, if it is.
fn open_data_file(
    storage: &Storage,
    geo: &Geometry,
    writable: bool,
) -> Result<(File, Header, Option<String>)> {
    let file = storage.open_required(DATA_FILE, writable)?;
    let ps = geo.page_size as u32;
    let slot = |n: u32| -> Result<Header> {
        let mut buf = [0u8; SLOT_BYTES];
        let got = file.read_at(geo.offset(n), &mut buf, ReadPurpose::Recovery)?;
        Header::decode(
            buf.get(..got).unwrap_or_default(),
            n,
            ps,
            BTREE_FORMAT_VERSION,
        )
    };
    let (a, b) = (slot(0), slot(1));
    let other_bad = match (&a, &b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => Some(e.to_string()),
        _ => None,
    };
    let header = Header::choose(a, b)?;
    let len = file.len()?;
    let need = geo.offset(header.page_count);
    if len < need {
        return Err(Error::corruption(
            DATA_FILE,
            Some(len),
            format!(
                "file is {len} bytes, the header describes {} pages ({need} bytes)",
                header.page_count
            ),
        ));
    }
    Ok((file, header, other_bad))
}

/// Step 2 of recovery: a complete, valid doublewrite file newer than `header` is copied in place, synced,
/// and its header slot written and synced; returns the header to use.
fn restore_doublewrite(
    storage: &Storage,
    file: &File,
    geo: &Geometry,
    header: Header,
    report: &mut RecoveryReport,
) -> Result<Header> {
    let Some(image) = doublewrite::read(storage, geo, BTREE_FORMAT_VERSION)? else {
        return Ok(header);
    };
    if image.header.lsn <= header.lsn || image.header.counter != header.counter + 1 {
        // The header in place already describes the image, but it may be a failed run's write whose fsync
        // failed, read back from the page cache: make it durable before the doublewrite file goes.
        file.sync_data()?;
        return Ok(header);
    }
    for (pgno, bytes) in &image.pages {
        file.write_at(geo.offset(*pgno), bytes, WritePurpose::PageWriteback)?;
    }
    let need = geo.offset(image.header.page_count);
    if file.len()? < need {
        file.set_len(need)?;
    }
    file.sync_data()?;
    let slot = (image.header.counter % 2) as u32;
    file.write_at(
        geo.offset(slot),
        &image.header.encode(),
        WritePurpose::Header,
    )?;
    file.sync_data()?;
    report.pages_restored = image.pages.len() as u64;
    Ok(image.header)
}

/// Step 2 of recovery for a read-only handle: a doublewrite file that [`restore_doublewrite`] would copy
/// in place becomes a frozen set in memory instead (its pages serve reads; nothing is written), and its
/// header is the one to use.
fn doublewrite_in_memory(
    storage: &Storage,
    geo: &Geometry,
    header: Header,
    report: &mut RecoveryReport,
) -> Result<(Header, Option<Arc<Frozen>>)> {
    let Some(image) = doublewrite::read(storage, geo, BTREE_FORMAT_VERSION)? else {
        return Ok((header, None));
    };
    if image.header.lsn <= header.lsn || image.header.counter != header.counter + 1 {
        return Ok((header, None));
    }
    let mut pages = image.pages;
    pages.sort_by_key(|(pgno, _)| *pgno);
    pages.dedup_by_key(|(pgno, _)| *pgno);
    report.pages_restored = pages.len() as u64;
    let frozen = Frozen {
        header: image.header,
        pages,
        sealed: None,
    };
    Ok((image.header, Some(Arc::new(frozen))))
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

    /// The first half of a checkpoint, at the current batch boundary L: rotates the WAL (so every batch
    /// ≤ L is in an older segment), copies every dirty page, sealed, into the frozen set, installs it in
    /// the page store and marks the pool's pages clean (a later batch may dirty them again; the pool then
    /// holds the newer copy). Returns `None` if there is nothing to checkpoint.
    /// REQUIRES: the writer mutex, and no frozen set in flight.
    fn freeze(&self) -> Result<Option<Arc<Frozen>>> {
        let mut header = {
            let st = self.tree.read();
            Header {
                version: BTREE_FORMAT_VERSION,
                page_size: self.store.geo.page_size as u32,
                counter: self.checkpoint_counter.load(Ordering::Acquire) + 1,
                lsn: st.version,
                root: st.root,
                height: st.height,
                free_head: st.free_head,
                free_count: st.free_count,
                page_count: st.page_count,
                wal_first: self.recovery_first.load(Ordering::Acquire),
            }
        };
        let dirty = self.store.pool.dirty_frames();
        if dirty.is_empty()
            && header.lsn == self.store.durable_lsn.load(Ordering::Acquire)
            && (self.core.wal_if_started().is_some()
                || header.wal_first == self.wal_first.load(Ordering::Acquire))
        {
            return Ok(None);
        }
        // The header names the segment the rotation starts: every batch ≤ L is in an older one.
        let sealed = match self.core.wal_if_started() {
            Some(wal) => {
                let next = wal.segment() + 1;
                let sealed = wal.rotate(next).inspect_err(|e| self.poison(e))?;
                header.wal_first = next;
                Some(sealed)
            }
            None => None,
        };
        let pages: Vec<(u32, Vec<u8>)> = dirty
            .iter()
            .map(|f| {
                let mut buf = f.read().to_vec();
                page::seal(&mut buf, f.pgno());
                (f.pgno(), buf)
            })
            .collect();
        let frozen = Arc::new(Frozen {
            header,
            pages,
            sealed,
        });
        // Installed before the pages turn clean (and evictable), so a miss finds them.
        *self.store.frozen.write() = Some(Arc::clone(&frozen));
        self.store.pool.mark_clean(&dirty);
        drop(dirty);
        self.store.pool.trim();
        Ok(Some(frozen))
    }

    /// The second half of a checkpoint: writes the frozen pages and header slot to the doublewrite file
    /// and syncs it, writes the pages in place (growing the file first) and syncs, writes the inactive
    /// header slot and syncs, then deletes the WAL segments up to the sealed one and the doublewrite file,
    /// and only then drops the frozen set. Needs no lock: the frozen set is immutable, and no other
    /// checkpoint runs meanwhile. A failure poisons the handle and leaves the frozen set in place (reads
    /// go on seeing the pages the file may lack).
    fn write_frozen(&self, frozen: &Frozen) -> Result<()> {
        let header = frozen.header;
        let geo = self.store.geo;
        let file = &self.store.file;
        let written = (|| -> Result<()> {
            let image = doublewrite::encode(&header, &frozen.pages, BTREE_FORMAT_VERSION);
            doublewrite::write(&self.core.storage, &image)?;
            drop(image);
            crate::crash_point::hit("btree.checkpoint.after_doublewrite");
            // Growth first, so no page lands past a length a crash could cut back to.
            let need = geo.offset(header.page_count);
            if file.len()? < need {
                file.set_len(need)?;
            }
            for (pgno, buf) in &frozen.pages {
                let offset = geo.offset(*pgno);
                // Armed, writes the first half of the page in place and dies: a torn page.
                crate::crash_point::hit_then("btree.writeback.mid_page", || {
                    let half = buf.get(..buf.len() / 2).unwrap_or_default();
                    let _ = file.write_at(offset, half, WritePurpose::PageWriteback);
                });
                file.write_at(offset, buf, WritePurpose::PageWriteback)?;
            }
            // The pages (and the file's new length) are durable before a header describes them.
            file.sync_data()?;
            crate::crash_point::hit("btree.checkpoint.pages_synced");
            let slot = (header.counter % 2) as u32;
            file.write_at(geo.offset(slot), &header.encode(), WritePurpose::Header)?;
            crate::crash_point::hit("btree.checkpoint.header_written");
            file.sync_data()?;
            if let Some(sealed) = frozen.sealed {
                for s in wal::list_segments(&self.core.storage)?
                    .into_iter()
                    .filter(|s| *s <= sealed)
                {
                    self.core.storage.remove(&wal::segment_name(s))?;
                }
                crate::crash_point::hit("btree.checkpoint.wal_deleted");
            }
            doublewrite::remove(&self.core.storage)
        })();
        if let Err(e) = written {
            self.poison(&e);
            return Err(e);
        }
        self.checkpoint_counter
            .store(header.counter, Ordering::Release);
        // The file now holds the pages and a header that allows them: only then may misses read it.
        self.store.durable_lsn.store(header.lsn, Ordering::Release);
        self.wal_first.store(header.wal_first, Ordering::Release);
        *self.store.frozen.write() = None;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A whole checkpoint, inline. REQUIRES: the writer mutex, and no background checkpoint in flight.
    fn checkpoint(&self) -> Result<()> {
        match self.freeze()? {
            Some(frozen) => self.write_frozen(&frozen),
            None => Ok(()),
        }
    }

    /// Waits until no background checkpoint is in flight.
    ///
    /// # Errors
    /// `Poisoned` if the checkpoint failed.
    fn wait_checkpoint(&self) -> Result<()> {
        self.core
            .wait_worker(|_| !self.in_flight.load(Ordering::Acquire))
    }

    /// After a batch, REQUIRES the writer mutex: starts a checkpoint if one is due. `Manual`: inline when
    /// the dirty pages reach `max_dirty` or the WAL since the last checkpoint reaches
    /// `checkpoint_wal_bytes`. `Threads`: at half of `max_dirty` (or the WAL bound), freezes the dirty set
    /// and hands it to the worker, unless one is in flight; only at `max_dirty` does the writer wait for
    /// the one in flight (a stall).
    fn maybe_checkpoint(&self) -> Result<()> {
        let dirty = self.store.pool.dirty_count();
        let wal_due = self
            .core
            .wal_if_started()
            .is_some_and(|w| w.end().offset >= self.checkpoint_wal_bytes);
        if self.core.background == Background::Manual {
            if dirty >= self.max_dirty || wal_due {
                return self.checkpoint();
            }
            return Ok(());
        }
        if dirty < self.soft_dirty && !wal_due {
            return Ok(());
        }
        if self.in_flight.load(Ordering::Acquire) {
            if dirty < self.max_dirty {
                return Ok(());
            }
            let start = Instant::now();
            let waited = self.wait_checkpoint();
            self.core.record_stall(start);
            waited?;
        }
        // The checkpoint in flight may have failed.
        self.core.check_poisoned()?;
        let Some(frozen) = self.freeze()? else {
            return Ok(());
        };
        *self.job.lock() = Some(frozen);
        self.in_flight.store(true, Ordering::Release);
        self.core.notify_worker();
        Ok(())
    }

    /// The checkpoint worker's step: writes the frozen set handed over.
    fn write_job(&self) -> Result<()> {
        let job = self.job.lock().take();
        let written = match &job {
            Some(frozen) => self.write_frozen(frozen),
            None => Ok(()),
        };
        drop(job);
        self.in_flight.store(false, Ordering::Release);
        written
    }

    fn checkpoint_now(&self) -> Result<()> {
        let _w = self.core.writer.lock();
        self.core.check_writable()?;
        self.wait_checkpoint()?;
        self.checkpoint()
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

impl Engine for BTreeEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::BTree
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let s = &self.shared;
        s.core.check_open()?;
        let st = s.tree.read();
        s.check_readable(&st)?;
        let mut r = Reader::new(&s.store, &st, ReadPurpose::Get);
        let result = r.get(key);
        s.count_get(&r.tally);
        result
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        pipeline::write(&*self.shared, batch, options)
    }

    /// Every key under one hold of the tree latch (so no batch applies in between), in key order, with
    /// the previous descent's pages pinned: consecutive keys share the internal pages (and the leaf)
    /// without a pool lookup racing an eviction.
    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let s = &self.shared;
        s.core.check_open()?;
        let st = s.tree.read();
        s.check_readable(&st)?;
        let mut r = Reader::new(&s.store, &st, ReadPurpose::Get);
        r.pins = Some(Vec::new());
        let mut gets = 0;
        let out = crate::engine::multi_get_sorted(keys, |key| {
            gets += 1;
            r.get(key)
        });
        s.count_gets(&r.tally, gets);
        out
    }

    /// Leaves × sampled mean cells; see [`Engine::approximate_len`].
    fn approximate_len(&self) -> Result<u64> {
        let s = &self.shared;
        s.core.check_open()?;
        let st = s.tree.read();
        s.check_readable(&st)?;
        Reader::new(&s.store, &st, ReadPurpose::Scan).estimate_len()
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.shared.core.check_open()?;
        let snap = self.shared.register_snapshot()?;
        Ok(Iter::new(Box::new(BTreeCursor::new(snap, lower, upper))))
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.shared.core.check_open()?;
        let snap = self.shared.register_snapshot()?;
        Ok(Snapshot::new(Box::new(BTreeSnapshot(snap))))
    }

    fn sync(&self) -> Result<()> {
        pipeline::sync(&*self.shared)
    }

    fn flush(&self) -> Result<()> {
        self.shared.core.check_writable_for("flush")?;
        self.shared.checkpoint_now()
    }

    fn compact(&self) -> Result<()> {
        self.shared.core.check_open()?;
        if self.shared.core.is_read_only() {
            return Err(Error::ReadOnly("compact".to_string()));
        }
        // Pages are updated in place: there is nothing to compact.
        Err(Error::Unsupported { what: "compact" })
    }

    fn wait_idle(&self) -> Result<()> {
        pipeline::wait_idle(&*self.shared)
    }

    fn verify(&self) -> Result<VerifyReport> {
        let s = &self.shared;
        s.core.check_open()?;
        let _w = s.core.writer.lock();
        let st = s.tree.read();
        s.check_readable(&st)?;
        verify::run(&s.store, &st)
    }

    fn stats(&self) -> Stats {
        let s = &self.shared;
        let mut out = s.core.stats(EngineKind::BTree);
        out.memory.buffer_pool = s.store.pool.resident_bytes();
        out.memory.snapshot_overlay = s.tree.read().overlay.bytes();
        out.memory.checkpoint_copy = s.store.frozen_bytes();
        out.dirty_pages = s.store.pool.dirty_count() as u64;
        out.checkpoints = s.checkpoints.load(Ordering::Relaxed);
        out
    }

    fn limits(&self) -> Limits {
        self.shared.limits()
    }

    fn close(&self) -> Result<()> {
        match pipeline::close(&*self.shared) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Closed),
            Err(e) => Err(e),
        }
    }
}

impl Drop for BTreeEngine {
    fn drop(&mut self) {
        let _ = pipeline::close(&*self.shared);
    }
}

impl EngineCore for Shared {
    fn core(&self) -> &Core {
        &self.core
    }

    fn limits(&self) -> Limits {
        Shared::limits(self)
    }

    fn apply(&self, batch: &WriteBatch, seq: u64) -> Result<()> {
        // The tree's version (and every page's LSN) is the batch's last sequence.
        Shared::apply(self, batch, seq + batch.len() as u64 - 1)
    }

    fn after_commit(&self) -> Result<()> {
        self.maybe_checkpoint()
    }

    /// A frozen set waits to be written (even when close stops the worker: its pages are already marked
    /// clean in the pool, so only this write makes them durable).
    fn background_due(&self, _stopping: bool) -> bool {
        self.job.lock().is_some()
    }

    fn background_step(&self) -> Result<()> {
        self.write_job()
    }

    /// The checkpoint in flight finished when the worker stopped; this one makes the rest durable. A
    /// poisoned handle may hold part of a batch in the pool: close never gets here for one.
    fn close_drain(&self) -> Result<()> {
        let _w = self.core.writer.lock();
        self.checkpoint()
    }

    fn close_release(&self) {
        self.tree.write().closed = true;
        self.store.pool.clear();
    }
}
