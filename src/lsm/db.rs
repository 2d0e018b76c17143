//! [`LsmEngine`]: what the LSM plugs into the shared commit pipeline, and the read paths.
//!
//! # Write path
//!
//! The commit itself (writer mutex, sequences, WAL append and group commit, poison, close) is the shared
//! pipeline's (`crate::pipeline`). The LSM's parts: backpressure before the writer mutex
//! (`Shared::throttle`); under it, make room (seal a full memtable: the WAL rotates to a new segment, the
//! sealed memtable joins the immutable list and is flushed by the worker, or inline in Manual mode); apply
//! (insert the batch into the active memtable). The pipeline publishes the visible sequence only after
//! the whole batch is in the memtable: no reader sees part of a batch.
//!
//! # Reads
//!
//! A get reads the memtables (active, then sealed newest first), then the version (L0 newest first, then
//! one table per level), at the visible sequence. It takes the memtables *before* the version, and a flush
//! installs its version *before* dropping the sealed memtable, so data is never missed in between. A scan
//! merges the same sources at its snapshot sequence and holds no lock between steps.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::compaction::{
    JobState, LevelStats, compaction_score, level_bytes, pending_compaction_bytes,
};
use super::edit::NUM_LEVELS;
use super::iter::{InternalIter, MergingCursor, SourceFactory};
use super::key::ValueKind;
use super::manifest::VersionSet;
use super::memtable::{Memtable, MemtableIter};
use super::options::{Background, LsmOptions};
use super::range_del::{RangeDels, RangeTombstone};
use super::sstable::{BlockCache, ReadStats, TableIter};
use super::version::Version;
use crate::batch::WriteBatch;
use crate::engine::{Engine, Iter, LIMITS, Limits, Snapshot, SnapshotSource, WriteOptions};
use crate::error::{EngineKind, Error, Result};
use crate::pipeline::{self, Core, EngineCore};
use crate::stats::{MemoryUsage, ReadCounters, Stats, VerifyReport};
use crate::storage::ReadPurpose;

/// The active memtable and the sealed ones waiting for their flush (oldest first).
#[derive(Clone)]
pub(super) struct Memtables {
    pub(super) active: Arc<Memtable>,
    pub(super) sealed: Vec<Arc<Memtable>>,
}

impl Memtables {
    /// Newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active).chain(self.sealed.iter().rev())
    }
}

/// Everything the handle and its worker share.
pub(super) struct Shared {
    /// The commit pipeline and lifecycle (WAL, writer mutex, sequences, poison, snapshots, worker).
    pub(super) core: Core,
    pub(super) options: LsmOptions,
    pub(super) versions: VersionSet,
    pub(super) cache: Arc<BlockCache>,
    /// Replaced whole (copy on write) when a memtable is sealed or flushed, so a reader clones one `Arc`.
    pub(super) mems: RwLock<Arc<Memtables>>,
    /// Serialises flushes and compactions (version changes); holds the compaction pointers.
    pub(super) job: Mutex<JobState>,
    /// Compaction counters per output level.
    pub(super) level_stats: Mutex<[LevelStats; NUM_LEVELS]>,
    /// L0 tables in the current version (refreshed at every version change), for backpressure.
    pub(super) l0_files: AtomicU64,
    /// Pending compaction bytes of the current version (refreshed likewise), for backpressure.
    pub(super) pending_bytes: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) compactions: AtomicU64,
    /// When the tree last changed state for settling: the visible sequence the worker last saw and when
    /// it first saw it (see [`LsmOptions::settle_after`]).
    pub(super) quiet_since: Mutex<(u64, std::time::Instant)>,
    /// Callers inside [`Engine::wait_idle`], which settles without waiting for a pause in writes.
    pub(super) settle_waiters: AtomicU64,
}

