//! Flushes (sealed memtable → L0 table) and leveled compaction. Both run on the worker, or inline in
//! Manual mode, one at a time (the job lock), and change the version only through a synced manifest edit.
//!
//! Order of a flush, each step durable before the next: build the table and fsync it, fsync the directory
//! (its entry), append the manifest edit adding it with the new log number and fsync, install the version,
//! drop the sealed memtable, and only then delete the WAL segments below the log number. A crash at any
//! point leaves either the WAL segment (replayed at open) or the table (referenced by the manifest); a
//! table the manifest never got is an orphan that the next open removes.
//!
//! # Policy (leveled, LevelDB-style)
//!
//! Each level has a score: L0 its table count over `l0_compaction_trigger` (4), level n ≥ 1 its bytes
//! over its target `base_level_bytes × level_size_ratio^(n−1)` (256 MiB × 10^(n−1)). The level with the
//! highest score ≥ 1 is compacted into the next one (the last level is never a source):
//!
//! - **L0 → L1:** L0 tables that overlap no other L0 table and no L1 table are *moved* (a manifest edit
//!   renames their level; nothing is rewritten). Otherwise all of L0 is merged with the L1 tables it
//!   overlaps (L0 tables overlap each other, so taking all of them keeps newer data above older).
//! - **Ln → Ln+1:** one table, the first whose largest key is past the level's compaction pointer
//!   (wrapping), so successive compactions sweep the key space round-robin; merged with the Ln+1 tables
//!   it overlaps, or moved if it overlaps none.
//!
//! Outputs are cut at `target_file_bytes` on user-key boundaries, with the output level's compression
//! and bloom bits ([`LsmOptions::table_options_for`]). Manual mode runs compactions until every score is
//! below 1; the worker runs one at a time, flushing sealed memtables in between, and when nothing scores
//! ≥ 1 and writes have paused it settles L0 into L1 ([`LsmOptions::settle_after`]). `compact()` is a full
//! compaction: each level from L0 down is merged (or moved) into the next until all data sits on the
//! deepest non-empty level (at least L1); if nothing was merged into that level, it is rewritten in
//! place, so tombstones and versions no snapshot needs any longer go.
//!
//! Compaction keeps, for each user key, the newest version plus every older version some live snapshot
//! can still see, and drops a tombstone (with everything older) only when every snapshot sees it and no
//! table on a level below the output spans the key. Input tables are removed from disk only when the last
//! version using them is dropped ([`TableHandle`]).
//!
//! Per-level counters ([`LevelStats`], RocksDB's compaction table: bytes read from the level above and
//! from the level, written, moved) are kept for [`LsmEngine::level_stats`](super::LsmEngine::level_stats).

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
use super::range_del::{RangeDels, RangeTombstone, clip, coalesce, successor};
use super::sstable::{TableBuilder, TableMeta, table_file_name};
use super::version::{TableHandle, Version};
use crate::error::{Error, Result};
use crate::storage::{ReadPurpose, Storage, WritePurpose};
use crate::wal;

impl Shared {
    /// Flushes every sealed memtable, oldest first; in Manual mode then compacts if L0 is over its
    /// trigger.
    pub(super) fn flush_sealed(&self) -> Result<()> {
        self.flush_some(usize::MAX)?;
        if self.options.background == Background::Manual {
            self.maybe_compact()?;
        }
        Ok(())
    }

