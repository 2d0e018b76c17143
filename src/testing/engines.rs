//! The engine configurations the crash tests and the operation-sequence fuzz targets run: tiny options,
//! Manual background (so a seed or an input reproduces), and each engine's own check for orphaned and
//! missing files. The integration tests that open engines themselves (kill -9, damage, I/O errors) take
//! their options from here too.

use crate::btree::{BTreeEngine, BTreeOptions};
use crate::error::Result;
use crate::lsm::{LsmEngine, LsmOptions};
use crate::storage::Storage;
use crate::testing::engine_history::EngineUnderTest;
use crate::wal;

/// The LSM engine with 2 KiB memtables, tables and L1 (20 KiB L2, 200 KiB L3): small workloads spread over
/// three or more levels, so flushes, compactions of every kind and manifest rollovers all run.
#[derive(Clone, Copy, Debug, Default)]
pub struct LsmTiny;

impl LsmTiny {
    /// The options this configuration opens with.
    pub fn options() -> LsmOptions {
        LsmOptions {
            memtable_bytes: 2 << 10,
            l0_compaction_trigger: 3,
            base_level_bytes: 2 << 10,
            target_file_bytes: 2 << 10,
            ..LsmOptions::tiny()
        }
    }
}

impl EngineUnderTest for LsmTiny {
    type E = LsmEngine;

    fn open(&self, storage: Storage) -> Result<LsmEngine> {
        LsmEngine::open_with(storage, Self::options())
    }

    fn stray_files(&self, engine: &LsmEngine, storage: &Storage) -> Result<Vec<String>> {
        let live = engine.live_files();
        let listed = storage.list()?;
        let mut stray: Vec<String> = listed
            .iter()
            .filter(|f| !live.contains(f))
            .map(|f| format!("orphan {f}"))
            .collect();
        stray.extend(
            live.iter()
                .filter(|f| !listed.contains(f))
                .map(|f| format!("missing {f}")),
        );
        Ok(stray)
    }
}

/// The B-tree engine with 512-byte pages, a 16-page pool (dirty pages are written back on eviction all
/// the time) and a checkpoint every 1 KiB of WAL.
#[derive(Clone, Copy, Debug, Default)]
pub struct BTreeTiny;

impl BTreeTiny {
    /// The options this configuration opens with.
    pub fn options() -> BTreeOptions {
        BTreeOptions {
            checkpoint_wal_bytes: 1024,
            ..BTreeOptions::tiny()
        }
    }

    /// The same 512-byte pages and pool with checkpoints only on `flush`, at open and at close (no WAL
    /// volume triggers one), so the WAL holds every batch after the last `flush`.
    pub fn checkpoint_on_flush_options() -> BTreeOptions {
        BTreeOptions {
            checkpoint_wal_bytes: u64::MAX,
            ..BTreeOptions::tiny()
        }
    }
}

impl EngineUnderTest for BTreeTiny {
    type E = BTreeEngine;

    fn open(&self, storage: Storage) -> Result<BTreeEngine> {
        BTreeEngine::open_with(storage, Self::options())
    }

    /// Outside a checkpoint the directory holds IDENTITY, LOCK, `data` and WAL segments, nothing else.
    fn stray_files(&self, _engine: &BTreeEngine, storage: &Storage) -> Result<Vec<String>> {
        let listed = storage.list()?;
        let mut stray: Vec<String> = listed
            .iter()
            .filter(|f| {
                !(["IDENTITY", "LOCK", "data"].contains(&f.as_str())
                    || wal::parse_segment_name(f).is_some())
            })
            .map(|f| format!("orphan {f}"))
            .collect();
        for need in ["IDENTITY", "data"] {
            if !listed.iter().any(|f| f == need) {
                stray.push(format!("missing {need}"));
            }
        }
        if !listed.iter().any(|f| wal::parse_segment_name(f).is_some()) {
            stray.push("missing WAL segment".into());
        }
        Ok(stray)
    }
}

/// [`BTreeTiny`] with checkpoints only on `flush`, at open and at close
/// ([`BTreeTiny::checkpoint_on_flush_options`]): a recovery replays every batch since, which for a workload
/// larger than the 16-page pool means recovery itself writes dirty pages back on eviction.
#[derive(Clone, Copy, Debug, Default)]
pub struct BTreeTinyLongReplay;

impl EngineUnderTest for BTreeTinyLongReplay {
    type E = BTreeEngine;

    fn open(&self, storage: Storage) -> Result<BTreeEngine> {
        BTreeEngine::open_with(storage, BTreeTiny::checkpoint_on_flush_options())
    }

    fn stray_files(&self, engine: &BTreeEngine, storage: &Storage) -> Result<Vec<String>> {
        BTreeTiny.stray_files(engine, storage)
    }
}
