//! The LSM-tree engine (being built): internal keys, memtable, SSTables, manifest, compaction.

pub mod iter;
pub mod key;
pub mod memtable;
pub mod sstable;
