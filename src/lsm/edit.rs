//! Version edits: the records of the manifest.
//!
//! Each manifest record (WAL framing, so each is checksummed and a torn last record is dropped) holds one
//! edit: a sequence of tagged fields, integers as LEB128 varints, byte strings length-prefixed.
//!
//! | tag | field | payload |
//! |---|---|---|
//! | 1 | log number: WAL segments below it are obsolete | varint |
//! | 2 | next file number | varint |
//! | 3 | last sequence | varint |
//! | 4 | added table | level (1 byte), number, file size, entries, min seq, max seq (varints), smallest and largest internal key (byte strings) |
//! | 5 | deleted table | level (1 byte), number (varint) |
//!
//! The first record of every manifest is a full snapshot (every live table, the log number, next file
//! number and last sequence), so a manifest never depends on an older one.

use super::sstable::TableMeta;
use crate::batch::{get_varint64, put_bytes, put_varint, take_bytes};
use crate::error::{Error, Result};

/// The number of levels.
pub const NUM_LEVELS: usize = 7;

const TAG_LOG_NUMBER: u8 = 1;
const TAG_NEXT_FILE: u8 = 2;
const TAG_LAST_SEQ: u8 = 3;
const TAG_ADD: u8 = 4;
const TAG_DELETE: u8 = 5;

/// A change to the set of live tables and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WAL segments with lower numbers hold nothing that is not in a table.
    pub log_number: Option<u64>,
    /// The next unused file number.
    pub next_file: Option<u64>,
    /// The largest sequence number in any table.
    pub last_sequence: Option<u64>,
    /// Tables added, with their level.
    pub added: Vec<(usize, TableMeta)>,
    /// Tables removed: level and number.
    pub deleted: Vec<(usize, u64)>,
}

impl VersionEdit {
    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, v) in [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE, self.next_file),
            (TAG_LAST_SEQ, self.last_sequence),
        ] {
            if let Some(v) = v {
                out.push(tag);
                put_varint(&mut out, v);
            }
        }
        for (level, m) in &self.added {
            out.push(TAG_ADD);
            out.push(*level as u8);
            for v in [m.number, m.file_size, m.entries, m.min_seq, m.max_seq] {
                put_varint(&mut out, v);
            }
            put_bytes(&mut out, &m.smallest);
            put_bytes(&mut out, &m.largest);
        }
        for (level, number) in &self.deleted {
            out.push(TAG_DELETE);
            out.push(*level as u8);
            put_varint(&mut out, *number);
        }
        out
    }

    /// Decodes an edit read from `file` at `offset`.
    ///
    /// # Errors
    /// `Corruption` if the bytes are not a well-formed edit.
    pub fn decode(mut input: &[u8], file: &str, offset: u64) -> Result<Self> {
        let bad =
            |what: &str| Error::corruption(file, Some(offset), format!("version edit: {what}"));
        let mut edit = VersionEdit::default();
        let varint = |input: &mut &[u8]| -> Result<u64> {
            let (v, rest) = get_varint64(input).ok_or_else(|| bad("truncated number"))?;
            *input = rest;
            Ok(v)
        };
        let level = |input: &mut &[u8]| -> Result<usize> {
            let (&l, rest) = input.split_first().ok_or_else(|| bad("truncated level"))?;
            *input = rest;
            let l = usize::from(l);
            if l >= NUM_LEVELS {
                return Err(bad(&format!("level {l} out of range")));
            }
            Ok(l)
        };
        while let Some((&tag, rest)) = input.split_first() {
            input = rest;
            match tag {
                TAG_LOG_NUMBER => edit.log_number = Some(varint(&mut input)?),
                TAG_NEXT_FILE => edit.next_file = Some(varint(&mut input)?),
                TAG_LAST_SEQ => edit.last_sequence = Some(varint(&mut input)?),
                TAG_ADD => {
                    let lvl = level(&mut input)?;
                    let number = varint(&mut input)?;
                    let file_size = varint(&mut input)?;
                    let entries = varint(&mut input)?;
                    let min_seq = varint(&mut input)?;
                    let max_seq = varint(&mut input)?;
                    let (smallest, rest) = take_bytes(input).ok_or_else(|| bad("truncated key"))?;
                    let (largest, rest) = take_bytes(rest).ok_or_else(|| bad("truncated key"))?;
                    input = rest;
                    edit.added.push((
                        lvl,
                        TableMeta {
                            number,
                            file_size,
                            smallest: smallest.to_vec(),
                            largest: largest.to_vec(),
                            entries,
                            min_seq,
                            max_seq,
                        },
                    ));
                }
                TAG_DELETE => {
                    let lvl = level(&mut input)?;
                    edit.deleted.push((lvl, varint(&mut input)?));
                }
                _ => return Err(bad(&format!("unknown tag {tag}"))),
            }
        }
        Ok(edit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n: u64) -> TableMeta {
        TableMeta {
            number: n,
            file_size: 1000 + n,
            smallest: b"a\0\0\0\0\0\0\x01\x01".to_vec(),
            largest: b"z\0\0\0\0\0\0\x02\x01".to_vec(),
            entries: 10,
            min_seq: 1,
            max_seq: 2,
        }
    }

    #[test]
    fn round_trip_and_every_truncation() {
        let edit = VersionEdit {
            log_number: Some(7),
            next_file: Some(12),
            last_sequence: Some(u64::from(u32::MAX) + 5),
            added: vec![(0, meta(9)), (3, meta(10))],
            deleted: vec![(1, 4), (6, 5)],
        };
        let enc = edit.encode();
        assert_eq!(VersionEdit::decode(&enc, "M", 0).unwrap(), edit);
        for len in 0..enc.len() {
            // A prefix is either a shorter valid edit or Corruption; never a panic.
            let _ = VersionEdit::decode(&enc[..len], "M", 0);
        }
        let mut bad_level = VersionEdit::default();
        bad_level.deleted.push((1, 1));
        let mut enc = bad_level.encode();
        enc[1] = 9;
        assert!(
            VersionEdit::decode(&enc, "M", 0)
                .unwrap_err()
                .is_corruption()
        );
        assert!(
            VersionEdit::decode(&[99], "M", 0)
                .unwrap_err()
                .is_corruption()
        );
    }
}