/// The LSM-tree engine: a write-ahead log, an in-memory memtable, and sorted tables (SSTables, with bloom
/// filters and optionally zstd-compressed blocks) organised in levels that flushes and compactions keep in
/// shape.
///
/// Use it through the [`Engine`] trait; [`LsmEngine::level_stats`] reports the shape of the tree.
/// `docs/architecture.md` and `docs/formats.md` in the repository describe the design and the files.
///
/// # Examples
///
/// ```
/// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
/// db.put("apple", "red")?;
/// db.put("banana", "yellow")?;
/// db.flush()?; // the memtable becomes a table on disk
/// let keys: Vec<_> = db.range(..)?.keys().collect::<rumdb::Result<_>>()?;
/// assert_eq!(keys, ["apple", "banana"]);
/// db.close()?;
/// # Ok::<(), rumdb::Error>(())
/// ```
pub struct LsmEngine {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for LsmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmEngine").finish_non_exhaustive()
    }
}

impl Shared {
    /// Records `e` as the reason writes are refused, and returns it.
    pub(super) fn poison(&self, e: Error) -> Error {
        self.core.poison(e)
    }

    /// The smallest sequence a live snapshot reads at (the visible sequence if none).
    pub(super) fn oldest_snapshot(&self) -> u64 {
        let visible = self.core.visible();
        self.core
            .snapshots
            .oldest_after(None)
            .unwrap_or(visible)
            .min(visible)
    }

    /// Seals the active memtable if it is full. In Manual mode, then flushes (and compacts) inline while
    /// too many sealed memtables wait. In Threads mode, returns `false` instead of sealing when the
    /// sealed list is full: the caller releases the writer lock and waits in [`Self::throttle`].
    /// REQUIRES: the writer lock.
    fn make_room_locked(&self) -> Result<bool> {
        let full = self.mems.read().active.approximate_bytes() >= self.options.memtable_bytes;
        match self.options.background {
            Background::Manual => {
                if full {
                    self.seal_memtable()?;
                }
                if self.mems.read().sealed.len() > self.options.max_immutable_memtables {
                    self.flush_sealed()?;
                }
                Ok(true)
            }
            Background::Threads => {
                if !full {
                    return Ok(true);
                }
                if self.mems.read().sealed.len() >= self.options.max_immutable_memtables {
                    return Ok(false);
                }
                self.seal_memtable()?;
                Ok(true)
            }
        }
    }

    /// Backpressure (Threads mode), called holding no lock: past the slowdown thresholds (L0 tables or
    /// pending compaction bytes) a write sleeps a little, longer the further past it is; at the stop
    /// thresholds, or when the active memtable is full and the sealed list too, it waits for the worker.
    /// Each delayed write counts one stall and its time.
    fn throttle(&self) -> Result<()> {
        if self.options.background != Background::Threads {
            return Ok(());
        }
        let o = &self.options;
        let l0 = || self.l0_files.load(Ordering::Acquire) as usize;
        let pending = || self.pending_bytes.load(Ordering::Acquire);
        let must_wait = || {
            l0() >= o.l0_stop_trigger
                || pending() >= o.pending_compaction_stop_bytes
                || (self.mems.read().active.approximate_bytes() >= o.memtable_bytes
                    && self.mems.read().sealed.len() >= o.max_immutable_memtables)
        };
        let slow =
            l0() >= o.l0_slowdown_trigger || pending() >= o.pending_compaction_slowdown_bytes;
        if !slow && !must_wait() {
            return Ok(());
        }
        let start = std::time::Instant::now();
        self.core.notify_worker();
        let waited = if must_wait() {
            self.core.wait_worker(|_| !must_wait())
        } else {
            // Gradual (LevelDB sleeps 1 ms at its trigger): 1 ms more per L0 table past it, at most 4 ms.
            let over = (l0() + 1).saturating_sub(o.l0_slowdown_trigger).clamp(1, 4);
            std::thread::sleep(std::time::Duration::from_millis(over as u64));
            Ok(())
        };
        self.core.record_stall(start);
        waited
    }

