//! Versions: the immutable set of live tables per level that readers pin.
//!
//! A [`Version`] is shared through an `Arc`; a reader (a get, a scan, a snapshot) holds it as long as it
//! reads, so the tables it names stay open and on disk. A table dropped by a compaction is marked obsolete
//! once the manifest edit dropping it is durable; its file is removed when the last version holding it is
//! gone (the [`TableHandle`]'s drop), never earlier.
//!
//! Level 0 holds flushed memtables, newest first, whose key ranges may overlap. Every level below holds
//! tables sorted by key with disjoint ranges.

use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use super::edit::{NUM_LEVELS, VersionEdit};
use super::key::{self, ValueKind};
use super::range_del::RangeTombstone;
use super::sstable::filter::key_hash;
use super::sstable::{ReadStats, Table, TableMeta, table_file_name};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// A live table: its manifest record and its open reader.
pub struct TableHandle {
    /// What the manifest records.
    pub meta: TableMeta,
    /// The open reader.
    pub table: Arc<Table>,
    obsolete: AtomicBool,
    storage: Storage,
}

impl std::fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHandle")
            .field("number", &self.meta.number)
            .finish()
    }
}

impl TableHandle {
    /// A handle for an open table.
    pub fn new(meta: TableMeta, table: Arc<Table>, storage: Storage) -> Arc<Self> {
        Arc::new(TableHandle {
            meta,
            table,
            obsolete: AtomicBool::new(false),
            storage,
        })
    }

    /// Marks the table for removal when the last version holding it is dropped.
    ///
    /// REQUIRES: the manifest edit that drops the table is durable.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, AtomicOrdering::Release);
    }

    /// The user keys the table spans.
    pub fn user_range(&self) -> (&[u8], &[u8]) {
        (
            key::user_key(&self.meta.smallest),
            key::user_key(&self.meta.largest),
        )
    }

    fn may_hold(&self, user_key: &[u8]) -> bool {
        let (lo, hi) = self.user_range();
        lo <= user_key && user_key <= hi
    }
}

impl Drop for TableHandle {
    fn drop(&mut self) {
        if self.obsolete.load(AtomicOrdering::Acquire) {
            // Only a compaction's inputs (and a rewritten level's old tables) become obsolete.
            crate::crash_point::hit("compact.inputs.before_delete");
            // Best effort: a file left behind is an orphan that the next open removes.
            let _ = self.storage.remove(&table_file_name(self.meta.number));
        }
    }
}

/// The live tables, per level.
#[derive(Debug, Default, Clone)]
pub struct Version {
    /// `levels[0]` newest first; deeper levels sorted by smallest key, disjoint.
    pub levels: [Vec<Arc<TableHandle>>; NUM_LEVELS],
    /// True if some table holds a range tombstone (so reads without one skip gathering them).
    range_tombstones: bool,
}

impl Version {
    /// The version after `edit`: deleted tables removed, added ones (opened by `open`) inserted in order.
    /// A table both deleted and added (a trivial move to another level) keeps its open handle.
    ///
    /// # Errors
    /// `Corruption` if the edit deletes a table the version lacks or adds one it has; errors of `open`.
    pub fn apply(
        &self,
        edit: &VersionEdit,
        mut open: impl FnMut(&TableMeta) -> Result<Arc<TableHandle>>,
    ) -> Result<Version> {
        let mut next = self.clone();
        let mut removed: Vec<Arc<TableHandle>> = Vec::new();
        for (level, number) in &edit.deleted {
            let files = next
                .levels
                .get_mut(*level)
                .ok_or_else(|| Error::corruption("MANIFEST", None, format!("level {level}")))?;
            let before = files.len();
            files.retain(|t| {
                let keep = t.meta.number != *number;
                if !keep {
                    removed.push(Arc::clone(t));
                }
                keep
            });
            if files.len() == before {
                return Err(Error::corruption(
                    "MANIFEST",
                    None,
                    format!("edit deletes table {number} which level {level} does not hold"),
                ));
            }
        }
        for (level, meta) in &edit.added {
            if next.all().any(|t| t.meta.number == meta.number) {
                return Err(Error::corruption(
                    "MANIFEST",
                    None,
                    format!("edit adds table {} twice", meta.number),
                ));
            }
            let handle = match removed.iter().find(|t| t.meta.number == meta.number) {
                Some(moved) => Arc::clone(moved),
                None => open(meta)?,
            };
            next.levels
                .get_mut(*level)
                .ok_or_else(|| Error::corruption("MANIFEST", None, format!("level {level}")))?
                .push(handle);
        }
        next.sort();
        Ok(next)
    }

    fn sort(&mut self) {
        let with_tombstones = self.all().any(|t| !t.table.range_tombstones().is_empty());
        self.range_tombstones = with_tombstones;
        let mut levels = self.levels.iter_mut();
        if let Some(l0) = levels.next() {
            l0.sort_by(|a, b| {
                b.meta
                    .max_seq
                    .cmp(&a.meta.max_seq)
                    .then(b.meta.number.cmp(&a.meta.number))
            });
        }
        for level in levels {
            level.sort_by(|a, b| key::compare(&a.meta.smallest, &b.meta.smallest));
        }
    }

    /// True if some table holds a range tombstone.
    pub fn has_range_tombstones(&self) -> bool {
        self.range_tombstones
    }

    /// The range tombstones of every table, level by level.
    pub fn range_tombstones(&self) -> impl Iterator<Item = &RangeTombstone> {
        self.all().flat_map(|t| t.table.range_tombstones())
    }

    /// Every table, level by level.
    pub fn all(&self) -> impl Iterator<Item = &Arc<TableHandle>> {
        self.levels.iter().flatten()
    }

    /// Checks the level invariants: levels ≥ 1 sorted and disjoint, every table's smallest ≤ largest.
    ///
    /// # Errors
    /// `Corruption` naming the first violation.
    pub fn check(&self) -> Result<()> {
        for (level, files) in self.levels.iter().enumerate() {
            for t in files {
                if key::compare(&t.meta.smallest, &t.meta.largest) == Ordering::Greater {
                    return Err(Error::corruption(
                        table_file_name(t.meta.number),
                        None,
                        "smallest key is above largest",
                    ));
                }
            }
            if level == 0 {
                continue;
            }
            for pair in files.windows(2) {
                if let [a, b] = pair
                    && a.user_range().1 >= b.user_range().0
                {
                    return Err(Error::corruption(
                        table_file_name(b.meta.number),
                        None,
                        format!("overlaps table {} on level {level}", a.meta.number),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The newest version of `user_key` with sequence ≤ `seq` in the tables (kind, value, sequence): L0
    /// newest first, then at most one table per deeper level. Range tombstones are the caller's
    /// ([`Version::range_tombstones`]).
    ///
    /// # Errors
    /// `Corruption` or `Io` from a table read.
    pub fn get(
        &self,
        user_key: &[u8],
        seq: u64,
        stats: &mut ReadStats,
    ) -> Result<Option<(ValueKind, Vec<u8>, u64)>> {
        let hash = key_hash(user_key);
        let mut levels = self.levels.iter();
        if let Some(l0) = levels.next() {
            for t in l0.iter().filter(|t| t.may_hold(user_key)) {
                if let Some(found) = t.table.get_hashed(user_key, hash, seq, stats)? {
                    return Ok(Some(found));
                }
            }
        }
        for files in levels {
            let at = files.partition_point(|t| t.user_range().1 < user_key);
            if let Some(t) = files.get(at).filter(|t| t.may_hold(user_key))
                && let Some(found) = t.table.get_hashed(user_key, hash, seq, stats)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}
