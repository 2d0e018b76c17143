//! The two header slots (pages 0 and 1): what a checkpoint commits.
//!
//! A checkpoint writes the slot its new counter selects (`counter % 2`), so the slot of the previous
//! checkpoint stays intact; open takes the valid slot with the highest counter, and both invalid is
//! `Corruption`.
//!
//! # Header slot (page 0 or 1; 64 bytes, the rest of the page zero)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RUMDB-BT` |
//! | 8 | 4 | format version (4; any other is `UnsupportedVersion`) |
//! | 12 | 4 | page size (must equal `IDENTITY`'s) |
//! | 16 | 8 | checkpoint counter; the slot is `counter % 2` |
//! | 24 | 8 | LSN: the last batch the checkpoint includes |
//! | 32 | 4 | root page |
//! | 36 | 4 | height: levels of internal pages above the leaves (≤ 40) |
//! | 40 | 4 | first free-list page (0: no free page) |
//! | 44 | 4 | free pages the list names |
//! | 48 | 4 | page count of the file (header pages included) |
//! | 52 | 8 | first live WAL segment: the one the checkpoint's WAL rotation started (0: not recorded) |
//! | 60 | 4 | CRC-32 of bytes 0..60 |
//!
//! The slot fits in the first 512-byte sector, which the media assumption (atomic 512 B sector writes)
//! keeps whole.

use crate::error::{Error, Result};

use super::page::{DATA_FILE, u32_at, u64_at};

/// Magic at the start of a header slot.
pub(crate) const HEADER_MAGIC: &[u8; 8] = b"RUMDB-BT";
/// Bytes of a header slot (the rest of the page is zero).
pub(crate) const SLOT_BYTES: usize = 64;
/// The deepest tree a header may describe: far beyond any real tree (a 2-way fan-out over 2^32 pages is
/// 32 levels), small enough to bound every descent.
pub(crate) const MAX_HEIGHT: u32 = 40;

/// One header slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Format version of the data file.
    pub version: u32,
    /// Bytes per page.
    pub page_size: u32,
    /// Checkpoints completed; selects the slot (`counter % 2`).
    pub counter: u64,
    /// The last batch (LSN) the checkpoint includes.
    pub lsn: u64,
    /// Root page of the tree.
    pub root: u32,
    /// Levels above the leaves (0: the root is a leaf).
    pub height: u32,
    /// First free-list page (0: no free page).
    pub free_head: u32,
    /// Free pages the list names (the list's own pages not included).
    pub free_count: u32,
    /// Pages in the file (the header pages included).
    pub page_count: u32,
    /// The first live WAL segment: the one the checkpoint's WAL rotation started (every older segment
    /// is obsolete). 0: not recorded (a header written before this field existed; not checked).
    pub wal_first: u64,
}

impl Header {
    /// The slot's encoding.
    pub fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut b = [0u8; SLOT_BYTES];
        let fields: [(usize, &[u8]); 11] = [
            (0, HEADER_MAGIC),
            (8, &self.version.to_le_bytes()),
            (12, &self.page_size.to_le_bytes()),
            (16, &self.counter.to_le_bytes()),
            (24, &self.lsn.to_le_bytes()),
            (32, &self.root.to_le_bytes()),
            (36, &self.height.to_le_bytes()),
            (40, &self.free_head.to_le_bytes()),
            (44, &self.free_count.to_le_bytes()),
            (48, &self.page_count.to_le_bytes()),
            (52, &self.wal_first.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            super::page::put_at(&mut b, at, bytes);
        }
        let crc = crc32fast::hash(b.get(..60).unwrap_or_default());
        super::page::put_at(&mut b, 60, &crc.to_le_bytes());
        b
    }

    /// Decodes and validates slot `slot` (0 or 1) read from the start of its page.
    ///
    /// # Errors
    /// `Corruption` if the slot is not a valid header;
    /// `UnsupportedVersion` if it is valid but of another version.
    pub fn decode(bytes: &[u8], slot: u32, page_size: u32, supported: u32) -> Result<Self> {
        let bad = |what: String| {
            Error::corruption(
                DATA_FILE,
                Some(u64::from(slot) * u64::from(page_size)),
                format!("header slot {slot}: {what}"),
            )
        };
        let body = bytes
            .get(..SLOT_BYTES)
            .ok_or_else(|| bad(format!("{} bytes, expected {SLOT_BYTES}", bytes.len())))?;
        if !body.starts_with(HEADER_MAGIC) {
            return Err(bad("bad magic".into()));
        }
        let crc = u32_at(body, 60).unwrap_or(0);
        if crc != crc32fast::hash(body.get(..60).unwrap_or_default()) {
            return Err(bad("checksum mismatch".into()));
        }
        let w = |at| u32_at(body, at).unwrap_or(0);
        let h = Header {
            version: w(8),
            page_size: w(12),
            counter: u64_at(body, 16).unwrap_or(0),
            lsn: u64_at(body, 24).unwrap_or(0),
            root: w(32),
            height: w(36),
            free_head: w(40),
            free_count: w(44),
            page_count: w(48),
            wal_first: u64_at(body, 52).unwrap_or(0),
        };
        // An older version is refused as surely as a newer one: format 2 dropped the leaf sibling links,
        // and nothing reads format 1.
        if h.version != supported {
            return Err(Error::UnsupportedVersion {
                found: h.version,
                supported,
            });
        }
        if h.page_size != page_size {
            return Err(bad(format!(
                "page size {} but IDENTITY says {page_size}",
                h.page_size
            )));
        }
        if h.counter % 2 != u64::from(slot) {
            return Err(bad(format!(
                "counter {} belongs in the other slot",
                h.counter
            )));
        }
        let in_range = |p: u32| (2..h.page_count).contains(&p);
        if h.page_count < 3 || !in_range(h.root) || h.height > MAX_HEIGHT {
            return Err(bad(format!(
                "root {} height {} of {} pages",
                h.root, h.height, h.page_count
            )));
        }
        if (h.free_head != 0 && !in_range(h.free_head))
            || h.free_count >= h.page_count
            || (h.free_head == 0) != (h.free_count == 0)
        {
            return Err(bad(format!(
                "free list head {} count {} of {} pages",
                h.free_head, h.free_count, h.page_count
            )));
        }
        Ok(h)
    }

