//! Flushes (sealed memtable → L0 table) and the minimal compaction of part 1 (all of L0 plus the L1
//! tables they overlap → new L1 tables). Both run on the worker, or inline in Manual mode, one at a time
//! (the job lock), and change the version only through a synced manifest edit.
//!
//! Order of a flush, each step durable before the next: build the table and fsync it, fsync the directory
//! (its entry), append the manifest edit adding it with the new log number and fsync, install the version,
//! drop the sealed memtable, and only then delete the WAL segments below the log number. A crash at any
//! point leaves either the WAL segment (replayed at open) or the table (referenced by the manifest); a
//! table the manifest never got is an orphan that the next open removes.
//!
//! Compaction keeps, for each user key, the newest version plus every older version some live snapshot
//! can still see, and drops a tombstone (with everything older) only when no deeper level holds the key
//! and every snapshot sees it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::db::Shared;
use super::edit::{NUM_LEVELS, VersionEdit};
use super::iter::{InternalIter, pick};
use super::key::{self, MAX_SEQUENCE, ValueKind};
use super::manifest::VersionSet;
use super::memtable::Memtable;
use super::options::Background;
use super::options::LsmOptions;
use super::sstable::{Compression, TableBuilder, TableMeta, TableOptions, table_file_name};
use super::version::TableHandle;
use crate::error::{Error, Result};
use crate::storage::{ReadPurpose, Storage, WritePurpose};
use crate::wal;

impl Shared {
    /// Flushes every sealed memtable, oldest first; in Manual mode then compacts if L0 is over its
    /// trigger.
    pub(super) fn flush_sealed(&self) -> Result<()> {
        {
            let _job = self.job.lock();
            loop {
                let (oldest, next_segment) = {
                    let mems = self.mems.read();
                    let Some(oldest) = mems.sealed.first() else {
                        break;
                    };
                    let next = mems.sealed.get(1).unwrap_or(&mems.active).segment();
                    (Arc::clone(oldest), next)
                };
                self.flush_one(&oldest, next_segment)
                    .map_err(|e| self.poison(e))?;
                {
                    let mut mems = self.mems.write();
                    Arc::make_mut(&mut mems)
                        .sealed
                        .retain(|m| !Arc::ptr_eq(m, &oldest));
                }
                self.flushes.fetch_add(1, Ordering::Relaxed);
                crate::crash_point::hit("flush.old_wal.before_delete");
                self.remove_segments_below(next_segment);
            }
        }
        if self.options.background == Background::Manual {
            self.maybe_compact()?;
        }
        Ok(())
    }

    fn flush_one(&self, mem: &Memtable, next_segment: u64) -> Result<()> {
        let mut edit = VersionEdit {
            log_number: Some(next_segment),
            ..VersionEdit::default()
        };
        let entries = mem.entries();
        if !entries.is_empty() {
            let meta = write_tables(
                self,
                0,
                entries.into_iter().map(Ok),
                WritePurpose::MemtableFlush,
            )?;
            if let Some(max) = meta.iter().map(|m| m.max_seq).max() {
                edit.last_sequence = Some(max);
            }
            edit.added = meta.into_iter().map(|m| (0, m)).collect();
            crate::crash_point::hit("flush.sst.synced");
        }
        self.versions.log_and_apply(edit)?;
        crate::crash_point::hit("flush.manifest.synced");
        Ok(())
    }

    /// Removes WAL segments below `log_number`: everything in them is in a synced table that a synced
    /// manifest edit records. Best effort: one left behind is removed at the next open.
    pub(super) fn remove_segments_below(&self, log_number: u64) {
        if let Ok(segments) = wal::list_segments(&self.storage) {
            for s in segments.into_iter().filter(|s| *s < log_number) {
                let _ = self.storage.remove(&wal::segment_name(s));
            }
        }
    }

    /// Compacts L0 into L1 if L0 has reached its trigger.
    pub(super) fn maybe_compact(&self) -> Result<()> {
        if self.needs_compaction() {
            self.compact(false)?;
        }
        Ok(())
    }

    /// Compacts everything in L0 and L1 into L1.
    pub(super) fn compact_all(&self) -> Result<()> {
        self.compact(true)
    }

