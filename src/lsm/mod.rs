//! The LSM-tree engine: write-ahead log, memtable, SSTables with bloom filters and zstd blocks, a
//! manifest of versions, flushes and compaction.
//!
//! # Files
//!
//! | file | what | format |
//! |---|---|---|
//! | `IDENTITY` | engine kind and format version | [`crate::identity`] |
//! | `LOCK` | held while a handle is open | empty |
//! | `NNNNNN.log` | WAL segment: the batches of one memtable | [`crate::wal`] |
//! | `NNNNNN.sst` | a table | [`sstable`] |
//! | `MANIFEST-NNNNNN` | log of version edits | [`manifest`], [`edit`] |
//! | `CURRENT` | the live manifest's name | [`manifest`] |
//!
//! File numbers (segments, tables, manifests) come from one counter persisted in the manifest.
//!
//! # Layers
//!
//! [`key`] (internal keys and their order), [`memtable`], [`sstable`] (the table format, reader and block
//! cache), [`iter`] (merging cursors), [`edit`] / [`version`] / [`manifest`] (which tables are live),
//! [`compaction`] (flushes and compactions), [`db`] (the engine: write and read paths), [`open`] (creation
//! and recovery), [`options`].

pub mod compaction;
pub mod db;
pub mod edit;
pub mod iter;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod open;
pub mod options;
pub mod sstable;
pub mod version;

pub use db::LsmEngine;
pub use open::LSM_FORMAT_VERSION;
pub use options::{Background, LsmOptions};
pub use sstable::{Compression, ReadPath, TableOptions};
