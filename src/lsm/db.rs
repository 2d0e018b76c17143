//! [`LsmEngine`]: the write path, the read paths and the handle's lifecycle.
//!
//! # Write path
//!
//! Under the writer lock: make room (seal a full memtable: the WAL rotates to a new segment, the sealed
//! memtable joins the immutable list and is flushed by the worker, or inline in Manual mode), assign the
//! batch's sequence numbers, append it to the WAL, insert it into the memtable, publish the new visible
//! sequence. A `Sync` write then waits for the fsync *after* releasing the lock, so concurrent `Sync`
//! writers share fsyncs. Apply order is log order because both happen under the same lock, and the visible
//! sequence moves only after the whole batch is in the memtable: no reader sees part of a batch.
//!
//! # Reads
//!
//! A get reads the memtables (active, then sealed newest first), then the version (L0 newest first, then
//! one table per level), at the visible sequence. It takes the memtables *before* the version, and a flush
//! installs its version *before* dropping the sealed memtable, so data is never missed in between. A scan
//! merges the same sources at its snapshot sequence and holds no lock between steps.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use super::compaction::{
    JobState, LevelStats, compaction_score, level_bytes, pending_compaction_bytes,
};
use super::edit::NUM_LEVELS;
use super::iter::{InternalIter, MergingCursor, SourceFactory};
use super::key::ValueKind;
use super::manifest::VersionSet;
use super::memtable::{Memtable, MemtableIter};
use super::options::{Background, LsmOptions};
use super::sstable::{BlockCache, ReadStats, TableIter};
use super::version::Version;
use crate::batch::WriteBatch;
use crate::engine::{
    Durability, Engine, Iter, LSM_MAX_KEY_LEN, Limits, MAX_BATCH_LEN, MAX_VALUE_LEN, Snapshot,
    SnapshotSource, WriteOptions,
};
use crate::error::{EngineKind, Error, Result};
use crate::stats::{
    AtomicReadCounters, MemoryUsage, ReadCounters, RecoveryReport, Stats, VerifyReport,
};
use crate::storage::{LockGuard, ReadPurpose, Storage};
use crate::wal::WalWriter;

const LIMITS: Limits = Limits {
    max_key_len: LSM_MAX_KEY_LEN,
    max_value_len: MAX_VALUE_LEN,
    max_batch_len: MAX_BATCH_LEN,
};

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

/// What the background worker is asked to do and what it reports.
#[derive(Default)]
pub(super) struct WorkState {
    pub(super) shutdown: bool,
    pub(super) running: bool,
    pub(super) error: Option<String>,
}

/// Everything the handle and its worker share.
pub(super) struct Shared {
    pub(super) storage: Storage,
    pub(super) options: LsmOptions,
    pub(super) versions: VersionSet,
    pub(super) cache: Arc<BlockCache>,
    /// Replaced whole (copy on write) when a memtable is sealed or flushed, so a reader clones one `Arc`.
    pub(super) mems: RwLock<Arc<Memtables>>,
    pub(super) wal: Arc<WalWriter>,
    /// Held by writers; also serialises memtable switches. Holds the next sequence number.
    pub(super) writer: Mutex<u64>,
    /// Serialises flushes and compactions (version changes); holds the compaction pointers.
    pub(super) job: Mutex<JobState>,
    /// Compaction counters per output level.
    pub(super) level_stats: Mutex<[LevelStats; NUM_LEVELS]>,
    /// L0 tables in the current version (refreshed at every version change), for backpressure.
    pub(super) l0_files: AtomicU64,
    /// Pending compaction bytes of the current version (refreshed likewise), for backpressure.
    pub(super) pending_bytes: AtomicU64,
    pub(super) visible: AtomicU64,
    pub(super) snapshots: Mutex<std::collections::BTreeMap<u64, usize>>,
    pub(super) poisoned: Mutex<Option<String>>,
    pub(super) closed: AtomicBool,
    pub(super) work: Mutex<WorkState>,
    pub(super) work_cv: Condvar,
    pub(super) reads: AtomicReadCounters,
    pub(super) user_bytes: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) stalls: AtomicU64,
    pub(super) stall_micros: AtomicU64,
    pub(super) recovery: RecoveryReport,
    pub(super) lock: Mutex<Option<LockGuard>>,
}