    /// Recomputes the backpressure inputs from the current version. Call after every version change.
    pub(super) fn refresh_pressure(&self) {
        let version = self.versions.current();
        self.l0_files.store(
            version.levels.first().map_or(0, |l| l.len() as u64),
            Ordering::Release,
        );
        self.pending_bytes.store(
            pending_compaction_bytes(&self.options, &version),
            Ordering::Release,
        );
    }

    /// Seals the active memtable: the WAL moves to a new segment, the memtable joins the sealed list.
    /// REQUIRES: the writer lock (so no write lands between the rotation and the swap).
    pub(super) fn seal_memtable(&self) -> Result<()> {
        let segment = self.versions.new_file_number();
        self.core
            .wal()?
            .rotate(segment)
            .map_err(|e| self.poison(e))?;
        {
            let mut mems = self.mems.write();
            let next = Arc::make_mut(&mut mems);
            let old = std::mem::replace(&mut next.active, Arc::new(Memtable::new(segment)));
            next.sealed.push(old);
        }
        self.core.notify_worker();
        Ok(())
    }

    fn memtables(&self) -> Arc<Memtables> {
        Arc::clone(&self.mems.read())
    }

    fn get_at(&self, key: &[u8], seq: u64) -> Result<Option<Bytes>> {
        let mems = self.memtables();
        let version = self.versions.current();
        let dels = range_dels(&mems, &version, seq);
        let mut stats = ReadStats::default();
        let found = lookup(&mems, &version, &dels, key, seq, &mut stats);
        self.record_reads(1, stats);
        found
    }

    /// The values of `keys` at sequence `seq`, in the caller's order: one set of memtables and one version
    /// (taken in that order, as a get does) serve every key, looked up once each in key order.
    fn multi_get_at(&self, keys: &[&[u8]], seq: u64) -> Result<Vec<Option<Bytes>>> {
        let mems = self.memtables();
        let version = self.versions.current();
        let dels = range_dels(&mems, &version, seq);
        let mut stats = ReadStats::default();
        let mut gets = 0u64;
        let out = crate::engine::multi_get_sorted(keys, |key| {
            gets += 1;
            lookup(&mems, &version, &dels, key, seq, &mut stats)
        });
        self.record_reads(gets, stats);
        out
    }

    /// Adds `gets` point lookups and their table counters to the engine's read counters.
    fn record_reads(&self, gets: u64, stats: ReadStats) {
        let mut counters: ReadCounters = stats.into();
        counters.gets = gets;
        self.core.counters.reads.add(&counters);
    }

    /// Table entries (from their properties) plus memtable entries: versions, not keys.
    fn approximate_len(&self) -> u64 {
        let mems = self.memtables();
        let version = self.versions.current();
        let tables: u64 = version.all().map(|t| t.meta.entries).sum();
        let memtables: u64 = mems.newest_first().map(|m| m.len()).sum();
        tables + memtables
    }

