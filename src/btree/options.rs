//! [`BTreeOptions`]: the B-tree engine's options, their defaults and their checks.

use std::time::Duration;

use crate::engine::Background;
use crate::error::{Error, Result};
use crate::identity::CreateOptions;

use super::page::DATA_FILE;

/// Options of [`BTreeEngine`](super::BTreeEngine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BTreeOptions {
    /// Bytes per page, fixed at creation: a power of two from 512 (for tests) to 16 KiB; default 4 KiB.
    /// An existing database keeps the page size it was created with.
    pub page_size: usize,
    /// Bytes of the buffer pool (default 64 MiB); at least two pages.
    pub pool_bytes: usize,
    /// WAL bytes written since the last checkpoint that trigger one (default 64 MiB, as PostgreSQL's
    /// `max_wal_size` paces its checkpoints): bounds the log a reopen replays and the WAL kept on disk.
    /// Fewer checkpoints write fewer pages (a page changed many times between two is written once or
    /// twice), at the cost of a longer replay after a crash. The pool is not a bound: dirty pages are
    /// written back when evicted.
    pub checkpoint_wal_bytes: u64,
    /// Time after which batches not yet in a checkpoint get one, however little the WAL grew (default 60
    /// s, as PostgreSQL's `checkpoint_timeout`): bounds what a reopen replays under a light write load.
    pub checkpoint_interval: Duration,
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
    /// batches the data file lacks are applied to pages in the buffer pool that are never written back
    /// (so they must fit in the pool);
    /// writes, `sync`, `flush` and `compact` are [`Error::ReadOnly`]. See the module docs' "Read-only
    /// open".
    pub read_only: bool,
}

impl Default for BTreeOptions {
    fn default() -> Self {
        BTreeOptions {
            page_size: 4096,
            pool_bytes: 64 << 20,
            checkpoint_wal_bytes: 64 << 20,
            checkpoint_interval: Duration::from_secs(60),
            background: Background::Threads,
            snapshot_memory: 64 << 20,
            create: CreateOptions::default(),
            read_only: false,
        }
    }
}

impl BTreeOptions {
    /// Small pages and a pool of a few pages: splits, merges, overflow chains, eviction and checkpoints
    /// (every 4 KiB of WAL) happen with little data; checkpoints inline (`Manual`). For tests.
    pub fn tiny() -> Self {
        BTreeOptions {
            page_size: 512,
            pool_bytes: 16 * 512,
            checkpoint_wal_bytes: 4096,
            checkpoint_interval: Duration::from_secs(3600),
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
        if self.pool_bytes < 2 * self.page_size || self.checkpoint_wal_bytes == 0 {
            return Err(Error::invalid(
                "the pool must hold two pages (pool_bytes) and checkpoint_wal_bytes be at least 1",
            ));
        }
        Ok(())
    }
}

/// True for the name of a file the B-tree engine writes (besides the WAL, `IDENTITY` and `LOCK`).
pub(crate) fn owns_file(name: &str) -> bool {
    name == DATA_FILE
}

pub(super) fn valid_page_size(n: usize) -> bool {
    n.is_power_of_two() && (512..=16384).contains(&n)
}