/// The LSM-tree engine. See the [module docs](super) for its design and formats.
pub struct LsmEngine {
    pub(super) shared: Arc<Shared>,
    pub(super) worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LsmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmEngine").finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub(super) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if let Some(cause) = self.poisoned.lock().clone() {
            return Err(Error::Poisoned { cause });
        }
        Ok(())
    }

    /// Records `e` as the reason writes are refused, and returns it.
    pub(super) fn poison(&self, e: Error) -> Error {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(e.to_string());
        }
        e
    }

    /// The smallest sequence a live snapshot reads at (the visible sequence if none).
    pub(super) fn oldest_snapshot(&self) -> u64 {
        let visible = self.visible.load(Ordering::Acquire);
        self.snapshots
            .lock()
            .keys()
            .next()
            .copied()
            .unwrap_or(visible)
            .min(visible)
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        self.check_writable()?;
        LIMITS.check(batch)?;
        if batch.is_empty() {
            drop(self.writer.lock());
            return match options.durability {
                Durability::Sync => self.wal.sync().map(|_| ()),
                Durability::Flush => self.wal.flush(),
                Durability::Buffered => Ok(()),
            }
            .map_err(|e| self.poison(e));
        }
        let mut next_seq = loop {
            // Again on every round: a handle closed or poisoned while this write waited must not spin.
            self.check_writable()?;
            self.throttle()?;
            let mut guard = self.writer.lock();
            if self.make_room(&mut guard)? {
                break guard;
            }
        };
        let seq = *next_seq;
        let appended = match options.durability {
            Durability::Sync => Durability::Flush,
            d => d,
        };
        let pos = self
            .wal
            .append(&batch.encode(seq), appended)
            .map_err(|e| self.poison(e))?;
        self.mems.read().active.insert_batch(seq, batch);
        *next_seq = seq + batch.len() as u64;
        self.visible.store(*next_seq - 1, Ordering::Release);
        self.user_bytes
            .fetch_add(batch.user_bytes(), Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        drop(next_seq);
        if options.durability == Durability::Sync {
            self.wal.sync_through(pos).map_err(|e| self.poison(e))?;
        }
        Ok(())
    }

    /// Seals the active memtable if it is full. In Manual mode, then flushes (and compacts) inline while
    /// too many sealed memtables wait. In Threads mode, returns `false` instead of sealing when the
    /// sealed list is full: the caller releases the writer lock and waits in [`Self::throttle`].
    /// REQUIRES: the writer lock.
    fn make_room(&self, _writer: &mut u64) -> Result<bool> {
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
        self.stalls.fetch_add(1, Ordering::Relaxed);
        self.work_cv.notify_all();
        if must_wait() {
            let mut work = self.work.lock();
            while must_wait() && !work.shutdown {
                if let Some(e) = &work.error {
                    return Err(Error::Poisoned { cause: e.clone() });
                }
                self.work_cv.notify_all();
                // A condvar wait releases the work lock; no other lock is held.
                self.work_cv
                    .wait_for(&mut work, std::time::Duration::from_millis(10));
            }
        } else {
            // Gradual (LevelDB sleeps 1 ms at its trigger): 1 ms more per L0 table past it, at most 4 ms.
            let over = (l0() + 1).saturating_sub(o.l0_slowdown_trigger).clamp(1, 4);
            std::thread::sleep(std::time::Duration::from_millis(over as u64));
        }
        self.stall_micros
            .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
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
        self.wal.rotate(segment).map_err(|e| self.poison(e))?;
        {
            let mut mems = self.mems.write();
            let next = Arc::make_mut(&mut mems);
            let old = std::mem::replace(&mut next.active, Arc::new(Memtable::new(segment)));
            next.sealed.push(old);
        }
        if self.options.background == Background::Threads {
            self.work_cv.notify_all();
        }
        Ok(())
    }

    fn memtables(&self) -> Arc<Memtables> {
        Arc::clone(&self.mems.read())
    }

    fn get_at(&self, key: &[u8], seq: u64) -> Result<Option<Vec<u8>>> {
        self.reads.add(&ReadCounters {
            gets: 1,
            ..ReadCounters::default()
        });
        let mems = self.memtables();
        for m in mems.newest_first() {
            if let Some((kind, value)) = m.get(key, seq) {
                return Ok((kind == ValueKind::Put).then_some(value));
            }
        }
        let version = self.versions.current();
        let mut stats = ReadStats::default();
        let found = version.get(key, seq, &mut stats);
        self.reads.add(&stats.into());
        Ok(match found? {
            Some((ValueKind::Put, value)) => Some(value),
            _ => None,
        })
    }

    fn scan_at(&self, seq: u64, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Iter {
        let mems = self.memtables();
        let version = self.versions.current();
        Iter::new(Box::new(scan_cursor(mems, version, seq, lower, upper)))
    }

    fn stats(&self) -> Stats {
        let mut s = Stats::new(EngineKind::Lsm);
        s.io = self.storage.io_stats();
        s.user_bytes = self.user_bytes.load(Ordering::Relaxed);
        s.batches = self.batches.load(Ordering::Relaxed);
        s.reads = self.reads.snapshot();
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
        s.stalls = self.stalls.load(Ordering::Relaxed);
        s.stall_micros = self.stall_micros.load(Ordering::Relaxed);
        s.checkpoints = self.flushes.load(Ordering::Relaxed);
        s.compactions = self.compactions.load(Ordering::Relaxed);
        s.recovery = self.recovery.clone();
        s
    }
}

/// A cursor over `mems` and `version` at sequence `seq`.
fn scan_cursor(
    mems: Arc<Memtables>,
    version: Arc<Version>,
    seq: u64,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> MergingCursor {
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
    MergingCursor::new(factory, seq, lower, upper)
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
}

/// A snapshot: reads the live memtables and version at a pinned sequence. Compaction keeps every version
/// a registered snapshot can see; dropping it unregisters the sequence.
struct LsmSnapshot {
    shared: Arc<Shared>,
    seq: u64,
}

impl SnapshotSource for LsmSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.shared.check_open()?;
        self.shared.get_at(key, self.seq)
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.shared.check_open()?;
        Ok(self.shared.scan_at(self.seq, lower, upper))
    }
}