    /// The valid slot with the highest counter.
    ///
    /// # Errors
    /// `UnsupportedVersion` if the newest valid slot is newer than this build; `Corruption` if neither slot
    /// is valid.
    pub fn choose(a: Result<Header>, b: Result<Header>) -> Result<Header> {
        match (a, b) {
            (Ok(a), Ok(b)) => Ok(if b.counter > a.counter { b } else { a }),
            (Ok(h), Err(Error::Corruption { .. })) | (Err(Error::Corruption { .. }), Ok(h)) => {
                Ok(h)
            }
            (Err(e @ Error::UnsupportedVersion { .. }), _)
            | (_, Err(e @ Error::UnsupportedVersion { .. })) => Err(e),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(Error::corruption(
                DATA_FILE,
                Some(0),
                format!("both header slots are invalid: {a}; {b}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(counter: u64) -> Header {
        Header {
            version: 1,
            page_size: 512,
            counter,
            lsn: 77,
            root: 5,
            height: 2,
            free_head: 9,
            free_count: 3,
            page_count: 20,
            wal_first: 12,
        }
    }

    #[test]
    fn round_trip_and_every_flip_is_refused() {
        let h = header(3);
        let enc = h.encode();
        assert_eq!(Header::decode(&enc, 1, 512, 1).unwrap(), h);
        assert!(Header::decode(&enc, 0, 512, 1).is_err(), "wrong slot");
        assert!(Header::decode(&enc, 1, 4096, 1).is_err(), "wrong page size");
        for bit in 0..SLOT_BYTES * 8 {
            let mut d = enc;
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::decode(&d, 1, 512, 1).is_err(), "bit {bit}");
        }
    }

    /// Bytes 52..60 (once reserved, then refused when nonzero: what btree_header_decode found) are the
    /// first live WAL segment; every value decodes and re-encodes to the same bytes.
    #[test]
    fn the_first_live_wal_segment_round_trips() {
        for first in [0u64, 1, 0x2c2c_2c2c_2c2c_2c2c, u64::MAX] {
            let mut h = header(3);
            h.wal_first = first;
            let enc = h.encode();
            let got = Header::decode(&enc, 1, 512, 1).unwrap();
            assert_eq!(got, h);
            assert_eq!(got.encode(), enc);
        }
    }

    #[test]
    fn the_valid_slot_with_the_highest_counter_wins() {
        let old = header(2);
        let new = header(3);
        let pick = |a: Header, b: Header| {
            Header::choose(
                Header::decode(&a.encode(), 0, 512, 1),
                Header::decode(&b.encode(), 1, 512, 1),
            )
        };
        assert_eq!(pick(old, new).unwrap().counter, 3);
        let mut torn = new.encode();
        torn[30] ^= 1;
        let got = Header::choose(
            Header::decode(&old.encode(), 0, 512, 1),
            Header::decode(&torn, 1, 512, 1),
        )
        .unwrap();
        assert_eq!(got.counter, 2);
        let both_bad = Header::choose(
            Header::decode(&[0; 64], 0, 512, 1),
            Header::decode(&torn, 1, 512, 1),
        );
        assert!(both_bad.unwrap_err().is_corruption());
        let mut newer = header(5);
        newer.version = 9;
        assert!(matches!(
            Header::choose(
                Header::decode(&old.encode(), 0, 512, 1),
                Header::decode(&newer.encode(), 1, 512, 1)
            ),
            Err(Error::UnsupportedVersion { found: 9, .. })
        ));
        // An older version is refused too (format 2 changed the page layout).
        assert!(matches!(
            Header::decode(&old.encode(), 0, 512, 2),
            Err(Error::UnsupportedVersion {
                found: 1,
                supported: 2
            })
        ));
    }
}
