//! [`Engine::backup`](crate::Engine::backup) for the B-tree: a checkpoint, then a copy of the data file as
//! that checkpoint's header describes it, with an empty WAL.
//!
//! # Why the copy is consistent although writes go on
//!
//! The backup first runs a checkpoint (as [`Engine::flush`](crate::Engine::flush) does: it waits for the
//! one in flight, then writes one at the current batch boundary), so the durable header `H` holds every
//! batch acknowledged before the call. Then it takes the *header gate*, which every checkpoint holds from
//! its header write until it has released the pages the previous header needed; so while the backup
//! holds it, `H` (read back from the file: the valid slot with the higher counter) stays the durable
//! header and no page it needs is freed. By the copy-on-write rule (module docs of `src/btree/mod.rs`) a
//! page `H` needs — a tree page reachable from its root, or a page of its free list — is never written
//! until a newer header is durable and has freed it, so it is the same in the copy as when `H` was
//! written; the header slots themselves are written only under the gate.
//!
//! Everything else in the data file may change during the copy: writers go on, the pool writes dirty
//! pages back to their fresh locations, a frozen checkpoint writes its pages (the checkpoint thread then
//! waits at the gate). Those pages are, for `H`, free pages (on its free list, whose *contents* nothing
//! reads: a free page may hold anything, as after a crash) or pages past its page count (not copied). So
//! a page torn by a concurrent write is harmless in the copy, as it is in the source after a crash.
//! The copy is the first `page_count` pages of the file (both header slots included; the other slot is an
//! older header, which open ignores as it does in the source), except `H`'s free pages, which are left as
//! holes (zeros) instead of copied: right after a checkpoint they are mostly the old copies
//! copy-on-write left behind, a third of the file after a random load.
//!
//! The WAL: `H` names its first live segment `F`, which holds only batches after `H`. The copy gets a new
//! `F` holding only a LINK (no predecessor), so its recovery replays nothing and the copy holds exactly
//! the batches through `H`'s LSN. The segments after the checkpoint are not copied.
//!
//! The cost is the checkpoint (the dirty pages, written once now instead of at the next checkpoint) and
//! the copy of the pages in use (tree, overflow and free-list pages); checkpoints wait during the copy, writers do not (dirty pages leave the
//! pool by eviction meanwhile, so the WAL since the last checkpoint grows instead).
//!
//! A read-only handle writes nothing: it copies the data file and every WAL segment from `F` on as they
//! are, and the copy's recovery replays them as the source's did.

use super::header::Header;
use super::open::{load_free_list, open_data_file};
use super::*;
use crate::backup::{BackupInfo, Target};
use crate::identity::Identity;
use crate::wal::writer::Link;

impl BTreeEngine {
    /// [`Engine::backup`] into any storage, which must hold no file: test machinery (the simulated disk
    /// of `rumdb::testing`), hidden from the documentation.
    ///
    /// # Errors
    /// As [`Engine::backup`].
    #[doc(hidden)]
    pub fn backup_with(&self, target: Storage) -> Result<BackupInfo> {
        let s = &self.shared;
        s.core.check_open()?;
        let mut target = Target::new(target)?;
        let sequence = s.backup_into(&mut target)?;
        target.finish(
            &Identity {
                kind: EngineKind::BTree,
                format_version: BTREE_FORMAT_VERSION,
                page_size: s.store.geo.page_size as u32,
            },
            sequence,
        )
    }
}

impl Shared {
    /// Writes every file of the copy but `IDENTITY` into `target` (see the module docs); returns the
    /// sequence it holds.
    fn backup_into(&self, target: &mut Target) -> Result<u64> {
        let source = &self.core.storage;
        let geo = self.store.geo;
        if self.core.is_read_only() {
            let (_, header, _) = open_data_file(source, &geo, false)?;
            target.copy_whole(source, DATA_FILE, false, WritePurpose::PageWriteback)?;
            for s in wal::list_segments(source)?
                .into_iter()
                .filter(|&s| s >= header.wal_first)
            {
                target.copy_whole(source, &wal::segment_name(s), false, WritePurpose::Wal)?;
            }
            return Ok(self.core.visible());
        }
        self.core.check_writable_for("backup")?;
        self.checkpoint_now()?;
        let _gate = self.header_gate.lock();
        let (_, header, _) = open_data_file(source, &geo, false)?;
        self.copy_pages_in_use(target, &header)?;
        if header.wal_first != 0 {
            drop(WalWriter::create(
                target.storage(),
                header.wal_first,
                Link::default(),
            )?);
            target.sync_file(&wal::segment_name(header.wal_first))?;
        }
        Ok(header.lsn)
    }

    /// Copies the first `header.page_count` pages of the data file into `target`, fsync'd, except the
    /// pages on `header`'s free list, which stay holes (zeros): nothing reads a free page's content, and
    /// right after a checkpoint they are the old copies copy-on-write left behind (a third of the file
    /// after a random load).
    fn copy_pages_in_use(&self, target: &mut Target, header: &Header) -> Result<()> {
        let geo = self.store.geo;
        let (free, _) = load_free_list(&self.store, header)?;
        let mut free = free.into_iter().peekable();
        let out = target.storage().create_new(DATA_FILE)?;
        out.set_len(geo.offset(header.page_count))?;
        let (mut copied, mut buf, mut pgno) = (0, Vec::new(), 0);
        while pgno < header.page_count {
            if free.next_if_eq(&pgno).is_some() {
                pgno += 1;
                continue;
            }
            let end = free
                .peek()
                .copied()
                .unwrap_or(header.page_count)
                .min(pgno.saturating_add(COPY_RUN_PAGES));
            buf.resize((geo.offset(end) - geo.offset(pgno)) as usize, 0);
            self.store
                .file
                .read_exact_at(geo.offset(pgno), &mut buf, ReadPurpose::Backup)?;
            out.write_at(geo.offset(pgno), &buf, WritePurpose::PageWriteback)?;
            copied += buf.len() as u64;
            pgno = end;
        }
        out.sync_data()?;
        target.record_copy(copied);
        Ok(())
    }
}

/// The most pages [`Shared::copy_pages_in_use`] reads and writes at once.
const COPY_RUN_PAGES: u32 = 256;
