//! Statistics: bytes moved by purpose, the three amplification ratios, memory by part, and the report of
//! the last recovery.
//!
//! Definitions, the one place amplification is defined (both engines and every report use them):
//! - **user bytes** = key + value of every put, + key of every delete;
//! - **write amplification** = storage bytes written (all purposes) ÷ user bytes ([`Stats::write_amplification`]);
//! - **read amplification** = block/page fetches that missed the engine's cache per get
//!   ([`Stats::read_amplification`]), and blocks/pages touched per get, cache hits included;
//! - **space amplification** = allocated bytes of every file ÷ live key + value bytes
//!   ([`space_amplification`]), measured by the caller after settle and after close.
//!
//! All counters are cumulative since open; take deltas with [`Stats::since`].

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::EngineKind;
use crate::storage::IoStats;

/// Per-get read counters, split between data blocks/leaf pages and everything else (LSM index and filter
/// blocks, B-tree internal pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadCounters {
    /// Point lookups served.
    pub gets: u64,
    /// Data blocks or leaf pages read from storage (cache misses).
    pub data_fetches: u64,
    /// Index/filter blocks or internal pages read from storage (cache misses).
    pub index_fetches: u64,
    /// Data blocks or leaf pages touched, cache hits included.
    pub data_touches: u64,
    /// Index/filter blocks or internal pages touched, cache hits included.
    pub index_touches: u64,
    /// Cache hits (block cache or buffer pool).
    pub cache_hits: u64,
    /// LSM: bloom filter probes.
    pub bloom_probes: u64,
    /// LSM: probes the filter answered "absent" (each saved a data block read).
    pub bloom_negatives: u64,
}

/// [`ReadCounters`] shared by every reader of one engine handle: relaxed atomics, added to per lookup or
/// per cursor step and read as a snapshot by `stats()`.
#[derive(Debug, Default)]
pub struct AtomicReadCounters {
    counters: [AtomicU64; 8],
}

impl AtomicReadCounters {
    fn fields(c: &ReadCounters) -> [u64; 8] {
        [
            c.gets,
            c.data_fetches,
            c.index_fetches,
            c.data_touches,
            c.index_touches,
            c.cache_hits,
            c.bloom_probes,
            c.bloom_negatives,
        ]
    }

