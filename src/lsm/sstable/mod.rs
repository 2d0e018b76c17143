//! Sorted string tables: the immutable files an LSM memtable flush or a compaction writes.
//!
//! A table maps internal keys ([`key`](crate::lsm::key)) to values, sorted by [`key::compare`](crate::lsm::key::compare). It is
//! written once by a [`TableBuilder`], synced, and never modified; readers open it as a [`Table`] and read
//! it through point lookups ([`Table::get`]) or a [`TableIter`]. Blocks decoded from any table go through
//! one shared [`BlockCache`].
//!
//! The code is split by concept: [`block`] (the prefix-compressed block with restart points), `format`
//! (trailers, handles, footer, properties), [`filter`] (the bloom filter), [`builder`], [`reader`] (open and
//! point lookups), `iter` (the cursor) and [`cache`].
//!
//! # Example
//!
//! `tests::build_then_read_one_table` (in `src/lsm/sstable/tests/mod.rs`) builds a table of three
//! entries, opens it through the block cache, and reads it with point lookups and a cursor.
//!
//! # File layout
//!
//! ```text
//! | data block 0 | trailer | ... | data block n-1 | trailer | filter | index block | trailer | [range dels | trailer] | properties | trailer | footer |
//! 0                                                         data_end
//! ```
//!
//! Every region follows the previous one with no gap, in this order, and the reader checks that it does:
//! data blocks start at offset 0 and are contiguous up to `data_end`; the filter (absent when the table is
//! empty or `bloom_bits_per_key` is 0) starts at `data_end`; the index block follows it; the range-deletion
//! block (format 2, present only when the table holds range tombstones) follows the index; the properties
//! block follows the last of them; the 64-byte footer ends the file. Integers are little-endian unless
//! stated.
//!
//! ## Block contents (data and index blocks)
//!
//! LevelDB's block format. A block is a run of entries followed by the restart array:
//!
//! | size | field |
//! |---|---|
//! | varint32 | `shared`: bytes of the key shared with the previous entry's key (0 at a restart point) |
//! | varint32 | `unshared`: bytes of key that follow |
//! | varint32 | `value_len` |
//! | `unshared` | the key's suffix |
//! | `value_len` | the value |
//! | ... | more entries |
//! | 4 × n | restart offsets (u32): the offsets of the entries that store their whole key, strictly increasing, the first 0 |
//! | 4 | n, the restart count |
//!
//! An empty block is the 4-byte count 0. A non-empty block has n ≥ 1. Entries are internal keys in
//! [`key::compare`](crate::lsm::key::compare) order. Data blocks restart every `restart_interval` entries; the index block restarts at
//! every entry, so it is searched by binary search alone. On decode the reader checks the restart count
//! against the length, each restart offset, every entry header (`shared` ≤ previous key, lengths inside the
//! entry area, `shared` = 0 at restarts) and that the entries end exactly at the restart array.
//!
//! An index entry's key is a separator: ≥ the last key of its data block and < the first key of the next
//! (the builder shortens the user key where it can, with the maximal trailer); its value is the block's
//! handle: varint64 offset, varint64 stored size.
//!
//! ## Range-deletion block contents (format 2)
//!
//! The table's range tombstones (see [`range_del`](crate::lsm::range_del)), stored raw with a block
//! trailer, sorted by start:
//!
//! | size | field |
//! |---|---|
//! | varint64 | n, the tombstone count |
//! | varint32 + bytes | start user key (included) |
//! | varint32 + bytes | end user key (excluded), above the start |
//! | varint64 | sequence of the range delete |
//! | ... | n tombstones in all; the block ends exactly after the last |
//!
//! A tombstone hides every version older than it of the keys in its range, in every table. Compaction
//! clips the tombstones of its inputs to each output's share of the key space, so a table's key range
//! (the manifest's smallest and largest keys, which span its tombstones as well as its entries) stays
//! disjoint from the other tables of its level ≥ 1. The tombstones are read at open and held in memory,
//! as the index is.
//!
//! ## Block trailer (after every data, index, range-deletion and properties block)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | type: 0 raw, 1 zstd |
//! | 1 | 4 | raw (decoded) length; for type 0, equal to the stored size |
//! | 5 | 4 | CRC-32 (crc32fast) of the stored bytes followed by trailer bytes 0..5 |
//!
//! A handle's size is the stored size, without the 9-byte trailer. A data block is stored zstd-compressed
//! only if that saves at least 1/8 of its raw size. The raw length is checked against
//! [`MAX_RAW_BLOCK_LEN`] (64 MiB + 256 KiB: the largest value plus the largest key and headers) before the
//! decompression buffer is allocated, and the frame must decode to exactly that length. Index and
//! properties blocks are always raw (type 1 there is corruption), so opening a table never allocates more
//! than the file holds.
//!
//! ## Filter region (no block trailer: it carries its own header)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC-32 of bytes 4..end |
//! | 4 | 1 | filter format: 1 |
//! | 5 | 1 | k, the number of hash functions: 1 ≤ k ≤ 30 |
//! | 6 | 8 | m, the bitmap length in bytes: ≥ 1 |
//! | 14 | 45 | the `bloomfilter` 3.0.2 header: version 1, m (u64), k (u32), the 32-byte seed |
//! | 59 | m | the bitmap |
//!
//! The filter is a bloom filter over the table's distinct **user** keys; see [`filter`] for the hashing
//! path. The seed is derived from the table number and must match it.
//!
//! **A damaged filter is ignored, never trusted.** If the region fails any check (CRC, format, k, m, the
//! crate header agreeing with ours, the seed), [`Table::open`] still succeeds and the table behaves as if
//! it had no filter: every lookup reads the data blocks. A filter can only turn a lookup into "absent", so a
//! damaged one could hide a present key; ignoring it costs reads, never answers. [`Table::verify`] reports
//! the damage as corruption, and [`Table::filter_damage`] says why it was ignored.
//!
//! ## Properties block contents
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | format version (as in the footer) |
//! | 4 | 8 | entries |
//! | 12 | 8 | data blocks |
//! | 20 | 8 | smallest sequence number (0 if empty) |
//! | 28 | 8 | largest sequence number (0 if empty) |
//! | 36 | 8 | raw data bytes: sum of the decoded data block lengths |
//! | 44 | 8 | stored data bytes: `data_end`, the data blocks with their trailers |
//! | 52 | 1 | compression option: 0 none, 1 zstd |
//! | 53 | 4 | zstd level (i32; 0 for none) |
//! | 57 | 4 | block size option |
//! | 61 | 4 | restart interval option |
//! | 65 | 4 | bloom bits per key option |
//! | 69 | 4 | s, length of the smallest internal key |
//! | 73 | s | smallest internal key |
//! | 73+s | 4 | l, length of the largest internal key |
//! | 77+s | l | largest internal key |
//! | 77+s+l | 8 | range-deletion block offset (format 2 only; 0 if none) |
//! | 85+s+l | 8 | range-deletion block stored size (format 2 only; 0: no block) |
//!
//! The block ends exactly there. The smallest and largest keys, counts and sequences are those of the
//! point entries (range tombstones are not entries). The reader checks it against the index (block count, entries zero exactly
//! when the index is empty, `data_end`) and the keys against each other.
//!
//! ## Footer (the last 64 bytes)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | index block offset |
//! | 8 | 8 | index block stored size |
//! | 16 | 8 | properties block offset |
//! | 24 | 8 | properties block stored size |
//! | 32 | 8 | filter offset |
//! | 40 | 8 | filter size (0: no filter) |
//! | 48 | 4 | format version: 1 or 2 (the version the properties block starts with) |
//! | 52 | 4 | CRC-32 of bytes 0..52 |
//! | 56 | 8 | magic `b"rumdbSST"` |
//!
//! A wrong magic or CRC is corruption; a version newer than this build reads is
//! [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion).
//!
//! # Reading safely
//!
//! No byte pattern makes the reader panic, loop without bound or allocate more than the file size (plus one
//! decoded data block of at most [`MAX_RAW_BLOCK_LEN`]): every offset and length is checked against the file
//! size and the region it must lie in before use, and every loop over entries advances by at least one byte
//! or one index entry. Damage is [`Error::Corruption`](crate::Error::Corruption) naming the table file and
//! the offset of the damaged block (or `None` when the file's length disagrees with the manifest), returned
//! by the read that touches it: a flipped bit in a data block fails the lookup or scan that reads the block
//! and never comes back as a value.

