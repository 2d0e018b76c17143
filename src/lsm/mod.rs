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
//! # Compaction and backpressure
//!
//! Leveled compaction over [`edit::NUM_LEVELS`] levels: L0 → L1 when L0 holds `l0_compaction_trigger`
//! tables, Ln → Ln+1 when level n passes its target size (`base_level_bytes × level_size_ratio^(n−1)`),
//! one table at a time picked round-robin over the key space, with trivial moves for tables that overlap
//! nothing below; see [`compaction`] for the policy and what a compaction keeps. In Threads mode, writers
//! are delayed a little per write past `l0_slowdown_trigger` L0 tables (or
//! `pending_compaction_slowdown_bytes`) and wait for the worker at `l0_stop_trigger` (or
//! `pending_compaction_stop_bytes`) or when the sealed-memtable list is full; they sleep holding no lock,
//! and each delay counts in `Stats::stalls` / `stall_micros`. In Manual mode compaction runs inline
//! instead. Per-level options: compression and bloom bits per key ([`LsmOptions::table_options_for`]).
//!
//! **Settling.** Below its trigger L0 may hold several tables that each span the whole key space: every
//! point read probes each one's filter, and each holds versions newer data replaced. Once writes pause
//! for [`LsmOptions::settle_after`] (1 s), or when a caller waits in `wait_idle`, the worker merges L0
//! into L1, so a settled tree has one sorted run per level.
//!
//! # Range deletes
//!
//! A [`WriteBatch::delete_range`](crate::WriteBatch::delete_range) becomes one range tombstone, whatever
//! the number of keys it covers: kept beside the memtable's entries, flushed into the table's
//! range-deletion block (table format 2), clipped to each output table's share of the key space by
//! compaction, and dropped with the entries it hides once every snapshot sees it and nothing below the
//! output holds its keys; see [`range_del`]. Gets and scans gather the tombstones of every source they
//! read and hide each version a newer one covers; a scan seeks a table past a covered region in one step
//! when the whole table is older than the tombstone. Not done: a table entirely covered by a newer
//! tombstone is still read and rewritten by the compaction that drops its entries, rather than deleted
//! from the manifest unread.
//!
//! # Layers
//!
//! [`key`] (internal keys and their order), [`memtable`], [`range_del`] (range tombstones), [`sstable`]
//! (the table format, reader and block cache), [`iter`] (merging cursors), [`edit`] / [`version`] / [`manifest`] (which tables are live),
//! [`compaction`] (flushes and compactions), [`db`] (the engine: write and read paths), [`open`] (creation
//! and recovery), [`options`].

pub mod backup;
pub mod compaction;
pub mod db;
pub mod edit;
pub mod iter;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod open;
pub mod options;
pub mod range_del;
pub mod sstable;
pub mod version;

pub use compaction::LevelStats;
pub use db::LsmEngine;
#[cfg(feature = "testing")]
pub use open::LSM_FORMAT_VERSION;
pub use options::LsmOptions;
pub use sstable::{Compression, ReadPath, TableOptions};