    /// Adds `delta` to the counters.
    pub fn add(&self, delta: &ReadCounters) {
        for (counter, v) in self.counters.iter().zip(Self::fields(delta)) {
            if v > 0 {
                counter.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> ReadCounters {
        let [
            gets,
            data_fetches,
            index_fetches,
            data_touches,
            index_touches,
            cache_hits,
            bloom_probes,
            bloom_negatives,
        ] = self.counters.each_ref().map(|c| c.load(Ordering::Relaxed));
        ReadCounters {
            gets,
            data_fetches,
            index_fetches,
            data_touches,
            index_touches,
            cache_hits,
            bloom_probes,
            bloom_negatives,
        }
    }
}

/// Bytes of memory in use, by part. Bounded by the engine's options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// LSM: the active and immutable memtables.
    pub memtables: u64,
    /// LSM: the block cache.
    pub block_cache: u64,
    /// LSM: bloom filters held in memory.
    pub filters: u64,
    /// LSM: table indexes held in memory.
    pub indexes: u64,
    /// B-tree: the buffer pool.
    pub buffer_pool: u64,
    /// B-tree: the snapshot overlay.
    pub snapshot_overlay: u64,
}

impl MemoryUsage {
    /// The sum of every part.
    pub fn total(&self) -> u64 {
        self.memtables
            + self.block_cache
            + self.filters
            + self.indexes
            + self.buffer_pool
            + self.snapshot_overlay
    }
}

/// What the last open had to do to recover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL segments read.
    pub segments_replayed: u64,
    /// WAL records (batches) applied.
    pub records_replayed: u64,
    /// Bytes of damaged or incomplete WAL tail that were dropped.
    pub truncated_bytes: u64,
    /// Where the dropped tail began (file and offset), if anything was dropped.
    pub truncated_at: Option<(String, u64)>,
    /// Files no version referenced, removed at open.
    pub orphans_removed: u64,
}

/// What [`Engine::verify`](crate::Engine::verify) checked.
///
/// It covers the engine's main files only. LSM: the tables of the current version — not the memtable,
/// whose entries are in memory and whose copy on disk, the WAL, is checked record by record (CRC) when
/// the database is opened; [`Engine::flush`](crate::Engine::flush) first to have every acknowledged
/// entry counted. B-tree: the data file's pages, including the dirty pages still in the buffer pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files read (LSM: tables; B-tree: the data file).
    pub files: u64,
    /// Blocks or pages whose checksum was verified.
    pub blocks: u64,
    /// Entries visited (LSM: in tables, so an unflushed memtable's entries are not counted).
    pub entries: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Cumulative statistics of one engine handle.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Which engine.
    pub kind: EngineKind,
    /// Bytes read and written by purpose, and fsyncs.
    pub io: IoStats,
    /// User bytes written: key + value of every put, key of every delete.
    pub user_bytes: u64,
    /// Batches written (including single puts and deletes).
    pub batches: u64,
    /// Read counters.
    pub reads: ReadCounters,
    /// Memory in use by part (a gauge, not cumulative).
    pub memory: MemoryUsage,
    /// LSM: files in L0 now (a gauge).
    pub l0_files: u64,
    /// LSM: bytes waiting to be compacted (a gauge).
    pub pending_compaction_bytes: u64,
    /// Writes delayed or stopped by backpressure.
    pub stalls: u64,
    /// Time writers spent in backpressure, in microseconds.
    pub stall_micros: u64,
    /// B-tree: dirty pages in the pool now (a gauge).
    pub dirty_pages: u64,
    /// LSM flushes or B-tree checkpoints completed.
    pub checkpoints: u64,
    /// LSM compactions completed.
    pub compactions: u64,
    /// The last open's recovery.
    pub recovery: RecoveryReport,
}

impl Stats {
    /// Empty statistics for `kind`.
    pub fn new(kind: EngineKind) -> Self {
        Stats {
            kind,
            io: IoStats::default(),
            user_bytes: 0,
            batches: 0,
            reads: ReadCounters::default(),
            memory: MemoryUsage::default(),
            l0_files: 0,
            pending_compaction_bytes: 0,
            stalls: 0,
            stall_micros: 0,
            dirty_pages: 0,
            checkpoints: 0,
            compactions: 0,
            recovery: RecoveryReport::default(),
        }
    }

    /// Storage bytes written (all purposes) ÷ user bytes; `None` before any user byte.
    pub fn write_amplification(&self) -> Option<f64> {
        ratio(self.io.written.total(), self.user_bytes)
    }

    /// Cache-missing fetches (data and index) per get; `None` before any get.
    pub fn read_amplification(&self) -> Option<f64> {
        ratio(
            self.reads.data_fetches + self.reads.index_fetches,
            self.reads.gets,
        )
    }

    /// Blocks or pages touched per get, cache hits included; `None` before any get.
    pub fn touches_per_get(&self) -> Option<f64> {
        ratio(
            self.reads.data_touches + self.reads.index_touches,
            self.reads.gets,
        )
    }

