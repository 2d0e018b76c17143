//! Writing a table: [`TableBuilder`].

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::lsm::key::{self, ValueKind};
use crate::lsm::range_del::{self, RangeTombstone};
use crate::storage::{File, WritePurpose};

use super::block::BlockBuilder;
use super::filter;
use super::format::{
    BLOCK_RAW, BLOCK_ZSTD, BlockHandle, FOOTER_LEN, Footer, TRAILER_LEN, TableProperties,
    encode_trailer,
};
use super::{
    Compression, MAX_USER_KEY_LEN, MAX_VALUE_LEN, TableMeta, TableOptions, filter::MAX_BITS_PER_KEY,
};

/// Buffered bytes at which the builder appends to the file.
const WRITE_BUFFER: usize = 256 << 10;
/// The largest block size option honoured.
pub(crate) const MAX_BLOCK_SIZE: usize = 4 << 20;
/// The largest restart interval honoured.
pub(crate) const MAX_RESTART_INTERVAL: usize = 1024;

/// Encodes blocks with their trailers into the output buffer; owns the reused zstd context.
struct BlockWriter {
    compression: Compression,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
    out: Vec<u8>,
    /// The file offset of the next byte written.
    offset: u64,
}

impl BlockWriter {
    /// Writes `raw` as a block, zstd-compressed if `compressible`, compression is on and it saves ≥ 1/8.
    fn write_block(&mut self, raw: &[u8], compressible: bool) -> Result<BlockHandle> {
        let raw_len = u32::try_from(raw.len()).map_err(|_| Error::invalid("block over 4 GiB"))?;
        let mut kind = BLOCK_RAW;
        if let (Compression::Zstd { level }, true) = (self.compression, compressible) {
            let compressor = match &mut self.compressor {
                Some(c) => c,
                slot => slot.insert(zstd::bulk::Compressor::new(level)?),
            };
            self.scratch.clear();
            self.scratch
                .reserve(zstd::zstd_safe::compress_bound(raw.len()));
            compressor.compress_to_buffer(raw, &mut self.scratch)?;
            if self.scratch.len() <= raw.len() - raw.len() / 8 {
                kind = BLOCK_ZSTD;
            }
        }
        let stored = if kind == BLOCK_ZSTD {
            &self.scratch
        } else {
            raw
        };
        let handle = BlockHandle {
            offset: self.offset,
            size: stored.len() as u64,
        };
        self.out.extend_from_slice(stored);
        self.out
            .extend_from_slice(&encode_trailer(stored, kind, raw_len));
        self.offset += (stored.len() + TRAILER_LEN) as u64;
        Ok(handle)
    }

    /// Writes bytes that carry their own checksum (the filter).
    fn write_region(&mut self, bytes: &[u8]) -> BlockHandle {
        let handle = BlockHandle {
            offset: self.offset,
            size: bytes.len() as u64,
        };
        self.out.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
        handle
    }
}

/// Writes one table file: entries in order, then [`TableBuilder::finish`].
///
/// Data blocks are appended as they fill (buffered up to 256 KiB); `finish` writes the rest, syncs the file
/// and reports the [`TableMeta`]. After any error the builder refuses further work; the caller deletes the
/// file.
pub struct TableBuilder {
    file: File,
    number: u64,
    options: TableOptions,
    purpose: WritePurpose,
    writer: BlockWriter,
    data: BlockBuilder,
    index: BlockBuilder,
    /// The last finished data block, waiting for the next key to choose its index separator.
    pending: Option<BlockHandle>,
    /// The last key added (the last key of the pending block, when there is one).
    last_key: Vec<u8>,
    filter_hashes: Vec<u64>,
    props: TableProperties,
    /// Range tombstones for the range-deletion block.
    range_dels: Vec<RangeTombstone>,
    failed: bool,
}

impl std::fmt::Debug for TableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder")
            .field("file", &self.file.name())
            .field("entries", &self.props.entries)
            .field("offset", &self.writer.offset)
            .finish()
    }
}