    /// Flushes up to `limit` sealed memtables, oldest first.
    pub(super) fn flush_some(&self, limit: usize) -> Result<()> {
        let _job = self.job.lock();
        for _ in 0..limit {
            {
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
        Ok(())
    }

    fn flush_one(&self, mem: &Memtable, next_segment: u64) -> Result<()> {
        let mut edit = VersionEdit {
            log_number: Some(next_segment),
            ..VersionEdit::default()
        };
        if !mem.is_empty() {
            let tombstones = mem.range_tombstones();
            let meta = mem.with_entries(|entries| {
                write_tables(
                    self,
                    0,
                    entries.map(Ok),
                    &tombstones,
                    WritePurpose::MemtableFlush,
                )
            })?;
            if let Some(max) = meta.iter().map(|m| m.max_seq).max() {
                edit.last_sequence = Some(max);
            }
            edit.added = meta.into_iter().map(|m| (0, m)).collect();
            crate::crash_point::hit("flush.sst.synced");
        }
        let written: u64 = edit.added.iter().map(|(_, m)| m.file_size).sum();
        self.versions
            .log_and_apply_at(edit, Some("flush.manifest.appended"))?;
        crate::crash_point::hit("flush.manifest.synced");
        self.record_level(0, |s| {
            s.written += written;
            s.compactions += 1;
        });
        self.refresh_pressure();
        Ok(())
    }

    /// Removes WAL segments below `log_number`: everything in them is in a synced table that a synced
    /// manifest edit records. Best effort: one left behind is removed at the next open.
    pub(super) fn remove_segments_below(&self, log_number: u64) {
        if let Ok(segments) = wal::list_segments(self.storage()) {
            for s in segments.into_iter().filter(|s| *s < log_number) {
                let _ = self.storage().remove(&wal::segment_name(s));
            }
        }
    }

    /// Runs compactions while some level is over its target: one in Threads mode (the worker loops),
    /// until the tree settles in Manual mode (bounded, so a policy bug cannot loop forever).
    pub(super) fn maybe_compact(&self) -> Result<()> {
        let rounds = match self.options.background {
            Background::Threads => 1,
            Background::Manual => 4 * NUM_LEVELS * self.options.level_size_ratio.max(1) as usize,
        };
        for _ in 0..rounds {
            if !self.compact_once()? {
                break;
            }
        }
        Ok(())
    }

    /// Picks and runs one compaction if some level is over its target. Returns whether one ran.
    pub(super) fn compact_once(&self) -> Result<bool> {
        let mut job = self.job.lock();
        let version = self.versions.current();
        let Some(c) = pick_compaction(&self.options, &version, &mut job.pointers) else {
            return Ok(false);
        };
        self.run_compaction(&version, &c)?;
        Ok(true)
    }

    /// One step of settling (see [`LsmOptions::settle_after`]): moves or merges L0 into L1 if L0 holds a
    /// table. Returns whether it did anything.
    pub(super) fn settle_once(&self) -> Result<bool> {
        let _job = self.job.lock();
        let version = self.versions.current();
        let Some(c) = l0_compaction(&version) else {
            return Ok(false);
        };
        self.run_compaction(&version, &c)?;
        Ok(true)
    }

    /// A full compaction: every level, from L0 down, is merged into the next one until all data is on
    /// the last non-empty level (at least L1).
    pub(super) fn compact_all(&self) -> Result<()> {
        let _job = self.job.lock();
        let deepest = self
            .versions
            .current()
            .levels
            .iter()
            .rposition(|l| !l.is_empty())
            .unwrap_or(0)
            .max(1);
        let mut bottom_rewritten = false;
        for level in 0..deepest {
            let version = self.versions.current();
            let Some(files) = version.levels.get(level).filter(|l| !l.is_empty()) else {
                continue;
            };
            let inputs = files.clone();
            let inputs1 = overlapping(&version, level + 1, &inputs);
            let c = Compaction {
                level,
                in_place: false,
                inputs,
                inputs1,
            };
            bottom_rewritten = level + 1 == deepest && !can_move(&version, &c);
            self.run_compaction(&version, &c)?;
        }
        // Nothing merged into the deepest level (everything was already there, or was moved there):
        // rewrite it in place, so tombstones and versions no snapshot needs any longer are dropped.
        let version = self.versions.current();
        if !bottom_rewritten
            && let Some(files) = version.levels.get(deepest).filter(|l| !l.is_empty())
        {
            let c = Compaction {
                level: deepest,
                in_place: true,
                inputs: files.clone(),
                inputs1: Vec::new(),
            };
            self.run_compaction(&version, &c)?;
        }
        Ok(())
    }

    /// Runs `c` against `version` (the current one). REQUIRES: the job lock.
    fn run_compaction(&self, version: &Version, c: &Compaction) -> Result<()> {
        let out_level = if c.in_place { c.level } else { c.level + 1 };
        let read_upper: u64 = c.inputs.iter().map(|t| t.meta.file_size).sum();
        let read_lower: u64 = c.inputs1.iter().map(|t| t.meta.file_size).sum();
        let deleted = c
            .inputs
            .iter()
            .map(|t| (c.level, t.meta.number))
            .chain(c.inputs1.iter().map(|t| (out_level, t.meta.number)))
            .collect();
        if can_move(version, c) {
            let edit = VersionEdit {
                deleted,
                added: c
                    .inputs
                    .iter()
                    .map(|t| (out_level, t.meta.clone()))
                    .collect(),
                ..VersionEdit::default()
            };
            self.versions
                .log_and_apply(edit)
                .map_err(|e| self.poison(e))?;
            crate::crash_point::hit("compact.move.synced");
            self.record_level(out_level, |s| {
                s.moved += read_upper;
                s.moves += 1;
            });
            self.refresh_pressure();
            return Ok(());
        }
        let oldest_snapshot = self.oldest_snapshot();
        let mut sources: Vec<Box<dyn InternalIter>> = Vec::new();
        for t in c.inputs.iter().chain(c.inputs1.iter()) {
            let mut it = t.table.iter(ReadPurpose::Compaction);
            it.seek_to_first()?;
            sources.push(Box::new(it));
        }
        let deeper = version
            .levels
            .iter()
            .skip(out_level + 1)
            .map(|l| {
                l.iter()
                    .map(|t| {
                        let (lo, hi) = t.user_range();
                        (lo.to_vec(), hi.to_vec())
                    })
                    .collect()
            })
            .collect();
        let inputs = coalesce(
            c.inputs
                .iter()
                .chain(c.inputs1.iter())
                .flat_map(|t| t.table.range_tombstones().iter().cloned())
                .collect(),
        );
        let entries = CompactionIter {
            sources,
            current_user: None,
            last_seq_for_key: u64::MAX,
            oldest_snapshot,
            deeper,
            dels: RangeDels::new(&inputs, oldest_snapshot),
        };
        let tombstones = entries.live_tombstones(inputs);
        let outputs = write_tables(
            self,
            out_level,
            entries,
            &tombstones,
            WritePurpose::Compaction,
        )
        .map_err(|e| self.poison(e))?;
        crate::crash_point::hit("compact.outputs.synced");
        let written: u64 = outputs.iter().map(|m| m.file_size).sum();
        let edit = VersionEdit {
            deleted,
            added: outputs.into_iter().map(|m| (out_level, m)).collect(),
            ..VersionEdit::default()
        };
        self.versions
            .log_and_apply(edit)
            .map_err(|e| self.poison(e))?;
        crate::crash_point::hit("compact.manifest.synced");
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.record_level(out_level, |s| {
            s.read_upper += read_upper;
            s.read_lower += read_lower;
            s.written += written;
            s.compactions += 1;
        });
        self.refresh_pressure();
        Ok(())
    }

    /// Adds to the compaction stats of `level`.
    pub(super) fn record_level(&self, level: usize, f: impl FnOnce(&mut LevelStats)) {
        if let Some(s) = self.level_stats.lock().get_mut(level) {
            f(s);
        }
    }
}

/// The compaction state kept under the job lock.
#[derive(Default)]
pub(super) struct JobState {
    /// Per level, the largest user key of the last table compacted out of it: the next compaction of
    /// that level starts after it (LevelDB's round-robin compaction pointer), so compactions sweep the
    /// key space. In memory only; a reopen starts again at the beginning.
    pub(super) pointers: [Vec<u8>; NUM_LEVELS],
}

/// Compaction counters of one level, in the style of RocksDB's compaction stats: a row per output level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Tables on the level now.
    pub files: u64,
    /// Bytes of those tables now.
    pub bytes: u64,
    /// Target size of the level (0 for L0, which is governed by its file count).
    pub target_bytes: u64,
    /// Merging compactions whose output landed on this level (flushes for L0).
    pub compactions: u64,
    /// Trivial moves into this level.
    pub moves: u64,
    /// Bytes read from the level above by compactions into this one (RocksDB's `Rn`).
    pub read_upper: u64,
    /// Bytes read from this level by compactions into it (RocksDB's `Rnp1`).
    pub read_lower: u64,
    /// Bytes written to this level by flushes (L0) and compactions.
    pub written: u64,
    /// Bytes moved into this level by trivial moves (renamed in the manifest, not rewritten).
    pub moved: u64,
}

/// One compaction: tables of `level` merged with the tables of `level + 1` they overlap, or (`in_place`,
/// full compaction only) tables of the deepest level rewritten into that level.
pub(super) struct Compaction {
    level: usize,
    in_place: bool,
    inputs: Vec<Arc<TableHandle>>,
    inputs1: Vec<Arc<TableHandle>>,
}

/// The bytes of `level`.
pub(super) fn level_bytes(version: &Version, level: usize) -> u64 {
    version
        .levels
        .get(level)
        .map_or(0, |l| l.iter().map(|t| t.meta.file_size).sum())
}

/// The level most in need of compaction and its score (≥ 1 means it needs one): L0 by file count over
/// the trigger, deeper levels by bytes over their target. The last level is never a source.
pub(super) fn compaction_score(options: &LsmOptions, version: &Version) -> (usize, f64) {
    let mut best = (0, 0.0);
    for level in 0..NUM_LEVELS - 1 {
        let score = if level == 0 {
            version.levels.first().map_or(0, Vec::len) as f64
                / options.l0_compaction_trigger.max(1) as f64
        } else {
            level_bytes(version, level) as f64 / options.level_target_bytes(level) as f64
        };
        if score > best.1 {
            best = (level, score);
        }
    }
    best
}

/// Estimated bytes compactions must rewrite before every level is within its target: L0's bytes once
/// it reaches its trigger, plus each deeper level's excess over its target.
pub(super) fn pending_compaction_bytes(options: &LsmOptions, version: &Version) -> u64 {
    let l0 = version.levels.first().map_or(0, Vec::len);
    let mut pending = if l0 >= options.l0_compaction_trigger {
        level_bytes(version, 0)
    } else {
        0
    };
    for level in 1..NUM_LEVELS - 1 {
        pending += level_bytes(version, level).saturating_sub(options.level_target_bytes(level));
    }
    pending
}

fn overlaps(a: &TableHandle, b: &TableHandle) -> bool {
    let (alo, ahi) = a.user_range();
    let (blo, bhi) = b.user_range();
    alo <= bhi && blo <= ahi
}

/// The tables of `level` that overlap the user-key range spanned by `inputs` (the whole range, gaps
/// included: a merged output may span a gap, so every table in it must be an input).
fn overlapping(
    version: &Version,
    level: usize,
    inputs: &[Arc<TableHandle>],
) -> Vec<Arc<TableHandle>> {
    let Some(lo) = inputs.iter().map(|t| t.user_range().0).min() else {
        return Vec::new();
    };
    let Some(hi) = inputs.iter().map(|t| t.user_range().1).max() else {
        return Vec::new();
    };
    version.levels.get(level).map_or_else(Vec::new, |l| {
        l.iter()
            .filter(|t| {
                let (a, b) = t.user_range();
                a <= hi && lo <= b
            })
            .cloned()
            .collect()
    })
}

/// True if `c` can move its inputs down unchanged: nothing in the next level overlaps them, and for L0,
/// no other L0 table (an older one left behind would then sit above newer data).
fn can_move(version: &Version, c: &Compaction) -> bool {
    if c.in_place || !c.inputs1.is_empty() {
        return false;
    }
    if c.level != 0 {
        return true;
    }
    let l0 = version.levels.first().map_or(&[][..], Vec::as_slice);
    c.inputs.iter().all(|i| {
        l0.iter()
            .all(|t| t.meta.number == i.meta.number || !overlaps(t, i))
    })
}

/// The next step of emptying L0 (`None` if it is empty): the L0 tables that overlap no other table (in
/// L0 and L1), moved down; otherwise all of L0 plus the L1 tables it overlaps.
fn l0_compaction(version: &Version) -> Option<Compaction> {
    let files = version.levels.first().filter(|l| !l.is_empty())?;
    let movable: Vec<Arc<TableHandle>> = files
        .iter()
        .filter(|t| {
            files
                .iter()
                .all(|o| o.meta.number == t.meta.number || !overlaps(o, t))
                && overlapping(version, 1, std::slice::from_ref(*t)).is_empty()
        })
        .cloned()
        .collect();
    if !movable.is_empty() {
        return Some(Compaction {
            level: 0,
            in_place: false,
            inputs: movable,
            inputs1: Vec::new(),
        });
    }
    let inputs = files.clone();
    let inputs1 = overlapping(version, 1, &inputs);
    Some(Compaction {
        level: 0,
        in_place: false,
        inputs,
        inputs1,
    })
}

/// Picks the next compaction, if some level is over its target. L0: tables that overlap no other table
/// (in L0 and L1) are moved down first; otherwise all of L0 plus the L1 tables it overlaps. Level n ≥ 1:
/// the first table after the level's compaction pointer (wrapping), plus the tables of n + 1 it
/// overlaps; moved down whole if it overlaps none.
fn pick_compaction(
    options: &LsmOptions,
    version: &Version,
    pointers: &mut [Vec<u8>; NUM_LEVELS],
) -> Option<Compaction> {
    let (level, score) = compaction_score(options, version);
    if score < 1.0 {
        return None;
    }
    if level == 0 {
        return l0_compaction(version);
    }
    let files = version.levels.get(level)?;
    let pointer = pointers.get_mut(level)?;
    let chosen = files
        .iter()
        .find(|t| pointer.is_empty() || t.user_range().1 > pointer.as_slice())
        .or_else(|| files.first())?;
    pointer.clear();
    pointer.extend_from_slice(chosen.user_range().1);
    let inputs = vec![Arc::clone(chosen)];
    let inputs1 = overlapping(version, level + 1, &inputs);
    Some(Compaction {
        level,
        in_place: false,
        inputs,
        inputs1,
    })
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
        &self.core.storage
    }
    fn versions(&self) -> &VersionSet {
        &self.versions
    }
    fn options(&self) -> &LsmOptions {
        &self.options
    }
}