impl Drop for LsmSnapshot {
    fn drop(&mut self) {
        let mut snaps = self.shared.snapshots.lock();
        if let Some(n) = snaps.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                snaps.remove(&self.seq);
            }
        }
    }
}

impl Engine for LsmEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Lsm
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.shared.check_open()?;
        let seq = self.shared.visible.load(Ordering::Acquire);
        self.shared.get_at(key, seq)
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        self.shared.write(batch, options)
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.shared.check_open()?;
        let seq = self.shared.visible.load(Ordering::Acquire);
        Ok(self.shared.scan_at(seq, lower, upper))
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.shared.check_open()?;
        let mut snaps = self.shared.snapshots.lock();
        let seq = self.shared.visible.load(Ordering::Acquire);
        *snaps.entry(seq).or_insert(0) += 1;
        drop(snaps);
        Ok(Snapshot::new(Box::new(LsmSnapshot {
            shared: Arc::clone(&self.shared),
            seq,
        })))
    }

    fn sync(&self) -> Result<()> {
        self.shared.check_writable()?;
        self.shared
            .wal
            .sync()
            .map(|_| ())
            .map_err(|e| self.shared.poison(e))
    }

    fn flush(&self) -> Result<()> {
        self.shared.check_writable()?;
        {
            let _writer = self.shared.writer.lock();
            if !self.shared.mems.read().active.is_empty() {
                self.shared.seal_memtable()?;
            }
        }
        self.shared.flush_sealed()
    }

    fn compact(&self) -> Result<()> {
        self.flush()?;
        self.shared.compact_all()
    }

    fn wait_idle(&self) -> Result<()> {
        self.shared.check_open()?;
        let mut work = self.shared.work.lock();
        loop {
            if let Some(e) = &work.error {
                return Err(Error::Poisoned { cause: e.clone() });
            }
            let busy = work.running
                || !self.shared.mems.read().sealed.is_empty()
                || self.shared.needs_compaction();
            if !busy || self.shared.options.background == Background::Manual {
                return Ok(());
            }
            self.shared.work_cv.notify_all();
            self.shared
                .work_cv
                .wait_for(&mut work, std::time::Duration::from_millis(20));
        }
    }

    fn verify(&self) -> Result<VerifyReport> {
        self.shared.check_open()?;
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

    fn stats(&self) -> Stats {
        self.shared.stats()
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn close(&self) -> Result<()> {
        let result = self.shutdown(true);
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Closed),
            Err(e) => Err(e),
        }
    }
}