impl TableBuilder {
    /// A builder writing table `number` into `file` (new and empty), counting its bytes as `purpose`.
    /// Options out of range are clamped (see [`TableOptions`]).
    pub fn new(file: File, number: u64, options: TableOptions, purpose: WritePurpose) -> Self {
        let options = TableOptions {
            block_size: options.block_size.clamp(1, MAX_BLOCK_SIZE),
            restart_interval: options.restart_interval.clamp(1, MAX_RESTART_INTERVAL),
            bloom_bits_per_key: options.bloom_bits_per_key.min(MAX_BITS_PER_KEY),
            compression: options.compression,
        };
        let props = TableProperties {
            compression: options.compression,
            block_size: options.block_size as u32,
            restart_interval: options.restart_interval as u32,
            bloom_bits_per_key: options.bloom_bits_per_key,
            ..TableProperties::default()
        };
        TableBuilder {
            file,
            number,
            writer: BlockWriter {
                compression: options.compression,
                compressor: None,
                scratch: Vec::new(),
                out: Vec::new(),
                offset: 0,
            },
            data: BlockBuilder::new(options.restart_interval),
            index: BlockBuilder::new(1),
            options,
            purpose,
            pending: None,
            last_key: Vec::new(),
            filter_hashes: Vec::new(),
            props,
            range_dels: Vec::new(),
            failed: false,
        }
    }

