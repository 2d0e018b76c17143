//! Options of the LSM engine. Defaults come from DESIGN.md and are never tuned to a benchmark.

use super::sstable::{ReadPath, TableOptions};
use crate::identity::CreateOptions;
use crate::wal::RecoveryMode;

/// Where flushes and compactions run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Background {
    /// On one background worker thread owned by the handle.
    #[default]
    Threads,
    /// Inline, at deterministic points: in the write that crosses a threshold, or in an explicit
    /// `flush`/`compact` call. Every simulated-backend test uses it so seeds reproduce.
    Manual,
}

/// Options of [`LsmEngine`](super::LsmEngine).
#[derive(Clone, Debug)]
pub struct LsmOptions {
    /// Creation rules (create if missing, error if exists).
    pub create: CreateOptions,
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
    /// Where flushes and compactions run (default a background thread).
    pub background: Background,
    /// How WAL damage is treated at open.
    pub recovery_mode: RecoveryMode,
}

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            create: CreateOptions::default(),
            memtable_bytes: 64 << 20,
            max_immutable_memtables: 2,
            block_cache_bytes: 64 << 20,
            table: TableOptions::default(),
            read_path: ReadPath::default(),
            l0_compaction_trigger: 4,
            target_file_bytes: 64 << 20,
            background: Background::Threads,
            recovery_mode: RecoveryMode::default(),
        }
    }
}

impl LsmOptions {
    /// Tiny sizes for tests: a few-KiB memtable, 256-byte blocks, small tables and cache, Manual background,
    /// so every test flushes and compacts many times.
    pub fn tiny() -> Self {
        LsmOptions {
            memtable_bytes: 4 << 10,
            block_cache_bytes: 64 << 10,
            table: TableOptions {
                block_size: 256,
                restart_interval: 4,
                ..TableOptions::default()
            },
            target_file_bytes: 16 << 10,
            background: Background::Manual,
            ..LsmOptions::default()
        }
    }
}
