//! The block: prefix-compressed entries with restart points (format in the [module docs](super)).
//!
//! `BlockBuilder` encodes one; [`Block`] holds a decoded one whose structure was checked whole when it was
//! built, and [`BlockIter`] walks it in [`key::compare`] order.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use crate::batch::{get_varint32, put_varint};
use crate::error::{Error, Result};
use crate::lsm::key;

use super::table_file_name;

/// Bytes of the restart count at the end of a block.
const COUNT_LEN: usize = 4;

/// Encodes one block.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// A builder that stores a whole key every `restart_interval` (≥ 1) entries.
    pub(crate) fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry.
    ///
    /// REQUIRES: `key` sorts after every key added since the last reset (the table builder checks this),
    /// and the block stays under 4 GiB (the table builder bounds block sizes far below that).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart == self.restart_interval || self.entries == 0 {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let suffix = key.get(shared..).unwrap_or_default();
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, suffix.len() as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(suffix);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// The encoded size if the block were finished now.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + COUNT_LEN
    }

    /// True if no entry was added since the last reset.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends the restart array and returns the finished block. The builder must be reset before reuse.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf
            .extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        &self.buf
    }

    /// Empties the builder for the next block.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

/// One decoded entry header: where the key suffix and value are and where the next entry starts.
struct EntryHeader {
    shared: usize,
    suffix: Range<usize>,
    value: Range<usize>,
}

/// A decoded block whose restart array, entry headers and key order were validated when it was built.
pub struct Block {
    data: Vec<u8>,
    /// Where the restart array starts (the end of the entries).
    restarts_at: usize,
    num_restarts: usize,
    /// Entries in the block.
    entries: usize,
    /// For error messages: the table and the block's offset in it.
    number: u64,
    file_offset: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("table", &self.number)
            .field("offset", &self.file_offset)
            .field("len", &self.data.len())
            .field("entries", &self.entries)
            .finish()
    }
}

impl Block {
    /// Checks and wraps the decoded bytes of the block at `file_offset` of table `number`.
    ///
    /// # Errors
    /// `Corruption` if the restart array or any entry header is malformed, or the keys are not strictly
    /// increasing.
    pub(crate) fn new(data: Vec<u8>, number: u64, file_offset: u64) -> Result<Self> {
        let mut block = Block {
            data,
            restarts_at: 0,
            num_restarts: 0,
            entries: 0,
            number,
            file_offset,
        };
        let (entries_area, count) = block
            .data
            .split_last_chunk::<COUNT_LEN>()
            .ok_or_else(|| block.corruption("block shorter than its restart count"))?;
        let num_restarts = u32::from_le_bytes(*count) as usize;
        let restarts_len = num_restarts
            .checked_mul(4)
            .filter(|&n| n <= entries_area.len())
            .ok_or_else(|| block.corruption("restart count larger than the block"))?;
        block.restarts_at = entries_area.len() - restarts_len;
        block.num_restarts = num_restarts;
        block.entries = block.check_entries()?;
        Ok(block)
    }

    /// Walks every entry once: restart offsets must be exactly the entries that start a run, with
    /// `shared` 0, the entries must end exactly at the restart array, and the keys must be strictly
    /// increasing in [`key::compare`] order (the binary search over restart points in
    /// [`BlockIter::seek`] is only sound on sorted keys: unsorted ones would make it miss a present key
    /// instead of reporting the damage). Returns the entry count.
    fn check_entries(&self) -> Result<usize> {
        if self.num_restarts == 0 {
            return if self.restarts_at == 0 {
                Ok(0)
            } else {
                Err(self.corruption("entries without a restart point"))
            };
        }
        let mut offset = 0;
        let mut key = Vec::new();
        let mut previous: Vec<u8> = Vec::new();
        let mut entries = 0usize;
        let mut next_restart = 0;
        while offset < self.restarts_at {
            let header = self.entry_header(offset)?;
            let is_restart =
                next_restart < self.num_restarts && self.restart_point(next_restart)? == offset;
            if is_restart {
                next_restart += 1;
                if header.shared != 0 {
                    return Err(self.corruption("a restart entry shares a prefix"));
                }
            } else if entries == 0 {
                return Err(self.corruption("the first restart point is not the first entry"));
            }
            if header.shared > key.len() {
                return Err(self.corruption("entry shares more than the previous key"));
            }
            std::mem::swap(&mut key, &mut previous);
            key.clear();
            key.extend_from_slice(previous.get(..header.shared).unwrap_or_default());
            key.extend_from_slice(self.slice(header.suffix.clone())?);
            if entries > 0 && key::compare(&previous, &key) != Ordering::Less {
                return Err(self.corruption("keys not in increasing order"));
            }
            entries += 1;
            offset = header.value.end;
        }
        if next_restart != self.num_restarts {
            return Err(self.corruption("restart point not at an entry"));
        }
        Ok(entries)
    }

