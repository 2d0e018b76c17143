//! The snapshot byte format, version 1: the state machine streamed out of a consistent scan.
//!
//! ```text
//! magic      8 bytes   "RUMDBSNP"
//! version    u32 LE    1
//! meta_len   u32 LE    then meta_len bytes: the openraft SnapshotMeta, JSON
//! records    repeated: key_len u32 LE, key, value_len u32 LE, value   (keys ascending, no prefix)
//! end        u32 LE    0xFFFF_FFFF (no key is that long)
//! count      u64 LE    the number of records
//! crc        u32 LE    CRC-32 (IEEE, as crc32fast computes it) of every byte before it
//! ```
//!
//! [`decode`] checks the magic, the version, every length against what is left, the count and the
//! checksum, and returns a typed [`FormatError`] for anything else: a cut or damaged snapshot is refused
//! before a byte of it is installed.

use std::fmt;

use openraft::SnapshotMeta;

use crate::NodeId;

/// The first 8 bytes of a snapshot.
pub const MAGIC: &[u8; 8] = b"RUMDBSNP";
/// The version this crate writes and reads.
pub const VERSION: u32 = 1;
const END: u32 = u32::MAX;

/// The snapshot's metadata type.
pub type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// Why a snapshot's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The bytes do not start with [`MAGIC`].
    NotASnapshot,
    /// A version this crate does not read.
    UnknownVersion(u32),
    /// The bytes end before the field named.
    Truncated(&'static str),
    /// The metadata is not valid JSON of a snapshot meta.
    BadMeta(String),
    /// The record count at the end differs from the records present.
    CountMismatch {
        /// The count written.
        written: u64,
        /// The records read.
        read: u64,
    },
    /// The checksum differs: the bytes were damaged.
    Checksum {
        /// The checksum written.
        written: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Bytes follow the checksum.
    TrailingBytes(usize),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::NotASnapshot => write!(f, "not a rumdb-raft snapshot (bad magic)"),
            FormatError::UnknownVersion(v) => {
                write!(f, "snapshot format version {v} is not supported")
            }
            FormatError::Truncated(what) => write!(f, "snapshot truncated in {what}"),
            FormatError::BadMeta(e) => write!(f, "snapshot metadata: {e}"),
            FormatError::CountMismatch { written, read } => {
                write!(f, "snapshot says {written} records, holds {read}")
            }
            FormatError::Checksum { written, computed } => {
                write!(
                    f,
                    "snapshot checksum {written:#010x}, computed {computed:#010x}"
                )
            }
            FormatError::TrailingBytes(n) => write!(f, "{n} bytes after the snapshot's checksum"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Writes a snapshot record by record.
///
/// # Examples
///
/// ```
/// use rumdb_raft::snapshot::{Writer, decode};
/// let mut w = Writer::new(&Default::default());
/// w.record(b"k", b"v");
/// let bytes = w.finish();
/// let (meta, records) = decode(&bytes)?;
/// assert_eq!(meta, Default::default());
/// assert_eq!(records, vec![(&b"k"[..], &b"v"[..])]);
/// # Ok::<(), rumdb_raft::snapshot::FormatError>(())
/// ```
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    count: u64,
}

impl Writer {
    /// Starts a snapshot of `meta`.
    pub fn new(meta: &Meta) -> Self {
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(&VERSION.to_le_bytes());
        // A `SnapshotMeta` of plain ids, strings and maps always serializes.
        let meta = serde_json::to_vec(meta).unwrap_or_default();
        put_len(&mut buf, meta.len());
        buf.extend_from_slice(&meta);
        Writer { buf, count: 0 }
    }

    /// Appends one key-value record (keys must come in ascending order; rumdb's limits keep every
    /// length below `u32::MAX`).
    pub fn record(&mut self, key: &[u8], value: &[u8]) {
        put_len(&mut self.buf, key.len());
        self.buf.extend_from_slice(key);
        put_len(&mut self.buf, value.len());
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    /// Ends the snapshot: the end mark, the count and the checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&END.to_le_bytes());
        self.buf.extend_from_slice(&self.count.to_le_bytes());
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX - 1);
    buf.extend_from_slice(&len.to_le_bytes());
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        if self.rest.len() < n {
            return Err(FormatError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| FormatError::Truncated(what))?,
        ))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, FormatError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| FormatError::Truncated(what))?,
        ))
    }
}

/// A decoded snapshot: its metadata and its records in order, borrowing from the bytes.
pub type Decoded<'a> = (Meta, Vec<(&'a [u8], &'a [u8])>);

/// Checks and decodes a whole snapshot.
///
/// # Errors
/// [`FormatError`] for bytes that are not a complete, undamaged version-1 snapshot.
///
/// # Examples
///
/// ```
/// use rumdb_raft::snapshot::{FormatError, Writer, decode};
/// let mut bytes = Writer::new(&Default::default()).finish();
/// let last = bytes.len() - 1;
/// bytes[last] ^= 1;
/// assert!(matches!(decode(&bytes), Err(FormatError::Checksum { .. })));
/// assert_eq!(decode(b"RUMDB"), Err(FormatError::NotASnapshot));
/// ```
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, FormatError> {
    if !bytes.starts_with(MAGIC) {
        return Err(FormatError::NotASnapshot);
    }
    let mut r = Reader {
        rest: bytes.get(MAGIC.len()..).unwrap_or_default(),
    };
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(FormatError::UnknownVersion(version));
    }
    // Check the checksum before trusting any length: damage anywhere is reported as damage.
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or(FormatError::Truncated("checksum"))?;
    let (body, crc) = bytes.split_at(body_len);
    let written = u32::from_le_bytes(
        crc.try_into()
            .map_err(|_| FormatError::Truncated("checksum"))?,
    );
    let computed = crc32fast::hash(body);
    if written != computed {
        return Err(FormatError::Checksum { written, computed });
    }
    let meta_len = r.u32("metadata length")? as usize;
    let meta = r.take(meta_len, "metadata")?;
    let meta: Meta =
        serde_json::from_slice(meta).map_err(|e| FormatError::BadMeta(e.to_string()))?;
    let mut records = Vec::new();
    loop {
        let key_len = r.u32("key length")?;
        if key_len == END {
            break;
        }
        let key = r.take(key_len as usize, "key")?;
        let value_len = r.u32("value length")? as usize;
        let value = r.take(value_len, "value")?;
        records.push((key, value));
    }
    let count = r.u64("record count")?;
    if count != records.len() as u64 {
        return Err(FormatError::CountMismatch {
            written: count,
            read: records.len() as u64,
        });
    }
    r.take(4, "checksum")?;
    if !r.rest.is_empty() {
        return Err(FormatError::TrailingBytes(r.rest.len()));
    }
    Ok((meta, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(&Meta {
            snapshot_id: "s-1".into(),
            ..Default::default()
        });
        w.record(b"a", b"1");
        w.record(b"bb", b"");
        w.record(b"c", &[7u8; 300]);
        w.finish()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let (meta, records) = decode(&bytes).unwrap();
        assert_eq!(meta.snapshot_id, "s-1");
        assert_eq!(records.len(), 3);
        assert_eq!(records[1], (&b"bb"[..], &b""[..]));
        assert_eq!(records[2].1.len(), 300);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(decode(&damaged).is_err(), "flip at {i} accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn a_future_version_is_named() {
        let mut bytes = sample();
        bytes[8] = 2;
        assert_eq!(decode(&bytes), Err(FormatError::UnknownVersion(2)));
    }
}
