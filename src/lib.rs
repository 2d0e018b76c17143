//! rumdb: embedded key-value storage with two engines behind one API.
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![deny(unsafe_op_in_unsafe_fn, rustdoc::broken_intra_doc_links)]

pub mod batch;
pub mod engine;
pub mod error;
pub mod identity;
pub mod stats;
pub mod storage;
pub mod wal;

#[cfg(feature = "testing")]
pub mod testing;

pub use batch::{BatchOp, WriteBatch};
pub use engine::{
    Cursor, Durability, Engine, EngineExt, Iter, KvPair, Limits, Snapshot, SnapshotSource,
    WriteOptions,
};
pub use error::{EngineKind, Error, Result};
pub use stats::{MemoryUsage, ReadCounters, RecoveryReport, Stats, VerifyReport};
