//! Checkpoints: freezing the dirty set under the writer mutex, writing it (inline, or on the checkpoint
//! thread), and pacing them (the steps and their crash analysis are in the [module docs](super)).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::*;

impl Shared {
    /// The first half of a checkpoint, at the current batch boundary L: rotates the WAL (so every batch
    /// ≤ L is in an older segment), copies every dirty page, sealed, into the frozen set, installs it in
    /// the page store and marks the pool's pages clean (a later batch may dirty them again; the pool then
    /// holds the newer copy). Returns `None` if there is nothing to checkpoint.
    /// REQUIRES: the writer mutex, and no frozen set in flight.
    pub(super) fn freeze(&self) -> Result<Option<Arc<Frozen>>> {
        let mut header = {
            let st = self.tree.read();
            Header {
                version: BTREE_FORMAT_VERSION,
                page_size: self.store.geo.page_size as u32,
                counter: self.checkpoint_counter.load(Ordering::Acquire) + 1,
                lsn: st.version,
                root: st.root,
                height: st.height,
                free_head: st.free_head,
                free_count: st.free_count,
                page_count: st.page_count,
                wal_first: self.recovery_first.load(Ordering::Acquire),
            }
        };
        let dirty = self.store.pool.dirty_frames();
        if dirty.is_empty()
            && header.lsn == self.store.durable_lsn.load(Ordering::Acquire)
            && (self.core.wal_if_started().is_some()
                || header.wal_first == self.wal_first.load(Ordering::Acquire))
        {
            return Ok(None);
        }
        // The header names the segment the rotation starts: every batch ≤ L is in an older one.
        let sealed = match self.core.wal_if_started() {
            Some(wal) => {
                let next = wal.segment() + 1;
                let sealed = wal.rotate(next).inspect_err(|e| self.poison(e))?;
                header.wal_first = next;
                Some(sealed)
            }
            None => None,
        };
        let pages: Vec<(u32, Vec<u8>)> = dirty
            .iter()
            .map(|f| {
                let mut buf = f.read().to_vec();
                page::seal(&mut buf, f.pgno());
                (f.pgno(), buf)
            })
            .collect();
        let frozen = Arc::new(Frozen {
            header,
            pages,
            sealed,
        });
        // Installed before the pages turn clean (and evictable), so a miss finds them.
        *self.store.frozen.write() = Some(Arc::clone(&frozen));
        self.store.pool.mark_clean(&dirty);
        drop(dirty);
        self.store.pool.trim();
        Ok(Some(frozen))
    }

    /// The second half of a checkpoint: writes the frozen pages and header slot to the doublewrite file
    /// and syncs it, writes the pages in place (growing the file first) and syncs, writes the inactive
    /// header slot and syncs, then deletes the WAL segments up to the sealed one and the doublewrite file,
    /// and only then drops the frozen set. Needs no lock: the frozen set is immutable, and no other
    /// checkpoint runs meanwhile. A failure poisons the handle and leaves the frozen set in place (reads
    /// go on seeing the pages the file may lack).
    pub(super) fn write_frozen(&self, frozen: &Frozen) -> Result<()> {
        let header = frozen.header;
        let geo = self.store.geo;
        let file = &self.store.file;
        let written = (|| -> Result<()> {
            let image = doublewrite::encode(&header, &frozen.pages, BTREE_FORMAT_VERSION);
            doublewrite::write(&self.core.storage, &image)?;
            drop(image);
            crate::crash_point::hit("btree.checkpoint.after_doublewrite");
            // Growth first, so no page lands past a length a crash could cut back to.
            let need = geo.offset(header.page_count);
            if file.len()? < need {
                file.set_len(need)?;
            }
            for (pgno, buf) in &frozen.pages {
                let offset = geo.offset(*pgno);
                // Armed, writes the first half of the page in place and dies: a torn page.
                crate::crash_point::hit_then("btree.writeback.mid_page", || {
                    let half = buf.get(..buf.len() / 2).unwrap_or_default();
                    let _ = file.write_at(offset, half, WritePurpose::PageWriteback);
                });
                file.write_at(offset, buf, WritePurpose::PageWriteback)?;
            }
            // The pages (and the file's new length) are durable before a header describes them.
            file.sync_data()?;
            crate::crash_point::hit("btree.checkpoint.pages_synced");
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
            doublewrite::remove(&self.core.storage)
        })();
        if let Err(e) = written {
            self.poison(&e);
            return Err(e);
        }
        self.checkpoint_counter
            .store(header.counter, Ordering::Release);
        // The file now holds the pages and a header that allows them: only then may misses read it.
        self.store.durable_lsn.store(header.lsn, Ordering::Release);
        self.wal_first.store(header.wal_first, Ordering::Release);
        *self.store.frozen.write() = None;
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

    /// Waits until no background checkpoint is in flight.
    ///
    /// # Errors
    /// `Poisoned` if the checkpoint failed.
    pub(super) fn wait_checkpoint(&self) -> Result<()> {
        self.core
            .wait_worker(|_| !self.in_flight.load(Ordering::Acquire))
    }

    /// After a batch, REQUIRES the writer mutex: starts a checkpoint if one is due. `Manual`: inline when
    /// the dirty pages reach `max_dirty` or the WAL since the last checkpoint reaches
    /// `checkpoint_wal_bytes`. `Threads`: at half of `max_dirty` (or the WAL bound), freezes the dirty set
    /// and hands it to the worker, unless one is in flight; only at `max_dirty` does the writer wait for
    /// the one in flight (a stall).
    pub(super) fn maybe_checkpoint(&self) -> Result<()> {
        let dirty = self.store.pool.dirty_count();
        let wal_due = self
            .core
            .wal_if_started()
            .is_some_and(|w| w.end().offset >= self.checkpoint_wal_bytes);
        if self.core.background == Background::Manual {
            if dirty >= self.max_dirty || wal_due {
                return self.checkpoint();
            }
            return Ok(());
        }
        if dirty < self.soft_dirty && !wal_due {
            return Ok(());
        }
        if self.in_flight.load(Ordering::Acquire) {
            if dirty < self.max_dirty {
                return Ok(());
            }
            let start = Instant::now();
            let waited = self.wait_checkpoint();
            self.core.record_stall(start);
            waited?;
        }
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

    /// The checkpoint worker's step: writes the frozen set handed over.
    pub(super) fn write_job(&self) -> Result<()> {
        let job = self.job.lock().take();
        let written = match &job {
            Some(frozen) => self.write_frozen(frozen),
            None => Ok(()),
        };
        drop(job);
        self.in_flight.store(false, Ordering::Release);
        written
    }

    pub(super) fn checkpoint_now(&self) -> Result<()> {
        let _w = self.core.writer.lock();
        self.core.check_writable()?;
        self.wait_checkpoint()?;
        self.checkpoint()
    }
}