    /// The decoded bytes (what the cache charges).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Entries in the block.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The block's offset in its table file.
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }

    pub(crate) fn corruption(&self, what: &str) -> Error {
        Error::corruption(
            table_file_name(self.number),
            Some(self.file_offset),
            format!("block: {what}"),
        )
    }

    fn restart_point(&self, i: usize) -> Result<usize> {
        let at = i
            .checked_mul(4)
            .and_then(|o| o.checked_add(self.restarts_at))
            .ok_or_else(|| self.corruption("restart index out of range"))?;
        self.data
            .get(at..)
            .and_then(|rest| rest.first_chunk::<4>())
            .map(|b| u32::from_le_bytes(*b) as usize)
            .ok_or_else(|| self.corruption("restart index out of range"))
    }

    /// The header of the entry at `offset`, bounds-checked against the entry area.
    fn entry_header(&self, offset: usize) -> Result<EntryHeader> {
        let area = self
            .data
            .get(offset..self.restarts_at)
            .ok_or_else(|| self.corruption("entry offset outside the block"))?;
        let bad = || self.corruption("truncated entry header");
        let (shared, rest) = get_varint32(area).ok_or_else(bad)?;
        let (unshared, rest) = get_varint32(rest).ok_or_else(bad)?;
        let (value_len, rest) = get_varint32(rest).ok_or_else(bad)?;
        let start = offset + (area.len() - rest.len());
        let suffix_end = start
            .checked_add(unshared as usize)
            .ok_or_else(|| self.corruption("entry length overflows"))?;
        let value_end = suffix_end
            .checked_add(value_len as usize)
            .filter(|&end| end <= self.restarts_at)
            .ok_or_else(|| self.corruption("entry runs past the entries"))?;
        Ok(EntryHeader {
            shared: shared as usize,
            suffix: start..suffix_end,
            value: suffix_end..value_end,
        })
    }

    fn slice(&self, range: Range<usize>) -> Result<&[u8]> {
        self.data
            .get(range)
            .ok_or_else(|| self.corruption("entry outside the block"))
    }
}

/// A cursor over one [`Block`]. It owns an `Arc` of the block, so it can outlive the cache entry.
#[derive(Debug)]
pub struct BlockIter {
    block: Arc<Block>,
    valid: bool,
    /// Offset of the current entry.
    current: usize,
    /// Offset of the entry after it (the restart array when it is the last).
    next: usize,
    key: Vec<u8>,
    value: Range<usize>,
}

impl BlockIter {
    /// An unpositioned cursor over `block`.
    pub fn new(block: Arc<Block>) -> Self {
        BlockIter {
            block,
            valid: false,
            current: 0,
            next: 0,
            key: Vec::new(),
            value: 0..0,
        }
    }

    /// True if positioned on an entry.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key; empty unless valid.
    pub fn key(&self) -> &[u8] {
        if self.valid { &self.key } else { &[] }
    }

    /// The current value; empty unless valid.
    pub fn value(&self) -> &[u8] {
        if self.valid {
            self.block.data.get(self.value.clone()).unwrap_or_default()
        } else {
            &[]
        }
    }

    /// Decodes the entry at `offset`, whose predecessor's key is in `self.key` (or which is a restart).
    fn load(&mut self, offset: usize) -> Result<()> {
        self.valid = false;
        let header = self.block.entry_header(offset)?;
        if header.shared > self.key.len() {
            return Err(self
                .block
                .corruption("entry shares more than the previous key"));
        }
        self.key.truncate(header.shared);
        self.key
            .extend_from_slice(self.block.slice(header.suffix.clone())?);
        self.current = offset;
        self.next = header.value.end;
        self.value = header.value;
        self.valid = true;
        Ok(())
    }

    fn load_restart(&mut self, i: usize) -> Result<()> {
        self.key.clear();
        let offset = self.block.restart_point(i)?;
        self.load(offset)
    }

    /// Positions on the first entry (invalid if the block is empty).
    ///
    /// # Errors
    /// `Corruption`.
    pub fn seek_to_first(&mut self) -> Result<()> {
        self.valid = false;
        if self.block.num_restarts == 0 {
            return Ok(());
        }
        self.load_restart(0)
    }

    /// Positions on the last entry (invalid if the block is empty).
    ///
    /// # Errors
    /// `Corruption`.
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.valid = false;
        let Some(last) = self.block.num_restarts.checked_sub(1) else {
            return Ok(());
        };
        self.load_restart(last)?;
        while self.next < self.block.restarts_at {
            self.load(self.next)?;
        }
        Ok(())
    }

    /// Positions on the first entry with key ≥ `target` ([`key::compare`]); invalid if there is none.
    ///
    /// # Errors
    /// `Corruption`.
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.valid = false;
        if self.block.num_restarts == 0 {
            return Ok(());
        }
        // The last restart whose key is < target: every earlier entry is < target too.
        let (mut lo, mut hi) = (0, self.block.num_restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let header = self.block.entry_header(self.block.restart_point(mid)?)?;
            let restart_key = self.block.slice(header.suffix)?;
            if key::compare(restart_key, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.load_restart(lo)?;
        while key::compare(&self.key, target) == Ordering::Less {
            self.next()?;
            if !self.valid {
                break;
            }
        }
        Ok(())
    }

    /// Moves to the next entry (invalid after the last).
    ///
    /// # Errors
    /// `Corruption`.
    pub fn next(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        if self.next >= self.block.restarts_at {
            self.valid = false;
            return Ok(());
        }
        self.load(self.next)
    }

    /// Moves to the previous entry (invalid before the first): rescans from the restart before it.
    ///
    /// # Errors
    /// `Corruption`.
    pub fn prev(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        let target = self.current;
        if target == 0 {
            self.valid = false;
            return Ok(());
        }
        // The last restart point before the current entry.
        let (mut lo, mut hi) = (0, self.block.num_restarts.saturating_sub(1));
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.block.restart_point(mid)? < target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.load_restart(lo)?;
        while self.next < target {
            self.load(self.next)?;
        }
        if self.next != target {
            self.valid = false;
            return Err(self
                .block
                .corruption("entries do not chain to the current one"));
        }
        Ok(())
    }
}