    fn scan_at(&self, seq: u64, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Iter {
        let mems = self.memtables();
        let version = self.versions.current();
        Iter::new(Box::new(scan_cursor(mems, version, seq, lower, upper)))
    }

    fn stats(&self) -> Stats {
        let mut s = self.core.stats(EngineKind::Lsm);
        let mems = self.memtables();
        let version = self.versions.current();
        s.memory = MemoryUsage {
            memtables: mems.newest_first().map(|m| m.approximate_bytes()).sum(),
            block_cache: self.cache.usage(),
            filters: version.all().map(|t| t.table.filter_bytes()).sum(),
            indexes: version.all().map(|t| t.table.index_bytes()).sum(),
            ..MemoryUsage::default()
        };
        s.l0_files = version.levels.first().map_or(0, |l| l.len() as u64);
        s.pending_compaction_bytes = pending_compaction_bytes(&self.options, &version);
        s.checkpoints = self.flushes.load(Ordering::Relaxed);
        s.compactions = self.compactions.load(Ordering::Relaxed);
        s
    }
}

/// The range tombstones of `mems` and `version` a read at sequence `seq` honours (none, without
/// allocating, in the common case of no range delete anywhere).
fn range_dels(mems: &Memtables, version: &Version, seq: u64) -> RangeDels {
    let in_mems = mems.newest_first().any(|m| m.has_range_tombstones());
    if !in_mems && !version.has_range_tombstones() {
        return RangeDels::default();
    }
    let from_mems: Vec<RangeTombstone> = mems
        .newest_first()
        .filter(|m| m.has_range_tombstones())
        .flat_map(|m| m.range_tombstones())
        .collect();
    RangeDels::new(from_mems.iter().chain(version.range_tombstones()), seq)
}

/// A cursor over `mems` and `version` at sequence `seq`.
fn scan_cursor(
    mems: Arc<Memtables>,
    version: Arc<Version>,
    seq: u64,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> MergingCursor {
    let dels = Arc::new(range_dels(&mems, &version, seq));
    let factory: SourceFactory = Box::new(move || {
        let mut sources: Vec<Box<dyn InternalIter>> = mems
            .newest_first()
            .map(|m| Box::new(MemtableIter::new(Arc::clone(m))) as Box<dyn InternalIter>)
            .collect();
        for t in version.all() {
            sources.push(Box::new(t.table.iter(ReadPurpose::Scan)));
        }
        Ok(sources)
    });
    MergingCursor::new(factory, seq, lower, upper).with_range_dels(dels)
}

impl InternalIter for TableIter {
    fn seek_to_first(&mut self) -> Result<()> {
        TableIter::seek_to_first(self)
    }
    fn seek_to_last(&mut self) -> Result<()> {
        TableIter::seek_to_last(self)
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        TableIter::seek(self, target)
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        TableIter::seek_for_prev(self, target)
    }
    fn next(&mut self) -> Result<()> {
        TableIter::next(self)
    }
    fn prev(&mut self) -> Result<()> {
        TableIter::prev(self)
    }
    fn valid(&self) -> bool {
        TableIter::valid(self)
    }
    fn key(&self) -> &[u8] {
        if TableIter::valid(self) {
            TableIter::key(self)
        } else {
            &[]
        }
    }
    fn value(&self) -> &[u8] {
        if TableIter::valid(self) {
            TableIter::value(self)
        } else {
            &[]
        }
    }
    fn max_seq(&self) -> u64 {
        TableIter::max_seq(self)
    }
}

/// A snapshot: reads the live memtables and version at a pinned sequence. Compaction keeps every version
/// a registered snapshot can see; dropping it unregisters the sequence.
struct LsmSnapshot {
    shared: Arc<Shared>,
    seq: u64,
}

impl SnapshotSource for LsmSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.shared.core.check_open()?;
        self.shared.get_at(key, self.seq)
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.shared.core.check_open()?;
        Ok(self.shared.scan_at(self.seq, lower, upper))
    }

    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        self.shared.core.check_open()?;
        self.shared.multi_get_at(keys, self.seq)
    }
}

impl Drop for LsmSnapshot {
    fn drop(&mut self) {
        self.shared.core.snapshots.release(self.seq);
    }
}