    fn compact(&self, everything: bool) -> Result<()> {
        let _job = self.job.lock();
        let version = self.versions.current();
        let [l0, l1, deeper @ ..] = &version.levels;
        if l0.is_empty() && (!everything || l1.len() <= 1) {
            return Ok(());
        }
        let range = l0
            .iter()
            .chain(if everything { l1.iter() } else { [].iter() })
            .fold(None::<(Vec<u8>, Vec<u8>)>, |acc, t| {
                let (lo, hi) = t.user_range();
                Some(match acc {
                    None => (lo.to_vec(), hi.to_vec()),
                    Some((a, b)) => (a.min(lo.to_vec()), b.max(hi.to_vec())),
                })
            });
        let inputs1: Vec<&Arc<TableHandle>> = l1
            .iter()
            .filter(|t| {
                everything
                    || range.as_ref().is_some_and(|(lo, hi)| {
                        let (a, b) = t.user_range();
                        a <= hi.as_slice() && b >= lo.as_slice()
                    })
            })
            .collect();
        let bottom = deeper.iter().all(Vec::is_empty);
        let oldest_snapshot = self.oldest_snapshot();
        let mut sources: Vec<Box<dyn InternalIter>> = Vec::new();
        for t in l0.iter().chain(inputs1.iter().copied()) {
            let mut it = t.table.iter(ReadPurpose::Compaction);
            it.seek_to_first()?;
            sources.push(Box::new(it));
        }
        let entries = CompactionIter {
            sources,
            current_user: None,
            last_seq_for_key: u64::MAX,
            oldest_snapshot,
            bottom,
        };
        let outputs =
            write_tables(self, 1, entries, WritePurpose::Compaction).map_err(|e| self.poison(e))?;
        crate::crash_point::hit("compact.outputs.synced");
        let edit = VersionEdit {
            deleted: l0
                .iter()
                .map(|t| (0, t.meta.number))
                .chain(inputs1.iter().map(|t| (1, t.meta.number)))
                .collect(),
            added: outputs.into_iter().map(|m| (1, m)).collect(),
            ..VersionEdit::default()
        };
        self.versions
            .log_and_apply(edit)
            .map_err(|e| self.poison(e))?;
        crate::crash_point::hit("compact.manifest.synced");
        self.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Where tables are written: the storage, the file numbers and the table options.
pub(super) trait TableSink {
    /// The storage.
    fn storage(&self) -> &Storage;
    /// The version set (for file numbers).
    fn versions(&self) -> &VersionSet;
    /// The engine options.
    fn options(&self) -> &LsmOptions;
}

impl TableSink for Shared {
    fn storage(&self) -> &Storage {
        &self.storage
    }
    fn versions(&self) -> &VersionSet {
        &self.versions
    }
    fn options(&self) -> &LsmOptions {
        &self.options
    }
}

/// Writes `entries` (internal keys in order) as tables for `level`, cutting a new table past the target
/// size at a user-key boundary; each table is fsync'd, then the directory. Returns their records (none if
/// `entries` is empty). Raw blocks on L0–L1, zstd level 1 below (DESIGN.md).
pub(super) fn write_tables(
    sink: &dyn TableSink,
    level: usize,
    entries: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    purpose: WritePurpose,
) -> Result<Vec<TableMeta>> {
    let opts = sink.options();
    let options = TableOptions {
        compression: if level >= 2 {
            Compression::Zstd { level: 1 }
        } else {
            Compression::None
        },
        ..opts.table.clone()
    };
    let mut done = Vec::new();
    let mut builder: Option<TableBuilder> = None;
    let mut last_user: Vec<u8> = Vec::new();
    for entry in entries {
        let (ikey, value) = entry?;
        let user = key::user_key(&ikey);
        if let Some(b) = builder.take_if(|b| {
            level > 0
                && b.estimated_size() >= opts.target_file_bytes
                && user != last_user.as_slice()
        }) {
            done.push(b.finish()?);
        }
        last_user.clear();
        last_user.extend_from_slice(user);
        let b = match builder.as_mut() {
            Some(b) => b,
            None => {
                let number = sink.versions().new_file_number();
                let file = sink.storage().create_new(&table_file_name(number))?;
                builder.insert(TableBuilder::new(file, number, options.clone(), purpose))
            }
        };
        b.add(&ikey, &value)?;
    }
    if let Some(b) = builder {
        done.push(b.finish()?);
    }
    if !done.is_empty() {
        sink.storage().sync_dir()?;
    }
    Ok(done)
}

/// Merges compaction inputs in internal-key order, dropping versions no reader can see.
struct CompactionIter {
    sources: Vec<Box<dyn InternalIter>>,
    current_user: Option<Vec<u8>>,
    last_seq_for_key: u64,
    oldest_snapshot: u64,
    bottom: bool,
}

impl CompactionIter {
    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        loop {
            let Some(i) = pick(&self.sources, true) else {
                return Ok(None);
            };
            let Some(src) = self.sources.get_mut(i) else {
                return Ok(None);
            };
            let ikey = src.key().to_vec();
            let value = src.value().to_vec();
            src.next()?;
            let (user, seq, kind) = key::decode(&ikey).ok_or_else(|| {
                Error::corruption("<compaction input>", None, "malformed internal key")
            })?;
            if self.current_user.as_deref() != Some(user) {
                self.current_user = Some(user.to_vec());
                self.last_seq_for_key = MAX_SEQUENCE + 1;
            }
            // A newer version of this key is visible to every snapshot: this one is invisible to all.
            let shadowed = self.last_seq_for_key <= self.oldest_snapshot;
            // A tombstone every snapshot sees, with nothing below it to hide: drop it (and, through the
            // rule above, everything older).
            let dead_tombstone =
                kind == ValueKind::Delete && seq <= self.oldest_snapshot && self.bottom;
            let duplicate = self.last_seq_for_key == seq;
            self.last_seq_for_key = seq;
            if shadowed || dead_tombstone || duplicate {
                continue;
            }
            return Ok(Some((ikey, value)));
        }
    }
}

impl Iterator for CompactionIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

const _: () = assert!(NUM_LEVELS >= 2);
