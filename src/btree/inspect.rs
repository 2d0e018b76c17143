//! The B-tree side of [`crate::inspect`]: one page decoded ([`btree_page`]) and the tree as the last
//! checkpoint left it ([`btree_summary`]), read from the data file with the page and header codecs.

use std::path::Path;

use super::BTREE_FORMAT_VERSION;
use super::header::{Header, SLOT_BYTES};
use super::open::open_data_file;
use super::options::valid_page_size;
use super::page::{self, DATA_FILE, Geometry, KeyRef, PageType, ValueRef};
use crate::error::{EngineKind, Error, Result};
use crate::identity::IDENTITY_FILE;
use crate::storage::{File, ReadPurpose, Storage};

/// A header slot (page 0 or 1): what a checkpoint committed.
///
/// # Examples
///
/// See [`btree_summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BTreeHeader {
    /// The slot: 0 or 1 (`checkpoint % 2`).
    pub slot: u32,
    /// Format version of the data file.
    pub format_version: u32,
    /// Bytes per page.
    pub page_size: u32,
    /// Checkpoints completed when it was written.
    pub checkpoint: u64,
    /// The last batch (LSN) the checkpoint includes.
    pub lsn: u64,
    /// The root page.
    pub root: u32,
    /// Levels of internal pages above the leaves.
    pub height: u32,
    /// The first free-list page (0: none).
    pub free_list_head: u32,
    /// Free pages the list names.
    pub free_pages: u32,
    /// Pages in the file, the header pages included.
    pub page_count: u32,
    /// The first live WAL segment (0: not recorded).
    pub wal_first: u64,
}

impl BTreeHeader {
    fn new(h: &Header) -> Self {
        BTreeHeader {
            slot: (h.counter % 2) as u32,
            format_version: h.version,
            page_size: h.page_size,
            checkpoint: h.counter,
            lsn: h.lsn,
            root: h.root,
            height: h.height,
            free_list_head: h.free_head,
            free_pages: h.free_count,
            page_count: h.page_count,
            wal_first: h.wal_first,
        }
    }
}

/// What a page is, from its type byte (pages 0 and 1 are the header slots).
///
/// # Examples
///
/// See [`btree_page`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageKind {
    /// Page 0 or 1: a header slot.
    Header,
    /// A leaf: keys and values.
    Leaf,
    /// An internal page: separators and children.
    Internal,
    /// A page of an overflow chain (a long value, key or separator).
    Overflow,
    /// A page of the free list.
    FreeList,
    /// A type byte no page has (a free page may hold anything).
    Unknown(u8),
}

impl std::fmt::Display for PageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageKind::Header => f.write_str("header slot"),
            PageKind::Leaf => f.write_str("leaf"),
            PageKind::Internal => f.write_str("internal"),
            PageKind::Overflow => f.write_str("overflow"),
            PageKind::FreeList => f.write_str("free-list"),
            PageKind::Unknown(b) => write!(f, "unknown type {b}"),
        }
    }
}

/// One cell of a leaf or internal page.
///
/// # Examples
///
/// See [`btree_page`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageCell {
    /// The key bytes in the cell: the whole key, or its first bytes if the rest is in an overflow chain.
    pub key: Vec<u8>,
    /// The whole key's length.
    pub key_len: u64,
    /// The first page of the key's overflow chain, if it has one.
    pub key_overflow: Option<u32>,
    /// Leaf cells: the value's length.
    pub value_len: Option<u64>,
    /// Leaf cells: the first page of the value's overflow chain, if it has one.
    pub value_overflow: Option<u32>,
    /// Internal cells: the child holding the keys from this separator on.
    pub child: Option<u32>,
}

/// One page of a B-tree's data file, decoded.
///
/// # Examples
///
/// See [`btree_page`].
#[derive(Debug)]
#[non_exhaustive]
pub struct BTreePage {
    /// The page number.
    pub number: u32,
    /// Its offset in the data file.
    pub offset: u64,
    /// Bytes per page.
    pub page_size: u32,
    /// What it is.
    pub kind: PageKind,
    /// The page format byte (0 for a header slot).
    pub format: u8,
    /// The LSN of the batch that last changed it (0 for a header slot).
    pub lsn: u64,
    /// Whether its checksum matches (a header slot: whether the slot is valid).
    pub checksum_ok: bool,
    /// Pages 0 and 1: the slot, if valid.
    pub header: Option<BTreeHeader>,
    /// Internal: the leftmost child; overflow and free-list pages: the next page of the chain (0: end).
    pub next: Option<u32>,
    /// Leaf and internal pages: the cells in key order.
    pub cells: Vec<PageCell>,
    /// Leaf and internal pages: bytes the header, slots and cells take.
    pub used_bytes: Option<u64>,
    /// Overflow pages: the data bytes it holds.
    pub overflow_bytes: Option<u32>,
    /// Free-list pages: the free page numbers it lists.
    pub free_entries: Vec<u32>,
    /// The first check the page fails (checksum, format, type, structure), naming the data file and
    /// offset; `None` if it passes. A free page may hold anything, so on one this is not damage.
    pub problem: Option<Error>,
}

