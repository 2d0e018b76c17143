//! The LSM-tree engine (being built): internal keys, memtable, SSTables, manifest, compaction.

pub mod key;
pub mod sstable;
