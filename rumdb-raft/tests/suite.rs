//! openraft's own storage conformance suite (`openraft::testing::Suite`, openraft 0.9.25) against the
//! log store and state machine on each rumdb engine, plus restart checks the suite does not make.

// openraft fixes the error type the suite returns.
#![allow(clippy::result_large_err)]

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite, log_id};
use openraft::{Entry, EntryPayload, RaftSnapshotBuilder, StorageError};
use rumdb_raft::{EngineChoice, LogStore, NodeId, Request, StateMachine, TypeConfig};
use tempfile::TempDir;

struct Builder(EngineChoice);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(&e))?;
        let log = LogStore::open(&dir.path().join("log"), self.0)?;
        let sm = StateMachine::open(&dir.path().join("sm"), self.0)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_suite_on_the_lsm() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(Builder(EngineChoice::Lsm))
}

#[test]
fn openraft_suite_on_the_btree() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(Builder(EngineChoice::BTree))
}

fn set(term: u64, index: u64, key: &str, value: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(Request::Set {
            key: key.into(),
            value: value.into(),
        }),
    }
}

/// What the suite cannot check: that a store reopened from its directory holds what it held, and that a
/// snapshot installed into a fresh state machine replaces its data wholesale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopened_stores_resume_and_snapshots_replace_state() -> Result<(), StorageError<NodeId>> {
    for engine in [EngineChoice::Lsm, EngineChoice::BTree] {
        let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(&e))?;
        let (log_dir, sm_dir) = (dir.path().join("log"), dir.path().join("sm"));
        let entries: Vec<_> = (1..=50)
            .map(|i| set(1, i, &format!("k{i:03}"), &format!("v{i}")))
            .collect();
        {
            let mut sm = StateMachine::open(&sm_dir, engine)?;
            let responses = sm.apply(entries.clone()).await?;
            assert_eq!(responses.last().map(|r| r.index), Some(50));
            let mut log = LogStore::open(&log_dir, engine)?;
            let mut vote = openraft::Vote::new(3, 1);
            vote.commit();
            log.save_vote(&vote).await?;
            log.save_committed(Some(log_id(1, 1, 50))).await?;
            // Appended through the storage-test helper, which waits for the flush callback.
            openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries.clone())
                .await?;
            log.purge(log_id(1, 1, 20)).await?;
            log.truncate(log_id(1, 1, 41)).await?;
        }
        let mut log = LogStore::open(&log_dir, engine)?;
        let state = log.get_log_state().await?;
        assert_eq!(
            state.last_purged_log_id,
            Some(log_id(1, 1, 20)),
            "{engine:?}"
        );
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 40)), "{engine:?}");
        assert_eq!(log.read_committed().await?, Some(log_id(1, 1, 50)));
        assert_eq!(log.read_vote().await?.map(|v| v.leader_id().term), Some(3));
        let read = log.try_get_log_entries(21..41).await?;
        assert_eq!(read.len(), 20);
        assert_eq!(read.first().map(|e| e.log_id.index), Some(21));

        let mut sm = StateMachine::open(&sm_dir, engine)?;
        assert_eq!(
            sm.applied_state().await?.0,
            Some(log_id(1, 1, 50)),
            "{engine:?}"
        );
        assert_eq!(sm.get("k050")?.as_deref(), Some("v50"));

        // A snapshot of this state machine, installed into another that holds keys the snapshot lacks.
        let snapshot = sm.get_snapshot_builder().await.build_snapshot().await?;
        let other_dir = dir.path().join("other");
        let mut other = StateMachine::open(&other_dir, engine)?;
        other
            .apply([set(1, 1, "stale", "x"), set(1, 2, "k001", "old")])
            .await?;
        other
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await?;
        drop(other);
        let mut other = StateMachine::open(&other_dir, engine)?;
        assert_eq!(other.get("stale")?, None, "{engine:?}");
        assert_eq!(other.get("k001")?.as_deref(), Some("v1"));
        assert_eq!(other.applied_state().await?.0, Some(log_id(1, 1, 50)));
        let current = other.get_current_snapshot().await?.map(|s| s.meta);
        assert_eq!(current, Some(snapshot.meta));
    }
    Ok(())
}
