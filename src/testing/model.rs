//! The reference engine: a `BTreeMap` behind [`Engine`], made durable by the shared WAL.
//!
//! It is the oracle the contract suite, the model tests and the differential fuzz target compare the real
//! engines with, so it is kept as simple as correctness allows:
//! - the state is an `Arc<BTreeMap>`, copied on write while a snapshot or iterator shares it;
//! - every batch goes to the WAL with the caller's durability, then into the map, under one writer lock;
//! - opening replays every segment from the first live one (named in `WAL_FIRST`, absent at creation),
//!   then writes the whole state as one record into a new segment, syncs it, names that segment in
//!   `WAL_FIRST` (written atomically) and deletes the replayed segments (so it never appends after a
//!   damaged tail).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::batch::{BatchOp, WriteBatch};
use crate::engine::{
    Cursor, Durability, Engine, Iter, KvPair, LIMITS, Limits, Snapshot, SnapshotSource,
    WriteOptions,
};
use crate::error::{EngineKind, Error, Result};
use crate::identity::{self, CreateOptions};
use crate::stats::{RecoveryReport, Stats, VerifyReport};
use crate::storage::{LockGuard, ReadPurpose, Storage, WritePurpose};
use crate::wal::{self, RecoveryMode, WalWriter};

/// The file naming the model's first live WAL segment (decimal and a newline).
pub(crate) const WAL_FIRST: &str = "WAL_FIRST";

/// The model's format version.
pub const MODEL_FORMAT_VERSION: u32 = 1;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// Options of the model engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModelOptions {
    /// Creation rules.
    pub create: CreateOptions,
    /// How WAL damage is treated at open.
    pub recovery_mode: RecoveryMode,
}

/// The reference engine.
pub struct ModelEngine {
    storage: Storage,
    state: RwLock<Arc<Map>>,
    wal: Arc<WalWriter>,
    writer: Mutex<u64>,
    user_bytes: AtomicU64,
    batches: AtomicU64,
    gets: AtomicU64,
    recovery: RecoveryReport,
    closed: AtomicBool,
    /// Released by `close`, so the directory can be reopened while this handle lingers.
    lock: Mutex<Option<LockGuard>>,
}

impl std::fmt::Debug for ModelEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEngine").finish_non_exhaustive()
    }
}

impl ModelEngine {
    /// Opens (or creates) a model database in `dir`.
    ///
    /// # Errors
    /// As [`ModelEngine::open_with`].
    pub fn open(dir: &Path, options: ModelOptions) -> Result<Self> {
        let storage = Storage::os(dir, options.create.create_if_missing)?;
        Self::open_with(storage, options)
    }

    /// Opens (or creates) a model database on any storage.
    ///
    /// # Errors
    /// `Locked`, `WrongEngine`, `UnsupportedVersion`, `Corruption`, `InvalidArgument`, `Io`.
    pub fn open_with(storage: Storage, options: ModelOptions) -> Result<Self> {
        let opened = identity::open_dir(
            &storage,
            EngineKind::Model,
            MODEL_FORMAT_VERSION,
            0,
            options.create,
            false,
        )?;
        let all = wal::list_segments(&storage)?;
        let first = if storage.exists(WAL_FIRST)? {
            let bytes = storage.read_file(WAL_FIRST, 64, ReadPurpose::Recovery)?;
            let parsed = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::corruption(WAL_FIRST, Some(0), "not a segment number"))?;
            Some(parsed)
        } else {
            None
        };
        let segments: Vec<u64> = all
            .iter()
            .copied()
            .filter(|s| first.is_none_or(|f| *s >= f))
            .collect();
        let mut map = Map::new();
        let mut next_seq = 1u64;
        let outcome = wal::replay(&storage, &segments, first, options.recovery_mode, |rec| {
            let name = wal::segment_name(rec.segment);
            let (seq, batch) = WriteBatch::decode(rec.payload, &name, rec.offset)?;
            apply(&mut map, &batch);
            next_seq = next_seq.max(seq + batch.len() as u64);
            Ok(())
        })?;
        let next_segment = all.last().map_or(1, |s| s + 1);
        let wal = WalWriter::create(&storage, next_segment, outcome.next_link)?;
        // Make the replayed state durable in the new segment before the old ones go.
        let mut snapshot = WriteBatch::new();
        for (k, v) in &map {
            snapshot.put(k, v);
        }
        wal.append(&snapshot.encode(next_seq), Durability::Sync)?;
        next_seq += snapshot.len() as u64;
        storage.write_file_atomic(
            WAL_FIRST,
            format!("{next_segment}\n").as_bytes(),
            WritePurpose::Wal,
        )?;
        if opened.creating {
            identity::finish_create(&storage, &opened.identity)?;
        }
        for s in all {
            storage.remove(&wal::segment_name(s))?;
        }
        storage.sync_dir()?;
        Ok(ModelEngine {
            storage,
            state: RwLock::new(Arc::new(map)),
            wal,
            writer: Mutex::new(next_seq),
            user_bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            recovery: RecoveryReport {
                segments_replayed: outcome.segments,
                records_replayed: outcome.records,
                truncated_bytes: outcome.truncated_bytes,
                truncated_at: outcome.truncated_at,
                orphans_removed: 0,
            },
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(opened.lock)),
        })
    }

    /// [`Engine::backup`] into any storage, which must hold no file: a deep copy of the state at the
    /// current sequence, written as a new model database would be (one segment holding the whole state,
    /// `WAL_FIRST`, `IDENTITY` last).
    ///
    /// # Errors
    /// As [`Engine::backup`].
    pub fn backup_with(&self, target: Storage) -> Result<crate::BackupInfo> {
        self.check_open()?;
        let target = crate::backup::Target::new(target)?;
        let (map, next_seq) = {
            let seq = self.writer.lock();
            (self.current(), *seq)
        };
        let mut snapshot = WriteBatch::new();
        for (k, v) in map.iter() {
            snapshot.put(k, v);
        }
        let storage = target.storage();
        let wal = WalWriter::create(storage, 1, wal::writer::Link::default())?;
        wal.append(&snapshot.encode(next_seq), Durability::Sync)?;
        drop(wal);
        storage.write_file_atomic(WAL_FIRST, b"1\n", WritePurpose::Wal)?;
        let identity = identity::Identity {
            kind: EngineKind::Model,
            format_version: MODEL_FORMAT_VERSION,
            page_size: 0,
        };
        target.finish(&identity, next_seq - 1)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn current(&self) -> Arc<Map> {
        Arc::clone(&self.state.read())
    }
}

