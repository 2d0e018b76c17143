//! Options of the LSM engine. The defaults are conventional sizes (RocksDB-like: 64 MiB memtable and
//! tables, 4 KiB blocks, 10 bloom bits per key, a size ratio of 10) and are never tuned to a benchmark.

use super::edit::NUM_LEVELS;
use super::sstable::builder::{MAX_BLOCK_SIZE, MAX_RESTART_INTERVAL};
use super::sstable::filter::MAX_BITS_PER_KEY;
use super::sstable::{Compression, ReadPath, TableOptions};
pub use crate::engine::Background;
use crate::error::{Error, Result};
use crate::identity::CreateOptions;
use crate::wal::RecoveryMode;

/// Options of [`LsmEngine`](super::LsmEngine).
#[derive(Clone, Debug)]
pub struct LsmOptions {
    /// Creation rules (create if missing, error if exists).
    pub create: CreateOptions,
    /// Open read-only (default false): a shared lock, no file created, written, renamed or deleted; the WAL
    /// is replayed into a memtable that is never flushed; writes, `sync`, `flush` and `compact` are
    /// [`Error::ReadOnly`]. See [`LsmEngine::open`](super::LsmEngine::open).
    pub read_only: bool,
    /// Memtable size at which it is sealed and flushed (default 64 MiB).
    pub memtable_bytes: u64,
    /// Sealed memtables waiting for their flush before writers wait (default 2).
    pub max_immutable_memtables: usize,
    /// Block cache shared by every table (default 64 MiB).
    pub block_cache_bytes: usize,
    /// Table format options (block size 4 KiB, restart interval 16, 10 bloom bits per key).
    pub table: TableOptions,
    /// How table blocks are read: memory map or pread (default mmap).
    pub read_path: ReadPath,
    /// L0 tables that trigger a compaction into L1 (default 4).
    pub l0_compaction_trigger: usize,
    /// Target size of a compaction output table (default 64 MiB).
    pub target_file_bytes: u64,
    /// Target size of L1 (default 256 MiB); level n ≥ 1 targets `base_level_bytes × level_size_ratio^(n−1)`.
    pub base_level_bytes: u64,
    /// Size ratio between adjacent levels ≥ 1 (default 10).
    pub level_size_ratio: u64,
    /// L0 tables past which writes are delayed gradually (default 8; Threads mode only).
    pub l0_slowdown_trigger: usize,
    /// L0 tables at which writes wait for compaction (default 12; Threads mode only).
    pub l0_stop_trigger: usize,
    /// Pending compaction bytes past which writes are delayed gradually (default 64 GiB).
    pub pending_compaction_slowdown_bytes: u64,
    /// Pending compaction bytes at which writes wait for compaction (default 256 GiB).
    pub pending_compaction_stop_bytes: u64,
    /// Bloom bits per key of the tables written to each level; `None` uses `table.bloom_bits_per_key`
    /// (the default on every level). Monkey-style tuning gives the bottom levels fewer bits.
    pub level_bloom_bits_per_key: [Option<u32>; NUM_LEVELS],
    /// Block compression of the tables written to each level (default raw on L0, zstd level 1 below).
    pub level_compression: [Compression; NUM_LEVELS],
    /// Where flushes and compactions run (default a background thread).
    pub background: Background,
    /// Settling: once no write has arrived for this long and no other job is due, the background worker
    /// merges L0 into L1 (default 1 s; `None` never does). Between bursts of writes L0 holds up to
    /// `l0_compaction_trigger` overlapping tables, each of which a point read must probe and each holding
    /// versions that newer data has replaced; after settling, a read probes one table per level and the
    /// replaced versions' space is returned. Each flushed table is merged at most once more than under the
    /// trigger alone, so a steady writer (never idle) pays nothing. [`Engine::wait_idle`] settles at once,
    /// without waiting for the pause, in both background modes.
    ///
    /// [`Engine::wait_idle`]: crate::Engine::wait_idle
    pub settle_after: Option<std::time::Duration>,
    /// How WAL damage is treated at open.
    pub recovery_mode: RecoveryMode,
}

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            create: CreateOptions::default(),
            read_only: false,
            memtable_bytes: 64 << 20,
            max_immutable_memtables: 2,
            block_cache_bytes: 64 << 20,
            table: TableOptions::default(),
            read_path: ReadPath::default(),
            l0_compaction_trigger: 4,
            target_file_bytes: 64 << 20,
            base_level_bytes: 256 << 20,
            level_size_ratio: 10,
            l0_slowdown_trigger: 8,
            l0_stop_trigger: 12,
            pending_compaction_slowdown_bytes: 64 << 30,
            pending_compaction_stop_bytes: 256 << 30,
            level_bloom_bits_per_key: [None; NUM_LEVELS],
            level_compression: default_level_compression(),
            background: Background::Threads,
            settle_after: Some(std::time::Duration::from_secs(1)),
            recovery_mode: RecoveryMode::default(),
        }
    }
}

