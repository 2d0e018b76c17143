//! The engine core both engines share: one commit pipeline and one handle lifecycle.
//!
//! An engine plugs in what is its own through [`EngineCore`] (LSM: memtables, tables, flushes and
//! compactions; B-tree: pages, the pool and checkpoints) and gets everything else from [`Core`] and the
//! functions here, written once:
//!
//! - **Commit** ([`write()`]): the writer mutex holds the next sequence number. Under it: make room (an
//!   engine may ask the caller to release the lock and wait: backpressure), assign the batch's sequences
//!   (one per operation), append the batch to the WAL, apply it, publish the visible sequence, count it.
//!   A `Sync` batch is appended as `Flush` and waits for the fsync *after* the mutex is released, so
//!   concurrent `Sync` writers share fsyncs (group commit). An empty batch appends nothing and still
//!   honours its durability. Apply order is log order because both happen under the same mutex.
//! - **Fail-stop** ([`Core::poison`]): a failed WAL append, apply, fsync or background job records its
//!   cause; every later write, `sync` and `flush` gets `Poisoned` until the handle is reopened. Reads go on
//!   (an engine that cannot serve them, such as a B-tree holding part of a failed batch, says so itself).
//!   Fsync is never retried.
//! - **Closed**: after [`close`] every call gets `Closed`.
//! - **Snapshots** ([`Snapshots`]): the registry of pinned sequences, counted per sequence.
//! - **Background worker** ([`spawn_worker`]): one thread per handle in `Threads` mode, woken by
//!   [`Core::notify_worker`], running [`EngineCore::background_step`] while
//!   [`EngineCore::background_due`]; a failed step poisons the handle. Writers and `wait_idle` wait for it
//!   through [`Core::wait_worker`], which holds no other lock.
//! - **Close** ([`close()`]; `Drop` does the same and drops the error): under the writer mutex, mark the handle
//!   closed and let the engine seal what it holds; stop and join the worker (after any job that must
//!   finish); let the engine make everything durable (LSM: flush; B-tree: checkpoint) unless poisoned;
//!   close the WAL; release `LOCK`.
//!
//! The reference engine in `testing` deliberately does not use this module: it is the oracle the
//! pipeline is checked against.

mod snapshots;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

pub(crate) use snapshots::Snapshots;
use worker::WorkState;
pub(crate) use worker::spawn_worker;

use crate::batch::WriteBatch;
use crate::engine::{Background, Durability, Limits, WriteOptions};
use crate::error::{EngineKind, Error, Result};
use crate::stats::{AtomicReadCounters, RecoveryReport, Stats};
use crate::storage::{LockGuard, Storage};
use crate::wal::WalWriter;

/// What an engine plugs into the pipeline. Every method but [`EngineCore::core`] and
/// [`EngineCore::apply`] has a default for engines without that step.
pub(crate) trait EngineCore: Send + Sync + Sized + 'static {
    /// The shared state of the handle.
    fn core(&self) -> &Core;

    /// The limits batches are checked against before anything is written.
    fn limits(&self) -> Limits;

    /// Backpressure, called holding no lock before every attempt to take the writer mutex. May sleep or
    /// wait for the worker (count it with [`Core::record_stall`]).
    fn throttle(&self) -> Result<()> {
        Ok(())
    }

    /// Under the writer mutex, before a non-empty batch is logged: make room for it (LSM: seal a full
    /// memtable, which rotates the WAL). `Ok(false)`: the caller releases the mutex, throttles and tries
    /// again.
    fn make_room(&self) -> Result<bool> {
        Ok(true)
    }

    /// Under the writer mutex, after the batch is in the WAL: apply it, its operations taking sequences
    /// `seq`, `seq + 1`, …. An error poisons the handle.
    fn apply(&self, batch: &WriteBatch, seq: u64) -> Result<()>;

    /// Under the writer mutex, after the batch is visible (B-tree: start a checkpoint if one is due).
    fn after_commit(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the worker has something to do. `stopping`: close asked the worker to stop; answer true
    /// only for work that must finish before it exits.
    fn background_due(&self, stopping: bool) -> bool {
        let _ = stopping;
        false
    }

    /// One round of background work. An error poisons the handle.
    fn background_step(&self) -> Result<()> {
        Ok(())
    }

    /// Close, step 1, under the writer mutex of a healthy handle: seal what writes left in memory.
    fn close_seal(&self) -> Result<()> {
        Ok(())
    }

    /// Close, step 2, after the worker stopped, on a healthy handle: make everything durable.
    fn close_drain(&self) -> Result<()> {
        Ok(())
    }

    /// Close: the number of the empty WAL segment the closing WAL rotates to (`None`: one past the
    /// current segment). An engine that numbers other files from the same counter reserves one here.
    fn closing_segment(&self) -> Option<u64> {
        None
    }

    /// Close, last step, always: drop caches and refuse reads that would need them.
    fn close_release(&self) {}
}