fn apply(map: &mut Map, batch: &WriteBatch) {
    for op in batch {
        match op {
            BatchOp::Put { key, value } => {
                map.insert(key.to_vec(), value.to_vec());
            }
            BatchOp::Delete { key } => {
                map.remove(key);
            }
            BatchOp::DeleteRange { start, end } => {
                if start < end {
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        map.remove(&k);
                    }
                }
            }
        }
    }
}

impl Engine for ModelEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Model
    }

    fn get_bytes(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.check_open()?;
        self.gets.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .state
            .read()
            .get(key)
            .map(|v| Bytes::copy_from_slice(v)))
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        self.check_open()?;
        LIMITS.check(batch)?;
        let mut seq = self.writer.lock();
        if batch.is_empty() {
            return match options.durability {
                Durability::Sync => self.wal.sync().map(|_| ()),
                Durability::Flush => self.wal.flush(),
                Durability::Buffered => self
                    .wal
                    .poisoned()
                    .map_or(Ok(()), |cause| Err(Error::Poisoned { cause })),
            };
        }
        self.wal.append(&batch.encode(*seq), options.durability)?;
        *seq += batch.len() as u64;
        let mut state = self.state.write();
        apply(Arc::make_mut(&mut state), batch);
        self.user_bytes
            .fetch_add(batch.user_bytes(), Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.check_open()?;
        Ok(map_iter(self.current(), lower, upper))
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.check_open()?;
        Ok(Snapshot::new(Box::new(MapSnapshot(self.current()))))
    }

    fn sync(&self) -> Result<()> {
        self.check_open()?;
        self.wal.sync().map(|_| ())
    }

    fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.wal.flush()
    }

    fn compact(&self) -> Result<()> {
        self.check_open()
    }

    fn wait_idle(&self) -> Result<()> {
        self.check_open()
    }

    fn verify(&self) -> Result<VerifyReport> {
        self.check_open()?;
        let map = self.current();
        Ok(VerifyReport {
            files: 0,
            blocks: 0,
            entries: map.len() as u64,
            bytes: 0,
        })
    }

    fn backup(&self, dir: &Path) -> Result<crate::BackupInfo> {
        self.check_open()?;
        self.backup_with(crate::backup::target_storage(dir)?)
    }

    fn stats(&self) -> Stats {
        let mut s = Stats::new(EngineKind::Model);
        s.io = self.storage.io_stats();
        s.user_bytes = self.user_bytes.load(Ordering::Relaxed);
        s.batches = self.batches.load(Ordering::Relaxed);
        s.reads.gets = self.gets.load(Ordering::Relaxed);
        s.recovery = self.recovery.clone();
        s
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn close(&self) -> Result<()> {
        let _writer = self.writer.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        let result = self.wal.close();
        self.lock.lock().take();
        result
    }
}

struct MapSnapshot(Arc<Map>);

impl SnapshotSource for MapSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.0.get(key).map(|v| Bytes::copy_from_slice(v)))
    }

    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        Ok(map_iter(Arc::clone(&self.0), lower, upper))
    }
}

/// An iterator over a shared map that keeps its position by key, as the real engines' iterators do.
pub(crate) fn map_iter(map: Arc<Map>, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Iter {
    Iter::new(Box::new(MapCursor {
        map,
        lower: lower.map(<[u8]>::to_vec),
        upper: upper.map(<[u8]>::to_vec),
    }))
}

struct MapCursor {
    map: Arc<Map>,
    /// Everything below has been yielded from the front (or is out of bounds).
    lower: Bound<Vec<u8>>,
    /// Everything above has been yielded from the back (or is out of bounds).
    upper: Bound<Vec<u8>>,
}

impl MapCursor {
    /// The entries not yet yielded; `None` when the bounds have met (`BTreeMap::range` would panic on an
    /// inverted range or on equal excluded bounds).
    fn range(&self) -> Option<std::collections::btree_map::Range<'_, Vec<u8>, Vec<u8>>> {
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) =
            (&self.lower, &self.upper)
        {
            let both_excluded = matches!(self.lower, Bound::Excluded(_))
                && matches!(self.upper, Bound::Excluded(_));
            if l > u || (l == u && both_excluded) {
                return None;
            }
        }
        Some(
            self.map
                .range::<Vec<u8>, _>((self.lower.as_ref(), self.upper.as_ref())),
        )
    }
}

impl Cursor for MapCursor {
    fn next_front(&mut self) -> Option<Result<KvPair>> {
        let (k, v) = self.range()?.next()?;
        let item = (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
        self.lower = Bound::Excluded(k.clone());
        Some(Ok(item))
    }

    fn next_back(&mut self) -> Option<Result<KvPair>> {
        let (k, v) = self.range()?.next_back()?;
        let item = (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
        self.upper = Bound::Excluded(k.clone());
        Some(Ok(item))
    }
}
