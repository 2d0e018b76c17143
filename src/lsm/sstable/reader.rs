//! Reading a table: [`Table::open`] validates the footer, properties, index and filter; [`Table::get`]
//! answers point lookups; [`Table::verify`] checks every block.

use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::lsm::key::{self, ValueKind};
use crate::lsm::range_del::{self, RangeTombstone};
use crate::storage::{File, IoCounters, Mapping, ReadPurpose, Storage};

use super::block::{Block, BlockIter};
use super::cache::BlockCache;
use super::filter::Filter;
use super::format::{
    BLOCK_RAW, BLOCK_ZSTD, BlockHandle, FOOTER_LEN, Footer, TRAILER_LEN, TableProperties, Trailer,
    check_trailer,
};
use super::iter::TableIter;
use super::{ReadPath, table_file_name};

/// Per-call read counters, which the engine folds into its [`Stats`](crate::Stats).
///
/// The index and the filter live in memory: probing either counts as an index touch (never a fetch); a
/// data block counts as touched whenever it is used and as fetched when it had to be read (or, under
/// mmap, decoded) after a cache miss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Data blocks read from storage (cache misses).
    pub data_fetches: u64,
    /// Index or filter blocks read from storage (only at open: they stay in memory).
    pub index_fetches: u64,
    /// Data blocks used, cache hits included.
    pub data_touches: u64,
    /// Index and filter probes.
    pub index_touches: u64,
    /// Data blocks found in the block cache.
    pub cache_hits: u64,
    /// Bloom filter probes.
    pub bloom_probes: u64,
    /// Probes the filter answered "absent".
    pub bloom_negatives: u64,
}

impl From<ReadStats> for crate::stats::ReadCounters {
    fn from(s: ReadStats) -> Self {
        crate::stats::ReadCounters {
            gets: 0,
            data_fetches: s.data_fetches,
            index_fetches: s.index_fetches,
            data_touches: s.data_touches,
            index_touches: s.index_touches,
            cache_hits: s.cache_hits,
            bloom_probes: s.bloom_probes,
            bloom_negatives: s.bloom_negatives,
        }
    }
}

impl ReadStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ReadStats) {
        self.data_fetches += other.data_fetches;
        self.index_fetches += other.index_fetches;
        self.data_touches += other.data_touches;
        self.index_touches += other.index_touches;
        self.cache_hits += other.cache_hits;
        self.bloom_probes += other.bloom_probes;
        self.bloom_negatives += other.bloom_negatives;
    }
}

