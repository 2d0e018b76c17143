#![doc = include_str!("../README.md")]
//!
//! # The contract
//!
//! What every engine promises, and what the crash tests check:
//!
//! 1. **Durability.** Once a write with [`Durability::Sync`] (or [`Engine::sync`]) returns `Ok`, it survives
//!    any later process crash or power loss, unless the synced bytes themselves are damaged, which is
//!    reported (4).
//! 2. **Prefix, no holes.** After recovery the state is the history of batches up to some batch boundary
//!    `k`, with every `Sync`-acknowledged batch included (after a killed process, every `Flush`-acknowledged
//!    one too). A batch is never partially applied, and a later batch is never present while an earlier one
//!    is missing.
//! 3. **Robustness.** Opening a directory with any bytes in any file returns `Ok` or `Err`: never a panic,
//!    an abort, an endless loop or an allocation beyond a bound derived from the file size.
//! 4. **Corruption is an error.** Damage inside synced, referenced data is [`Error::Corruption`] naming the
//!    file and offset, at open or when read — never dropped silently, never returned as data. That
//!    includes a WAL segment holding synced batches that is missing, emptied or cut: the segments form a
//!    chain (each sealed segment names its successor and records its length, and the engine's metadata
//!    names the first live one). The one tolerated exception is a torn, zeroed or garbage tail of the
//!    live (last) WAL segment past the last record a later valid record proves synced, which is truncated
//!    and counted in the [`RecoveryReport`]. Its limit: the live segment cut exactly at a record boundary
//!    after a crash, or damage to its last synced record, cannot be told from such a tail — the only
//!    record of how far the live segment was synced is inside that segment (recording it elsewhere would
//!    cost a second fsync per commit), so those batches are dropped and counted, not refused.
//! 5. **Fail-stop.** A failed write or fsync poisons the handle: later writes get [`Error::Poisoned`] until
//!    reopen; fsync is never retried.
//! 6. **Exclusive open.** A second open of a directory, from this process or another, is [`Error::Locked`].
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![deny(unsafe_op_in_unsafe_fn, rustdoc::broken_intra_doc_links)]
#![deny(unsafe_code)]

// Every module is private: the public API is what this file re-exports (and, with feature `testing`,
// the test harness in `rumdb::testing`).
mod backup;
mod batch;
mod btree;
mod crash_point;
mod engine;
mod error;
mod identity;
pub mod inspect;
mod lsm;
mod pipeline;
mod stats;
mod storage;
mod wal;

#[cfg(feature = "testing")]
pub mod testing;

pub use backup::BackupInfo;
pub use batch::{BatchIter, BatchOp, WriteBatch};
pub use btree::{BTreeEngine, BTreeOptions};
/// The shared, cheaply cloned byte string that reads return (re-exported from the `bytes` crate, so
/// callers need not depend on it). It derefs to `&[u8]` and compares with `&[u8]`, `Vec<u8>` and `&str`.
///
/// # Examples
///
/// ```
/// use rumdb::Bytes;
/// let b = Bytes::from(b"value".to_vec()); // takes the vector without copying it
/// assert_eq!(b, "value");
/// assert_eq!(&b[..2], b"va");
/// ```
pub use bytes::Bytes;
pub use engine::{
    Background, Cursor, Durability, Engine, EngineExt, Iter, KeyRange, Keys, KvPair, Limits,
    Snapshot, SnapshotSource, WriteOptions, prefix_upper_bound,
};
pub use error::{EngineKind, Error, Result};
pub use identity::CreateOptions;
pub use lsm::{Compression, LevelStats, LsmEngine, LsmOptions, ReadPath, TableOptions};
pub use stats::{
    MemoryUsage, ReadCounters, RecoveryReport, Stats, VerifyReport, space_amplification,
};
pub use storage::{IoStats, ReadBytes, WrittenBytes};
pub use wal::RecoveryMode;

/// The names of the crash points, for the release probe (`tests/release-probe`), which builds without
/// feature `testing` and checks that none of them can stop a user's program. Not part of the API: tests
/// use `rumdb::testing::CRASH_POINTS`.
#[doc(hidden)]
pub use crash_point::CRASH_POINTS;
