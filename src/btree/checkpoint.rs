//! Checkpoints: freezing the state under the writer mutex, writing it (inline, or on the checkpoint
//! thread), and pacing them by WAL volume and time (the steps and their crash analysis are in the
//! [module docs](super)).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::*;

impl Shared {
    /// The first half of a checkpoint, at the current batch boundary L: rotates the WAL (so every batch
    /// ≤ L is in an older segment), turns every fresh page durable, encodes the new free list (pages and
    /// free pages at L) and lists the pages dirty at L. Returns `None` if nothing changed since the last
    /// checkpoint. REQUIRES: the writer mutex, and no checkpoint in flight.
    pub(super) fn freeze(&self) -> Result<Option<Frozen>> {
        {
            let st = self.tree.read();
            if st.version == self.durable_lsn.load(Ordering::Acquire)
                && !st.space.can_trim(st.page_count)
                && !st.space.has_pending()
                && (self.core.wal_if_started().is_some()
                    || self.recovery_first.load(Ordering::Acquire)
                        == self.wal_first.load(Ordering::Acquire))
            {
                return Ok(None);
            }
        }
        // The header names the segment the rotation starts: every batch ≤ L is in an older one.
        let (sealed, wal_first) = match self.core.wal_if_started() {
            Some(wal) => {
                let next = wal.segment() + 1;
                let sealed = wal.rotate(next).inspect_err(|e| self.poison(e))?;
                (Some(sealed), next)
            }
            None => (None, self.recovery_first.load(Ordering::Acquire)),
        };
        let geo = self.store.geo;
        let mut st = self.tree.write();
        let st = &mut *st;
        let list = st
            .space
            .freeze(&mut st.page_count, geo.free_list_capacity());
        let mut chunks = list.entries.chunks(geo.free_list_capacity());
        let free_list = list
            .pages
            .iter()
            .enumerate()
            .map(|(i, &pgno)| {
                let next = list.pages.get(i + 1).copied().unwrap_or(0);
                let entries = chunks.next().unwrap_or_default();
                let mut bytes = page::encode_free_list(next, entries, st.version, &geo);
                page::seal(&mut bytes, pgno);
                (pgno, bytes)
            })
            .collect();
        let header = Header {
            version: BTREE_FORMAT_VERSION,
            page_size: geo.page_size as u32,
            counter: self.checkpoint_counter.load(Ordering::Acquire) + 1,
            lsn: st.version,
            root: st.root,
            height: st.height,
            free_head: list.pages.first().copied().unwrap_or(0),
            free_count: list.entries.len() as u32,
            page_count: st.page_count,
            wal_first,
        };
        let pages = self
            .store
            .pool
            .dirty_frames()
            .iter()
            .map(|f| f.pgno())
            .collect();
        Ok(Some(Frozen {
            header,
            pages,
            free_list,
            sealed,
        }))
    }

