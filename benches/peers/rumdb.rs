//! rumdb (the engine under development): its LSM-tree (`rumdb-lsm`) and its
//! page-based B-tree (`rumdb-btree`), both through rumdb's one `Engine` trait.
//!
//! The dependency is a path dependency on `rumdb-src`, a symlink to a rumdb
//! checkout (run.sh creates it in its scratch copy of this crate, pointing at
//! `$RUMDB_SRC`, default: the git checkout run.sh is invoked from).
//!
//! This is the checkout's copy of the harness's `src/engines/rumdb.rs` (run.sh uses it in place of the
//! bundled one). rumdb's API changed under it: the keyed calls (`get`, `put`, `range`, ...) are in
//! `EngineExt`, which it imports, and reads return `rumdb::Bytes` instead of `Vec<u8>`. What it
//! measures is unchanged: the same calls, durability per workload, settle and cache budget; `get` still
//! copies the value into the harness's buffer.
use crate::engine::{err, EngineConfig, KvEngine, Result, SharedWriter};
use rumdb::{
    BTreeEngine, BTreeOptions, Durability, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch,
    WriteOptions,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Durability of put / put_batch / delete (the non-durable, batched workloads):
/// `Flush` = each write/batch is handed to the OS (write syscall) before it
/// returns, no fsync -- what fjall (journal written per write), RocksDB
/// (`sync=false`: WAL written, not fsync'd) and LMDB (`MDB_NOSYNC`: pages
/// pwritten) do. It is also rumdb's default. `RUMDB_BATCH_DURABILITY=buffered`
/// switches to `Buffered` (may sit in the process; closer to redb's
/// `Durability::None`) for an A/B; the settings string records which was used.
fn batch_durability() -> Durability {
    match std::env::var("RUMDB_BATCH_DURABILITY").as_deref() {
        Ok("buffered") | Ok("Buffered") => Durability::Buffered,
        _ => Durability::Flush,
    }
}

pub fn version() -> String {
    format!(
        "rumdb {} (path dependency rumdb-src, git {})",
        env!("PEERS_VERSION_RUMDB"),
        env!("PEERS_RUMDB_GIT")
    )
}

fn common_settings() -> String {
    let batch = match batch_durability() {
        Durability::Buffered => {
            "Durability::Buffered (RUMDB_BATCH_DURABILITY=buffered: may sit in the process \
             until the next sync/flush)"
        }
        _ => "Durability::Flush (rumdb's default: each write/batch handed to the OS, no fsync)",
    };
    format!(
        "put/put_batch/delete = Engine::write with {batch}; one reused WriteBatch per \
         put_batch; put_durable = write with Durability::Sync (fsync'd before return); \
         flush = Engine::sync() (fsync of the WAL); get = EngineExt::get (returns rumdb::Bytes, \
         copied into the harness's buffer); \
         scan = Engine::scan(Included(start), Unbounded).take(n); shared writer \
         (syncwrite-mt) = one Arc of the engine handle shared by all threads (Engine is \
         Send + Sync), each thread write with Durability::Sync (concurrent Sync writers \
         share one fsync: group commit)"
    )
}

pub fn settings_lsm(cfg: &EngineConfig) -> String {
    format!(
        "LsmEngine::open(dir, LsmOptions {{ block_cache_bytes: {} MiB, ..default }}) (default is \
         also 64 MiB); everything else default: 64 MiB memtable, max 2 sealed memtables, 4 KiB \
         blocks, 10 bloom bits/key, mmap read path, L0 trigger 4, 64 MiB target files, L1 256 \
         MiB, ratio 10, raw blocks on L0-L1 and zstd level 1 below, background thread. {}; \
         settle = Engine::flush() (seal memtable + flush it, waits) + wait_idle() (until no \
         sealed memtable, no running job and no compaction needed) + sync(); compact = \
         Engine::compact() (flush + compact everything into the last level)",
        cfg.cache_bytes >> 20,
        common_settings()
    )
}

pub fn settings_btree(cfg: &EngineConfig) -> String {
    format!(
        "BTreeEngine::open(dir, BTreeOptions {{ pool_bytes: {} MiB, ..default }}) (default is \
         also 64 MiB); everything else default: 4 KiB pages, copy-on-write checkpoint every 64 \
         MiB of WAL or 60 s, dirty pages written back on eviction, close shrinks the file when \
         a tenth of it is free, background checkpoint thread. {}; settle = Engine::flush() \
         (checkpoint now, waits) + wait_idle() + sync(); compact = Engine::compact() (moves the \
         pages at the end of the file into free pages and truncates it)",
        cfg.cache_bytes >> 20,
        common_settings()
    )
}

pub fn open_lsm(dir: &Path, cfg: &EngineConfig) -> Result<Box<dyn KvEngine>> {
    let o = LsmOptions { block_cache_bytes: cfg.cache_bytes as usize, ..LsmOptions::default() };
    let db = LsmEngine::open(dir, o).map_err(err)?;
    Ok(Box::new(RumEngine {
        db: Arc::new(db),
        batch: WriteBatch::new(),
        has_compaction: true,
        durability: batch_durability(),
    }))
}

pub fn open_btree(dir: &Path, cfg: &EngineConfig) -> Result<Box<dyn KvEngine>> {
    let o = BTreeOptions { pool_bytes: cfg.cache_bytes as usize, ..BTreeOptions::default() };
    let db = BTreeEngine::open(dir, o).map_err(err)?;
    Ok(Box::new(RumEngine {
        db: Arc::new(db),
        batch: WriteBatch::new(),
        has_compaction: true,
        durability: batch_durability(),
    }))
}

struct RumEngine<E: Engine + 'static> {
    /// Shared with the syncwrite-mt threads while they run.
    db: Arc<E>,
    /// Reused by put_batch (cleared each time).
    batch: WriteBatch,
    /// LSM: Engine::compact compacts into the last level. B-tree: it shrinks the data file.
    has_compaction: bool,
    /// Durability of put / put_batch / delete (see `batch_durability`).
    durability: Durability,
}