pub mod block;
pub mod builder;
pub mod cache;
pub mod filter;
pub(crate) mod format;
mod iter;
pub mod reader;

#[cfg(test)]
mod tests;

pub use builder::TableBuilder;
pub use cache::BlockCache;
pub use iter::TableIter;
pub use reader::{ReadStats, Table};

/// The table format version this build writes and the newest it reads. Version 2 added the
/// range-deletion block (its handle at the end of the properties block); a version 1 table reads as one
/// without range tombstones.
pub const FORMAT_VERSION: u32 = 2;

/// The largest decoded block the reader accepts: a 64 MiB value with a 64 KiB key and headers in a block
/// of its own, with room to spare.
pub const MAX_RAW_BLOCK_LEN: usize = (64 << 20) + (256 << 10);

/// The largest user key a table accepts (the LSM engine's limit).
pub const MAX_USER_KEY_LEN: usize = 64 << 10;

/// The largest value a table accepts (the engines' limit).
pub const MAX_VALUE_LEN: usize = 64 << 20;

/// How data blocks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Every block stored raw.
    #[default]
    None,
    /// Blocks stored zstd-compressed at `level` when that saves at least 1/8 of their size.
    Zstd {
        /// The zstd level (1 is fast; 0 means zstd's default).
        level: i32,
    },
}