/// Writes `entries` (internal keys in order) and the range `tombstones` as tables for `level`, cutting a
/// new table past the target size at a user-key boundary; each table is fsync'd, then the directory.
/// Returns their records (none if there is nothing to write). Compression and bloom bits come from the
/// level's options.
///
/// Each table gets the parts of the tombstones in its share of the key space: from the successor of the
/// previous table's last key (the first table: from the start) to the successor of its own last key
/// (the last table: to the end). So the key ranges of the tables stay disjoint, and every key a
/// tombstone covers is in the range of the table holding that part. Tombstones alone make a table.
pub(super) fn write_tables<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    sink: &dyn TableSink,
    level: usize,
    entries: impl Iterator<Item = Result<(K, V)>>,
    tombstones: &[RangeTombstone],
    purpose: WritePurpose,
) -> Result<Vec<TableMeta>> {
    let opts = sink.options();
    let options = opts.table_options_for(level);
    let new_builder = || -> Result<TableBuilder> {
        let number = sink.versions().new_file_number();
        let file = sink.storage().create_new(&table_file_name(number))?;
        Ok(TableBuilder::new(file, number, options.clone(), purpose))
    };
    let mut done = Vec::new();
    let mut builder: Option<TableBuilder> = None;
    let mut last_user: Vec<u8> = Vec::new();
    // Where the share of the key space of the table being built starts (`None`: the beginning).
    let mut lower: Option<Vec<u8>> = None;
    for entry in entries {
        let (ikey, value) = entry?;
        let (ikey, value) = (ikey.as_ref(), value.as_ref());
        let user = key::user_key(ikey);
        if let Some(mut b) = builder.take_if(|b| {
            level > 0
                && b.estimated_size() >= opts.target_file_bytes
                && user != last_user.as_slice()
        }) {
            let upper = successor(&last_user);
            b.set_range_tombstones(clip(tombstones, lower.as_deref(), Some(&upper)));
            done.push(b.finish()?);
            lower = Some(upper);
        }
        last_user.clear();
        last_user.extend_from_slice(user);
        let b = match builder.as_mut() {
            Some(b) => b,
            None => builder.insert(new_builder()?),
        };
        b.add(ikey, value)?;
    }
    let last = clip(tombstones, lower.as_deref(), None);
    if builder.is_none() && !last.is_empty() {
        builder = Some(new_builder()?);
    }
    if let Some(mut b) = builder {
        b.set_range_tombstones(last);
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
    /// Per level below the output level, the user-key ranges of its tables (sorted, disjoint).
    deeper: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    /// The inputs' range tombstones every snapshot sees: the versions they cover are dropped.
    dels: RangeDels,
}

impl CompactionIter {
    /// True if a table below the output level spans `user`.
    fn deeper_may_hold(&self, user: &[u8]) -> bool {
        self.deeper.iter().any(|ranges| {
            let at = ranges.partition_point(|(_, hi)| hi.as_slice() < user);
            ranges.get(at).is_some_and(|(lo, _)| lo.as_slice() <= user)
        })
    }

    /// The tombstones of `inputs` the outputs keep: all but those every snapshot sees over keys no
    /// table below the output holds (nothing is left for them to hide).
    fn live_tombstones(&self, inputs: Vec<RangeTombstone>) -> Vec<RangeTombstone> {
        inputs
            .into_iter()
            .filter(|t| t.seq > self.oldest_snapshot || self.deeper_overlaps(&t.start, &t.end))
            .collect()
    }

    /// True if a table below the output level spans a key of `[start, end)`.
    fn deeper_overlaps(&self, start: &[u8], end: &[u8]) -> bool {
        self.deeper.iter().any(|ranges| {
            let at = ranges.partition_point(|(_, hi)| hi.as_slice() < start);
            ranges.get(at).is_some_and(|(lo, _)| lo.as_slice() < end)
        })
    }

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
            let dead_tombstone = kind == ValueKind::Delete
                && seq <= self.oldest_snapshot
                && !self.deeper_may_hold(user);
            let duplicate = self.last_seq_for_key == seq;
            // A range tombstone every snapshot sees hides this version from all of them.
            let covered = self.dels.covers(user, seq);
            self.last_seq_for_key = seq;
            if shadowed || dead_tombstone || duplicate || covered {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_stay_while_a_deeper_table_spans_the_key() {
        let range = |a: &str, b: &str| (a.as_bytes().to_vec(), b.as_bytes().to_vec());
        let it = CompactionIter {
            sources: Vec::new(),
            current_user: None,
            last_seq_for_key: u64::MAX,
            oldest_snapshot: 0,
            dels: RangeDels::default(),
            deeper: vec![
                vec![range("b", "d"), range("m", "p")],
                vec![range("x", "z")],
            ],
        };
        for held in ["b", "c", "d", "m", "o", "p", "x", "y", "z"] {
            assert!(it.deeper_may_hold(held.as_bytes()), "{held}");
        }
        for free in ["a", "e", "l", "q", "w", "zz"] {
            assert!(!it.deeper_may_hold(free.as_bytes()), "{free}");
        }
    }
}