/// Counters the pipeline keeps for every engine.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) user_bytes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) stall_micros: AtomicU64,
    pub(crate) reads: AtomicReadCounters,
}

/// The state every engine handle shares with its snapshots, iterators and worker.
pub(crate) struct Core {
    pub(crate) storage: Storage,
    /// Set once recovery has started the live segment (the B-tree replays before it exists).
    wal: OnceLock<Arc<WalWriter>>,
    /// Held for a commit (and by whatever must not interleave with one); holds the next sequence.
    pub(crate) writer: Mutex<u64>,
    /// The last sequence every reader may see.
    visible: AtomicU64,
    poisoned: Mutex<Option<String>>,
    closed: AtomicBool,
    pub(crate) snapshots: Snapshots,
    pub(crate) background: Background,
    work: Mutex<WorkState>,
    work_cv: Condvar,
    worker: Mutex<Option<JoinHandle<()>>>,
    lock: Mutex<Option<LockGuard>>,
    pub(crate) counters: Counters,
    recovery: Mutex<RecoveryReport>,
    /// A read-only handle: no WAL, no worker; every write, sync, flush and compaction is `ReadOnly`.
    read_only: bool,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("visible", &self.visible)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for a handle that holds `lock` and will read and write at sequences after `last_seq`.
    pub(crate) fn new(
        storage: Storage,
        lock: LockGuard,
        background: Background,
        last_seq: u64,
    ) -> Self {
        Core {
            storage,
            wal: OnceLock::new(),
            writer: Mutex::new(last_seq + 1),
            visible: AtomicU64::new(last_seq),
            poisoned: Mutex::new(None),
            closed: AtomicBool::new(false),
            snapshots: Snapshots::default(),
            background,
            work: Mutex::new(WorkState::default()),
            work_cv: Condvar::new(),
            worker: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
            counters: Counters::default(),
            recovery: Mutex::new(RecoveryReport::default()),
            read_only: false,
        }
    }

    /// A core for a read-only handle holding `lock` (shared, or none), reading at `last_seq`: it never
    /// gets a WAL, and [`Core::check_writable`] is `ReadOnly`.
    pub(crate) fn new_read_only(storage: Storage, lock: LockGuard, last_seq: u64) -> Self {
        Core {
            read_only: true,
            ..Core::new(storage, lock, Background::Manual, last_seq)
        }
    }

    /// True for a read-only handle.
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// `ReadOnly` naming `what` for a read-only handle, else `Closed`/`Poisoned` as
    /// [`Core::check_writable`].
    pub(crate) fn check_writable_for(&self, what: &str) -> Result<()> {
        self.check_open()?;
        if self.read_only {
            return Err(Error::ReadOnly(what.to_string()));
        }
        self.check_poisoned()
    }

    /// Recovery of a read-only handle is over: reads see everything through `last_seq`; `report` is what
    /// it did. There is no WAL: writes are refused.
    pub(crate) fn start_read_only(&self, last_seq: u64, report: RecoveryReport) {
        *self.writer.lock() = last_seq + 1;
        self.visible.store(last_seq, Ordering::Release);
        *self.recovery.lock() = report;
    }

    /// Recovery is over: commits go to `wal`, after sequence `last_seq`; `report` is what it did.
    pub(crate) fn start(&self, wal: Arc<WalWriter>, last_seq: u64, report: RecoveryReport) {
        let _ = self.wal.set(wal);
        *self.writer.lock() = last_seq + 1;
        self.visible.store(last_seq, Ordering::Release);
        *self.recovery.lock() = report;
    }

    /// The WAL, once recovery has started it.
    ///
    /// # Errors
    /// `InvalidArgument` while recovery replays.
    pub(crate) fn wal(&self) -> Result<&Arc<WalWriter>> {
        self.wal
            .get()
            .ok_or_else(|| Error::invalid("the engine has no WAL while it recovers"))
    }

    /// The WAL, `None` while recovery replays.
    pub(crate) fn wal_if_started(&self) -> Option<&Arc<WalWriter>> {
        self.wal.get()
    }