impl LsmOptions {
    /// Tiny sizes for tests: a few-KiB memtable, 256-byte blocks, 4 KiB tables, an 8 KiB L1, a small cache,
    /// Manual background, so every test flushes and compacts many times and data reaches L2 and below.
    pub fn tiny() -> Self {
        LsmOptions {
            memtable_bytes: 4 << 10,
            block_cache_bytes: 64 << 10,
            table: TableOptions {
                block_size: 256,
                restart_interval: 4,
                ..TableOptions::default()
            },
            target_file_bytes: 4 << 10,
            base_level_bytes: 8 << 10,
            background: Background::Manual,
            ..LsmOptions::default()
        }
    }
}

impl LsmOptions {
    /// Checks that the options describe a working engine, so a bad value is an `InvalidArgument` at open
    /// rather than a stall, a panic or a silent clamp later.
    ///
    /// # Errors
    /// `InvalidArgument` naming the first bad option.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::invalid(what));
        if self.memtable_bytes == 0 {
            return bad("memtable_bytes must be positive".into());
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be at least 1 (a sealed memtable waits for its flush)".into());
        }
        if self.table.block_size < 64 || self.table.block_size > MAX_BLOCK_SIZE {
            return bad(format!(
                "block_size {} is outside 64 B ..= 4 MiB",
                self.table.block_size
            ));
        }
        if !(1..=MAX_RESTART_INTERVAL).contains(&self.table.restart_interval) {
            return bad(format!(
                "restart_interval {} is outside 1 ..= 1024",
                self.table.restart_interval
            ));
        }
        if self.target_file_bytes == 0 || self.base_level_bytes == 0 {
            return bad("target_file_bytes and base_level_bytes must be positive".into());
        }
        if self.level_size_ratio < 2 {
            return bad(format!(
                "level_size_ratio {} must be at least 2",
                self.level_size_ratio
            ));
        }
        if !(1..=self.l0_slowdown_trigger).contains(&self.l0_compaction_trigger)
            || self.l0_slowdown_trigger > self.l0_stop_trigger
        {
            return bad(format!(
                "L0 triggers must satisfy 1 ≤ compaction ({}) ≤ slowdown ({}) ≤ stop ({})",
                self.l0_compaction_trigger, self.l0_slowdown_trigger, self.l0_stop_trigger
            ));
        }
        if self.pending_compaction_slowdown_bytes > self.pending_compaction_stop_bytes {
            return bad(
                "pending_compaction_slowdown_bytes must not exceed pending_compaction_stop_bytes"
                    .into(),
            );
        }
        let zstd_levels = zstd::compression_level_range();
        for level in 0..NUM_LEVELS {
            let t = self.table_options_for(level);
            if t.bloom_bits_per_key > MAX_BITS_PER_KEY {
                return bad(format!(
                    "level {level}: {} bloom bits per key (at most {MAX_BITS_PER_KEY})",
                    t.bloom_bits_per_key
                ));
            }
            if let Compression::Zstd { level: z } = t.compression
                && !zstd_levels.contains(&z)
            {
                return bad(format!(
                    "level {level}: zstd level {z} is outside {} to {}",
                    zstd_levels.start(),
                    zstd_levels.end()
                ));
            }
        }
        Ok(())
    }
}

/// The default compression per level: raw blocks on L0 (flushes are on the write path, and L0 tables are
/// merged into L1 soon), zstd level 1 from L1 down (where the data lives: in a small tree, all of it is
/// in L1).
fn default_level_compression() -> [Compression; NUM_LEVELS] {
    std::array::from_fn(|level| {
        if level >= 1 {
            Compression::Zstd { level: 1 }
        } else {
            Compression::None
        }
    })
}