/// One handle used from several threads, as rumdb documents (`Engine: Send + Sync`).
struct RumShared<E: Engine + 'static> {
    db: Arc<E>,
}

fn put_sync<E: Engine>(db: &E, key: &[u8], value: &[u8]) -> Result<()> {
    let mut b = WriteBatch::new();
    b.put(key, value);
    db.write(&b, WriteOptions::new(Durability::Sync)).map_err(err)
}

impl<E: Engine + 'static> SharedWriter for RumShared<E> {
    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        put_sync(&*self.db, key, value)
    }
}

impl<E: Engine + 'static> KvEngine for RumEngine<E> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.batch.clear();
        self.batch.put(key, value);
        self.db.write(&self.batch, WriteOptions::new(self.durability)).map_err(err)
    }

    fn put_batch(&mut self, items: &[(&[u8], &[u8])]) -> Result<()> {
        self.batch.clear();
        for (k, v) in items {
            self.batch.put(k, v);
        }
        self.db.write(&self.batch, WriteOptions::new(self.durability)).map_err(err)
    }

    fn put_durable(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.batch.clear();
        self.batch.put(key, value);
        self.db.write(&self.batch, WriteOptions::new(Durability::Sync)).map_err(err)
    }

    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.db.get(key).map_err(err)? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.batch.clear();
        self.batch.delete(key);
        self.db.write(&self.batch, WriteOptions::new(self.durability)).map_err(err)
    }

    fn scan(&mut self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<usize> {
        let mut count = 0;
        for item in self.db.scan(Bound::Included(start), Bound::Unbounded).map_err(err)?.take(n) {
            let (k, v) = item.map_err(err)?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }

    fn flush(&mut self) -> Result<()> {
        self.db.sync().map_err(err)
    }

    fn settle(&mut self, _max_wait: Duration) -> Result<()> {
        // Engine::flush: LSM seals + flushes the memtable, B-tree checkpoints; both wait.
        self.db.flush().map_err(err)?;
        // Exact wait (no polling needed): returns when no flush/compaction/checkpoint is
        // running or needed. Bounded by the harness's per-engine timeout, not max_wait.
        self.db.wait_idle().map_err(err)?;
        self.db.sync().map_err(err)
    }

    fn compact(&mut self) -> Result<bool> {
        if !self.has_compaction {
            return Ok(false);
        }
        self.db.compact().map_err(err)?;
        Ok(true)
    }

    fn shared_writer(&mut self) -> Result<Option<Arc<dyn SharedWriter>>> {
        Ok(Some(Arc::new(RumShared { db: self.db.clone() })))
    }

    fn close(self: Box<Self>) -> Result<()> {
        if Arc::strong_count(&self.db) != 1 {
            return Err("close: a shared writer handle is still alive".into());
        }
        // Engine::close drains background work, makes everything durable and releases
        // the files (tables unmapped when the handle is dropped right after).
        self.db.close().map_err(err)?;
        drop(self);
        Ok(())
    }
}
