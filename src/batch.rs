//! [`WriteBatch`]: an atomic group of puts and deletes, and its encoding — the WAL payload of both engines.
//!
//! # Encoding
//!
//! All integers little-endian; `varint` is LEB128 (7 bits a byte, low bits first, at most 5 bytes for a
//! `u32`).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | sequence number of the first entry (assigned by the engine at commit; 0 until then) |
//! | 8 | 4 | entry count |
//! | 12 | … | entries |
//!
//! Each entry: a tag byte (`1` put, `0` delete, `2` range delete), `varint` key length, key bytes, and for
//! a put a `varint` value length and the value bytes; for a range delete the key is the range's start
//! (included), followed by a `varint` length and the bytes of its end (excluded). Entry `i` of a batch has
//! sequence `seq + i`. The WAL frames the payload
//! and checksums it; [`WriteBatch::decode`] still checks every length against the payload so that no input
//! can make it read out of bounds or allocate more than the payload's size.

use crate::error::{Error, Result};

/// Bytes of the batch header (sequence + count).
pub const BATCH_HEADER_LEN: usize = 12;

const TAG_DELETE: u8 = 0;
const TAG_PUT: u8 = 1;
const TAG_DELETE_RANGE: u8 = 2;

/// An atomic group of writes. Later entries for the same key win; an empty batch is a no-op that still
/// honours its durability.
///
/// # Examples
///
/// ```
/// use rumdb::{BatchOp, WriteBatch};
/// let mut batch = WriteBatch::new();
/// batch.put("k1", "v1");
/// batch.delete(b"k0");
/// assert_eq!(batch.len(), 2);
/// let ops: Vec<BatchOp> = batch.iter().collect();
/// assert_eq!(ops[0], BatchOp::Put { key: b"k1", value: b"v1" });
/// ```
///
/// # Errors
///
/// Building a batch never fails. [`Engine::write`](crate::Engine::write) refuses, with
/// [`Error::InvalidArgument`] and without writing anything, a batch with a key or value longer than the
/// engine's [`Limits`](crate::Limits) or whose [`encoded_len`](WriteBatch::encoded_len) passes
/// `max_batch_len`.
#[derive(Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
    user_bytes: u64,
}

/// One entry of a [`WriteBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// Remove every key `k` with `start <= k < end` (nothing if `start >= end`).
    DeleteRange {
        /// The first key removed.
        start: &'a [u8],
        /// The first key above the range (not removed).
        end: &'a [u8],
    },
}

impl<'a> BatchOp<'a> {
    /// The entry's key: for a range delete, the range's start.
    pub fn key(&self) -> &'a [u8] {
        match self {
            BatchOp::Put { key, .. }
            | BatchOp::Delete { key }
            | BatchOp::DeleteRange { start: key, .. } => key,
        }
    }
}

