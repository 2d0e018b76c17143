//! [`Engine::backup`](crate::Engine::backup) for the LSM engine: the live tables, hard-linked, plus the
//! WAL segments not yet flushed, copied, described by a fresh manifest.
//!
//! # The consistent point
//!
//! Under the writer mutex the active memtable is sealed (unless it is empty): the WAL rotates, so every
//! batch through the visible sequence `S` is in a segment older than the new active one `A`, and those
//! segments are sealed (written out, fsync'd, never appended to again). Writers go on at once, into `A`.
//! The copy is then made holding the job lock, so no flush or compaction changes the version or deletes
//! a WAL segment meanwhile:
//! - the current version's tables: everything in memtables whose segment is below the manifest's log
//!   number `L` (flushes go oldest first, so the tables cover exactly the segments below `L`). Tables are
//!   immutable, so they are hard-linked (copied when linking fails): see [`crate::backup`];
//! - the WAL segments in `[L, A)`: the sealed memtables not flushed yet, copied byte for byte (a WAL
//!   segment is never linked: recovery may truncate the live segment's torn tail, and a shared inode
//!   would carry that into the other database);
//! - a new segment `A` holding only the LINK the source's `A` starts with (its predecessor and that
//!   one's length), so the chain the copy's recovery checks ends at an empty live segment, as after a
//!   crash right after a rotation;
//! - a manifest written by the same code as every manifest snapshot, naming that version, `L`, and a next
//!   file number past everything above, then `CURRENT`.
//!
//! So the copy holds the batches through `S`: the tables up to `L`, the copied segments from `L` to `S`.
//! If a flush of a memtable sealed after the point finished before the job lock was taken, `L` passed
//! `A` and the tables hold batches after `S`: the point is taken again (a flush takes far longer than
//! this check, so it settles at once).
//!
//! The seal is the only thing the backup adds to the source: one more (smaller) L0 table later, where
//! a flush first would write it now and hold the copy back by a table write. While tables are copied
//! rather than linked (another filesystem) flushes and compactions wait; if memtables fill meanwhile,
//! writers wait for room as they would behind a slow flush.
//!
//! A read-only handle writes nothing: it copies the tables and every segment from `L` on as they are,
//! and the copy's recovery replays them as the source's did (`S` is its visible sequence).

use super::db::{LsmEngine, Shared};
use super::manifest::{Counters, write_copy};
use super::open::LSM_FORMAT_VERSION;
use super::sstable::table_file_name;
use crate::backup::{BackupInfo, Target};
use crate::error::{EngineKind, Result};
use crate::identity::Identity;
use crate::storage::{Storage, WritePurpose};
use crate::wal::{self, WalWriter, writer::Link};

impl LsmEngine {
    /// [`Engine::backup`](crate::Engine::backup) into any storage, which must hold no file: test
    /// machinery (the simulated disk of `rumdb::testing`), hidden from the documentation.
    ///
    /// # Errors
    /// As [`Engine::backup`](crate::Engine::backup).
    #[doc(hidden)]
    pub fn backup_with(&self, target: Storage) -> Result<BackupInfo> {
        let shared = &self.shared;
        shared.core.check_open()?;
        let mut target = Target::new(target)?;
        let sequence = shared.backup_into(&mut target)?;
        target.finish(
            &Identity {
                kind: EngineKind::Lsm,
                format_version: LSM_FORMAT_VERSION,
                page_size: 0,
            },
            sequence,
        )
    }
}

/// Where a read-write backup cuts the WAL.
struct Point {
    /// The active segment after the seal: the copy's last segment, holding only its LINK.
    active: u64,
    /// `active`'s LINK.
    link: Link,
    /// The visible sequence at the seal.
    sequence: u64,
}

impl Shared {
    /// Seals the active memtable (unless empty) under the writer mutex: the point the copy holds.
    fn backup_point(&self) -> Result<Point> {
        let _writer = self.core.writer.lock();
        self.core.check_writable_for("backup")?;
        if !self.mems.read().active.is_empty() {
            self.seal_memtable()?;
        }
        let wal = self.core.wal()?;
        Ok(Point {
            active: wal.segment(),
            link: wal.link(),
            sequence: self.core.visible(),
        })
    }

    /// Writes every file of the copy but `IDENTITY` into `target` (see the module docs); returns the
    /// sequence it holds.
    fn backup_into(&self, target: &mut Target) -> Result<u64> {
        let source = &self.core.storage;
        loop {
            let point = if self.core.is_read_only() {
                None
            } else {
                Some(self.backup_point()?)
            };
            let _job = self.job.lock();
            let version = self.versions.current();
            let counters = self.versions.counters();
            if let Some(p) = &point
                && counters.log_number > p.active
            {
                continue; // a memtable sealed after the point was flushed: take a new point
            }
            let segments: Vec<u64> = wal::list_segments(source)?
                .into_iter()
                .filter(|&s| {
                    s >= counters.log_number && point.as_ref().is_none_or(|p| s < p.active)
                })
                .collect();
            for t in version.all() {
                let name = table_file_name(t.meta.number);
                target.copy(
                    source,
                    &name,
                    t.meta.file_size,
                    true,
                    WritePurpose::MemtableFlush,
                )?;
            }
            for s in segments {
                target.copy_whole(source, &wal::segment_name(s), false, WritePurpose::Wal)?;
            }
            if let Some(p) = &point {
                drop(WalWriter::create(target.storage(), p.active, p.link)?);
                target.sync_file(&wal::segment_name(p.active))?;
            }
            let number = self.versions.new_file_number();
            write_copy(
                target.storage(),
                number,
                &version,
                Counters {
                    next_file: number + 1,
                    ..counters
                },
            )?;
            return Ok(point.map_or_else(|| self.core.visible(), |p| p.sequence));
        }
    }
}
