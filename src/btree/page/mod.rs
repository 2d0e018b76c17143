//! The page codec: the common page header with type, LSN and CRC, the slotted leaf and internal layouts,
//! overflow and free-list pages.
//!
//! Two views of a tree page exist:
//! - the **raw page** (`&[u8]`), read in place by the read path: [`leaf_search`], [`leaf_cell`],
//!   [`internal_child_for`] binary-search the slot array without allocating;
//! - the **decoded node** ([`LeafNode`], [`InternalNode`]), which the writer edits and encodes back.
//!
//! A page read from storage passes [`check`] (checksum, format, type, LSN, every cell within the page) before
//! anything else reads it; the accessors still bounds-check every read and report `Corruption` rather than
//! trust the page.
//!
//! # Page header (every page from 2 on; 32 bytes)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | type: 1 leaf, 2 internal, 3 overflow, 4 free list |
//! | 1 | 1 | page format (4) |
//! | 2 | 2 | cell count (leaf, internal); 0 otherwise |
//! | 4 | 4 | CRC-32 over the page number (4 bytes), bytes 0..4 and bytes 8..page_size |
//! | 8 | 8 | LSN of the batch that last changed the page |
//! | 16 | 4 | internal: leftmost child; overflow: next overflow page; free list: next free-list page; leaf: 0 |
//! | 20 | 4 | overflow: data bytes in this page; free list: entries in this page; otherwise 0 |
//! | 24 | 2 | leaf, internal: offset of the cell area (lowest cell) |
//! | 26 | 6 | zero |
//!
//! Bytes 16..24 of a leaf and 20..24 of an internal page are reserved: a nonzero byte is `Corruption`. (Format 1
//! kept leaf sibling links at 16 and 20; format 2 dropped them, so that a page can move to a new page
//! number without touching its neighbours, as copy-on-write checkpoints need; format 3 added overflow keys;
//! format 4 replaced the chain through free pages by free-list pages.
//! A database of an older format is `UnsupportedVersion` at open: `IDENTITY` and the header slots carry the
//! version.)
//!
//! The checksum covers the page number, so a page written to the wrong place fails as a damaged one does.
//! A page read from storage must also have an LSN no newer than the header in use: after falling back to
//! the older header slot, a page rewritten since is `Corruption`, never old data mixed with new.
//!
//! # Leaf and internal pages (slotted)
//!
//! After the header, a slot array of `count` little-endian `u16` cell offsets, in key order; cells are
//! packed from the end of the page down to the cell area offset. Lookups binary-search the slot array in
//! place.
//!
//! Leaf cell:
//!
//! | size | field |
//! |---|---|
//! | 2 | inline key bytes `p` |
//! | 1 | flags: bit 0 value in an overflow chain, bit 1 key in an overflow chain; other bits 0 |
//! | 4 | value length |
//! | 4 | (bit 0) first page of the value's chain |
//! | 4 | (bit 1) key length (up to 64 KiB, the LSM's limit) |
//! | 4 | (bit 1) first page of the key's chain |
//! | p | the key (bit 1 clear), or its first `p` bytes |
//! | value length | (bit 0 clear) value |
//!
//! Internal cell:
//!
//! | size | field |
//! |---|---|
//! | 2 | inline key bytes `p` |
//! | 1 | flags: bit 1 key in an overflow chain; other bits 0 |
//! | 4 | child page |
//! | 4 | (bit 1) key length |
//! | 4 | (bit 1) first page of the key's chain |
//! | p | the separator (bit 1 clear), or its first `p` bytes |
//!
//! Long keys (as SQLite stores them): a key of at most `max_inline_key` = `(page_size − 32) / 8` bytes (60 at
//! 512-byte pages, 508 at 4 KiB) is whole in its cell; a longer one keeps exactly its first
//! `max_inline_key` bytes inline and the rest (key length − `max_inline_key` bytes) in an overflow chain of
//! its own. Any other form is `Corruption`. So an internal cell is at most 77 bytes at 512-byte pages (an
//! internal page holds at least 6 separators) and a leaf at least 4 cells. A search compares the inline
//! bytes first, which decide unless the key sought starts with them and is longer; only then does it read
//! the chain, page by page, stopping at the first difference.
//!
//! A value stays inline if its cell (slot included) takes at most a quarter of the usable page
//! (`(page_size − 32) / 4`); otherwise it goes to an overflow chain.
//!
//! The internal page's leftmost child is in its header; the child right of separator `k` holds the keys
//! `≥ k`, and the separators bound the keys below them (the fence keys `verify` checks). Separators only
//! route: when a leaf splits or is redistributed, the writer stores the shortest prefix of the right page's
//! first key that is above the left page's last key (LevelDB's index keys), so a separator is often a few
//! bytes even when keys are long; when even that is longer than `max_inline_key` (keys sharing a long
//! prefix), it is stored like a long leaf key, with a chain owned by the separator (never shared with a
//! leaf cell). A separator that moves up in a split or down in a merge of internal pages keeps its chain;
//! one that is dropped (a merge of leaves) or replaced (a redistribution of leaves) has its chain freed.
//!
//! # Overflow pages
//!
//! Data bytes at offset 32, as many as the header's offset 20 says: every page of a chain is full
//! (`page_size − 32` bytes) except the last. A chain has exactly `⌈len / (page_size − 32)⌉` pages and its
//! last page links to 0; anything else is `Corruption`. A chain holds a value (`len` = value length) or the
//! rest of a long key or separator (`len` = key length − `max_inline_key`). Value chains are freed when their
//! value is overwritten or deleted, key chains when their key is deleted (an overwrite keeps the stored key),
//! separator chains as above.
//!
//! # Free-list pages
//!
//! The header's free list, written by each checkpoint to pages of its own: after the page header, as many
//! little-endian `u32` page numbers as offset 20 says (at most `(page_size − 32) / 4`), ascending across
//! the chain; offset 16 links the next list page. The chain has exactly `⌈count / capacity⌉` pages for the
//! header's count, and no entry is out of range, repeated or a list page. A free page itself may hold
//! anything (an old copy of a moved page, or a torn write after a crash): only the list says it is free.