    /// The counters accumulated since `earlier` (gauges and the recovery report are taken from `self`).
    pub fn since(&self, earlier: &Stats) -> Stats {
        let w = &self.io.written;
        let ew = &earlier.io.written;
        let r = &self.io.read;
        let er = &earlier.io.read;
        let mut out = self.clone();
        out.io.written = crate::storage::WrittenBytes {
            wal: w.wal.saturating_sub(ew.wal),
            memtable_flush: w.memtable_flush.saturating_sub(ew.memtable_flush),
            compaction: w.compaction.saturating_sub(ew.compaction),
            manifest: w.manifest.saturating_sub(ew.manifest),
            page_writeback: w.page_writeback.saturating_sub(ew.page_writeback),
            page_eviction: w.page_eviction.saturating_sub(ew.page_eviction),
            header: w.header.saturating_sub(ew.header),
        };
        out.io.read = crate::storage::ReadBytes {
            get: r.get.saturating_sub(er.get),
            scan: r.scan.saturating_sub(er.scan),
            compaction: r.compaction.saturating_sub(er.compaction),
            recovery: r.recovery.saturating_sub(er.recovery),
            verify: r.verify.saturating_sub(er.verify),
            backup: r.backup.saturating_sub(er.backup),
        };
        out.io.fsyncs = self.io.fsyncs.saturating_sub(earlier.io.fsyncs);
        out.io.dir_syncs = self.io.dir_syncs.saturating_sub(earlier.io.dir_syncs);
        out.user_bytes = self.user_bytes.saturating_sub(earlier.user_bytes);
        out.batches = self.batches.saturating_sub(earlier.batches);
        let (a, b) = (&self.reads, &earlier.reads);
        out.reads = ReadCounters {
            gets: a.gets.saturating_sub(b.gets),
            data_fetches: a.data_fetches.saturating_sub(b.data_fetches),
            index_fetches: a.index_fetches.saturating_sub(b.index_fetches),
            data_touches: a.data_touches.saturating_sub(b.data_touches),
            index_touches: a.index_touches.saturating_sub(b.index_touches),
            cache_hits: a.cache_hits.saturating_sub(b.cache_hits),
            bloom_probes: a.bloom_probes.saturating_sub(b.bloom_probes),
            bloom_negatives: a.bloom_negatives.saturating_sub(b.bloom_negatives),
        };
        out.stalls = self.stalls.saturating_sub(earlier.stalls);
        out.stall_micros = self.stall_micros.saturating_sub(earlier.stall_micros);
        out.checkpoints = self.checkpoints.saturating_sub(earlier.checkpoints);
        out.compactions = self.compactions.saturating_sub(earlier.compactions);
        out
    }
}

/// Space amplification: allocated bytes of the database's files ÷ key + value bytes of the live keys;
/// `None` when nothing is live.
pub fn space_amplification(allocated_bytes: u64, live_bytes: u64) -> Option<f64> {
    ratio(allocated_bytes, live_bytes)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_read_counters_add_up() {
        let a = AtomicReadCounters::default();
        let d = ReadCounters {
            gets: 1,
            data_fetches: 2,
            index_fetches: 3,
            data_touches: 4,
            index_touches: 5,
            cache_hits: 6,
            bloom_probes: 7,
            bloom_negatives: 8,
        };
        a.add(&d);
        a.add(&d);
        let s = a.snapshot();
        assert_eq!((s.gets, s.index_fetches, s.bloom_negatives), (2, 6, 16));
        assert_eq!(s.cache_hits, 12);
    }

    #[test]
    fn ratios_and_deltas() {
        let mut s = Stats::new(EngineKind::Lsm);
        assert_eq!(s.write_amplification(), None);
        assert_eq!(s.read_amplification(), None);
        s.user_bytes = 100;
        s.io.written.wal = 150;
        s.io.written.compaction = 250;
        s.reads.gets = 4;
        s.reads.data_fetches = 2;
        s.reads.index_fetches = 1;
        s.reads.data_touches = 8;
        assert_eq!(s.write_amplification(), Some(4.0));
        assert_eq!(s.read_amplification(), Some(0.75));
        assert_eq!(s.touches_per_get(), Some(2.0));
        let mut later = s.clone();
        later.user_bytes = 300;
        later.io.written.wal = 350;
        let d = later.since(&s);
        assert_eq!(d.user_bytes, 200);
        assert_eq!(d.io.written.total(), 200);
        assert_eq!(d.write_amplification(), Some(1.0));
        assert_eq!(space_amplification(150, 100), Some(1.5));
        assert_eq!(space_amplification(150, 0), None);
    }
}
