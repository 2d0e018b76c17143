//! The key-value state machine on a rumdb engine, and its snapshots.
//!
//! A state machine directory holds `data/` (the rumdb database) and `snapshot` (the last snapshot, in the
//! [`snapshot`](crate::snapshot) format). Key layout of `data/`:
//!
//! | key | value |
//! |---|---|
//! | `d/` + user key | the user value |
//! | `m:applied` | the last applied log id, JSON |
//! | `m:membership` | the last applied membership, JSON |
//! | `m:installing` | present only while a snapshot is being installed: its metadata, JSON |

use std::io::{self, Cursor, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use rumdb::{Durability, Engine, EngineExt, WriteBatch, WriteOptions};

use crate::snapshot::{self, Meta};
use crate::{EngineChoice, NodeId, Request, Response, TypeConfig};

const DATA_PREFIX: &[u8] = b"d/";
const APPLIED: &[u8] = b"m:applied";
const MEMBERSHIP: &[u8] = b"m:membership";
const INSTALLING: &[u8] = b"m:installing";

/// A batch is written once it encodes to this many bytes: far below the engine's batch limit, so a long
/// apply or a large snapshot never meets it.
const BATCH_BYTES: usize = 8 << 20;

type SResult<T> = Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

fn snapshot_err(meta: Option<&Meta>, e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(meta.map(Meta::signature), &e).into()
}

fn data_key(key: &[u8]) -> Vec<u8> {
    let mut k = DATA_PREFIX.to_vec();
    k.extend_from_slice(key);
    k
}

fn json<T: serde::Serialize>(value: &T) -> SResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(write_err)
}

/// openraft's `RaftStateMachine` on a rumdb engine: applies [`Request`]s, keeps last-applied and the
/// membership in the same batch as the data they describe, and builds and installs snapshots. Clones
/// share the engine (the snapshot builder is a clone).
///
/// Applied batches are written with [`Durability::Flush`]: a killed process loses none of them, and
/// after power loss the log still holds whatever was lost, because a snapshot build syncs the engine
/// before openraft may purge the log below it. A restart therefore resumes at the durable last-applied
/// and replays only what came after it.
///
/// # Examples
///
/// ```
/// use openraft::storage::RaftStateMachine;
/// # let dir = tempfile::tempdir()?;
/// let mut sm = rumdb_raft::StateMachine::open(dir.path(), rumdb_raft::EngineChoice::Lsm)?;
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let (applied, _membership) = rt.block_on(sm.applied_state())?;
/// assert_eq!(applied, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<dyn Engine>,
    snapshot_path: PathBuf,
    /// Serializes writes of the snapshot file (a build runs on its own task, beside an install).
    snapshot_lock: Arc<Mutex<()>>,
}

