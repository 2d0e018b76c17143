//! The handle: [`Engine`] for [`BTreeEngine`] and what the B-tree plugs into the shared pipeline
//! ([`EngineCore`]).

use std::ops::Bound;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::*;

/// Close shrinks the data file when free pages are more than this fraction of it.
const VACUUM_AT_CLOSE: f64 = 0.1;

impl Engine for BTreeEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::BTree
    }

    fn get_bytes(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let s = &self.shared;
        s.core.check_open()?;
        let st = s.tree.read();
        s.check_readable(&st)?;
        let mut r = Reader::new(&s.store, &st, ReadPurpose::Get);
        let result = r.get(key);
        s.count_get(&r.tally);
        // The reader copied the value out of its pages once; `Bytes::from` keeps that copy.
        result.map(|v| v.map(Bytes::from))
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        pipeline::write(&*self.shared, batch, options)
    }

    /// Every key under one hold of the tree latch (so no batch applies in between), in key order, with
    /// the previous descent's pages pinned: consecutive keys share the internal pages (and the leaf)
    /// without a pool lookup racing an eviction.
    fn multi_get_bytes(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        let s = &self.shared;
        s.core.check_open()?;
        let st = s.tree.read();
        s.check_readable(&st)?;
        let mut r = Reader::new(&s.store, &st, ReadPurpose::Get);
        r.pins = Some(Vec::new());
        let mut gets = 0;
        let out = crate::engine::multi_get_sorted(keys, |key| {
            gets += 1;
            r.get(key).map(|v| v.map(Bytes::from))
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
        let _w = self.shared.core.writer.lock();
        self.shared.core.check_writable()?;
        self.shared.vacuum(0.0)
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

    fn backup(&self, dir: &std::path::Path) -> Result<crate::BackupInfo> {
        self.shared.core.check_open()?;
        self.backup_with(crate::backup::target_storage(dir)?)
    }

    fn stats(&self) -> Stats {
        let s = &self.shared;
        let mut out = s.core.stats(EngineKind::BTree);
        out.memory.buffer_pool = s.store.pool.resident_bytes();
        out.memory.snapshot_overlay = s.tree.read().overlay.bytes();
        out.dirty_pages = s.store.pool.dirty_count() as u64;
        out.checkpoints = s.checkpoints.load(Ordering::Relaxed);
        out
    }

    fn limits(&self) -> Limits {
        self.shared.limits()
    }

    fn close(&self) -> Result<()> {
        pipeline::close(&*self.shared)
    }
}

impl Drop for BTreeEngine {
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
        Shared::limits(self)
    }

    fn apply(&self, batch: &WriteBatch, seq: u64) -> Result<()> {
        // The tree's version (and every page's LSN) is the batch's last sequence.
        Shared::apply(self, batch, seq + batch.len() as u64 - 1)
    }

    fn after_commit(&self) -> Result<()> {
        self.maybe_checkpoint()
    }

    /// A frozen checkpoint waits to be written (even when close stops the worker, so close finds none in
    /// flight), or the checkpoint interval passed with batches not in a checkpoint.
    fn background_due(&self, stopping: bool) -> bool {
        self.job.lock().is_some()
            || (!stopping && !self.in_flight.load(Ordering::Acquire) && self.checkpoint_due())
    }

    fn background_step(&self) -> Result<()> {
        self.background_checkpoint()
    }

    /// The checkpoint in flight (`Threads`: finished when the worker stopped; `Manual`: written here),
    /// then one that makes the rest durable. A poisoned handle may hold part of a batch in the pool: close
    /// never gets here for one.
    fn close_drain(&self) -> Result<()> {
        let _w = self.core.writer.lock();
        self.vacuum(VACUUM_AT_CLOSE)
    }

    fn close_release(&self) {
        self.tree.write().closed = true;
        self.store.pool.clear();
    }
}