use std::cmp::Ordering;

use crate::engine::LSM_MAX_KEY_LEN;
use crate::error::{Error, Result};

/// Bytes of the common page header.
pub(crate) const PAGE_HEADER_LEN: usize = 32;
/// The page format version stored in byte 1 of every page.
pub(crate) const PAGE_FORMAT: u8 = 4;
/// The data file's name.
pub(crate) const DATA_FILE: &str = "data";

/// Fixed bytes of a leaf cell: inline key bytes (2), flags (1), value length (4).
const LEAF_CELL_FIXED: usize = 7;
/// Extra bytes of a leaf cell whose value lives in an overflow chain: the first overflow page.
const LEAF_CELL_OVERFLOW: usize = 4;
/// Fixed bytes of an internal cell: inline key bytes (2), flags (1), child (4).
const INTERNAL_CELL_FIXED: usize = 7;
/// Extra bytes of a cell whose key lives in an overflow chain: key length (4), first overflow page (4).
const KEY_OVERFLOW: usize = 8;
/// Bytes of one slot-array entry.
const SLOT_LEN: usize = 2;

/// Cell flag: the value is in an overflow chain (leaf cells only).
const FLAG_VALUE_OVERFLOW: u8 = 1;
/// Cell flag: the key is longer than [`Geometry::max_inline_key`]; the cell holds its first
/// `max_inline_key` bytes and an overflow chain the rest.
const FLAG_KEY_OVERFLOW: u8 = 2;

/// The kind of a page, byte 0 of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageType {
    /// A B+tree leaf: keys and values (or overflow references).
    Leaf = 1,
    /// A B+tree internal page: separator keys and child page numbers.
    Internal = 2,
    /// One page of a large value's overflow chain.
    Overflow = 3,
    /// A page of the free list: page numbers that hold no data.
    Free = 4,
}

impl std::fmt::Display for PageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PageType::Leaf => "leaf",
            PageType::Internal => "internal",
            PageType::Overflow => "overflow",
            PageType::Free => "free-list",
        })
    }
}

/// `"a leaf page"`, or `"a page of unknown type"` for `None`: for error messages.
pub(crate) fn describe_type(kind: Option<PageType>) -> String {
    kind.map_or_else(
        || "a page of unknown type".to_string(),
        |k| format!("a {k} page"),
    )
}

impl PageType {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(PageType::Leaf),
            2 => Some(PageType::Internal),
            3 => Some(PageType::Overflow),
            4 => Some(PageType::Free),
            _ => None,
        }
    }
}

/// The page size and what derives from it, plus the error builder naming the data file and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Bytes per page.
    pub page_size: usize,
}

impl Geometry {
    /// Bytes of a page available to cells and slots.
    pub fn usable(&self) -> usize {
        self.page_size - PAGE_HEADER_LEN
    }

    /// Largest leaf cell (slot included) kept inline; larger values go to an overflow chain. A quarter of
    /// the usable space, so a split by bytes always leaves both halves within a page.
    pub fn max_inline_cell(&self) -> usize {
        self.usable() / 4
    }

    /// Value bytes one overflow page holds.
    pub fn overflow_capacity(&self) -> usize {
        self.usable()
    }

    /// Longest key kept whole in a cell (an eighth of the usable page): a longer key keeps this many
    /// bytes inline and the rest in an overflow chain. An internal page then holds at least 6 separators
    /// and a leaf at least 4 cells.
    pub fn max_inline_key(&self) -> usize {
        self.usable() / 8
    }

    /// Page numbers one free-list page lists.
    pub fn free_list_capacity(&self) -> usize {
        self.usable() / 4
    }

    /// Byte offset of page `pgno` in the data file.
    pub fn offset(&self, pgno: u32) -> u64 {
        u64::from(pgno) * self.page_size as u64
    }

    /// A `Corruption` error for page `pgno`.
    pub fn corrupt(&self, pgno: u32, what: impl Into<String>) -> Error {
        Error::corruption(
            DATA_FILE,
            Some(self.offset(pgno)),
            format!("page {pgno}: {}", what.into()),
        )
    }
}

// ---------------------------------------------------------------------------------------------------------
// Little-endian field access, bounds-checked.

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?)?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