impl Default for WriteBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("entries", &self.count)
            .field("encoded_len", &self.rep.len())
            .finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch {
            rep: vec![0; BATCH_HEADER_LEN],
            count: 0,
            user_bytes: 0,
        }
    }

    /// Adds a put of `key` → `value`; both may be of any `impl AsRef<[u8]>` type.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::WriteBatch;
    /// let mut batch = WriteBatch::new();
    /// batch.put("user:1", "ada").put(String::from("user:2"), b"grace".to_vec());
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.rep.push(TAG_PUT);
        put_bytes(&mut self.rep, key);
        put_bytes(&mut self.rep, value);
        self.count = self.count.saturating_add(1);
        self.user_bytes += (key.len() + value.len()) as u64;
        self
    }

    /// Adds a delete of `key`, of any `impl AsRef<[u8]>` type.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BatchOp, WriteBatch};
    /// let mut batch = WriteBatch::new();
    /// batch.delete("user:1");
    /// assert_eq!(batch.iter().next(), Some(BatchOp::Delete { key: b"user:1" }));
    /// ```
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.rep.push(TAG_DELETE);
        put_bytes(&mut self.rep, key);
        self.count = self.count.saturating_add(1);
        self.user_bytes += key.len() as u64;
        self
    }

    /// Adds a delete of every key `k` with `start <= k < end` (half-open, like `start..end`), both bounds
    /// of any `impl AsRef<[u8]>` type. Like every entry it is atomic with the rest of the batch and applies
    /// in order: a put of a key in the range earlier in the batch is removed, a later one stays.
    ///
    /// `start == end` is an empty range, which deletes nothing. [`Engine::write`](crate::Engine::write)
    /// refuses an inverted range (`start > end`) with [`Error::InvalidArgument`], as a key over the
    /// [`Limits`](crate::Limits) (which apply to both bounds).
    ///
    /// The LSM engine writes one range tombstone whatever the number of keys it covers; the B-tree
    /// removes the covered entries from its pages when the batch applies.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BatchOp, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch, WriteOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// for k in ["user:1", "user:2", "video:1"] {
    ///     db.put(k, "x")?;
    /// }
    /// let mut batch = WriteBatch::new();
    /// batch.delete_range("user:", "user;"); // every key starting "user:"
    /// assert_eq!(batch.iter().next(), Some(BatchOp::DeleteRange { start: b"user:", end: b"user;" }));
    /// db.write(&batch, WriteOptions::default())?;
    /// assert_eq!(db.keys(..)?.collect::<rumdb::Result<Vec<_>>>()?, ["video:1"]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        let (start, end) = (start.as_ref(), end.as_ref());
        self.rep.push(TAG_DELETE_RANGE);
        put_bytes(&mut self.rep, start);
        put_bytes(&mut self.rep, end);
        self.count = self.count.saturating_add(1);
        self.user_bytes += (start.len() + end.len()) as u64;
        self
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.rep.truncate(BATCH_HEADER_LEN);
        self.count = 0;
        self.user_bytes = 0;
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if the batch has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded size in bytes (header included): what the batch limit applies to.
    pub fn encoded_len(&self) -> usize {
        self.rep.len()
    }

    /// User bytes, as amplification counts them: key + value of every put, key of every delete, both
    /// bounds of every range delete.
    pub fn user_bytes(&self) -> u64 {
        self.user_bytes
    }

    /// The entries in order.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            rest: self.rep.get(BATCH_HEADER_LEN..).unwrap_or_default(),
            left: self.count,
        }
    }

    /// The encoding with `seq` as the sequence of the first entry.
    pub fn encode(&self, seq: u64) -> Vec<u8> {
        let mut out = self.rep.clone();
        write_header(&mut out, seq, self.count);
        out
    }

    /// Decodes a payload made by [`WriteBatch::encode`], returning the sequence and the batch. Every length
    /// is checked against the payload; `file` and `offset` name where the payload was read, for the error.
    ///
    /// # Errors
    /// `Corruption` if the payload is not a well-formed batch.
    pub fn decode(payload: &[u8], file: &str, offset: u64) -> Result<(u64, WriteBatch)> {
        let bad =
            |what: &str| Error::corruption(file, Some(offset), format!("write batch: {what}"));
        let (header, body) = payload
            .split_first_chunk::<BATCH_HEADER_LEN>()
            .ok_or_else(|| bad("shorter than its header"))?;
        let (seq_bytes, count_bytes) = header.split_at(8);
        let seq = u64::from_le_bytes(seq_bytes.try_into().map_err(|_| bad("header"))?);
        let count = u32::from_le_bytes(count_bytes.try_into().map_err(|_| bad("header"))?);
        let mut rest = body;
        let mut user_bytes = 0u64;
        for _ in 0..count {
            let (&tag, after) = rest
                .split_first()
                .ok_or_else(|| bad("fewer entries than its count"))?;
            let (key, after) = take_bytes(after).ok_or_else(|| bad("key runs past the end"))?;
            user_bytes += key.len() as u64;
            rest = match tag {
                TAG_PUT | TAG_DELETE_RANGE => {
                    let (value, after) =
                        take_bytes(after).ok_or_else(|| bad("value runs past the end"))?;
                    user_bytes += value.len() as u64;
                    after
                }
                TAG_DELETE => after,
                _ => return Err(bad(&format!("unknown entry tag {tag}"))),
            };
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the last entry"));
        }
        if seq.checked_add(u64::from(count)).is_none() {
            return Err(bad("sequence overflows"));
        }
        let mut rep = payload.to_vec();
        // In memory the header stays zeroed; `encode` fills it.
        write_header(&mut rep, 0, 0);
        Ok((
            seq,
            WriteBatch {
                rep,
                count,
                user_bytes,
            },
        ))
    }
}

fn write_header(rep: &mut [u8], seq: u64, count: u32) {
    if let Some(h) = rep.get_mut(..BATCH_HEADER_LEN) {
        let (s, c) = h.split_at_mut(8);
        s.copy_from_slice(&seq.to_le_bytes());
        c.copy_from_slice(&count.to_le_bytes());
    }
}

