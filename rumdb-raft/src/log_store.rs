//! The Raft log on a rumdb engine.
//!
//! Key layout (one database per node, its own directory):
//!
//! | key | value |
//! |---|---|
//! | `l` + index as 8 big-endian bytes | the entry, JSON |
//! | `m:vote` | the vote, JSON |
//! | `m:committed` | the last committed log id, JSON |
//! | `m:purged` | the last purged log id, JSON |
//!
//! Big-endian indexes sort in numeric order, so a log read is one range scan and the last entry is the
//! last key under `l`.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, mpsc};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogId, StorageError, StorageIOError, Vote};
use rumdb::{Durability, Engine, EngineExt, WriteBatch, WriteOptions};

use crate::{EngineChoice, NodeId, TypeConfig};

const ENTRY_PREFIX: u8 = b'l';
const VOTE: &[u8] = b"m:vote";
const COMMITTED: &[u8] = b"m:committed";
const PURGED: &[u8] = b"m:purged";

fn entry_key(index: u64) -> [u8; 9] {
    let mut key = [ENTRY_PREFIX; 9];
    if let Some(tail) = key.get_mut(1..) {
        tail.copy_from_slice(&index.to_be_bytes());
    }
    key
}

fn index_of(key: &[u8]) -> Option<u64> {
    match key {
        [ENTRY_PREFIX, rest @ ..] => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

type SResult<T> = Result<T, StorageError<NodeId>>;

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

/// openraft's `RaftLogStorage` on a rumdb engine: the log, the vote and the committed and purged
/// markers in one database. Clones share the engine (the log reader is a clone).
///
/// An [`append`](RaftLogStorage::append) is one [`WriteBatch`]; its callback fires only once the batch
/// is fsync'd, so an entry openraft counts as flushed survives power loss. How (see [`AppendMode`]): by
/// default the batch is written with [`Durability::Flush`] in openraft's order and a sync thread runs
/// [`Engine::sync`] once for every append waiting, so the fsync never blocks a thread of the async
/// runtime. (openraft 0.9's core waits for each append's callback before it issues the next, so in
/// practice one append, of one client write, is waiting: an fsync per entry either way.) The vote is
/// written with `Sync`.
///
/// # Examples
///
/// ```
/// use openraft::storage::RaftLogStorage;
/// # let dir = tempfile::tempdir()?;
/// let mut log = rumdb_raft::LogStore::open(dir.path(), rumdb_raft::EngineChoice::Lsm)?;
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let state = rt.block_on(log.get_log_state())?;
/// assert_eq!(state.last_log_id, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LogStore {
    db: Arc<dyn Engine>,
    flusher: Option<Arc<Flusher>>,
}

/// How an append is made durable before its callback fires (the crate's README compares the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AppendMode {
    /// Written with [`Durability::Flush`], then synced by the store's sync thread together with every
    /// other append waiting: the default. It keeps the fsync off the async runtime's threads; neither
    /// mode was consistently faster in the measurements (the crate's README).
    #[default]
    GroupSync,
    /// Written with [`Durability::Sync`] inside `append`: one fsync per append (openraft's RaftCore waits
    /// for it).
    InlineSync,
}