/// Copies `src` into `dst` at `at`. Callers size `dst` first; an out-of-range write is a bug that is
/// caught in debug builds and dropped in release rather than panicking.
pub(crate) fn put_at(dst: &mut [u8], at: usize, src: &[u8]) {
    let end = at.saturating_add(src.len());
    match dst.get_mut(at..end) {
        Some(d) => d.copy_from_slice(src),
        None => debug_assert!(false, "write of {} bytes at {at} out of range", src.len()),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The common header.

/// The page's type, if byte 0 names one.
pub(crate) fn page_type(page: &[u8]) -> Option<PageType> {
    page.first().copied().and_then(PageType::from_byte)
}

/// Cells on a leaf or internal page.
pub(crate) fn cell_count(page: &[u8]) -> usize {
    u16_at(page, 2).map_or(0, usize::from)
}

/// The LSN of the batch that last changed the page.
pub(crate) fn page_lsn(page: &[u8]) -> u64 {
    u64_at(page, 8).unwrap_or(0)
}

/// Header field at 16: internal leftmost child, overflow or free next page (zero on a leaf).
pub(crate) fn link_a(page: &[u8]) -> u32 {
    u32_at(page, 16).unwrap_or(0)
}

/// Header field at 20: overflow data length (zero on leaf and internal pages).
pub(crate) fn link_b(page: &[u8]) -> u32 {
    u32_at(page, 20).unwrap_or(0)
}

fn content_start(page: &[u8]) -> usize {
    u16_at(page, 24).map_or(0, usize::from)
}

/// The page's checksum: CRC-32 over its page number (4 bytes, little-endian), bytes 0..4 and bytes 8..end,
/// so a page written to the wrong place fails as surely as a damaged one.
pub(crate) fn page_crc(page: &[u8], pgno: u32) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&pgno.to_le_bytes());
    h.update(page.get(..4).unwrap_or_default());
    h.update(page.get(8..).unwrap_or_default());
    h.finalize()
}

/// Stores the checksum of `page` as page `pgno`.
pub(crate) fn seal(page: &mut [u8], pgno: u32) {
    let crc = page_crc(page, pgno);
    put_at(page, 4, &crc.to_le_bytes());
}

fn new_page(geo: &Geometry, kind: PageType, lsn: u64) -> Vec<u8> {
    let mut p = vec![0u8; geo.page_size];
    put_at(&mut p, 0, &[kind as u8, PAGE_FORMAT]);
    put_at(&mut p, 8, &lsn.to_le_bytes());
    p
}

/// Checks a page read from storage as page `pgno`: size, checksum, format, a known type, an LSN no newer
/// than `max_lsn`, and for tree pages that the slot array and every cell lie within the page.
///
/// # Errors
/// `Corruption` naming the page and what failed.
pub(crate) fn check(page: &[u8], pgno: u32, max_lsn: u64, geo: &Geometry) -> Result<PageType> {
    if page.len() != geo.page_size {
        return Err(geo.corrupt(
            pgno,
            format!("{} bytes, expected {}", page.len(), geo.page_size),
        ));
    }
    let stored = u32_at(page, 4).unwrap_or(0);
    if stored != page_crc(page, pgno) {
        return Err(geo.corrupt(pgno, "checksum mismatch"));
    }
    check_structure(page, pgno, max_lsn, geo)
}

/// [`check`] without the checksum: for pages that live in memory (the checksum is set when written).
///
/// # Errors
/// `Corruption`.
pub(crate) fn check_structure(
    page: &[u8],
    pgno: u32,
    max_lsn: u64,
    geo: &Geometry,
) -> Result<PageType> {
    let version = page.get(1).copied().unwrap_or(0);
    if version != PAGE_FORMAT {
        return Err(geo.corrupt(
            pgno,
            format!("page format {version}, expected {PAGE_FORMAT}"),
        ));
    }
    let kind = page_type(page).ok_or_else(|| {
        geo.corrupt(
            pgno,
            match page.first() {
                Some(b) => format!("unknown page type {b}"),
                None => "empty page".to_string(),
            },
        )
    })?;
    let lsn = page_lsn(page);
    if lsn > max_lsn {
        return Err(geo.corrupt(
            pgno,
            format!("page LSN {lsn} is newer than the state read ({max_lsn})"),
        ));
    }
    // Reserved header bytes are written as zero (a leaf's 16..24 held sibling links before format 2):
    // accepting others would let a page decode to a node that re-encodes to different bytes.
    let reserved = match kind {
        PageType::Leaf => 16..24,
        PageType::Internal => 20..24,
        PageType::Overflow | PageType::Free => 0..0,
    };
    if page
        .get(reserved)
        .unwrap_or_default()
        .iter()
        .any(|&b| b != 0)
    {
        return Err(geo.corrupt(pgno, "nonzero reserved header bytes"));
    }
    match kind {
        PageType::Leaf | PageType::Internal => check_cells(page, pgno, kind, geo)?,
        PageType::Overflow => {
            if link_b(page) as usize > geo.overflow_capacity() {
                return Err(geo.corrupt(pgno, "overflow data length exceeds the page"));
            }
        }
        PageType::Free => {
            if link_b(page) as usize > geo.free_list_capacity() {
                return Err(geo.corrupt(pgno, "free-list count exceeds the page"));
            }
        }
    }
    Ok(kind)
}

