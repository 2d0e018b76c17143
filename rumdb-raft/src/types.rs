//! The Raft type configuration and the key-value commands.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of the key-value cluster: [`Request`] in the log, [`Response`]
    /// out of the state machine, `u64` node ids, `BasicNode` addresses, snapshots as bytes in memory.
    pub TypeConfig:
        D = Request,
        R = Response,
);

/// A command in the Raft log.
///
/// # Examples
///
/// ```
/// let set = rumdb_raft::Request::Set { key: "k".into(), value: "v".into() };
/// assert_eq!(serde_json::to_string(&set)?, r#"{"Set":{"key":"k","value":"v"}}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// What applying a [`Request`] returns: the index of the log entry that carried it.
///
/// # Examples
///
/// ```
/// let r = rumdb_raft::Response { index: 7 };
/// assert_eq!(r.index, 7);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The log index at which the command was applied.
    pub index: u64,
}