/// The sync thread: takes the callbacks of appends written with `Flush`, syncs the engine once for all
/// those waiting, and fires them in order. Dropped with the last clone of the store, it stops the thread
/// and waits for it, so the engine closes before the drop returns.
struct Flusher {
    tx: Option<mpsc::Sender<LogFlushed<TypeConfig>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn spawn(db: Arc<dyn Engine>) -> io::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<LogFlushed<TypeConfig>>();
        let thread = std::thread::Builder::new()
            .name("rumdb-raft-log-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let result = db.sync();
                    for callback in waiting {
                        let result = result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| io::Error::other(e.to_string()));
                        callback.log_io_completed(result);
                    }
                }
            })?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl LogStore {
    /// Opens (creating if missing) the log in `dir` with [`AppendMode::GroupSync`], finishing a purge a
    /// crash interrupted.
    ///
    /// # Errors
    /// The engine's open errors; a damaged marker or entry is a corruption error.
    pub fn open(dir: &Path, engine: EngineChoice) -> Result<Self, StorageError<NodeId>> {
        Self::open_with(dir, engine, AppendMode::default())
    }

    /// [`LogStore::open`] with the [`AppendMode`] chosen.
    ///
    /// # Errors
    /// As [`LogStore::open`]; a sync thread that cannot be started.
    pub fn open_with(
        dir: &Path,
        engine: EngineChoice,
        mode: AppendMode,
    ) -> Result<Self, StorageError<NodeId>> {
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let db = engine.open(dir).map_err(write_err)?;
        let flusher = match mode {
            AppendMode::GroupSync => Some(Arc::new(Flusher::spawn(db.clone()).map_err(write_err)?)),
            AppendMode::InlineSync => None,
        };
        Ok(LogStore { db, flusher })
    }

    /// The engine under the log (for statistics).
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.db
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> SResult<Option<T>> {
        match self.db.get(key).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_err),
        }
    }

    fn write_json<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        durability: Durability,
    ) -> rumdb::Result<()> {
        let value = serde_json::to_vec(value).map_err(|e| rumdb::Error::Io(io::Error::other(e)))?;
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.db.write(&batch, WriteOptions::new(durability))
    }

    /// Deletes the entries from index `start` up to `end` (exclusive; `None`: to the end of the log) with
    /// one range delete, in the same batch as `first` (which may carry other writes, such as the purge
    /// marker): a purge or truncation is atomic, and costs one write however many entries it removes.
    fn delete_entries(
        &self,
        mut first: WriteBatch,
        start: u64,
        end: Option<u64>,
        durability: Durability,
    ) -> SResult<()> {
        let lower = entry_key(start);
        let upper = match end {
            Some(end) => entry_key(end).to_vec(),
            None => vec![ENTRY_PREFIX + 1],
        };
        first.delete_range(lower, upper);
        self.db
            .write(&first, WriteOptions::new(durability))
            .map_err(write_err)
    }

    fn last_entry_id(&self) -> SResult<Option<LogId<NodeId>>> {
        let lower = entry_key(0);
        let upper = [ENTRY_PREFIX + 1];
        let last = self
            .db
            .scan(Bound::Included(&lower[..]), Bound::Excluded(&upper[..]))
            .map_err(read_err)?
            .next_back();
        match last {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item.map_err(read_err)?;
                let entry: Entry<TypeConfig> = serde_json::from_slice(&value).map_err(read_err)?;
                Ok(Some(*entry.get_log_id()))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&i) => i.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        let lower = entry_key(start);
        let upper_key;
        let upper = match range.end_bound() {
            Bound::Included(&i) => {
                upper_key = entry_key(i);
                Bound::Included(&upper_key[..])
            }
            Bound::Excluded(&i) => {
                upper_key = entry_key(i);
                Bound::Excluded(&upper_key[..])
            }
            Bound::Unbounded => Bound::Excluded(&[ENTRY_PREFIX + 1][..]),
        };
        let mut entries = Vec::new();
        for item in self
            .db
            .scan(Bound::Included(&lower[..]), upper)
            .map_err(read_err)?
        {
            let (key, value) = item.map_err(read_err)?;
            let entry: Entry<TypeConfig> = serde_json::from_slice(&value).map_err(read_err)?;
            if index_of(&key) != Some(entry.log_id.index) {
                return Err(read_err(io::Error::other(format!(
                    "log entry under index {:?} holds index {}",
                    index_of(&key),
                    entry.log_id.index
                ))));
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let last_purged_log_id = self.read_json::<LogId<NodeId>>(PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> SResult<()> {
        self.write_json(VOTE, vote, Durability::Sync)
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote<NodeId>>> {
        self.read_json(VOTE)
    }

    // Losing the committed marker only makes a restart re-apply less on its own (openraft learns the
    // commit index from the leader again), so it is written with `Flush`.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> SResult<()> {
        self.write_json(COMMITTED, &committed, Durability::Flush)
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId<NodeId>>> {
        Ok(self
            .read_json::<Option<LogId<NodeId>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        for entry in entries {
            let value = serde_json::to_vec(&entry).map_err(write_err)?;
            batch.put(entry_key(entry.log_id.index), value);
        }
        let tx = self.flusher.as_ref().and_then(|f| f.tx.as_ref());
        let durability = if tx.is_some() {
            Durability::Flush
        } else {
            Durability::Sync
        };
        match self.db.write(&batch, WriteOptions::new(durability)) {
            Ok(()) => {
                match tx {
                    // The sync thread exits only when the last store handle drops, which this one is not.
                    Some(tx) => {
                        if let Err(mpsc::SendError(callback)) = tx.send(callback) {
                            let e = io::Error::other("the log's sync thread has stopped");
                            callback.log_io_completed(Err(e));
                        }
                    }
                    None => callback.log_io_completed(Ok(())),
                }
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    // Written with `Sync`: the entries a truncation removes were never committed, but a follower must
    // not see them come back after a crash once it has told the leader they are gone.
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> SResult<()> {
        self.delete_entries(WriteBatch::new(), log_id.index, None, Durability::Sync)
    }

    // The marker and the range delete go in one batch: after a crash the state is either the old marker
    // with every entry or the new marker without the purged ones. `Flush` suffices: a lost purge only
    // brings back entries that are still valid.
    async fn purge(&mut self, log_id: LogId<NodeId>) -> SResult<()> {
        let mut first = WriteBatch::new();
        first.put(PURGED, serde_json::to_vec(&log_id).map_err(write_err)?);
        let end = log_id.index.checked_add(1);
        self.delete_entries(first, 0, end, Durability::Flush)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_index() {
        let indexes = [0u64, 1, 255, 256, 65_535, 1 << 40, u64::MAX - 1];
        for pair in indexes.windows(2) {
            if let [a, b] = pair {
                assert!(entry_key(*a) < entry_key(*b), "{a} {b}");
            }
        }
        assert_eq!(index_of(&entry_key(1 << 40)), Some(1 << 40));
        assert_eq!(index_of(b"m:vote"), None);
        assert_eq!(index_of(b"l\x00"), None);
    }
}