impl Engine for LsmEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Lsm
    }

    fn get_bytes(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let core = &self.shared.core;
        core.check_open()?;
        self.shared.get_at(key, core.visible())
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        pipeline::write(&*self.shared, batch, options)
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        let core = &self.shared.core;
        core.check_open()?;
        Ok(self.shared.scan_at(core.visible(), lower, upper))
    }

    /// Every key at one sequence (the visible one when called) against one set of memtables and one
    /// version.
    fn multi_get_bytes(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        let core = &self.shared.core;
        core.check_open()?;
        self.shared.multi_get_at(keys, core.visible())
    }

    fn approximate_len(&self) -> Result<u64> {
        self.shared.core.check_open()?;
        Ok(self.shared.approximate_len())
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let core = &self.shared.core;
        core.check_open()?;
        let seq = core.snapshots.pin(|| core.visible());
        Ok(Snapshot::new(Box::new(LsmSnapshot {
            shared: Arc::clone(&self.shared),
            seq,
        })))
    }

    fn sync(&self) -> Result<()> {
        pipeline::sync(&*self.shared)
    }

    fn flush(&self) -> Result<()> {
        let shared = &self.shared;
        shared.core.check_writable_for("flush")?;
        {
            let _writer = shared.core.writer.lock();
            if !shared.mems.read().active.is_empty() {
                shared.seal_memtable()?;
            }
        }
        shared.flush_sealed()
    }

    fn compact(&self) -> Result<()> {
        self.shared.core.check_writable_for("compact")?;
        self.flush()?;
        self.shared.compact_all()
    }

    /// Also settles the tree (see [`LsmOptions::settle_after`]): L0 is merged into L1 before it returns.
    fn wait_idle(&self) -> Result<()> {
        let shared = &self.shared;
        let core = &shared.core;
        core.check_open()?;
        if shared.options.read_only || shared.options.settle_after.is_none() {
            return pipeline::wait_idle(&**shared);
        }
        match shared.options.background {
            Background::Manual => {
                core.check_writable_for("wait_idle")?;
                while shared.settle_once()? {}
                shared.maybe_compact()?;
                pipeline::wait_idle(&**shared)
            }
            Background::Threads => {
                shared.settle_waiters.fetch_add(1, Ordering::AcqRel);
                let waited = pipeline::wait_idle(&**shared);
                shared.settle_waiters.fetch_sub(1, Ordering::AcqRel);
                waited
            }
        }
    }

    fn verify(&self) -> Result<VerifyReport> {
        self.shared.core.check_open()?;
        let version = self.shared.versions.current();
        version.check()?;
        let mut report = VerifyReport::default();
        for t in version.all() {
            let (blocks, entries) = t.table.verify()?;
            report.files += 1;
            report.blocks += blocks;
            report.entries += entries;
            report.bytes += t.meta.file_size;
        }
        Ok(report)
    }

    fn backup(&self, dir: &std::path::Path) -> Result<crate::BackupInfo> {
        self.shared.core.check_open()?;
        self.backup_with(crate::backup::target_storage(dir)?)
    }

    fn stats(&self) -> Stats {
        self.shared.stats()
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn close(&self) -> Result<()> {
        pipeline::close(&*self.shared)
    }
}

impl Drop for LsmEngine {
    fn drop(&mut self) {
        // Nothing can report an error here (and `Closed` after an explicit close is expected).
        let _ = pipeline::close(&*self.shared);
    }
}

impl EngineCore for Shared {
    fn core(&self) -> &Core {
        &self.core
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn throttle(&self) -> Result<()> {
        Shared::throttle(self)
    }

    fn make_room(&self) -> Result<bool> {
        self.make_room_locked()
    }

    fn apply(&self, batch: &WriteBatch, seq: u64) -> Result<()> {
        self.mems.read().active.insert_batch(seq, batch);
        Ok(())
    }

    /// Sealed memtables to flush, or a level over its target; nothing once close stops the worker (close
    /// flushes what is sealed itself).
    fn background_due(&self, stopping: bool) -> bool {
        !stopping
            && (!self.mems.read().sealed.is_empty() || self.needs_compaction() || self.settle_due())
    }

    /// One job per round. At the L0 stop trigger, compact before flushing more into L0, so L0 never
    /// passes the stop trigger; otherwise flush one sealed memtable, then run one compaction.
    fn background_step(&self) -> Result<()> {
        let at_stop =
            self.l0_files.load(Ordering::Acquire) as usize >= self.options.l0_stop_trigger;
        if at_stop {
            if self.compact_once()? {
                return Ok(());
            }
            return self.flush_some(1);
        }
        self.flush_some(1)?;
        if !self.compact_once()? && self.settle_due() {
            self.settle_once()?;
        }
        Ok(())
    }

    fn close_seal(&self) -> Result<()> {
        if self.mems.read().active.is_empty() {
            return Ok(());
        }
        self.seal_memtable()
    }

    fn close_drain(&self) -> Result<()> {
        self.flush_sealed()
    }

    /// Segments and tables share one counter: the closing segment takes a number from it, so no table
    /// ever has its number.
    fn closing_segment(&self) -> Option<u64> {
        Some(self.versions.new_file_number())
    }
}

impl Shared {
    /// True if the tree should settle now (see [`LsmOptions::settle_after`]): L0 holds a table, nothing
    /// else is due, and either no write has arrived for `settle_after` or a caller waits in `wait_idle`.
    fn settle_due(&self) -> bool {
        let Some(delay) = self.options.settle_after else {
            return false;
        };
        if self.l0_files.load(Ordering::Acquire) == 0
            || !self.mems.read().sealed.is_empty()
            || self.needs_compaction()
        {
            return false;
        }
        if self.settle_waiters.load(Ordering::Acquire) > 0 {
            return true;
        }
        let seq = self.core.visible();
        let now = std::time::Instant::now();
        let mut quiet = self.quiet_since.lock();
        if quiet.0 != seq {
            *quiet = (seq, now);
            return false;
        }
        now.duration_since(quiet.1) >= delay
    }

