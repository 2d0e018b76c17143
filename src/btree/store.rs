//! Page access: the data file behind the buffer pool. Every page read from storage is checked
//! ([`page::check`]) before it enters the pool; a cached page is served without touching storage.
//!
//! A page on storage is either part of a durable state or a fresh page the pool wrote back (see
//! [`super::space`]); either way no page on storage is newer than the last batch applied, which
//! [`page::check`] verifies with `max_lsn`.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// LSN of the last batch applied: no page on storage may be newer (one that is was written by
    /// something else, or open fell back to an older header slot whose pages were reused since).
    pub max_lsn: AtomicU64,
}

/// A checkpoint frozen at batch boundary L: the header slot it will write, the pages to write, and the
/// WAL segment sealed at L.
#[derive(Debug)]
pub(crate) struct Frozen {
    /// The header slot the checkpoint writes (LSN L).
    pub header: Header,
    /// The pages dirty at L, ascending. They are durable pages of the next interval, so the writer never
    /// changes them again; each is still dirty in the pool until written (by the checkpoint, or by the pool
    /// on eviction).
    pub pages: Vec<u32>,
    /// The free-list pages of the header, sealed, in chain order.
    pub free_list: Vec<(u32, Vec<u8>)>,
    /// The last WAL segment holding batches ≤ L (`None` without a WAL, during recovery).
    pub sealed: Option<u64>,
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
        let bytes = self.read_checked(pgno, purpose)?;
        Ok(Fetched {
            page: self.pool.insert_clean(pgno, bytes.into_boxed_slice()),
            hit: false,
        })
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
            self.max_lsn.load(Ordering::Acquire),
            &self.geo,
        )?;
        Ok(bytes)
    }
}