fn check_cells(page: &[u8], pgno: u32, kind: PageType, geo: &Geometry) -> Result<()> {
    let n = cell_count(page);
    let slots_end = PAGE_HEADER_LEN + n * SLOT_LEN;
    let start = content_start(page);
    if slots_end > start || start > geo.page_size {
        return Err(geo.corrupt(
            pgno,
            format!("slot array of {n} cells ends at {slots_end}, cells start at {start}"),
        ));
    }
    for i in 0..n {
        let off = slot(page, i).ok_or_else(|| geo.corrupt(pgno, "slot out of range"))?;
        if off < start {
            return Err(geo.corrupt(pgno, format!("cell {i} at {off} precedes the cell area")));
        }
        let key = match kind {
            PageType::Leaf => leaf_cell_at(page, off).map(|(c, _)| c.key),
            _ => internal_cell_at(page, off).map(|(k, _, _)| k),
        };
        let Some(key) = key else {
            return Err(geo.corrupt(pgno, format!("cell {i} at {off} runs past the page")));
        };
        if !key_form_ok(key, geo) {
            return Err(geo.corrupt(pgno, format!("cell {i}: key stored in the wrong form")));
        }
    }
    Ok(())
}

/// A key is whole in its cell iff it is at most [`Geometry::max_inline_key`] bytes; a longer one (up to
/// the key limit) keeps exactly that many bytes inline.
fn key_form_ok(key: KeyRef<'_>, geo: &Geometry) -> bool {
    let max = geo.max_inline_key();
    match key {
        KeyRef::Inline(k) => k.len() <= max,
        KeyRef::Overflow { prefix, len, .. } => {
            prefix.len() == max && (len as usize) > max && (len as usize) <= LSM_MAX_KEY_LEN
        }
    }
}

/// Bytes a leaf or internal page's contents take: header, slot array and cells (not the holes replaced
/// cells leave behind); `None` if a cell is out of range or the page is of another type.
pub(crate) fn used_bytes(page: &[u8]) -> Option<usize> {
    let kind = page_type(page)?;
    let n = cell_count(page);
    let mut used = PAGE_HEADER_LEN + n * SLOT_LEN;
    for i in 0..n {
        let off = slot(page, i)?;
        used += match kind {
            PageType::Leaf => leaf_cell_at(page, off)?.1,
            PageType::Internal => internal_cell_at(page, off)?.2,
            PageType::Overflow | PageType::Free => return None,
        };
    }
    Some(used)
}

fn slot(page: &[u8], i: usize) -> Option<usize> {
    u16_at(page, PAGE_HEADER_LEN + i * SLOT_LEN).map(usize::from)
}

// ---------------------------------------------------------------------------------------------------------
// Leaf pages, raw.

/// Where a leaf cell's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueRef<'a> {
    /// In the cell.
    Inline(&'a [u8]),
    /// In an overflow chain of `len` bytes starting at page `first`.
    Overflow {
        /// Value length.
        len: u32,
        /// First overflow page.
        first: u32,
    },
}

/// A key as a cell holds it, read in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyRef<'a> {
    /// The whole key.
    Inline(&'a [u8]),
    /// A key of `len` bytes: its first bytes `prefix`, the rest in an overflow chain from page `first`.
    Overflow {
        /// The key's first [`Geometry::max_inline_key`] bytes.
        prefix: &'a [u8],
        /// The whole key's length.
        len: u32,
        /// First page of the chain holding the key's bytes after the prefix.
        first: u32,
    },
}

impl<'a> KeyRef<'a> {
    /// The owned form.
    pub fn to_stored(self) -> StoredKey {
        match self {
            KeyRef::Inline(k) => StoredKey::Inline(k.to_vec()),
            KeyRef::Overflow { prefix, len, first } => StoredKey::Overflow {
                prefix: prefix.to_vec(),
                len,
                first,
            },
        }
    }

    /// The bytes held in the cell (the whole key, or its prefix).
    pub fn inline_bytes(self) -> &'a [u8] {
        match self {
            KeyRef::Inline(k) | KeyRef::Overflow { prefix: k, .. } => k,
        }
    }
}

/// How stored key `k` compares with `key`, if the cell's bytes decide it: always for a whole key; for an
/// overflow key unless `key` starts with the prefix and is longer than it (then the chain decides).
pub(crate) fn prefix_cmp(k: KeyRef<'_>, key: &[u8]) -> Option<Ordering> {
    match k {
        KeyRef::Inline(b) => Some(b.cmp(key)),
        KeyRef::Overflow { prefix, .. } => {
            let m = prefix.len().min(key.len());
            match prefix.get(..m)?.cmp(key.get(..m)?) {
                Ordering::Equal if key.len() <= prefix.len() => Some(Ordering::Greater),
                Ordering::Equal => None,
                other => Some(other),
            }
        }
    }
}

/// A leaf cell read in place.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafCellRef<'a> {
    pub key: KeyRef<'a>,
    pub value: ValueRef<'a>,
}

/// Parses the key part of a cell whose flags are `flags`, starting at `at` (after the fixed and value
/// fields) with `inline` bytes in the cell; returns the key and where the cell's key bytes end.
fn key_at(page: &[u8], at: usize, inline: usize, flags: u8) -> Option<(KeyRef<'_>, usize)> {
    if flags & FLAG_KEY_OVERFLOW == 0 {
        let end = at.checked_add(inline)?;
        return Some((KeyRef::Inline(page.get(at..end)?), end));
    }
    let len = u32_at(page, at)?;
    let first = u32_at(page, at + 4)?;
    let k = at + KEY_OVERFLOW;
    let end = k.checked_add(inline)?;
    Some((
        KeyRef::Overflow {
            prefix: page.get(k..end)?,
            len,
            first,
        },
        end,
    ))
}