impl LsmOptions {
    /// The target size of `level` ≥ 1 (saturating); L0 is governed by its file count instead.
    pub fn level_target_bytes(&self, level: usize) -> u64 {
        let ratio = self.level_size_ratio.max(1);
        (1..level).fold(self.base_level_bytes.max(1), |t, _| t.saturating_mul(ratio))
    }

    /// The table options of tables written to `level`.
    pub fn table_options_for(&self, level: usize) -> TableOptions {
        TableOptions {
            bloom_bits_per_key: self
                .level_bloom_bits_per_key
                .get(level)
                .copied()
                .flatten()
                .unwrap_or(self.table.bloom_bits_per_key),
            compression: self
                .level_compression
                .get(level)
                .copied()
                .unwrap_or_default(),
            ..self.table.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_option_is_invalid_argument() {
        assert!(LsmOptions::default().check().is_ok());
        assert!(LsmOptions::tiny().check().is_ok());
        let mut bad: Vec<(&str, LsmOptions)> = vec![
            (
                "memtable 0",
                LsmOptions {
                    memtable_bytes: 0,
                    ..LsmOptions::default()
                },
            ),
            (
                "no immutable",
                LsmOptions {
                    max_immutable_memtables: 0,
                    ..LsmOptions::default()
                },
            ),
            (
                "ratio 1",
                LsmOptions {
                    level_size_ratio: 1,
                    ..LsmOptions::default()
                },
            ),
            (
                "target 0",
                LsmOptions {
                    target_file_bytes: 0,
                    ..LsmOptions::default()
                },
            ),
            (
                "base 0",
                LsmOptions {
                    base_level_bytes: 0,
                    ..LsmOptions::default()
                },
            ),
            (
                "trigger 0",
                LsmOptions {
                    l0_compaction_trigger: 0,
                    ..LsmOptions::default()
                },
            ),
            (
                "slowdown < trigger",
                LsmOptions {
                    l0_slowdown_trigger: 3,
                    ..LsmOptions::default()
                },
            ),
            (
                "stop < slowdown",
                LsmOptions {
                    l0_stop_trigger: 7,
                    ..LsmOptions::default()
                },
            ),
            (
                "pending slowdown > stop",
                LsmOptions {
                    pending_compaction_slowdown_bytes: u64::MAX,
                    ..LsmOptions::default()
                },
            ),
        ];
        let mut o = LsmOptions::default();
        o.table.block_size = 63;
        bad.push(("block 63", o));
        let mut o = LsmOptions::default();
        o.table.block_size = MAX_BLOCK_SIZE + 1;
        bad.push(("block too big", o));
        let mut o = LsmOptions::default();
        o.table.restart_interval = 0;
        bad.push(("restart 0", o));
        let mut o = LsmOptions::default();
        o.level_bloom_bits_per_key[3] = Some(MAX_BITS_PER_KEY + 1);
        bad.push(("bloom bits", o));
        let mut o = LsmOptions::default();
        o.level_compression[5] = Compression::Zstd { level: 1000 };
        bad.push(("zstd level", o));
        for (name, o) in bad {
            match o.check() {
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn open_with_bad_options_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let o = LsmOptions {
            level_size_ratio: 0,
            ..LsmOptions::default()
        };
        assert!(matches!(
            crate::LsmEngine::open(&path, o),
            Err(Error::InvalidArgument(_))
        ));
        assert!(!path.exists());
    }

    #[test]
    fn per_level_defaults_raw_l0_zstd_below_and_overrides_apply() {
        let o = LsmOptions::default();
        for level in 0..NUM_LEVELS {
            let t = o.table_options_for(level);
            assert_eq!(t.bloom_bits_per_key, 10);
            let want = if level >= 1 {
                Compression::Zstd { level: 1 }
            } else {
                Compression::None
            };
            assert_eq!(t.compression, want, "level {level}");
        }
        assert_eq!(o.level_target_bytes(1), 256 << 20);
        assert_eq!(o.level_target_bytes(3), 25_600 << 20);
        assert_eq!(o.level_target_bytes(60), u64::MAX);
        let mut monkey = LsmOptions::default();
        monkey.level_bloom_bits_per_key[NUM_LEVELS - 1] = Some(4);
        monkey.level_compression[0] = Compression::Zstd { level: 3 };
        assert_eq!(
            monkey.table_options_for(NUM_LEVELS - 1).bloom_bits_per_key,
            4
        );
        assert_eq!(
            monkey.table_options_for(0).compression,
            Compression::Zstd { level: 3 }
        );
    }
}