    /// The second half of a checkpoint: writes the frozen pages still dirty (the pool wrote the others
    /// back on eviction) and the free-list pages, syncs the data file, writes the inactive header slot and
    /// syncs, deletes the WAL segments up to the sealed one, and only then frees the pages the previous
    /// header needed and truncates free pages at the end of the file. Needs no lock but the tree latch at
    /// the end: the writer never changes a frozen page, and no other checkpoint runs meanwhile. A failure
    /// poisons the handle; the pages stay dirty in the pool, so reads stay correct.
    pub(super) fn write_frozen(&self, frozen: &Frozen) -> Result<()> {
        let header = frozen.header;
        let geo = self.store.geo;
        let file = &self.store.file;
        let written = (|| -> Result<()> {
            // Growth first, so no page lands past a length a crash could cut back to.
            let need = geo.offset(header.page_count);
            if file.len()? < need {
                file.set_len(need)?;
            }
            for &pgno in &frozen.pages {
                let Some(frame) = self.store.pool.lookup(pgno) else {
                    continue; // evicted: written back
                };
                // Armed, writes the first half of the page and dies: a torn page, which no durable header
                // refers to yet.
                crate::crash_point::hit_then("btree.writeback.mid_page", || {
                    let mut buf = frame.read().to_vec();
                    page::seal(&mut buf, pgno);
                    let half = buf.get(..buf.len() / 2).unwrap_or_default();
                    let _ = file.write_at(geo.offset(pgno), half, WritePurpose::PageWriteback);
                });
                self.store
                    .pool
                    .write_back(&frame, file, WritePurpose::PageWriteback)?;
            }
            for (pgno, bytes) in &frozen.free_list {
                file.write_at(geo.offset(*pgno), bytes, WritePurpose::PageWriteback)?;
            }
            // The pages (and the file's new length) are durable before a header describes them.
            file.sync_data()?;
            crate::crash_point::hit("btree.checkpoint.pages_synced");
            // A backup copying the durable header's pages waits for this header, and this header's
            // release of those pages waits for the backup.
            let _gate = self.header_gate.lock();
            let slot = (header.counter % 2) as u32;
            file.write_at(geo.offset(slot), &header.encode(), WritePurpose::Header)?;
            crate::crash_point::hit("btree.checkpoint.header_written");
            file.sync_data()?;
            if let Some(sealed) = frozen.sealed {
                for s in wal::list_segments(&self.core.storage)?
                    .into_iter()
                    .filter(|s| *s <= sealed)
                {
                    self.core.storage.remove(&wal::segment_name(s))?;
                }
                crate::crash_point::hit("btree.checkpoint.wal_deleted");
            }
            // The previous header is no longer needed: its pages may be reused, and free pages past the
            // current page count (trimmed by the freeze, never allocated since) dropped.
            let mut st = self.tree.write();
            st.space.release();
            let end = geo.offset(st.page_count);
            if file.len()? > end {
                file.set_len(end)?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            self.poison(&e);
            return Err(e);
        }
        self.checkpoint_counter
            .store(header.counter, Ordering::Release);
        self.durable_lsn.store(header.lsn, Ordering::Release);
        self.wal_first.store(header.wal_first, Ordering::Release);
        *self.last_checkpoint.lock() = Instant::now();
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A whole checkpoint, inline. REQUIRES: the writer mutex, and no background checkpoint in flight.
    pub(super) fn checkpoint(&self) -> Result<()> {
        match self.freeze()? {
            Some(frozen) => self.write_frozen(&frozen),
            None => Ok(()),
        }
    }

    /// The checkpoint in flight, finished: `Threads` waits for the worker, `Manual` writes it inline.
    /// REQUIRES: the writer mutex.
    ///
    /// # Errors
    /// `Poisoned` if the checkpoint failed; what writing it returned.
    pub(super) fn finish_in_flight(&self) -> Result<()> {
        if self.core.background == Background::Threads {
            return self.wait_checkpoint();
        }
        let Some(frozen) = self.job.lock().take() else {
            return Ok(());
        };
        let written = self.write_frozen(&frozen);
        self.in_flight.store(false, Ordering::Release);
        written
    }

    /// The checkpoint in flight finished, a checkpoint, then (if the pages it freed left free pages at the
    /// end of the file) a second one that drops them, for `flush` and close. REQUIRES: the writer mutex.
    pub(super) fn checkpoint_and_trim(&self) -> Result<()> {
        self.finish_in_flight()?;
        self.checkpoint()?;
        let trim = {
            let st = self.tree.read();
            st.space.can_trim(st.page_count)
        };
        if trim {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Waits until no background checkpoint is in flight (`Threads`).
    ///
    /// # Errors
    /// `Poisoned` if the checkpoint failed.
    fn wait_checkpoint(&self) -> Result<()> {
        self.core
            .wait_worker(|_| !self.in_flight.load(Ordering::Acquire))
    }

    /// True when a checkpoint is due: the WAL since the last one reached `checkpoint_wal_bytes`, or
    /// `checkpoint_interval` passed with batches not yet in a checkpoint.
    pub(super) fn checkpoint_due(&self) -> bool {
        let wal_due = self
            .core
            .wal_if_started()
            .is_some_and(|w| w.end().offset >= self.checkpoint_wal_bytes);
        wal_due
            || (self.store.max_lsn.load(Ordering::Acquire)
                > self.durable_lsn.load(Ordering::Acquire)
                && self.last_checkpoint.lock().elapsed() >= self.checkpoint_interval)
    }

    /// After a batch, REQUIRES the writer mutex: reports a failed write-back on eviction (poisoning the
    /// handle), and starts a checkpoint if one is due, unless one is in flight: it freezes it and hands it
    /// to the worker (`Threads`; writers never wait for it: dirty pages leave the pool by eviction).
    /// `Manual` plays the worker deterministically: the checkpoint frozen after one batch is written after
    /// the next, so that batch runs while it is in flight (moving frozen pages, evicting them, reusing free
    /// pages), as batches do beside the checkpoint thread.
    pub(super) fn maybe_checkpoint(&self) -> Result<()> {
        if let Some(e) = self.store.pool.take_error() {
            self.poison(&e);
            return Err(e);
        }
        if self.core.background == Background::Manual && self.in_flight.load(Ordering::Acquire) {
            return self.finish_in_flight();
        }
        if !self.checkpoint_due() || self.in_flight.load(Ordering::Acquire) {
            return Ok(());
        }
        self.start_background()
    }

    /// Freezes and hands the checkpoint to the worker. REQUIRES: the writer mutex, none in flight.
    fn start_background(&self) -> Result<()> {
        // The checkpoint in flight may have failed.
        self.core.check_poisoned()?;
        let Some(frozen) = self.freeze()? else {
            return Ok(());
        };
        *self.job.lock() = Some(frozen);
        self.in_flight.store(true, Ordering::Release);
        self.core.notify_worker();
        Ok(())
    }

    /// The checkpoint worker's step: writes the frozen checkpoint handed over, or, when only the interval
    /// has passed (no writer came by to freeze), freezes one itself.
    pub(super) fn background_checkpoint(&self) -> Result<()> {
        // `try_lock`, never `lock`: a caller holding the writer mutex may be waiting for this thread to
        // write a job a writer froze meanwhile (`checkpoint_now` → `finish_in_flight`), so blocking here
        // would deadlock. A busy mutex means a writer, which starts a due checkpoint itself after its
        // batch; this thread looks again at its next round.
        if self.job.lock().is_none()
            && !self.in_flight.load(Ordering::Acquire)
            && let Some(_w) = self.core.writer.try_lock()
        {
            // A writer may have started one meanwhile (then it is the job below).
            if !self.in_flight.load(Ordering::Acquire)
                && self.core.check_writable().is_ok()
                && self.checkpoint_due()
            {
                self.start_background()?;
            }
        }
        // Only this thread takes jobs, and `in_flight` is set with one: clear it only after writing one.
        let Some(frozen) = self.job.lock().take() else {
            return Ok(());
        };
        let written = self.write_frozen(&frozen);
        self.in_flight.store(false, Ordering::Release);
        written
    }

    /// Shrinks the data file to about the pages in use: a checkpoint (so every page freed so far is free),
    /// then, if free pages are more than `min_free` of the file, moves the tree pages at the end of the
    /// file to free pages lower down and checkpoints twice (the first frees the old copies, the second
    /// drops them from the end of the file). Overflow pages are not moved. REQUIRES: the writer mutex.
    ///
    /// # Errors
    /// As a checkpoint; a failed move poisons the handle.
    pub(super) fn vacuum(&self, min_free: f64) -> Result<()> {
        self.checkpoint_and_trim()?;
        {
            let mut st = self.tree.write();
            let (count, unused) = (st.page_count, st.space.unused());
            if (unused as f64) <= min_free * f64::from(count) {
                return Ok(());
            }
            // Below the target: the pages in use, the copies of internal pages (every one not fresh moves;
            // at most about a 32nd of the pages at the smallest page size) and the free lists the next
            // checkpoints write (one page per `capacity` entries, and a few to spare).
            let geo = self.store.geo;
            let count = count as usize;
            let list = count.div_ceil(geo.free_list_capacity()) + 2;
            let target = (count - unused + list + count / 32 + 16).min(count);
            let lsn = st.version;
            let moved =
                writer::Writer::new(&self.store, &mut st, lsn, false).move_below(target as u32);
            if let Err(e) = moved {
                st.torn = Some(format!("moving pages to shrink the file failed: {e}"));
                drop(st);
                self.poison(&e);
                return Err(e);
            }
        }
        // The first checkpoint writes the moved pages and frees their old copies; the second drops those at
        // the end of the file and frees the first one's free-list pages, if they had to go at the end; the
        // last drops those.
        self.checkpoint()?;
        self.checkpoint()?;
        self.checkpoint_and_trim()
    }

    pub(super) fn checkpoint_now(&self) -> Result<()> {
        let _w = self.core.writer.lock();
        self.core.check_writable()?;
        self.checkpoint_and_trim()
    }
}