/// Parses the leaf cell at byte `off`; returns it and its length.
fn leaf_cell_at(page: &[u8], off: usize) -> Option<(LeafCellRef<'_>, usize)> {
    let inline = usize::from(u16_at(page, off)?);
    let flags = *page.get(off + 2)?;
    let val_len = u32_at(page, off + 3)?;
    if flags & !(FLAG_VALUE_OVERFLOW | FLAG_KEY_OVERFLOW) != 0 {
        return None;
    }
    let mut at = off + LEAF_CELL_FIXED;
    let value_first = if flags & FLAG_VALUE_OVERFLOW != 0 {
        at += LEAF_CELL_OVERFLOW;
        Some(u32_at(page, off + LEAF_CELL_FIXED)?)
    } else {
        None
    };
    let (key, key_end) = key_at(page, at, inline, flags)?;
    let (value, end) = match value_first {
        Some(first) => (
            ValueRef::Overflow {
                len: val_len,
                first,
            },
            key_end,
        ),
        None => {
            let end = key_end.checked_add(val_len as usize)?;
            (ValueRef::Inline(page.get(key_end..end)?), end)
        }
    };
    Some((LeafCellRef { key, value }, end - off))
}

/// Leaf cell `i`.
///
/// # Errors
/// `Corruption` if the slot or cell is out of range.
pub(crate) fn leaf_cell<'a>(
    page: &'a [u8],
    i: usize,
    pgno: u32,
    geo: &Geometry,
) -> Result<LeafCellRef<'a>> {
    slot(page, i)
        .and_then(|off| leaf_cell_at(page, off))
        .map(|(c, _)| c)
        .ok_or_else(|| geo.corrupt(pgno, format!("leaf cell {i} out of range")))
}

/// Binary search of a leaf: `Ok(i)` if cell `i` holds the key sought, `Err(i)` where it would go.
/// `cmp` compares a stored key with the key sought (see [`prefix_cmp`]; an overflow key may need its
/// chain, which the caller reads).
///
/// # Errors
/// `Corruption` if a cell is out of range; what `cmp` returns.
pub(crate) fn leaf_search(
    page: &[u8],
    pgno: u32,
    geo: &Geometry,
    cmp: &mut dyn FnMut(KeyRef<'_>) -> Result<Ordering>,
) -> Result<std::result::Result<usize, usize>> {
    let (mut lo, mut hi) = (0, cell_count(page));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match cmp(leaf_cell(page, mid, pgno, geo)?.key)? {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(Ok(mid)),
        }
    }
    Ok(Err(lo))
}

// ---------------------------------------------------------------------------------------------------------
// Internal pages, raw.

fn internal_cell_at(page: &[u8], off: usize) -> Option<(KeyRef<'_>, u32, usize)> {
    let inline = usize::from(u16_at(page, off)?);
    let flags = *page.get(off + 2)?;
    if flags & !FLAG_KEY_OVERFLOW != 0 {
        return None;
    }
    let child = u32_at(page, off + 3)?;
    let (key, end) = key_at(page, off + INTERNAL_CELL_FIXED, inline, flags)?;
    Some((key, child, end - off))
}

/// Separator `i` of an internal page and the child right of it.
///
/// # Errors
/// `Corruption` if out of range.
pub(crate) fn internal_cell<'a>(
    page: &'a [u8],
    i: usize,
    pgno: u32,
    geo: &Geometry,
) -> Result<(KeyRef<'a>, u32)> {
    slot(page, i)
        .and_then(|off| internal_cell_at(page, off))
        .map(|(k, c, _)| (k, c))
        .ok_or_else(|| geo.corrupt(pgno, format!("internal cell {i} out of range")))
}

/// Child `i` (0 = leftmost) of an internal page.
///
/// # Errors
/// `Corruption` if out of range.
pub(crate) fn internal_child(page: &[u8], i: usize, pgno: u32, geo: &Geometry) -> Result<u32> {
    if i == 0 {
        Ok(link_a(page))
    } else {
        internal_cell(page, i - 1, pgno, geo).map(|(_, c)| c)
    }
}

/// Points child `i` (0 = leftmost) of an internal page at `child` (a copy-on-write move of that child).
///
/// # Errors
/// `Corruption` if out of range.
pub(crate) fn set_internal_child(
    page: &mut [u8],
    i: usize,
    child: u32,
    pgno: u32,
    geo: &Geometry,
) -> Result<()> {
    let at = if i == 0 {
        16
    } else {
        slot(page, i - 1)
            .filter(|off| internal_cell_at(page, *off).is_some())
            .ok_or_else(|| geo.corrupt(pgno, format!("internal cell {} out of range", i - 1)))?
            + 3
    };
    put_at(page, at, &child.to_le_bytes());
    Ok(())
}