impl LsmEngine {
    /// Stops the worker, flushes (if `flush` and the handle is healthy), closes the WAL and releases LOCK.
    /// Returns `Ok(false)` if already closed.
    fn shutdown(&self, flush: bool) -> Result<bool> {
        let shared = &self.shared;
        let mut first_error = None;
        {
            let _writer = shared.writer.lock();
            if shared.closed.load(Ordering::Acquire) {
                return Ok(false);
            }
            if flush && shared.poisoned.lock().is_none() {
                let sealed = if shared.mems.read().active.is_empty() {
                    Ok(())
                } else {
                    shared.seal_memtable()
                };
                if let Err(e) = sealed {
                    first_error = Some(e);
                }
            }
            shared.closed.store(true, Ordering::Release);
        }
        shared.work.lock().shutdown = true;
        shared.work_cv.notify_all();
        if let Some(handle) = self.worker.lock().take() {
            let _ = handle.join();
        }
        if first_error.is_none()
            && flush
            && shared.poisoned.lock().is_none()
            && let Err(e) = shared.flush_sealed()
        {
            first_error = Some(e);
        }
        if let Err(e) = shared.wal.close() {
            first_error.get_or_insert(e);
        }
        shared.lock.lock().take();
        match first_error {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }
}

impl Drop for LsmEngine {
    fn drop(&mut self) {
        let _ = self.shutdown(true);
    }
}

/// The background worker: flushes sealed memtables one at a time and runs one compaction per round while
/// some level is over its target; at the L0 stop trigger it compacts before flushing.
pub(super) fn worker_loop(shared: Arc<Shared>) {
    loop {
        {
            let mut work = shared.work.lock();
            loop {
                if work.shutdown {
                    return;
                }
                if work.error.is_none()
                    && (!shared.mems.read().sealed.is_empty() || shared.needs_compaction())
                {
                    break;
                }
                shared
                    .work_cv
                    .wait_for(&mut work, std::time::Duration::from_millis(100));
            }
            work.running = true;
        }
        // One job per round. At the L0 stop trigger, compact before flushing more into L0, so L0 never
        // passes the stop trigger; otherwise flush one sealed memtable, then run one compaction.
        let at_stop =
            shared.l0_files.load(Ordering::Acquire) as usize >= shared.options.l0_stop_trigger;
        let result = if at_stop {
            shared
                .compact_once()
                .and_then(|ran| if ran { Ok(()) } else { shared.flush_some(1) })
        } else {
            shared
                .flush_some(1)
                .and_then(|()| shared.compact_once().map(|_| ()))
        };
        let mut work = shared.work.lock();
        work.running = false;
        if let Err(e) = result {
            let e = shared.poison(e);
            work.error = Some(e.to_string());
        }
        shared.work_cv.notify_all();
    }
}

impl Shared {
    /// True if some level is over its target (L0: at its trigger).
    pub(super) fn needs_compaction(&self) -> bool {
        compaction_score(&self.options, &self.versions.current()).1 >= 1.0
    }
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
    /// open; crash tests check it).
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
