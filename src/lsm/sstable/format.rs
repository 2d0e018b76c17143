//! The fixed-layout parts of a table: block handles, block trailers, the footer and the properties block
//! (byte tables in the [module docs](super)).

use crate::batch::{get_varint64, put_varint};
use crate::error::{Error, Result};

use super::{Compression, FORMAT_VERSION, MAX_RAW_BLOCK_LEN, table_file_name};

/// Bytes of a block trailer.
pub(crate) const TRAILER_LEN: usize = 9;
/// Bytes of the footer.
pub(crate) const FOOTER_LEN: usize = 64;
/// The footer's magic.
pub(crate) const MAGIC: [u8; 8] = *b"rumdbSST";

/// Block type byte: stored raw.
pub(crate) const BLOCK_RAW: u8 = 0;
/// Block type byte: stored as one zstd frame.
pub(crate) const BLOCK_ZSTD: u8 = 1;

/// Where a block is: its offset and stored size (without the trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    /// The end of the stored bytes plus `extra` (the trailer, for blocks that have one), if it fits a u64.
    pub(crate) fn end(&self, extra: u64) -> Option<u64> {
        self.offset.checked_add(self.size)?.checked_add(extra)
    }

    /// Appends the varint encoding (index block values).
    pub(crate) fn encode_varint(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }

    /// Decodes an index value: exactly two varints.
    pub(crate) fn decode_varint(input: &[u8]) -> Option<Self> {
        let (offset, rest) = get_varint64(input)?;
        let (size, rest) = get_varint64(rest)?;
        rest.is_empty().then_some(BlockHandle { offset, size })
    }
}

/// The trailer for `stored` bytes of `kind` whose decoded length is `raw_len`.
pub(crate) fn encode_trailer(stored: &[u8], kind: u8, raw_len: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    let (head, crc) = t.split_at_mut(5);
    let (k, len) = head.split_at_mut(1);
    k.copy_from_slice(&[kind]);
    len.copy_from_slice(&raw_len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(stored);
    h.update(head);
    crc.copy_from_slice(&h.finalize().to_le_bytes());
    t
}

/// A trailer that passed its checks: the block's type and decoded length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trailer {
    pub kind: u8,
    pub raw_len: usize,
}

/// Checks the trailer of `stored` (the block's stored bytes): CRC, type, raw length. The caller turns the
/// message into a `Corruption` at the block's offset.
pub(crate) fn check_trailer(
    stored: &[u8],
    trailer: &[u8; TRAILER_LEN],
) -> std::result::Result<Trailer, &'static str> {
    let (head, crc) = trailer.split_at(5);
    let mut h = crc32fast::Hasher::new();
    h.update(stored);
    h.update(head);
    let crc = crc.first_chunk::<4>().map(|c| u32::from_le_bytes(*c));
    if crc != Some(h.finalize()) {
        return Err("block checksum mismatch");
    }
    let Some((&kind, len)) = head.split_first() else {
        return Err("short trailer");
    };
    let raw_len = len
        .first_chunk::<4>()
        .map(|l| u32::from_le_bytes(*l) as usize)
        .ok_or("short trailer")?;
    match kind {
        BLOCK_RAW if raw_len == stored.len() => Ok(Trailer { kind, raw_len }),
        BLOCK_RAW => Err("raw block length disagrees with its handle"),
        BLOCK_ZSTD if raw_len <= MAX_RAW_BLOCK_LEN => Ok(Trailer { kind, raw_len }),
        BLOCK_ZSTD => Err("decoded block length beyond the limit"),
        _ => Err("unknown block type"),
    }
}

/// The footer's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    pub index: BlockHandle,
    pub properties: BlockHandle,
    /// Size 0: no filter.
    pub filter: BlockHandle,
}

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        for h in [self.index, self.properties, self.filter] {
            out.extend_from_slice(&h.offset.to_le_bytes());
            out.extend_from_slice(&h.size.to_le_bytes());
        }
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&MAGIC);
        let mut footer = [0u8; FOOTER_LEN];
        footer.copy_from_slice(&out);
        footer
    }

    /// Decodes the footer of table `number`, found at `offset`.
    pub(crate) fn decode(bytes: &[u8; FOOTER_LEN], number: u64, offset: u64) -> Result<Self> {
        let bad = |what: &str| Error::corruption(table_file_name(number), Some(offset), what);
        let (body, magic) = bytes.split_at(FOOTER_LEN - 8);
        if magic != MAGIC {
            return Err(bad("footer magic missing: not a table"));
        }
        let mut r = Reader::new(body);
        let mut handle = || -> Option<BlockHandle> {
            Some(BlockHandle {
                offset: r.u64()?,
                size: r.u64()?,
            })
        };
        let (Some(index), Some(properties), Some(filter)) = (handle(), handle(), handle()) else {
            return Err(bad("short footer"));
        };
        let covered = body.get(..52).ok_or_else(|| bad("short footer"))?;
        let stored_crc = body
            .get(52..56)
            .and_then(|c| c.first_chunk::<4>())
            .map(|c| u32::from_le_bytes(*c));
        if stored_crc != Some(crc32fast::hash(covered)) {
            return Err(bad("footer checksum mismatch"));
        }
        let version = covered
            .get(48..52)
            .and_then(|v| v.first_chunk::<4>())
            .map(|v| u32::from_le_bytes(*v))
            .ok_or_else(|| bad("short footer"))?;
        if version == 0 {
            return Err(bad("format version 0"));
        }
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Footer {
            index,
            properties,
            filter,
        })
    }
}