/// How a table is written.
#[derive(Clone, Debug)]
pub struct TableOptions {
    /// Target size of a data block before compression (clamped to 1 B ..= 4 MiB). Default 4096.
    pub block_size: usize,
    /// Entries between restart points in a data block (clamped to 1 ..= 1024). Default 16.
    pub restart_interval: usize,
    /// Bloom filter bits per key (clamped to ..= 40); 0 writes no filter. Default 10.
    pub bloom_bits_per_key: u32,
    /// Data block compression. Default [`Compression::None`].
    pub compression: Compression,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
        }
    }
}

/// How the LSM engine reads the blocks of its tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadPath {
    /// Map the file and decode blocks from the map (falls back to `Pread` where the backend cannot map).
    /// A media error under a map kills the process (SIGBUS).
    #[default]
    Mmap,
    /// Read each block with a positioned read; media errors are `Err`.
    Pread,
}

/// What the builder reports and the manifest records about a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// The table number (its file is [`table_file_name`]`(number)`).
    pub number: u64,
    /// The file's length in bytes.
    pub file_size: u64,
    /// The smallest internal key (empty for an empty table).
    pub smallest: Vec<u8>,
    /// The largest internal key (empty for an empty table).
    pub largest: Vec<u8>,
    /// Entries (versions) in the table.
    pub entries: u64,
    /// The smallest sequence number (0 for an empty table).
    pub min_seq: u64,
    /// The largest sequence number (0 for an empty table).
    pub max_seq: u64,
}

impl TableMeta {
    /// Widens the key and sequence range to span `tombstones` too (a table's range covers every key its
    /// range tombstones delete; an exclusive end that is not some key's successor is taken as included).
    pub(crate) fn widen_for(&mut self, tombstones: &[crate::lsm::range_del::RangeTombstone]) {
        use crate::lsm::key::{self, MAX_SEQUENCE, ValueKind};
        use crate::lsm::range_del::last_covered;
        use std::cmp::Ordering;
        for t in tombstones {
            let lo = key::encode(&t.start, MAX_SEQUENCE, ValueKind::Put);
            let hi = key::encode(last_covered(&t.end), 0, ValueKind::Delete);
            if self.smallest.is_empty() || key::compare(&lo, &self.smallest) == Ordering::Less {
                self.smallest = lo;
            }
            if self.largest.is_empty() || key::compare(&hi, &self.largest) == Ordering::Greater {
                self.largest = hi;
            }
            if self.entries == 0 && self.max_seq == 0 {
                self.min_seq = t.seq;
            }
            self.min_seq = self.min_seq.min(t.seq);
            self.max_seq = self.max_seq.max(t.seq);
        }
    }
}

/// The file name of table `number`: `NNNNNN.sst`, zero-padded to six digits (more when it grows).
pub fn table_file_name(number: u64) -> String {
    format!("{number:06}.sst")
}

/// The table number a file name stands for, if it names a table.
pub fn parse_table_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".sst")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