    /// Adds an entry.
    ///
    /// REQUIRES: internal keys strictly increasing in [`key::compare`] order.
    ///
    /// # Errors
    /// `InvalidArgument` if `ikey` is not an internal key, is out of order, or the key or value is over the
    /// limits (nothing is added); `Io` from writing a full block (the builder is then unusable).
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::invalid("table builder failed earlier"));
        }
        let Some((user_key, seq, _)) = key::decode(ikey) else {
            return Err(Error::invalid("not an internal key"));
        };
        if user_key.len() > MAX_USER_KEY_LEN || value.len() > MAX_VALUE_LEN {
            return Err(Error::invalid("key or value over the table limits"));
        }
        if self.props.entries > 0 && key::compare(ikey, &self.last_key) != Ordering::Greater {
            return Err(Error::invalid(
                "table keys must be strictly increasing in internal-key order",
            ));
        }
        let result = self.add_checked(ikey, user_key, seq, value);
        self.failed |= result.is_err();
        result
    }

    fn add_checked(&mut self, ikey: &[u8], user_key: &[u8], seq: u64, value: &[u8]) -> Result<()> {
        let own_block = value.len() > self.options.block_size / 2;
        if own_block && !self.data.is_empty() {
            self.flush_data_block()?;
        }
        if let Some(handle) = self.pending.take() {
            let sep = separator(&self.last_key, ikey);
            self.add_index_entry(&sep, handle);
        }
        if self.props.entries == 0 || key::user_key(&self.last_key) != user_key {
            self.filter_hashes.push(filter::key_hash(user_key));
        }
        if self.props.entries == 0 {
            self.props.smallest = ikey.to_vec();
            self.props.min_seq = seq;
            self.props.max_seq = seq;
        }
        self.props.min_seq = self.props.min_seq.min(seq);
        self.props.max_seq = self.props.max_seq.max(seq);
        self.props.entries += 1;
        self.data.add(ikey, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(ikey);
        if own_block || self.data.estimated_size() >= self.options.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    fn add_index_entry(&mut self, separator: &[u8], handle: BlockHandle) {
        let mut value = Vec::with_capacity(20);
        handle.encode_varint(&mut value);
        self.index.add(separator, &value);
    }

    fn flush_data_block(&mut self) -> Result<()> {
        let raw = self.data.finish();
        self.props.raw_data_bytes += raw.len() as u64;
        let handle = self.writer.write_block(raw, true)?;
        self.data.reset();
        self.props.data_blocks += 1;
        self.pending = Some(handle);
        if self.writer.out.len() >= WRITE_BUFFER {
            self.file.append(&self.writer.out, self.purpose)?;
            self.writer.out.clear();
        }
        Ok(())
    }

    /// Sets the range tombstones the table holds (written in its range-deletion block by
    /// [`TableBuilder::finish`]; its key range is widened to span them).
    pub fn set_range_tombstones(&mut self, tombstones: Vec<RangeTombstone>) {
        self.range_dels = tombstones;
        self.range_dels
            .sort_by(|a, b| a.start.cmp(&b.start).then_with(|| b.seq.cmp(&a.seq)));
    }

    /// The file size if the table were finished now (a little under, before the filter and index).
    pub fn estimated_size(&self) -> u64 {
        self.writer.offset
            + self.data.estimated_size() as u64
            + self.index.estimated_size() as u64
            + (self.filter_hashes.len() as u64 * u64::from(self.options.bloom_bits_per_key)) / 8
    }

    /// Entries added so far.
    #[cfg(test)]
    pub fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Writes the last data block, the filter, the index, the properties and the footer, then syncs the
    /// file's data. The directory is not synced: the caller does that before the manifest edit that
    /// refers to the table.
    ///
    /// # Errors
    /// `Io`; `InvalidArgument` if an earlier call failed.
    pub fn finish(mut self) -> Result<TableMeta> {
        if self.failed {
            return Err(Error::invalid("table builder failed earlier"));
        }
        if !self.data.is_empty() {
            self.flush_data_block()?;
        }
        if let Some(handle) = self.pending.take() {
            let last = std::mem::take(&mut self.last_key);
            self.add_index_entry(&last, handle);
            self.last_key = last;
        }
        self.props.stored_data_bytes = self.writer.offset;
        let filter = match filter::build(
            &self.filter_hashes,
            self.options.bloom_bits_per_key,
            self.number,
        ) {
            Some(bytes) => self.writer.write_region(&bytes),
            None => BlockHandle {
                offset: self.writer.offset,
                size: 0,
            },
        };
        let index = self.writer.write_block(self.index.finish(), false)?;
        if !self.range_dels.is_empty() {
            let block = range_del::encode_block(&self.range_dels);
            self.props.range_dels = self.writer.write_block(&block, false)?;
        }
        self.props.largest = self.last_key.clone();
        let properties = self.writer.write_block(&self.props.encode(), false)?;
        let footer = Footer {
            index,
            properties,
            filter,
        };
        self.writer.out.extend_from_slice(&footer.encode());
        self.writer.offset += FOOTER_LEN as u64;
        self.file.append(&self.writer.out, self.purpose)?;
        if self.purpose == WritePurpose::MemtableFlush {
            crate::crash_point::hit("flush.sst.written");
        }
        self.file.sync_data()?;
        let mut meta = TableMeta {
            number: self.number,
            file_size: self.writer.offset,
            smallest: std::mem::take(&mut self.props.smallest),
            largest: std::mem::take(&mut self.props.largest),
            entries: self.props.entries,
            min_seq: self.props.min_seq,
            max_seq: self.props.max_seq,
        };
        meta.widen_for(&self.range_dels);
        Ok(meta)
    }
}

/// A key `s` with `a ≤ s < b` in internal-key order, shorter than `a` where a shorter user key fits
/// between the two user keys (then `s` carries the maximal trailer, so it sorts first among that user
/// key's versions). REQUIRES: `a < b`.
pub(crate) fn separator(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (ua, ub) = (key::user_key(a), key::user_key(b));
    let common = ua.iter().zip(ub).take_while(|(x, y)| x == y).count();
    if let (Some(&x), Some(&y)) = (ua.get(common), ub.get(common))
        && x < 0xff
        && x + 1 < y
        && common + 1 < ua.len()
    {
        let mut short = ua.get(..=common).unwrap_or_default().to_vec();
        if let Some(last) = short.last_mut() {
            *last = x + 1;
        }
        return key::encode(&short, key::MAX_SEQUENCE, ValueKind::Put);
    }
    a.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_sits_between_and_is_short() {
        let a = key::encode(b"apple-pie", 3, ValueKind::Put);
        let b = key::encode(b"cherry", 9, ValueKind::Put);
        let s = separator(&a, &b);
        assert_eq!(key::user_key(&s), b"b");
        assert_eq!(key::compare(&a, &s), Ordering::Less);
        assert_eq!(key::compare(&s, &b), Ordering::Less);
        // Adjacent bytes, prefixes and versions of one key keep `a` itself.
        for (x, y) in [
            (&b"ab"[..], &b"ac"[..]),
            (b"ab", b"abc"),
            (b"k", b"k"),
            (b"a\xff\xff", b"b"),
        ] {
            let a = key::encode(x, 5, ValueKind::Put);
            let b = key::encode(y, 4, ValueKind::Put);
            let s = separator(&a, &b);
            assert_ne!(key::compare(&s, &a), Ordering::Less);
            assert_eq!(key::compare(&s, &b), Ordering::Less, "{x:?} {y:?}");
        }
    }
}