/// The child of an internal page whose subtree holds the key sought: child `i` where `i` is the number of
/// separators ≤ it (a separator is the smallest key its right subtree may hold). `cmp` compares a
/// separator with the key sought, as for [`leaf_search`]. Returns `(i, child)`.
///
/// # Errors
/// `Corruption` if a cell is out of range; what `cmp` returns.
pub(crate) fn internal_child_for(
    page: &[u8],
    pgno: u32,
    geo: &Geometry,
    cmp: &mut dyn FnMut(KeyRef<'_>) -> Result<Ordering>,
) -> Result<(usize, u32)> {
    let (mut lo, mut hi) = (0, cell_count(page));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if cmp(internal_cell(page, mid, pgno, geo)?.0)? != Ordering::Greater {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok((lo, internal_child(page, lo, pgno, geo)?))
}

// ---------------------------------------------------------------------------------------------------------
// Decoded nodes, for the writer.

/// A leaf value as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredValue {
    /// In the cell.
    Inline(Vec<u8>),
    /// In an overflow chain.
    Overflow {
        /// Value length.
        len: u32,
        /// First overflow page.
        first: u32,
    },
}

/// A key as stored in a cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredKey {
    /// The whole key, at most [`Geometry::max_inline_key`] bytes.
    Inline(Vec<u8>),
    /// A longer key: its first `max_inline_key` bytes, the rest in an overflow chain.
    Overflow {
        /// The key's first bytes.
        prefix: Vec<u8>,
        /// The whole key's length.
        len: u32,
        /// First page of the chain.
        first: u32,
    },
}

impl StoredKey {
    /// The borrowed form.
    pub fn as_ref(&self) -> KeyRef<'_> {
        match self {
            StoredKey::Inline(k) => KeyRef::Inline(k),
            StoredKey::Overflow { prefix, len, first } => KeyRef::Overflow {
                prefix,
                len: *len,
                first: *first,
            },
        }
    }

    /// Bytes the key takes in a cell: its inline bytes, plus the length and chain fields if it overflows.
    pub fn cell_bytes(&self) -> usize {
        match self {
            StoredKey::Inline(k) => k.len(),
            StoredKey::Overflow { prefix, .. } => KEY_OVERFLOW + prefix.len(),
        }
    }

    fn flag(&self) -> u8 {
        match self {
            StoredKey::Inline(_) => 0,
            StoredKey::Overflow { .. } => FLAG_KEY_OVERFLOW,
        }
    }

    fn inline_bytes(&self) -> &[u8] {
        match self {
            StoredKey::Inline(k) | StoredKey::Overflow { prefix: k, .. } => k,
        }
    }

    /// Appends the key part of a cell: length and chain fields (overflow only), then the inline bytes.
    fn encode_into(&self, out: &mut Vec<u8>) {
        if let StoredKey::Overflow { len, first, .. } = self {
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&first.to_le_bytes());
        }
        out.extend_from_slice(self.inline_bytes());
    }
}

/// A decoded leaf cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeafCell {
    pub key: StoredKey,
    pub value: StoredValue,
}

impl LeafCell {
    /// Bytes the cell takes on a page, its slot included.
    pub fn size(&self) -> usize {
        leaf_cell_size(&self.key, &self.value)
    }
}

/// Bytes a leaf cell takes on a page, its slot included.
pub(crate) fn leaf_cell_size(key: &StoredKey, value: &StoredValue) -> usize {
    SLOT_LEN
        + LEAF_CELL_FIXED
        + key.cell_bytes()
        + match value {
            StoredValue::Inline(v) => v.len(),
            StoredValue::Overflow { .. } => LEAF_CELL_OVERFLOW,
        }
}

/// Bytes a leaf cell with this key and an inline value of `value_len` bytes would take, its slot included.
pub(crate) fn inline_cell_size(key: &StoredKey, value_len: usize) -> usize {
    SLOT_LEN + LEAF_CELL_FIXED + key.cell_bytes() + value_len
}

/// A decoded leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafNode {
    pub cells: Vec<LeafCell>,
}

/// A decoded internal page: `first_child`, then `(separator, child)` pairs; the child right of a separator
/// holds keys ≥ it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InternalNode {
    pub first_child: u32,
    pub cells: Vec<(StoredKey, u32)>,
}

/// Bytes an internal cell takes on a page, its slot included.
pub(crate) fn internal_cell_size(key: &StoredKey) -> usize {
    SLOT_LEN + INTERNAL_CELL_FIXED + key.cell_bytes()
}

/// A decoded tree page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Leaf(LeafNode),
    Internal(InternalNode),
}

impl LeafNode {
    /// Bytes the encoded page needs.
    pub fn encoded_len(&self) -> usize {
        PAGE_HEADER_LEN + self.cells.iter().map(LeafCell::size).sum::<usize>()
    }

    /// Decodes a checked leaf page.
    ///
    /// # Errors
    /// `Corruption` if a cell is out of range.
    pub fn decode(page: &[u8], pgno: u32, geo: &Geometry) -> Result<Self> {
        let n = cell_count(page);
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            let c = leaf_cell(page, i, pgno, geo)?;
            cells.push(LeafCell {
                key: c.key.to_stored(),
                value: match c.value {
                    ValueRef::Inline(v) => StoredValue::Inline(v.to_vec()),
                    ValueRef::Overflow { len, first } => StoredValue::Overflow { len, first },
                },
            });
        }
        Ok(LeafNode { cells })
    }

    /// Encodes the leaf as a page with `lsn`. REQUIRES: `encoded_len() <= page_size`.
    pub fn encode(&self, lsn: u64, geo: &Geometry) -> Vec<u8> {
        let mut p = new_page(geo, PageType::Leaf, lsn);
        let mut end = geo.page_size;
        for (i, c) in self.cells.iter().enumerate() {
            let cell = encode_leaf_cell(&c.key, &c.value);
            end -= cell.len();
            put_at(&mut p, end, &cell);
            put_at(
                &mut p,
                PAGE_HEADER_LEN + i * SLOT_LEN,
                &(end as u16).to_le_bytes(),
            );
        }
        finish_tree_page(&mut p, self.cells.len(), end);
        p
    }
}