    /// The last sequence every reader may see.
    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// `Closed` after close.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// `Closed` after close, `ReadOnly` for a read-only handle, `Poisoned` after a failure: what every
    /// write checks.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_writable_for("write")
    }

    /// `Poisoned` after a failure, whether or not the handle is closed.
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether no failure has poisoned the handle.
    pub(crate) fn is_healthy(&self) -> bool {
        self.poisoned.lock().is_none()
    }

    /// Records `e` as the reason writes are refused (the first cause wins), and returns it.
    pub(crate) fn poison(&self, e: Error) -> Error {
        self.note_poison(&e);
        e
    }

    /// Records `e` as the reason writes are refused, unless an earlier cause was recorded.
    pub(crate) fn note_poison(&self, e: &Error) {
        self.poisoned.lock().get_or_insert_with(|| e.describe());
    }

    /// Counts one delayed write that waited since `start`.
    pub(crate) fn record_stall(&self, start: std::time::Instant) {
        self.counters.stalls.fetch_add(1, Ordering::Relaxed);
        self.counters.stall_micros.fetch_add(
            u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Statistics with the pipeline's own fields filled in; the engine adds its gauges.
    pub(crate) fn stats(&self, kind: EngineKind) -> Stats {
        let c = &self.counters;
        let mut s = Stats::new(kind);
        s.io = self.storage.io_stats();
        s.user_bytes = c.user_bytes.load(Ordering::Relaxed);
        s.batches = c.batches.load(Ordering::Relaxed);
        s.reads = c.reads.snapshot();
        s.stalls = c.stalls.load(Ordering::Relaxed);
        s.stall_micros = c.stall_micros.load(Ordering::Relaxed);
        s.recovery = self.recovery.lock().clone();
        s
    }
}

/// Commits `batch` with `options`: see the [module docs](self).
///
/// # Errors
/// `Closed`, `Poisoned`, `InvalidArgument` (a limit), or the error that poisoned the handle.
pub(crate) fn write<E: EngineCore>(
    engine: &E,
    batch: &WriteBatch,
    options: WriteOptions,
) -> Result<()> {
    let core = engine.core();
    core.check_writable_for("write")?;
    engine.limits().check(batch)?;
    let wal = core.wal()?;
    if batch.is_empty() {
        // Ordered after every batch committed before it.
        drop(core.writer.lock());
        core.check_writable()?;
        return match options.durability {
            Durability::Sync => wal.sync().map(|_| ()),
            Durability::Flush => wal.flush(),
            Durability::Buffered => Ok(()),
        }
        .map_err(|e| core.poison(e));
    }
    let mut next_seq = loop {
        // Again on every round: a handle closed or poisoned while this write waited must not spin.
        core.check_writable()?;
        engine.throttle()?;
        let guard = core.writer.lock();
        core.check_writable()?;
        if engine.make_room()? {
            break guard;
        }
    };
    let seq = *next_seq;
    let appended = match options.durability {
        Durability::Sync => Durability::Flush,
        d => d,
    };
    let pos = wal
        .append(&batch.encode(seq), appended)
        .map_err(|e| core.poison(e))?;
    engine.apply(batch, seq).map_err(|e| core.poison(e))?;
    let last = seq + batch.len() as u64 - 1;
    *next_seq = last + 1;
    core.visible.store(last, Ordering::Release);
    core.counters
        .user_bytes
        .fetch_add(batch.user_bytes(), Ordering::Relaxed);
    core.counters.batches.fetch_add(1, Ordering::Relaxed);
    engine.after_commit()?;
    drop(next_seq);
    if options.durability == Durability::Sync {
        wal.sync_through(pos).map_err(|e| core.poison(e))?;
        crate::crash_point::hit("commit.wal_synced");
    }
    Ok(())
}

/// Makes every acknowledged write durable.
///
/// # Errors
/// `Closed`, `Poisoned`, or the fsync's error (which poisons the handle).
pub(crate) fn sync<E: EngineCore>(engine: &E) -> Result<()> {
    let core = engine.core();
    core.check_writable_for("sync")?;
    core.wal()?.sync().map(|_| ()).map_err(|e| core.poison(e))
}

/// Waits until the worker has nothing left to do (at once in `Manual` mode, where work runs inline).
///
/// # Errors
/// `Closed`; `Poisoned` if the handle is poisoned (a failed background job included).
pub(crate) fn wait_idle<E: EngineCore>(engine: &E) -> Result<()> {
    let core = engine.core();
    core.check_open()?;
    if core.read_only {
        // No background work ever runs.
        return Ok(());
    }
    if core.background == Background::Threads {
        core.wait_worker(|running| !running && !engine.background_due(false))?;
    }
    core.check_writable()
}

/// Closes the handle: see the [module docs](self).
///
/// # Errors
/// `Closed` if it was already closed; the first error of the steps; `Poisoned` if the handle was poisoned
/// (nothing was made durable beyond the WAL).
pub(crate) fn close<E: EngineCore>(engine: &E) -> Result<()> {
    let core = engine.core();
    let mut first_error = None;
    {
        let _writer = core.writer.lock();
        if core.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        if core.is_healthy()
            && !core.read_only
            && let Err(e) = engine.close_seal()
        {
            first_error = Some(core.poison(e));
        }
    }
    core.stop_worker();
    if core.is_healthy()
        && !core.read_only
        && let Err(e) = engine.close_drain()
    {
        first_error.get_or_insert(core.poison(e));
    }
    if let Some(wal) = core.wal.get()
        && wal.poisoned().is_none()
        && let Err(e) = wal.close_into(engine.closing_segment())
    {
        first_error.get_or_insert(e);
    }
    if first_error.is_none()
        && let Err(e) = core.check_poisoned()
    {
        first_error = Some(e);
    }
    engine.close_release();
    core.lock.lock().take();
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