/// What a table's properties block records (layout in the [module docs](super)).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TableProperties {
    /// Entries (versions).
    pub entries: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// The smallest sequence number (0 if empty).
    pub min_seq: u64,
    /// The largest sequence number (0 if empty).
    pub max_seq: u64,
    /// The sum of the decoded data block lengths.
    pub raw_data_bytes: u64,
    /// The data blocks as stored, trailers included (where the filter or index starts).
    pub stored_data_bytes: u64,
    /// The compression option the table was written with.
    pub compression: Compression,
    /// The block size option.
    pub block_size: u32,
    /// The restart interval option.
    pub restart_interval: u32,
    /// The bloom bits per key option.
    pub bloom_bits_per_key: u32,
    /// The smallest internal key (empty if the table is empty).
    pub smallest: Vec<u8>,
    /// The largest internal key (empty if the table is empty).
    pub largest: Vec<u8>,
    /// The range-deletion block (size 0: none; always so in a format 1 table).
    pub(crate) range_dels: BlockHandle,
}

impl TableProperties {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(81 + self.smallest.len() + self.largest.len());
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for v in [
            self.entries,
            self.data_blocks,
            self.min_seq,
            self.max_seq,
            self.raw_data_bytes,
            self.stored_data_bytes,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let (kind, level) = match self.compression {
            Compression::Zstd { level } => (1u8, level),
            Compression::None => (0, 0),
        };
        out.push(kind);
        out.extend_from_slice(&level.to_le_bytes());
        for v in [
            self.block_size,
            self.restart_interval,
            self.bloom_bits_per_key,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for key in [&self.smallest, &self.largest] {
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
        }
        out.extend_from_slice(&self.range_dels.offset.to_le_bytes());
        out.extend_from_slice(&self.range_dels.size.to_le_bytes());
        out
    }

    /// Decodes a properties block; `None` if its layout is wrong (the caller reports where).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let version = r.u32()?;
        if version == 0 || version > FORMAT_VERSION {
            return None;
        }
        let mut p = TableProperties {
            entries: r.u64()?,
            data_blocks: r.u64()?,
            min_seq: r.u64()?,
            max_seq: r.u64()?,
            raw_data_bytes: r.u64()?,
            stored_data_bytes: r.u64()?,
            ..TableProperties::default()
        };
        let kind = r.take(1)?.first().copied()?;
        let level = i32::from_le_bytes(*r.take(4)?.first_chunk::<4>()?);
        p.compression = match kind {
            0 if level == 0 => Compression::None,
            1 => Compression::Zstd { level },
            _ => return None,
        };
        p.block_size = r.u32()?;
        p.restart_interval = r.u32()?;
        p.bloom_bits_per_key = r.u32()?;
        let len = r.u32()? as usize;
        p.smallest = r.take(len)?.to_vec();
        let len = r.u32()? as usize;
        p.largest = r.take(len)?.to_vec();
        if version >= 2 {
            p.range_dels = BlockHandle {
                offset: r.u64()?,
                size: r.u64()?,
            };
        }
        r.rest.is_empty().then_some(p)
    }
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(*self.take(4)?.first_chunk::<4>()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(*self.take(8)?.first_chunk::<8>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint64_round_trips_and_rejects_overlong() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX) + 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint64(&out), Some((v, &[][..])));
        }
        assert_eq!(get_varint64(&[0xff; 10]), None);
        assert_eq!(get_varint64(&[0x80]), None);
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(get_varint64(&overflow), None);
    }

    #[test]
    fn footer_round_trips_and_checks() {
        let f = Footer {
            index: BlockHandle { offset: 1, size: 2 },
            properties: BlockHandle { offset: 3, size: 4 },
            filter: BlockHandle { offset: 5, size: 6 },
        };
        let mut bytes = f.encode();
        assert_eq!(Footer::decode(&bytes, 7, 0).unwrap(), f);
        bytes[3] ^= 1;
        assert!(Footer::decode(&bytes, 7, 0).unwrap_err().is_corruption());
    }

    #[test]
    fn newer_version_is_unsupported() {
        let mut bytes = Footer {
            index: BlockHandle::default(),
            properties: BlockHandle::default(),
            filter: BlockHandle::default(),
        }
        .encode();
        bytes[48..52].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = crc32fast::hash(&bytes[..52]);
        bytes[52..56].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Footer::decode(&bytes, 7, 0),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn properties_round_trip() {
        let p = TableProperties {
            entries: 3,
            data_blocks: 1,
            min_seq: 4,
            max_seq: 9,
            raw_data_bytes: 100,
            stored_data_bytes: 109,
            compression: Compression::Zstd { level: 1 },
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            smallest: b"a0000000".to_vec(),
            largest: b"b00000000".to_vec(),
            range_dels: BlockHandle {
                offset: 300,
                size: 20,
            },
        };
        let bytes = p.encode();
        assert_eq!(TableProperties::decode(&bytes), Some(p.clone()));
        assert_eq!(TableProperties::decode(&bytes[..bytes.len() - 1]), None);
        // Format 1: no range-deletion handle at the end.
        let mut v1 = bytes[..bytes.len() - 16].to_vec();
        v1[..4].copy_from_slice(&1u32.to_le_bytes());
        let old = TableProperties::decode(&v1).unwrap();
        assert_eq!(old.range_dels, BlockHandle::default());
        assert_eq!(old.largest, p.largest);
        assert_eq!(TableProperties::decode(&bytes[..bytes.len() - 16]), None);
    }
}
