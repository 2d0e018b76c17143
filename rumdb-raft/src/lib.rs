//! rumdb as the storage of an [openraft](https://docs.rs/openraft/0.9.25) cluster.
//!
//! - [`LogStore`]: openraft's `RaftLogStorage` on a rumdb engine (the Raft log, the vote, the committed
//!   and purged markers). An append is written with [`rumdb::Durability::Sync`] before its callback
//!   fires; concurrent `Sync` writers share the engine's group commit.
//! - [`StateMachine`]: openraft's `RaftStateMachine` on a second rumdb directory: key-value commands,
//!   with last-applied and the membership written in the same batch as the data they describe, and
//!   snapshots in a versioned, checksummed byte format of this crate's own ([`snapshot`]).
//! - [`node`], [`network`] and [`client`]: a replicated key-value node over length-prefixed JSON frames
//!   on plain tokio TCP, the `rumdb-raft-kv` binary built on them, and a client.
//!
//! The crate's README gives the key layouts, the snapshot format and the measured figures.
//!
//! # Examples
//!
//! ```
//! use rumdb_raft::{EngineChoice, LogStore, StateMachine};
//! # let dir = tempfile::tempdir()?;
//! let log = LogStore::open(&dir.path().join("log"), EngineChoice::Lsm)?;
//! let sm = StateMachine::open(dir.path(), EngineChoice::BTree)?;
//! assert_eq!(sm.get("absent")?, None);
//! # drop((log, sm));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
// openraft's traits fix the error types (`StorageError` is 224 bytes, `RPCError` 256): boxing them in
// the helpers would only move the allocation to every conversion into the trait's type.
#![allow(clippy::result_large_err)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod client;
mod log_store;
pub mod network;
pub mod node;
pub mod snapshot;
mod state_machine;
mod types;

use std::path::Path;
use std::sync::Arc;

pub use log_store::{AppendMode, LogStore};
pub use state_machine::StateMachine;
pub use types::{NodeId, Request, Response, TypeConfig};

/// Which rumdb engine holds a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineChoice {
    /// The LSM-tree ([`rumdb::LsmEngine`]): the default.
    Lsm,
    /// The page-based B-tree ([`rumdb::BTreeEngine`]).
    BTree,
}

impl EngineChoice {
    /// Opens (creating if missing) a database of this engine in `dir`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::EngineExt;
    /// # let dir = tempfile::tempdir()?;
    /// let db = rumdb_raft::EngineChoice::BTree.open(dir.path())?;
    /// db.put("k", "v")?;
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// Whatever the engine's `open` returns: a locked, foreign or damaged directory, I/O errors.
    pub fn open(self, dir: &Path) -> rumdb::Result<Arc<dyn rumdb::Engine>> {
        Ok(match self {
            EngineChoice::Lsm => {
                Arc::new(rumdb::LsmEngine::open(dir, rumdb::LsmOptions::default())?)
            }
            EngineChoice::BTree => Arc::new(rumdb::BTreeEngine::open(
                dir,
                rumdb::BTreeOptions::default(),
            )?),
        })
    }

    /// Parses `lsm` or `btree`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(rumdb_raft::EngineChoice::parse("btree"), Some(rumdb_raft::EngineChoice::BTree));
    /// assert_eq!(rumdb_raft::EngineChoice::parse("hash"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "lsm" => Some(EngineChoice::Lsm),
            "btree" => Some(EngineChoice::BTree),
            _ => None,
        }
    }
}