/// Iterator over the entries of a [`WriteBatch`].
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The representation was built by `put`/`delete` or validated by `decode`, so these never fail; if
        // they did, iteration would end early rather than panic.
        let (&tag, after) = self.rest.split_first()?;
        let (key, after) = take_bytes(after)?;
        if tag == TAG_PUT || tag == TAG_DELETE_RANGE {
            let (value, after) = take_bytes(after)?;
            self.rest = after;
            Some(if tag == TAG_PUT {
                BatchOp::Put { key, value }
            } else {
                BatchOp::DeleteRange {
                    start: key,
                    end: value,
                }
            })
        } else {
            self.rest = after;
            Some(BatchOp::Delete { key })
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

impl<'a> IntoIterator for &'a WriteBatch {
    type Item = BatchOp<'a>;
    type IntoIter = BatchIter<'a>;

    fn into_iter(self) -> BatchIter<'a> {
        self.iter()
    }
}

/// Appends `v` as LEB128.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 `u32` (at most 5 bytes); `None` if truncated or too long.
pub(crate) fn get_varint32(input: &[u8]) -> Option<(u32, &[u8])> {
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(5) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = u32::try_from(v).ok()?;
            return Some((v, input.get(i + 1..)?));
        }
    }
    None
}

/// Reads a LEB128 `u64` (at most 10 bytes); `None` if truncated or too long.
pub(crate) fn get_varint64(input: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, input.get(i + 1..)?));
        }
    }
    None
}

/// Appends `bytes` with a LEB128 length prefix.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads a LEB128-length-prefixed byte string.
pub(crate) fn take_bytes(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = get_varint32(input)?;
    let len = usize::try_from(len).ok()?;
    if len > rest.len() {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1")
            .delete(b"b")
            .put(b"", b"")
            .put([7u8; 300], vec![9u8; 70_000])
            .delete_range(b"c", b"ff");
        let enc = b.encode(41);
        let (seq, d) = WriteBatch::decode(&enc, "x", 0).unwrap();
        assert_eq!(seq, 41);
        assert_eq!(d, b);
        assert_eq!(d.user_bytes(), 2 + 1 + 300 + 70_000 + 3);
        let ops: Vec<_> = d.iter().collect();
        assert_eq!(ops.len(), 5);
        assert_eq!(ops[1], BatchOp::Delete { key: b"b" });
        assert_eq!(ops[3].key(), &[7u8; 300][..]);
        assert_eq!(
            ops[4],
            BatchOp::DeleteRange {
                start: b"c",
                end: b"ff"
            }
        );
    }

    #[test]
    fn empty_batch_encodes_to_its_header() {
        let b = WriteBatch::new();
        assert!(b.is_empty());
        let enc = b.encode(5);
        assert_eq!(enc.len(), BATCH_HEADER_LEN);
        let (seq, d) = WriteBatch::decode(&enc, "x", 0).unwrap();
        assert_eq!((seq, d.len()), (5, 0));
    }

    #[test]
    fn every_truncation_and_bad_count_is_corruption() {
        let mut b = WriteBatch::new();
        b.put(b"key", b"value")
            .delete(b"gone")
            .put(b"k2", [1; 200])
            .delete_range(b"a", b"b");
        let enc = b.encode(1);
        for len in 0..enc.len() {
            let err = WriteBatch::decode(&enc[..len], "f", 3).unwrap_err();
            assert!(err.is_corruption(), "len {len}: {err}");
        }
        let mut more = enc.clone();
        more[8] = 5; // count says 5 entries, there are 4
        assert!(WriteBatch::decode(&more, "f", 0).is_err());
        let mut fewer = enc.clone();
        fewer[8] = 3; // trailing bytes
        assert!(WriteBatch::decode(&fewer, "f", 0).is_err());
        let mut tag = enc;
        tag[12] = 9;
        assert!(WriteBatch::decode(&tag, "f", 0).is_err());
    }

    #[test]
    fn every_byte_flip_decodes_or_errs_without_panic() {
        let mut b = WriteBatch::new();
        b.put(b"key", b"value")
            .delete(b"gone")
            .delete_range(b"a", b"z");
        let enc = b.encode(1);
        for i in 0..enc.len() * 8 {
            let mut e = enc.clone();
            e[i / 8] ^= 1 << (i % 8);
            if let Ok((_, d)) = WriteBatch::decode(&e, "f", 0) {
                assert_eq!(d.iter().count(), d.len());
            }
        }
    }

    #[test]
    fn varint64_round_trip_and_bounds() {
        for v in [0, 1, 127, 128, u64::from(u32::MAX) + 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint64(&out), Some((v, &[][..])));
        }
        assert_eq!(get_varint64(&[0xff; 10]), None);
        assert_eq!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
    }

    #[test]
    fn varint_bounds() {
        let mut v = Vec::new();
        put_varint(&mut v, u64::from(u32::MAX));
        assert_eq!(get_varint32(&v), Some((u32::MAX, &[][..])));
        assert_eq!(get_varint32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), None);
        assert_eq!(get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None);
        assert_eq!(get_varint32(&[0x80]), None);
    }
}