/// The page size of the B-tree database in `dir`, from its `IDENTITY`.
fn geometry(dir: &Path) -> Result<(Storage, Geometry)> {
    let id = crate::inspect::identity(dir)?;
    if id.engine != EngineKind::BTree {
        return Err(Error::WrongEngine {
            expected: EngineKind::BTree,
            found: id.engine,
        });
    }
    let page_size = id.page_size as usize;
    if !valid_page_size(page_size) {
        return Err(Error::corruption(
            IDENTITY_FILE,
            Some(16),
            format!("page size {page_size} is not a power of two in 512..=16384"),
        ));
    }
    let storage = Storage::os(dir, false)?.into_read_only();
    Ok((storage, Geometry { page_size }))
}

fn read_page(file: &File, geo: &Geometry, pgno: u32) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; geo.page_size];
    file.read_exact_at(geo.offset(pgno), &mut bytes, ReadPurpose::Verify)?;
    Ok(bytes)
}

/// Decodes page `number` of the B-tree database in `dir`: its header fields, its cells, its checksum. A
/// page that fails its checks is still returned, with what fails in [`BTreePage::problem`].
///
/// # Examples
///
/// ```
/// use rumdb::inspect::{PageKind, btree_page};
/// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
/// let dir = tempfile::tempdir()?;
/// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
/// db.put("k", "v")?;
/// db.close()?; // checkpoints
/// let root = rumdb::inspect::btree_summary(dir.path())?.header.root;
/// let page = btree_page(dir.path(), root)?;
/// assert_eq!((page.kind, page.checksum_ok, page.cells.len()), (PageKind::Leaf, true, 1));
/// assert_eq!(page.cells[0].key, b"k");
/// assert!(btree_page(dir.path(), 1 << 30).is_err()); // past the end of the file
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// # Errors
/// `InvalidArgument` if the page is past the end of the data file; `WrongEngine` if `dir` holds an
/// LSM database; `Corruption` if `IDENTITY` is damaged or the data file missing; `Io`.
pub fn btree_page(dir: &Path, number: u32) -> Result<BTreePage> {
    let (storage, geo) = geometry(dir)?;
    let file = storage.open_required(DATA_FILE, false)?;
    let len = file.len()?;
    let pages = len / geo.page_size as u64;
    if u64::from(number) >= pages {
        return Err(Error::invalid(format!(
            "page {number} is out of range: {DATA_FILE} holds {pages} pages of {} bytes ({len} bytes), \
             so offset {} is past its end",
            geo.page_size,
            geo.offset(number)
        )));
    }
    let bytes = read_page(&file, &geo, number)?;
    let mut p = BTreePage {
        number,
        offset: geo.offset(number),
        page_size: geo.page_size as u32,
        kind: PageKind::Header,
        format: 0,
        lsn: 0,
        checksum_ok: false,
        header: None,
        next: None,
        cells: Vec::new(),
        used_bytes: None,
        overflow_bytes: None,
        free_entries: Vec::new(),
        problem: None,
    };
    if number < 2 {
        match Header::decode(
            bytes.get(..SLOT_BYTES).unwrap_or_default(),
            number,
            geo.page_size as u32,
            BTREE_FORMAT_VERSION,
        ) {
            Ok(h) => {
                p.checksum_ok = true;
                p.lsn = h.lsn;
                p.header = Some(BTreeHeader::new(&h));
            }
            Err(e) => p.problem = Some(e),
        }
        return Ok(p);
    }
    let type_byte = bytes.first().copied().unwrap_or(0);
    p.format = bytes.get(1).copied().unwrap_or(0);
    p.lsn = page::page_lsn(&bytes);
    p.checksum_ok = page::u32_at(&bytes, 4) == Some(page::page_crc(&bytes, number));
    let structure = page::check_structure(&bytes, number, u64::MAX, &geo);
    p.kind = match page::page_type(&bytes) {
        Some(PageType::Leaf) => PageKind::Leaf,
        Some(PageType::Internal) => PageKind::Internal,
        Some(PageType::Overflow) => PageKind::Overflow,
        Some(PageType::Free) => PageKind::FreeList,
        None => PageKind::Unknown(type_byte),
    };
    if !p.checksum_ok {
        p.problem = Some(geo.corrupt(number, "checksum mismatch"));
    }
    match structure {
        Err(e) => {
            p.problem.get_or_insert(e);
        }
        Ok(kind) => decode_contents(&mut p, &bytes, kind, &geo)?,
    }
    Ok(p)
}