/// The bytes of a leaf cell (without its slot).
pub(crate) fn encode_leaf_cell(key: &StoredKey, value: &StoredValue) -> Vec<u8> {
    let mut cell = Vec::with_capacity(leaf_cell_size(key, value) - SLOT_LEN);
    cell.extend_from_slice(&(key.inline_bytes().len() as u16).to_le_bytes());
    match value {
        StoredValue::Inline(v) => {
            cell.push(key.flag());
            cell.extend_from_slice(&(v.len() as u32).to_le_bytes());
            key.encode_into(&mut cell);
            cell.extend_from_slice(v);
        }
        StoredValue::Overflow { len, first } => {
            cell.push(key.flag() | FLAG_VALUE_OVERFLOW);
            cell.extend_from_slice(&len.to_le_bytes());
            cell.extend_from_slice(&first.to_le_bytes());
            key.encode_into(&mut cell);
        }
    }
    cell
}

/// An internal cell: separator `key` and the child right of it.
pub(crate) fn encode_internal_cell(key: &StoredKey, child: u32) -> Vec<u8> {
    let mut cell = Vec::with_capacity(internal_cell_size(key) - SLOT_LEN);
    cell.extend_from_slice(&(key.inline_bytes().len() as u16).to_le_bytes());
    cell.push(key.flag());
    cell.extend_from_slice(&child.to_le_bytes());
    key.encode_into(&mut cell);
    cell
}

/// The stored form of a value read in place.
pub(crate) fn stored_value(v: ValueRef<'_>) -> StoredValue {
    match v {
        ValueRef::Inline(b) => StoredValue::Inline(b.to_vec()),
        ValueRef::Overflow { len, first } => StoredValue::Overflow { len, first },
    }
}

/// The writer's fastest path: puts `cell` (encoded by [`encode_leaf_cell`], or [`encode_internal_cell`]
/// for an internal page) into tree `page` in place, at
/// index `at`, replacing the cell there if `replace`, and stamps the page with `lsn`. The cell goes into the
/// free space between the slot array and the cell area; a replaced cell's bytes are left behind as a hole
/// (the format allows cells anywhere in the cell area), which [`leaf_rebuild`] reclaims. Returns false,
/// with the page unchanged, when that free space is too small or `at` is out of range.
pub(crate) fn put_cell_in_place(
    page: &mut [u8],
    at: usize,
    replace: bool,
    cell: &[u8],
    lsn: u64,
) -> bool {
    let n = cell_count(page);
    let start = content_start(page);
    let slots_end = PAGE_HEADER_LEN + n * SLOT_LEN;
    let need = cell.len() + if replace { 0 } else { SLOT_LEN };
    let in_range = if replace { at < n } else { at <= n };
    if !in_range || start > page.len() || start < slots_end + need {
        return false;
    }
    let cell_at = start - cell.len();
    put_at(page, cell_at, cell);
    let count = if replace {
        n
    } else {
        let from = PAGE_HEADER_LEN + at * SLOT_LEN;
        page.copy_within(from..slots_end, from + SLOT_LEN);
        n + 1
    };
    put_at(
        page,
        PAGE_HEADER_LEN + at * SLOT_LEN,
        &(cell_at as u16).to_le_bytes(),
    );
    put_at(page, 8, &lsn.to_le_bytes());
    finish_tree_page(page, count, cell_at);
    true
}

/// The writer's fast path: leaf `page` rebuilt with `new_cell` (encoded by [`encode_leaf_cell`]) inserted at
/// index `at`, or replacing cell `at` if `replace` (removing it if `new_cell` is `None`), by copying the
/// other cells' bytes — no decoding. Returns the page and the bytes it uses, or `None` if it would not fit
/// in a page (the caller then splits through the decoded form).
///
/// # Errors
/// `Corruption` if a cell of `page` is out of range.
pub(crate) fn leaf_rebuild(
    page: &[u8],
    pgno: u32,
    at: usize,
    replace: bool,
    new_cell: Option<&[u8]>,
    lsn: u64,
    geo: &Geometry,
) -> Result<Option<(Vec<u8>, usize)>> {
    let n = cell_count(page);
    let span = |j: usize| -> Result<&[u8]> {
        slot(page, j)
            .and_then(|off| {
                let (_, len) = leaf_cell_at(page, off)?;
                page.get(off..off + len)
            })
            .ok_or_else(|| geo.corrupt(pgno, format!("leaf cell {j} out of range")))
    };
    let kept = |j: usize| !(replace && j == at);
    let mut used = PAGE_HEADER_LEN + new_cell.map_or(0, |c| c.len() + SLOT_LEN);
    for j in (0..n).filter(|&j| kept(j)) {
        used += span(j)?.len() + SLOT_LEN;
    }
    if used > geo.page_size {
        return Ok(None);
    }
    let mut out = vec![0u8; geo.page_size];
    put_at(&mut out, 0, page.get(..PAGE_HEADER_LEN).unwrap_or_default());
    put_at(&mut out, 8, &lsn.to_le_bytes());
    let mut end = geo.page_size;
    let mut count = 0;
    let mut emit = |out: &mut Vec<u8>, bytes: &[u8]| {
        end -= bytes.len();
        put_at(out, end, bytes);
        put_at(
            out,
            PAGE_HEADER_LEN + count * SLOT_LEN,
            &(end as u16).to_le_bytes(),
        );
        count += 1;
    };
    for j in 0..=n {
        if j == at
            && let Some(c) = new_cell
        {
            emit(&mut out, c);
        }
        if j < n && kept(j) {
            emit(&mut out, span(j)?);
        }
    }
    finish_tree_page(&mut out, count, end);
    Ok(Some((out, used)))
}

