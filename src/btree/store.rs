//! Page access: the data file behind the buffer pool. Every page read from storage is checked
//! ([`page::check`]) before it enters the pool; a cached page is served without touching storage.
//!
//! While a checkpoint writes its frozen copy ([`Frozen`]), the pool's copies of those pages are clean (and
//! may be evicted) although the data file may not hold them yet: a miss is then served from the frozen
//! copy. The frozen copy is installed before its pages are marked clean, and dropped only after the header
//! that describes them is durable and `durable_lsn` says so; so a miss never reads a stale page.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::error::Result;
use crate::storage::{File, ReadPurpose};

use super::header::Header;
use super::page::{self, Geometry, PageType};
use super::pool::{PageRef, Pool};

/// The data file, its geometry and the buffer pool.
#[derive(Debug)]
pub(crate) struct PageStore {
    pub geo: Geometry,
    pub file: File,
    pub pool: Pool,
    /// LSN of the last checkpoint: no page on storage may be newer (a page that is was written after the
    /// header slot in use, e.g. when open fell back to the older slot).
    pub durable_lsn: AtomicU64,
    /// The dirty set a checkpoint froze and has not yet made durable (at most one at a time).
    pub frozen: RwLock<Option<Arc<Frozen>>>,
}

/// The dirty set of a checkpoint at batch boundary L: sealed page images, the header slot that will
/// describe them, and the WAL segment sealed at L.
#[derive(Debug)]
pub(crate) struct Frozen {
    /// The header slot the checkpoint writes (LSN L).
    pub header: Header,
    /// `(page number, sealed bytes)`, ascending by page number.
    pub pages: Vec<(u32, Vec<u8>)>,
    /// The last WAL segment holding batches ≤ L (`None` without a WAL, during recovery).
    pub sealed: Option<u64>,
}

impl Frozen {
    /// The frozen image of `pgno`, if it is in the set.
    pub fn get(&self, pgno: u32) -> Option<&[u8]> {
        let i = self.pages.binary_search_by_key(&pgno, |(p, _)| *p).ok()?;
        self.pages.get(i).map(|(_, b)| b.as_slice())
    }

    /// Bytes of the page images.
    pub fn bytes(&self) -> u64 {
        self.pages.iter().map(|(_, b)| b.len() as u64).sum()
    }
}

/// A fetched page and whether the pool had it.
pub(crate) struct Fetched {
    pub page: PageRef,
    pub hit: bool,
}

/// Page touches and storage fetches of one operation, split leaf vs internal, for [`crate::ReadCounters`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub data_touches: u64,
    pub data_fetches: u64,
    pub index_touches: u64,
    pub index_fetches: u64,
    pub hits: u64,
}

impl Tally {
    /// Counts one page of `kind` touched; `hit` if the pool had it.
    pub fn count(&mut self, kind: Option<PageType>, hit: bool) {
        let miss = u64::from(!hit);
        if kind == Some(PageType::Internal) {
            self.index_touches += 1;
            self.index_fetches += miss;
        } else {
            self.data_touches += 1;
            self.data_fetches += miss;
        }
        self.hits += u64::from(hit);
    }
}

impl PageStore {
    /// Page `pgno` of a file of `page_count` pages, from the pool or (checked) from storage.
    ///
    /// # Errors
    /// `Corruption` if the page number is out of range or the page fails its check; `Io`.
    pub fn fetch(&self, pgno: u32, page_count: u32, purpose: ReadPurpose) -> Result<Fetched> {
        if !(2..page_count).contains(&pgno) {
            return Err(self.geo.corrupt(
                pgno,
                format!("page number out of range (the file has {page_count} pages)"),
            ));
        }
        if let Some(page) = self.pool.lookup(pgno) {
            return Ok(Fetched { page, hit: true });
        }
        if let Some(bytes) = self.frozen_copy(pgno) {
            return Ok(Fetched {
                page: self.pool.insert_clean(pgno, bytes.into_boxed_slice()),
                hit: true,
            });
        }
        let bytes = self.read_checked(pgno, purpose)?;
        Ok(Fetched {
            page: self.pool.insert_clean(pgno, bytes.into_boxed_slice()),
            hit: false,
        })
    }

    /// The image of `pgno` in the frozen set of a running checkpoint, if any.
    pub fn frozen_copy(&self, pgno: u32) -> Option<Vec<u8>> {
        let frozen = self.frozen.read();
        frozen.as_ref()?.get(pgno).map(<[u8]>::to_vec)
    }

    /// Bytes of the frozen set (0 when no checkpoint is writing one).
    pub fn frozen_bytes(&self) -> u64 {
        self.frozen.read().as_ref().map_or(0, |f| f.bytes())
    }

    /// Reads page `pgno` from storage (bypassing the pool) and checks it.
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn read_checked(&self, pgno: u32, purpose: ReadPurpose) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; self.geo.page_size];
        self.file
            .read_exact_at(self.geo.offset(pgno), &mut bytes, purpose)?;
        page::check(
            &bytes,
            pgno,
            self.durable_lsn.load(Ordering::Acquire),
            &self.geo,
        )?;
        Ok(bytes)
    }
}