/// Fills in the cells, links and entries of a page whose structure checked out.
fn decode_contents(p: &mut BTreePage, bytes: &[u8], kind: PageType, geo: &Geometry) -> Result<()> {
    let n = p.number;
    let key_cell = |key: KeyRef<'_>| match key {
        KeyRef::Inline(k) => (k.to_vec(), k.len() as u64, None),
        KeyRef::Overflow { prefix, len, first } => (prefix.to_vec(), u64::from(len), Some(first)),
    };
    match kind {
        PageType::Leaf => {
            for i in 0..page::cell_count(bytes) {
                let cell = page::leaf_cell(bytes, i, n, geo)?;
                let (key, key_len, key_overflow) = key_cell(cell.key);
                let (value_len, value_overflow) = match cell.value {
                    ValueRef::Inline(v) => (v.len() as u64, None),
                    ValueRef::Overflow { len, first } => (u64::from(len), Some(first)),
                };
                p.cells.push(PageCell {
                    key,
                    key_len,
                    key_overflow,
                    value_len: Some(value_len),
                    value_overflow,
                    child: None,
                });
            }
            p.used_bytes = page::used_bytes(bytes).map(|u| u as u64);
        }
        PageType::Internal => {
            p.next = Some(page::link_a(bytes));
            for i in 0..page::cell_count(bytes) {
                let (k, child) = page::internal_cell(bytes, i, n, geo)?;
                let (key, key_len, key_overflow) = key_cell(k);
                p.cells.push(PageCell {
                    key,
                    key_len,
                    key_overflow,
                    value_len: None,
                    value_overflow: None,
                    child: Some(child),
                });
            }
            p.used_bytes = page::used_bytes(bytes).map(|u| u as u64);
        }
        PageType::Overflow => {
            p.next = Some(page::link_a(bytes));
            p.overflow_bytes = Some(page::link_b(bytes));
        }
        PageType::Free => {
            p.next = Some(page::link_a(bytes));
            p.free_entries = page::free_list_entries(bytes).collect();
        }
    }
    Ok(())
}

/// The tree the last checkpoint left in the data file: pages by type, free pages, fill factor, height.
/// Batches in the WAL since that checkpoint are not in it (an open replays them).
///
/// # Examples
///
/// See [`btree_summary`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BTreeSummary {
    /// The header slot in use (the valid one with the higher checkpoint counter).
    pub header: BTreeHeader,
    /// Why the other slot is invalid, if it is (after a crash during a checkpoint, expected).
    pub other_slot_problem: Option<String>,
    /// Levels, leaves included (the header's height + 1).
    pub levels: u32,
    /// Leaf pages.
    pub leaf_pages: u64,
    /// Internal pages.
    pub internal_pages: u64,
    /// Pages of overflow chains (long values, keys and separators).
    pub overflow_pages: u64,
    /// Pages holding the free list.
    pub free_list_pages: u64,
    /// Free pages the list names.
    pub free_pages: u64,
    /// Pages below the header's page count that are none of the above (freed since, pending the next
    /// checkpoint's list) — 0 after a clean close.
    pub other_pages: u64,
    /// Entries in the leaves.
    pub entries: u64,
    /// Bytes the leaf and internal pages use (headers, slots, cells).
    pub used_bytes: u64,
    /// `used_bytes` over the bytes of the leaf and internal pages (0 without pages).
    pub fill_factor: f64,
}