    /// True if some level is over its target (L0: at its trigger).
    pub(super) fn needs_compaction(&self) -> bool {
        compaction_score(&self.options, &self.versions.current()).1 >= 1.0
    }
}

/// The newest version of `key` at sequence `seq`: the memtables newest first, then the tables of
/// `version`. A tombstone reads as `None`.
fn lookup(
    mems: &Memtables,
    version: &Version,
    dels: &RangeDels,
    key: &[u8],
    seq: u64,
    stats: &mut ReadStats,
) -> Result<Option<Bytes>> {
    // The newest version the read sees, unless a newer range tombstone covers it.
    let found = match mems.newest_first().find_map(|m| m.get_versioned(key, seq)) {
        Some(found) => Some(found),
        None => version.get(key, seq, stats)?,
    };
    Ok(match found {
        // Each source hands over a value it copied once; `Bytes::from` keeps that copy.
        Some((ValueKind::Put, value, at)) if !dels.covers(key, at) => Some(Bytes::from(value)),
        _ => None,
    })
}

impl LsmEngine {
    /// Per level (L0 first): tables and bytes now, the level's target, and the cumulative compaction
    /// counters of the compactions (and, for L0, flushes) that wrote into it — RocksDB's compaction
    /// table. Write amplification of level n ≈ `written / read_upper`.
    pub fn level_stats(&self) -> Vec<LevelStats> {
        let shared = &self.shared;
        let version = shared.versions.current();
        let counters = *shared.level_stats.lock();
        counters
            .iter()
            .enumerate()
            .map(|(level, c)| LevelStats {
                files: version.levels.get(level).map_or(0, |l| l.len() as u64),
                bytes: level_bytes(&version, level),
                target_bytes: if level == 0 {
                    0
                } else {
                    shared.options.level_target_bytes(level)
                },
                ..*c
            })
            .collect()
    }
}

impl LsmEngine {
    /// The files this handle needs: `IDENTITY`, `LOCK`, `CURRENT`, the live manifest, the WAL segments of
    /// its memtables and every live table. Anything else in the directory is an orphan (none is left after
    /// open; crash tests check it). Test machinery, hidden from the documentation.
    #[doc(hidden)]
    pub fn live_files(&self) -> Vec<String> {
        let shared = &self.shared;
        let mut files = vec![
            crate::identity::IDENTITY_FILE.to_string(),
            crate::identity::LOCK_FILE.to_string(),
            super::manifest::CURRENT.to_string(),
            super::manifest::manifest_name(shared.versions.manifest_number()),
        ];
        let mems = shared.memtables();
        files.extend(
            mems.newest_first()
                .map(|m| crate::wal::segment_name(m.segment())),
        );
        files.extend(
            shared
                .versions
                .current()
                .all()
                .map(|t| super::sstable::table_file_name(t.meta.number)),
        );
        files.sort();
        files
    }
}