thread_local! {
    /// One reused zstd decompression context per reading thread.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decodes a zstd frame that must produce exactly `raw_len` bytes (already bounded by the trailer check).
fn decompress(stored: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw_len);
    DECOMPRESSOR.with(|cell| -> std::io::Result<()> {
        let mut fresh = None;
        let mut borrowed = cell.try_borrow_mut().ok();
        let slot = borrowed.as_deref_mut().unwrap_or(&mut fresh);
        let decompressor = match slot {
            Some(d) => d,
            empty => empty.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress_to_buffer(stored, &mut out)?;
        Ok(())
    })?;
    if out.len() != raw_len {
        return Err(std::io::Error::other("frame decodes to the wrong length"));
    }
    Ok(out)
}

/// Where a table's bytes come from: the map, or positioned reads.
struct Source {
    number: u64,
    file: File,
    map: Option<Mapping>,
    counters: Arc<IoCounters>,
    file_size: u64,
}

impl Source {
    fn corruption(&self, offset: Option<u64>, what: impl Into<String>) -> Error {
        Error::corruption(table_file_name(self.number), offset, what)
    }

    /// `len` bytes at `offset`, checked to lie inside the file before anything is allocated.
    fn read(&self, offset: u64, len: u64, purpose: ReadPurpose) -> Result<Cow<'_, [u8]>> {
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= self.file_size)
            .ok_or_else(|| self.corruption(Some(offset), "region runs past the end of the file"))?;
        let (Ok(start), Ok(end)) = (usize::try_from(offset), usize::try_from(end)) else {
            return Err(self.corruption(Some(offset), "region beyond the address space"));
        };
        match &self.map {
            // Open-time reads (footer, properties, index, filter) go through `pread`: a first touch of a
            // cold mapping makes the kernel read around the faulting page (up to the device's
            // read-ahead, 8 MiB on the project's VM), which made a reopen of 1M keys read 12 MiB from
            // the device for 2 MiB of filters and indexes; with `pread` it reads 2.2 MiB.
            Some(map) if purpose != ReadPurpose::Recovery => {
                let bytes = map
                    .get(start..end)
                    .ok_or_else(|| self.corruption(Some(offset), "region beyond the mapping"))?;
                self.counters.add_read(purpose, len);
                Ok(Cow::Borrowed(bytes))
            }
            _ => {
                let mut buf = vec![0u8; end - start];
                self.file.read_exact_at(offset, &mut buf, purpose)?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// The decoded contents of the block at `handle`: trailer checked, decompressed if it may be.
    fn read_block(&self, handle: BlockHandle, purpose: ReadPurpose, zstd: bool) -> Result<Vec<u8>> {
        self.read_block_with_trailer(handle, purpose, zstd)
            .map(|(block, _)| block)
    }

    /// [`Source::read_block`], also returning the block's checked trailer (its stored type and decoded
    /// length).
    fn read_block_with_trailer(
        &self,
        handle: BlockHandle,
        purpose: ReadPurpose,
        zstd: bool,
    ) -> Result<(Vec<u8>, Trailer)> {
        let at = Some(handle.offset);
        let bytes = self.read(
            handle.offset,
            handle.size.saturating_add(TRAILER_LEN as u64),
            purpose,
        )?;
        let (stored, trailer) = bytes
            .split_last_chunk::<TRAILER_LEN>()
            .ok_or_else(|| self.corruption(at, "block shorter than its trailer"))?;
        let trailer = check_trailer(stored, trailer).map_err(|what| self.corruption(at, what))?;
        let block = match trailer.kind {
            BLOCK_RAW => match bytes {
                Cow::Owned(mut v) => {
                    v.truncate(trailer.raw_len);
                    v
                }
                Cow::Borrowed(_) => stored.to_vec(),
            },
            BLOCK_ZSTD if zstd => decompress(stored, trailer.raw_len)
                .map_err(|e| self.corruption(at, format!("zstd block does not decode: {e}")))?,
            _ => return Err(self.corruption(at, "metadata block is not raw")),
        };
        Ok((block, trailer))
    }
}

/// An open table: the index and filter in memory, data blocks through the shared [`BlockCache`].
pub struct Table {
    source: Source,
    cache: Arc<BlockCache>,
    index: Arc<Block>,
    filter: Option<Filter>,
    filter_damage: Option<(u64, &'static str)>,
    props: TableProperties,
    /// The range-deletion block, decoded at open (empty without one).
    range_dels: Vec<RangeTombstone>,
    footer: Footer,
    open_stats: ReadStats,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("number", &self.source.number)
            .field("file_size", &self.source.file_size)
            .field("entries", &self.props.entries)
            .field("mapped", &self.source.map.is_some())
            .finish()
    }
}

impl Table {
    /// Opens table `number`, whose length the manifest records as `file_size`, and validates its footer,
    /// properties, index and filter. A filter that fails its checks is ignored (reads fall back to the
    /// data blocks) and reported by [`Table::filter_damage`] and [`Table::verify`], never trusted.
    ///
    /// Reads count as `purpose`. Allocates at most the file size.
    ///
    /// # Errors
    /// `Corruption` if the file is missing, its length is not `file_size`, or the footer, properties or
    /// index are damaged; `UnsupportedVersion` for a newer format; `Io`.
    pub fn open(
        storage: &Storage,
        number: u64,
        file_size: u64,
        read_path: ReadPath,
        cache: Arc<BlockCache>,
        purpose: ReadPurpose,
    ) -> Result<Arc<Table>> {
        let name = table_file_name(number);
        let file = storage.open_required(&name, false)?;
        let actual = file.len()?;
        if actual != file_size {
            return Err(Error::corruption(
                name,
                None,
                format!("file is {actual} bytes, the manifest says {file_size}"),
            ));
        }
        let map = match read_path {
            // Too short to be a table: fail below with the footer check, not in the map call.
            ReadPath::Mmap if file_size >= FOOTER_LEN as u64 => file.map()?,
            ReadPath::Mmap | ReadPath::Pread => None,
        };
        let source = Source {
            number,
            file,
            map: map.filter(|m| m.len() as u64 == file_size),
            counters: Arc::clone(storage.counters()),
            file_size,
        };
        let layout = Layout::read(&source, purpose)?;
        let props_bytes = source.read_block(layout.footer.properties, purpose, false)?;
        let props = TableProperties::decode(&props_bytes).ok_or_else(|| {
            source.corruption(
                Some(layout.footer.properties.offset),
                "malformed properties block",
            )
        })?;
        drop(props_bytes);
        let range_dels = read_range_dels(&source, &layout, &props, purpose)?;
        let index_data = source.read_block(layout.footer.index, purpose, false)?;
        let index = Arc::new(Block::new(index_data, number, layout.footer.index.offset)?);
        let mut table = Table {
            source,
            cache,
            index,
            filter: None,
            filter_damage: None,
            props,
            footer: layout.footer,
            // Footer, properties and index (and the range-deletion block); the filter is counted when
            // there is one.
            open_stats: ReadStats {
                index_fetches: 3 + u64::from(!range_dels.is_empty()),
                ..ReadStats::default()
            },
            range_dels,
        };
        table.check_index(layout.data_end)?;
        table.check_properties(&layout)?;
        table.load_filter(layout.footer.filter, purpose)?;
        Ok(Arc::new(table))
    }

    /// Every index entry: decodable separator keys in strictly increasing order, handles tiling the data
    /// area from 0 to `data_end` without gaps.
    fn check_index(&self, data_end: u64) -> Result<()> {
        let at = Some(self.index.file_offset());
        let mut it = BlockIter::new(Arc::clone(&self.index));
        it.seek_to_first()?;
        let mut expected = 0u64;
        let mut blocks = 0u64;
        let mut prev: Option<Vec<u8>> = None;
        while it.valid() {
            let handle = self.handle(&it)?;
            if handle.offset != expected {
                return Err(self.corruption(at, "data block handles leave a gap or overlap"));
            }
            expected = handle
                .end(TRAILER_LEN as u64)
                .filter(|&end| end <= data_end)
                .ok_or_else(|| self.corruption(at, "data block handle past the data area"))?;
            if key::decode(it.key()).is_none() {
                return Err(self.corruption(at, "index key is not an internal key"));
            }
            if let Some(p) = &prev
                && key::compare(p, it.key()) != Ordering::Less
            {
                return Err(self.corruption(at, "index keys out of order"));
            }
            prev = Some(it.key().to_vec());
            blocks += 1;
            it.next()?;
        }
        if expected != data_end {
            return Err(self.corruption(at, "data blocks do not fill the data area"));
        }
        if blocks != self.props.data_blocks {
            return Err(self.corruption(at, "index and properties disagree on the block count"));
        }
        if let Some(last) = prev
            && key::compare(&last, &self.props.largest) == Ordering::Less
        {
            return Err(self.corruption(at, "last separator below the largest key"));
        }
        Ok(())
    }

    fn check_properties(&self, layout: &Layout) -> Result<()> {
        let p = &self.props;
        let bad = |what: &str| self.corruption(Some(layout.footer.properties.offset), what);
        if p.stored_data_bytes != layout.data_end {
            return Err(bad("stored data bytes disagree with the layout"));
        }
        if p.entries == 0 {
            let empty = p.data_blocks == 0
                && p.smallest.is_empty()
                && p.largest.is_empty()
                && layout.footer.filter.size == 0;
            return if empty {
                Ok(())
            } else {
                Err(bad("empty table with data"))
            };
        }
        let (Some((_, s_seq, _)), Some((_, l_seq, _))) =
            (key::decode(&p.smallest), key::decode(&p.largest))
        else {
            return Err(bad("smallest or largest is not an internal key"));
        };
        if p.data_blocks == 0
            || p.data_blocks > p.entries
            || key::compare(&p.smallest, &p.largest) == Ordering::Greater
            || p.min_seq > p.max_seq
            || !(p.min_seq..=p.max_seq).contains(&s_seq)
            || !(p.min_seq..=p.max_seq).contains(&l_seq)
        {
            return Err(bad("inconsistent properties"));
        }
        Ok(())
    }

    fn load_filter(&mut self, handle: BlockHandle, purpose: ReadPurpose) -> Result<()> {
        if handle.size == 0 {
            return Ok(());
        }
        let bytes = self.source.read(handle.offset, handle.size, purpose)?;
        self.open_stats.index_fetches += 1;
        match Filter::decode(&bytes, self.source.number) {
            Ok(filter) => self.filter = Some(filter),
            Err(why) => self.filter_damage = Some((handle.offset, why)),
        }
        Ok(())
    }

    pub(crate) fn corruption(&self, offset: Option<u64>, what: impl Into<String>) -> Error {
        self.source.corruption(offset, what)
    }

    /// The table number.
    #[cfg(test)]
    pub fn number(&self) -> u64 {
        self.source.number
    }

    /// The file's length.
    #[cfg(test)]
    pub fn file_size(&self) -> u64 {
        self.source.file_size
    }

    /// The properties block.
    pub fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// What the manifest records about this table, rebuilt from its properties.
    #[cfg(test)]
    pub fn meta(&self) -> super::TableMeta {
        super::TableMeta {
            number: self.number(),
            file_size: self.file_size(),
            smallest: self.props.smallest.clone(),
            largest: self.props.largest.clone(),
            entries: self.props.entries,
            min_seq: self.props.min_seq,
            max_seq: self.props.max_seq,
        }
    }

    /// The largest sequence of the table's entries (0 if it has none).
    pub fn max_seq(&self) -> u64 {
        self.props.max_seq
    }

    /// The table's range tombstones, sorted by start.
    pub fn range_tombstones(&self) -> &[RangeTombstone] {
        &self.range_dels
    }

    /// Bytes of the filter held in memory (0 without a usable filter).
    pub fn filter_bytes(&self) -> u64 {
        self.filter.as_ref().map_or(0, Filter::bytes)
    }

    /// Bytes of the index block held in memory.
    pub fn index_bytes(&self) -> u64 {
        self.index.len() as u64
    }

    /// True if reads are served from a memory map.
    #[cfg(test)]
    pub fn is_mapped(&self) -> bool {
        self.source.map.is_some()
    }

    /// What opening the table read: the footer, properties, index and filter, as index fetches.
    #[cfg(test)]
    pub fn open_stats(&self) -> ReadStats {
        self.open_stats
    }

    /// Why the filter was ignored at open, if it was (its offset and the failed check).
    pub fn filter_damage(&self) -> Option<(u64, &'static str)> {
        self.filter_damage
    }

    /// The footer: where the index, properties and filter are.
    pub(crate) fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The number of hash functions of the filter in use (none: no filter, or a damaged one).
    pub(crate) fn filter_hash_functions(&self) -> Option<u32> {
        self.filter.as_ref().map(Filter::k)
    }

    /// Reads the data block at `handle` from storage (bypassing the cache), checks it as a read does,
    /// and returns its trailer (stored type, decoded length) and entry count: what `rumdb inspect sst`
    /// lists per block.
    ///
    /// # Errors
    /// `Corruption` if the block is damaged; `Io`.
    pub(crate) fn data_block_summary(&self, handle: BlockHandle) -> Result<(Trailer, usize)> {
        let (raw, trailer) =
            self.source
                .read_block_with_trailer(handle, ReadPurpose::Verify, true)?;
        let block = Block::new(raw, self.source.number, handle.offset)?;
        Ok((trailer, block.entries()))
    }

    pub(crate) fn index_block(&self) -> &Arc<Block> {
        &self.index
    }

    /// The data block handle of the index entry under `it`.
    pub(crate) fn handle(&self, it: &BlockIter) -> Result<BlockHandle> {
        BlockHandle::decode_varint(it.value()).ok_or_else(|| {
            self.corruption(Some(self.index.file_offset()), "malformed block handle")
        })
    }

    /// The decoded data block at `handle`, from the cache or storage. Reads for `Get` and `Scan` fill the
    /// cache; compaction and verification reads do not (they would evict the working set).
    pub(crate) fn data_block(
        &self,
        handle: BlockHandle,
        purpose: ReadPurpose,
        stats: &mut ReadStats,
    ) -> Result<Arc<Block>> {
        stats.data_touches += 1;
        if let Some(block) = self.cache.get(self.source.number, handle.offset) {
            stats.cache_hits += 1;
            return Ok(block);
        }
        let raw = self.source.read_block(handle, purpose, true)?;
        let block = Arc::new(Block::new(raw, self.source.number, handle.offset)?);
        stats.data_fetches += 1;
        if matches!(purpose, ReadPurpose::Get | ReadPurpose::Scan) {
            self.cache.insert(self.source.number, handle.offset, &block);
        }
        Ok(block)
    }

    /// The newest version of `user_key` with sequence ≤ `seq`: `Some((kind, value))`, where a
    /// [`ValueKind::Delete`] is a tombstone (the caller stops searching older tables). The filter is
    /// probed before any data block is read.
    ///
    /// # Errors
    /// `Corruption` if a block it reads is damaged; `Io`.
    #[cfg(any(test, feature = "testing"))]
    pub fn get(
        &self,
        user_key: &[u8],
        seq: u64,
        stats: &mut ReadStats,
    ) -> Result<Option<(ValueKind, Vec<u8>)>> {
        Ok(self
            .get_hashed(user_key, super::filter::key_hash(user_key), seq, stats)?
            .map(|(kind, value, _)| (kind, value)))
    }

    /// [`Self::get`], with the version's sequence, for a key whose filter hash
    /// ([`key_hash`](super::filter::key_hash)) the caller computed once for every table it probes.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn get_hashed(
        &self,
        user_key: &[u8],
        hash: u64,
        seq: u64,
        stats: &mut ReadStats,
    ) -> Result<Option<(ValueKind, Vec<u8>, u64)>> {
        if let Some(filter) = &self.filter {
            stats.index_touches += 1;
            stats.bloom_probes += 1;
            if !filter.may_contain_hash(hash) {
                stats.bloom_negatives += 1;
                return Ok(None);
            }
        }
        let target = key::encode(user_key, seq, ValueKind::Put);
        stats.index_touches += 1;
        let mut index = BlockIter::new(Arc::clone(&self.index));
        index.seek(&target)?;
        // The first entry ≥ target is in this block or, if target falls between the block's last key and
        // its separator, first in the next; the loop is bounded by the index.
        while index.valid() {
            let handle = self.handle(&index)?;
            let mut it = BlockIter::new(self.data_block(handle, ReadPurpose::Get, stats)?);
            it.seek(&target)?;
            if it.valid() {
                let (found, found_seq, kind) = key::decode(it.key()).ok_or_else(|| {
                    self.corruption(Some(handle.offset), "entry key is not an internal key")
                })?;
                return Ok((found == user_key).then(|| (kind, it.value().to_vec(), found_seq)));
            }
            index.next()?;
        }
        Ok(None)
    }

    /// A cursor over the table's entries, reading blocks as `purpose`.
    pub fn iter(self: &Arc<Self>, purpose: ReadPurpose) -> TableIter {
        TableIter::new(Arc::clone(self), purpose)
    }

    /// Reads every data block from storage (bypassing the cache) and checks it: trailer CRC, structure,
    /// internal keys in strictly increasing order within and across blocks and below each block's
    /// separator, counts, keys and sequence range against the properties, and every user key present in
    /// the filter. A filter ignored at open is reported here. Returns `(blocks, entries)`.
    ///
    /// # Errors
    /// `Corruption` naming the first damaged block; `Io`.
    pub fn verify(&self) -> Result<(u64, u64)> {
        if let Some((offset, why)) = self.filter_damage {
            return Err(self.corruption(Some(offset), format!("filter: {why}")));
        }
        let mut index = BlockIter::new(Arc::clone(&self.index));
        index.seek_to_first()?;
        let mut check = VerifyState::default();
        while index.valid() {
            let handle = self.handle(&index)?;
            let raw = self.source.read_block(handle, ReadPurpose::Verify, true)?;
            check.raw_bytes += raw.len() as u64;
            let block = Arc::new(Block::new(raw, self.source.number, handle.offset)?);
            if block.entries() == 0 {
                return Err(self.corruption(Some(handle.offset), "empty data block"));
            }
            let mut it = BlockIter::new(block);
            it.seek_to_first()?;
            while it.valid() {
                check.entry(self, it.key(), index.key(), handle.offset)?;
                it.next()?;
            }
            check.blocks += 1;
            index.next()?;
        }
        check.finish(self)?;
        Ok((check.blocks, check.entries))
    }
}

/// What [`Table::verify`] accumulates.
#[derive(Default)]
struct VerifyState {
    blocks: u64,
    entries: u64,
    raw_bytes: u64,
    min_seq: u64,
    max_seq: u64,
    first: Option<Vec<u8>>,
    last: Vec<u8>,
}

impl VerifyState {
    fn entry(&mut self, table: &Table, ikey: &[u8], separator: &[u8], offset: u64) -> Result<()> {
        let bad = |what: &str| table.corruption(Some(offset), what);
        let (user_key, seq, _) =
            key::decode(ikey).ok_or_else(|| bad("entry key is not an internal key"))?;
        if self.first.is_some() && key::compare(&self.last, ikey) != Ordering::Less {
            return Err(bad("keys out of order"));
        }
        if key::compare(ikey, separator) == Ordering::Greater {
            return Err(bad("key above its block's index separator"));
        }
        if let Some(filter) = &table.filter
            && !filter.may_contain(user_key)
        {
            return Err(bad("the filter misses a key the table holds"));
        }
        if self.first.is_none() {
            self.first = Some(ikey.to_vec());
            (self.min_seq, self.max_seq) = (seq, seq);
        }
        self.min_seq = self.min_seq.min(seq);
        self.max_seq = self.max_seq.max(seq);
        self.last.clear();
        self.last.extend_from_slice(ikey);
        self.entries += 1;
        Ok(())
    }

    fn finish(&self, table: &Table) -> Result<()> {
        let p = &table.props;
        let consistent = self.entries == p.entries
            && self.blocks == p.data_blocks
            && self.raw_bytes == p.raw_data_bytes
            && self.first.as_deref().unwrap_or_default() == p.smallest.as_slice()
            && self.last == p.largest
            && (self.entries == 0 || (self.min_seq, self.max_seq) == (p.min_seq, p.max_seq));
        if consistent {
            Ok(())
        } else {
            Err(table.corruption(
                Some(table.index.file_offset()),
                "data blocks disagree with the properties",
            ))
        }
    }
}

/// Reads and decodes the range-deletion block the properties name, checking that it lies exactly between
/// the index and the properties (or, without one, that the index ends where the properties start).
fn read_range_dels(
    source: &Source,
    layout: &Layout,
    props: &TableProperties,
    purpose: ReadPurpose,
) -> Result<Vec<RangeTombstone>> {
    let trailer = TRAILER_LEN as u64;
    let index_end = layout.footer.index.end(trailer);
    let handle = props.range_dels;
    if handle.size == 0 {
        if index_end != Some(layout.footer.properties.offset) {
            return Err(source.corruption(
                Some(layout.footer.properties.offset),
                "footer handles do not tile the file",
            ));
        }
        return Ok(Vec::new());
    }
    if index_end != Some(handle.offset)
        || handle.end(trailer) != Some(layout.footer.properties.offset)
    {
        return Err(source.corruption(
            Some(layout.footer.properties.offset),
            "range-deletion block is not between the index and the properties",
        ));
    }
    let bytes = source.read_block(handle, purpose, false)?;
    range_del::decode_block(&bytes, super::MAX_USER_KEY_LEN)
        .ok_or_else(|| source.corruption(Some(handle.offset), "malformed range-deletion block"))
}

/// The footer and where the regions it names lie.
struct Layout {
    footer: Footer,
    data_end: u64,
}

impl Layout {
    /// Reads the footer and checks that data, filter, index, properties and footer tile the file in that
    /// order with no gap, but for the range-deletion block between the index and the properties, which
    /// the properties name (checked by `read_range_dels` once they are decoded).
    fn read(source: &Source, purpose: ReadPurpose) -> Result<Layout> {
        let footer_at = source
            .file_size
            .checked_sub(FOOTER_LEN as u64)
            .ok_or_else(|| source.corruption(Some(0), "file shorter than a footer"))?;
        let bytes = source.read(footer_at, FOOTER_LEN as u64, purpose)?;
        let footer_bytes = bytes
            .first_chunk::<FOOTER_LEN>()
            .ok_or_else(|| source.corruption(Some(footer_at), "short footer"))?;
        let footer = Footer::decode(footer_bytes, source.number, footer_at)?;
        let trailer = TRAILER_LEN as u64;
        // The index ends where the properties start, or where the range-deletion block starts (checked
        // against the properties' handle by `read_range_dels`).
        let tiles = footer.filter.end(0) == Some(footer.index.offset)
            && footer
                .index
                .end(trailer)
                .is_some_and(|end| end <= footer.properties.offset)
            && footer.properties.end(trailer) == Some(footer_at);
        if !tiles {
            return Err(source.corruption(Some(footer_at), "footer handles do not tile the file"));
        }
        Ok(Layout {
            data_end: footer.filter.offset,
            footer,
        })
    }
}