fn finish_tree_page(p: &mut [u8], count: usize, content_start: usize) {
    put_at(p, 2, &(count as u16).to_le_bytes());
    // A full 64 KiB page would not fit `content_start` in a u16; page sizes stop at 16 KiB.
    put_at(p, 24, &(content_start as u16).to_le_bytes());
}

impl InternalNode {
    /// Bytes the encoded page needs.
    pub fn encoded_len(&self) -> usize {
        PAGE_HEADER_LEN
            + self
                .cells
                .iter()
                .map(|(k, _)| internal_cell_size(k))
                .sum::<usize>()
    }

    /// Child `i` (0 = leftmost).
    pub fn child(&self, i: usize) -> Option<u32> {
        if i == 0 {
            Some(self.first_child)
        } else {
            self.cells.get(i - 1).map(|(_, c)| *c)
        }
    }

    /// Points child `i` (0 = leftmost) at `pgno`; `None` if out of range.
    pub fn set_child(&mut self, i: usize, pgno: u32) -> Option<()> {
        match i.checked_sub(1) {
            None => self.first_child = pgno,
            Some(j) => self.cells.get_mut(j)?.1 = pgno,
        }
        Some(())
    }

    /// Decodes a checked internal page.
    ///
    /// # Errors
    /// `Corruption` if a cell is out of range.
    pub fn decode(page: &[u8], pgno: u32, geo: &Geometry) -> Result<Self> {
        let n = cell_count(page);
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            let (k, c) = internal_cell(page, i, pgno, geo)?;
            cells.push((k.to_stored(), c));
        }
        Ok(InternalNode {
            first_child: link_a(page),
            cells,
        })
    }

    /// Encodes the node as a page with `lsn`. REQUIRES: `encoded_len() <= page_size`.
    pub fn encode(&self, lsn: u64, geo: &Geometry) -> Vec<u8> {
        let mut p = new_page(geo, PageType::Internal, lsn);
        put_at(&mut p, 16, &self.first_child.to_le_bytes());
        let mut end = geo.page_size;
        for (i, (k, child)) in self.cells.iter().enumerate() {
            let cell = encode_internal_cell(k, *child);
            end -= cell.len();
            put_at(&mut p, end, &cell);
            put_at(
                &mut p,
                PAGE_HEADER_LEN + i * SLOT_LEN,
                &(end as u16).to_le_bytes(),
            );
        }
        finish_tree_page(&mut p, self.cells.len(), end);
        p
    }
}

impl Node {
    /// Bytes the encoded page needs.
    pub fn encoded_len(&self) -> usize {
        match self {
            Node::Leaf(l) => l.encoded_len(),
            Node::Internal(n) => n.encoded_len(),
        }
    }

    /// Encodes the node as a page with `lsn`.
    pub fn encode(&self, lsn: u64, geo: &Geometry) -> Vec<u8> {
        match self {
            Node::Leaf(l) => l.encode(lsn, geo),
            Node::Internal(n) => n.encode(lsn, geo),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Overflow and free pages.

/// An overflow page holding `data` (at most [`Geometry::overflow_capacity`] bytes), followed by page `next`
/// (0 at the end of the chain).
pub(crate) fn encode_overflow(next: u32, data: &[u8], lsn: u64, geo: &Geometry) -> Vec<u8> {
    let mut p = new_page(geo, PageType::Overflow, lsn);
    put_at(&mut p, 16, &next.to_le_bytes());
    put_at(&mut p, 20, &(data.len() as u32).to_le_bytes());
    put_at(&mut p, PAGE_HEADER_LEN, data);
    p
}

/// The data bytes of an overflow page.
pub(crate) fn overflow_data(page: &[u8]) -> Option<&[u8]> {
    page.get(PAGE_HEADER_LEN..PAGE_HEADER_LEN.checked_add(link_b(page) as usize)?)
}

/// A free-list page listing `entries` (at most [`Geometry::free_list_capacity`]), followed in the list by
/// page `next` (0 at the end).
pub(crate) fn encode_free_list(next: u32, entries: &[u32], lsn: u64, geo: &Geometry) -> Vec<u8> {
    let mut p = new_page(geo, PageType::Free, lsn);
    put_at(&mut p, 16, &next.to_le_bytes());
    put_at(&mut p, 20, &(entries.len() as u32).to_le_bytes());
    for (i, e) in entries.iter().enumerate() {
        put_at(&mut p, PAGE_HEADER_LEN + 4 * i, &e.to_le_bytes());
    }
    p
}

/// The page numbers a free-list page lists (its count is checked by [`check`]).
pub(crate) fn free_list_entries(page: &[u8]) -> impl Iterator<Item = u32> + '_ {
    (0..link_b(page) as usize).map_while(move |i| u32_at(page, PAGE_HEADER_LEN + 4 * i))
}

#[cfg(test)]
mod tests;