impl StateMachine {
    /// Opens (creating if missing) the state machine in `dir`, finishing a snapshot install a crash
    /// interrupted.
    ///
    /// # Errors
    /// The engine's open errors; a damaged snapshot or marker.
    pub fn open(dir: &Path, engine: EngineChoice) -> SResult<Self> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(write_err)?;
        let db = engine.open(&data).map_err(write_err)?;
        let sm = StateMachine {
            db,
            snapshot_path: dir.join("snapshot"),
            snapshot_lock: Arc::new(Mutex::new(())),
        };
        if let Some(marker) = sm.read_json::<Meta>(INSTALLING)? {
            let bytes =
                std::fs::read(&sm.snapshot_path).map_err(|e| snapshot_err(Some(&marker), e))?;
            let (meta, records) =
                snapshot::decode(&bytes).map_err(|e| snapshot_err(Some(&marker), e))?;
            if meta != marker {
                let e = io::Error::other(format!(
                    "an install of snapshot {} was cut, but the snapshot file holds {}",
                    marker.snapshot_id, meta.snapshot_id
                ));
                return Err(snapshot_err(Some(&marker), e));
            }
            sm.install_records(&meta, &records)?;
        }
        Ok(sm)
    }

    /// The engine under the state machine (for statistics).
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.db
    }

    /// The value of `key` in the state machine as this node has applied it (not a linearizable read
    /// by itself: the node first asks openraft to confirm its leadership).
    ///
    /// # Errors
    /// The engine's read errors, or a value that is not UTF-8.
    pub fn get(&self, key: &str) -> SResult<Option<String>> {
        match self.db.get(data_key(key.as_bytes())).map_err(read_err)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.to_vec()).map(Some).map_err(read_err),
        }
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> SResult<Option<T>> {
        match self.db.get(key).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_err),
        }
    }

    fn write(&self, batch: &WriteBatch, durability: Durability) -> SResult<()> {
        self.db
            .write(batch, WriteOptions::new(durability))
            .map_err(write_err)
    }

    /// Writes `bytes` as the snapshot file: a temporary file, fsync, rename, fsync of the directory.
    /// A build that finishes after a newer snapshot was saved leaves the newer one.
    fn save_snapshot(&self, meta: &Meta, bytes: &[u8], only_if_newer: bool) -> SResult<()> {
        let _guard = self
            .snapshot_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if only_if_newer
            && let Some(current) = self.current_snapshot_meta()?
            && current.last_log_id > meta.last_log_id
        {
            return Ok(());
        }
        let tmp = self.snapshot_path.with_extension("tmp");
        let result = (|| -> io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.snapshot_path)?;
            if let Some(dir) = self.snapshot_path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        result.map_err(|e| snapshot_err(Some(meta), e))
    }

    fn read_snapshot_file(&self) -> SResult<Option<Vec<u8>>> {
        match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageIOError::read_snapshot(None, &e).into()),
        }
    }

    fn current_snapshot_meta(&self) -> SResult<Option<Meta>> {
        let Some(bytes) = self.read_snapshot_file()? else {
            return Ok(None);
        };
        let (meta, _) =
            snapshot::decode(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(meta))
    }

    /// Replaces the whole state with a snapshot's records. The marker written first (with `Sync`)
    /// makes a cut install visible to the next open, which runs it again from the snapshot file; the
    /// last batch sets last-applied and the membership and removes the marker.
    fn install_records(&self, meta: &Meta, records: &[(&[u8], &[u8])]) -> SResult<()> {
        let mut batch = WriteBatch::new();
        batch.put(INSTALLING, json(meta)?);
        self.write(&batch, Durability::Sync)?;
        batch.clear();

        // Keys present now but absent from the snapshot are deleted: both lists are in key order.
        let upper = rumdb::prefix_upper_bound(DATA_PREFIX).unwrap_or_default();
        let existing: Vec<_> = self
            .db
            .scan(Bound::Included(DATA_PREFIX), Bound::Excluded(&upper[..]))
            .map_err(read_err)?
            .keys()
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        let mut incoming = records.iter().map(|(k, _)| *k).peekable();
        for key in &existing {
            let user_key = key.get(DATA_PREFIX.len()..).unwrap_or_default();
            while incoming.next_if(|k| *k < user_key).is_some() {}
            if incoming.peek() != Some(&user_key) {
                batch.delete(key);
            }
            if batch.encoded_len() >= BATCH_BYTES {
                self.write(&batch, Durability::Flush)?;
                batch.clear();
            }
        }
        for (key, value) in records {
            batch.put(data_key(key), value);
            if batch.encoded_len() >= BATCH_BYTES {
                self.write(&batch, Durability::Flush)?;
                batch.clear();
            }
        }
        batch.put(APPLIED, json(&meta.last_log_id)?);
        batch.put(MEMBERSHIP, json(&meta.last_membership)?);
        batch.delete(INSTALLING);
        self.write(&batch, Durability::Sync)
    }

    fn scan_view(&self) -> rumdb::Result<(Meta, snapshot::Writer)> {
        let decode =
            |e: serde_json::Error| rumdb::Error::Io(io::Error::new(io::ErrorKind::InvalidData, e));
        let view = self.db.snapshot()?;
        let last_log_id: Option<LogId<NodeId>> = match view.get(APPLIED)? {
            Some(b) => serde_json::from_slice(&b).map_err(decode)?,
            None => None,
        };
        let last_membership: Membership = match view.get(MEMBERSHIP)? {
            Some(b) => serde_json::from_slice(&b).map_err(decode)?,
            None => Membership::default(),
        };
        // Everything the view holds becomes durable before openraft can purge the log below it.
        self.db.sync()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let snapshot_id = match &last_log_id {
            Some(id) => format!("{}-{}-{nanos}", id.leader_id, id.index),
            None => format!("--{nanos}"),
        };
        let meta = Meta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let mut writer = snapshot::Writer::new(&meta);
        for item in view.prefix(DATA_PREFIX)? {
            let (key, value) = item?;
            writer.record(key.get(DATA_PREFIX.len()..).unwrap_or_default(), &value);
        }
        Ok((meta, writer))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    /// Scans a consistent view of the state machine. A B-tree view whose scan outlives the prior
    /// values the engine keeps for it ([`rumdb::Error::SnapshotTooOld`], under heavy writes) is taken
    /// again, a few times, rather than failing the build (openraft stops a node on a storage error).
    async fn build_snapshot(&mut self) -> SResult<Snapshot<TypeConfig>> {
        let mut attempts = 0;
        let (meta, writer) = loop {
            attempts += 1;
            match self.scan_view() {
                Err(rumdb::Error::SnapshotTooOld) if attempts < 5 => continue,
                result => break result.map_err(read_err)?,
            }
        };
        let bytes = writer.finish();
        self.save_snapshot(&meta, &bytes, true)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> SResult<(Option<LogId<NodeId>>, Membership)> {
        let applied = self.read_json::<Option<LogId<NodeId>>>(APPLIED)?.flatten();
        let membership = self
            .read_json::<Membership>(MEMBERSHIP)?
            .unwrap_or_default();
        Ok((applied, membership))
    }

    /// One batch per call (split only past 8 MiB), each carrying the last-applied id and any
    /// membership change of the entries it holds.
    async fn apply<I>(&mut self, entries: I) -> SResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        let mut responses = Vec::new();
        let mut last = None;
        for entry in entries {
            let log_id = entry.log_id;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Request::Set { key, value }) => {
                    batch.put(data_key(key.as_bytes()), value);
                }
                EntryPayload::Normal(Request::Delete { key }) => {
                    batch.delete(data_key(key.as_bytes()));
                }
                EntryPayload::Membership(m) => {
                    batch.put(MEMBERSHIP, json(&Membership::new(Some(log_id), m))?);
                }
            }
            responses.push(Response {
                index: log_id.index,
            });
            last = Some(log_id);
            if batch.encoded_len() >= BATCH_BYTES {
                batch.put(APPLIED, json(&last)?);
                self.write(&batch, Durability::Flush)?;
                batch.clear();
                last = None;
            }
        }
        if last.is_some() {
            batch.put(APPLIED, json(&last)?);
            self.write(&batch, Durability::Flush)?;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> SResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> SResult<()> {
        let bytes = snapshot.into_inner();
        let (inner, records) = snapshot::decode(&bytes).map_err(|e| snapshot_err(Some(meta), e))?;
        if inner != *meta {
            let e = io::Error::other(format!(
                "snapshot {} carries the metadata of {} (log id {:?}, expected {:?})",
                meta.snapshot_id, inner.snapshot_id, inner.last_log_id, meta.last_log_id
            ));
            return Err(snapshot_err(Some(meta), e));
        }
        // The file first: a crash during the install finds it and the marker at the next open.
        self.save_snapshot(&inner, &bytes, false)?;
        self.install_records(&inner, &records)
    }

    async fn get_current_snapshot(&mut self) -> SResult<Option<Snapshot<TypeConfig>>> {
        let Some(bytes) = self.read_snapshot_file()? else {
            return Ok(None);
        };
        let (meta, _) =
            snapshot::decode(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