/// Walks the tree of the header slot in use, from the root, checking every page it reads (checksum,
/// structure, type, an LSN no newer than the header's), and counts pages by type.
///
/// # Examples
///
/// ```
/// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
/// let dir = tempfile::tempdir()?;
/// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
/// for i in 0..2000u32 {
///     db.put(format!("key{i:05}"), "value")?;
/// }
/// db.close()?;
/// let s = rumdb::inspect::btree_summary(dir.path())?;
/// assert_eq!(s.entries, 2000);
/// assert!(s.levels >= 2 && s.internal_pages >= 1);
/// assert!(s.fill_factor > 0.3 && s.fill_factor <= 1.0);
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// # Errors
/// `Corruption` naming the data file and the offset of the first damaged page (or both header slots);
/// `WrongEngine` for an LSM directory; `UnsupportedVersion`; `Io`.
pub fn btree_summary(dir: &Path) -> Result<BTreeSummary> {
    let (storage, geo) = geometry(dir)?;
    let (file, header, other_bad) = open_data_file(&storage, &geo, false)?;
    let mut w = Walk {
        file: &file,
        geo,
        header: &header,
        seen: vec![false; header.page_count as usize],
        s: BTreeSummary {
            header: BTreeHeader::new(&header),
            other_slot_problem: other_bad,
            levels: header.height + 1,
            leaf_pages: 0,
            internal_pages: 0,
            overflow_pages: 0,
            free_list_pages: 0,
            free_pages: u64::from(header.free_count),
            other_pages: 0,
            entries: 0,
            used_bytes: 0,
            fill_factor: 0.0,
        },
    };
    w.tree()?;
    let mut next = header.free_head;
    while next != 0 {
        let bytes = w.visit(next, PageType::Free)?;
        w.s.free_list_pages += 1;
        next = page::link_a(&bytes);
    }
    let s = &mut w.s;
    let accounted =
        2 + s.leaf_pages + s.internal_pages + s.overflow_pages + s.free_list_pages + s.free_pages;
    s.other_pages = u64::from(header.page_count).saturating_sub(accounted);
    let tree_bytes = (s.leaf_pages + s.internal_pages) * geo.page_size as u64;
    if tree_bytes > 0 {
        s.fill_factor = s.used_bytes as f64 / tree_bytes as f64;
    }
    Ok(w.s)
}

struct Walk<'a> {
    file: &'a File,
    geo: Geometry,
    header: &'a Header,
    seen: Vec<bool>,
    s: BTreeSummary,
}

impl Walk<'_> {
    /// Reads and checks page `pgno`, which must be of type `expect` and not seen before.
    fn visit(&mut self, pgno: u32, expect: PageType) -> Result<Vec<u8>> {
        let geo = self.geo;
        let slot = self
            .seen
            .get_mut(pgno as usize)
            .filter(|_| pgno >= 2)
            .ok_or_else(|| geo.corrupt(pgno, "page number out of range"))?;
        if std::mem::replace(slot, true) {
            return Err(geo.corrupt(pgno, "page reached twice"));
        }
        let bytes = read_page(self.file, &geo, pgno)?;
        let kind = page::check(&bytes, pgno, self.header.lsn, &geo)?;
        if kind != expect {
            return Err(geo.corrupt(
                pgno,
                format!(
                    "{} where {} was expected",
                    page::describe_type(Some(kind)),
                    page::describe_type(Some(expect))
                ),
            ));
        }
        Ok(bytes)
    }

    /// Counts the pages of the overflow chain from `first` holding `len` bytes.
    fn chain(&mut self, first: u32, len: u64) -> Result<()> {
        let pages = len.div_ceil(self.geo.overflow_capacity() as u64);
        let mut next = first;
        for _ in 0..pages {
            let bytes = self.visit(next, PageType::Overflow)?;
            self.s.overflow_pages += 1;
            next = page::link_a(&bytes);
        }
        Ok(())
    }

    fn key_chain(&mut self, key: KeyRef<'_>) -> Result<()> {
        match key {
            KeyRef::Inline(_) => Ok(()),
            KeyRef::Overflow { len, first, .. } => {
                let rest = u64::from(len).saturating_sub(self.geo.max_inline_key() as u64);
                self.chain(first, rest)
            }
        }
    }

    /// The tree from the root, depth first; every leaf at the header's height.
    fn tree(&mut self) -> Result<()> {
        let geo = self.geo;
        let mut stack = vec![(self.header.root, self.header.height)];
        while let Some((pgno, height)) = stack.pop() {
            let expect = if height == 0 {
                PageType::Leaf
            } else {
                PageType::Internal
            };
            let bytes = self.visit(pgno, expect)?;
            self.s.used_bytes += page::used_bytes(&bytes).unwrap_or(0) as u64;
            let n = page::cell_count(&bytes);
            if height == 0 {
                self.s.leaf_pages += 1;
                self.s.entries += n as u64;
                for i in 0..n {
                    let cell = page::leaf_cell(&bytes, i, pgno, &geo)?;
                    self.key_chain(cell.key)?;
                    if let ValueRef::Overflow { len, first } = cell.value {
                        self.chain(first, u64::from(len))?;
                    }
                }
                continue;
            }
            self.s.internal_pages += 1;
            stack.push((page::link_a(&bytes), height - 1));
            for i in 0..n {
                let (key, child) = page::internal_cell(&bytes, i, pgno, &geo)?;
                self.key_chain(key)?;
                stack.push((child, height - 1));
            }
        }
        Ok(())
    }
}
