//! The fragment format of WAL segments.
//!
//! A segment is a sequence of 32 KiB blocks (the last one may be partial). A record (an opaque payload,
//! in practice an encoded [`WriteBatch`](crate::WriteBatch)) is cut into fragments so that no fragment
//! crosses a block boundary; when fewer than [`HEADER_LEN`] bytes remain in a block they are zero-filled
//! and the next fragment starts at the next block. Recovery can therefore resynchronise at any block
//! boundary (LevelDB's framing).
//!
//! Fragment header, 19 bytes, integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC-32 (IEEE, crc32fast) of bytes 4..19 of the header followed by the payload |
//! | 4 | 2 | payload length |
//! | 6 | 1 | type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST, 5 LINK, 6 SEAL, 7 PAD (0 never written: zeros are "no data") |
//! | 7 | 4 | low 32 bits of the segment number (stale records of another segment are never accepted) |
//! | 11 | 8 | `synced_through`: the segment offset covered by the last completed fsync of this segment when the fragment was encoded |
//! | 19 | len | payload |
//!
//! `synced_through` is what lets recovery tell a torn tail (tolerated) from damage to synced data (an
//! error): damage at offset `p` followed by any valid fragment with `synced_through > p` means the damaged
//! bytes had been fsync'd, because fsync covers every byte appended before it and a record is appended
//! whole.
//!
//! # Ledger fragments (WAL segments only)
//!
//! Types 5–7 are written only by the WAL (never by the LSM manifest, which shares the framing), are
//! always a single fragment, and are never handed to the engine's replay callback. They chain the
//! segments so that replay can tell a missing, emptied or cut segment from a crash (see
//! [`reader`](super::reader)).
//!
//! LINK (type 5), at offset 0 of every WAL segment, payload 16 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | `prev`: the number of the segment before this one (0: none) |
//! | 8 | 8 | `prev_len`: that segment's data length (where its SEAL starts, padding excluded) |
//!
//! SEAL (type 6), the last fragment of a segment the writer moved on from, payload 16 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | `next`: the number of the segment that follows |
//! | 8 | 8 | `len`: this segment's data length: the end of its last record (or of its LINK) |
//!
//! PAD (type 7), any payload (ignored): fills the rest of a block that has room for a fragment header but
//! not for a whole SEAL, so the SEAL starts the next block. Valid only between records.
//!
//! "Data length" excludes padding: it is the end of the last LINK or record fragment, which is where a
//! SEAL (or the PAD before it) starts.

/// Bytes in a block.
pub const BLOCK_SIZE: usize = 32 * 1024;
/// Bytes in a fragment header.
pub const HEADER_LEN: usize = 19;

/// The type byte of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentType {
    /// A whole record.
    Full = 1,
    /// The first fragment of a record.
    First = 2,
    /// An inner fragment.
    Middle = 3,
    /// The last fragment.
    Last = 4,
    /// A segment's link to its predecessor (WAL only; offset 0).
    Link = 5,
    /// A segment's seal naming its successor (WAL only; the last fragment).
    Seal = 6,
    /// Padding before a SEAL that does not fit in the block (WAL only).
    Pad = 7,
}

impl FragmentType {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            5 => Some(FragmentType::Link),
            6 => Some(FragmentType::Seal),
            7 => Some(FragmentType::Pad),
            _ => None,
        }
    }
}

/// A fragment that passed every check.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// The fragment type.
    pub kind: FragmentType,
    /// The synced position recorded in it.
    pub synced_through: u64,
    /// The payload.
    pub payload: &'a [u8],
}

impl Fragment<'_> {
    /// Header plus payload.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// Appends the encoding of `payload` as fragments starting at `block_offset` (the position within the
/// current block) and returns the new block offset.
pub fn encode_record(
    out: &mut Vec<u8>,
    mut block_offset: usize,
    segment: u64,
    synced_through: u64,
    payload: &[u8],
) -> usize {
    let mut rest = payload;
    let mut first = true;
    loop {
        let left_in_block = BLOCK_SIZE - block_offset;
        if left_in_block < HEADER_LEN {
            out.resize(out.len() + left_in_block, 0);
            block_offset = 0;
            continue;
        }
        let room = left_in_block - HEADER_LEN;
        let take = rest.len().min(room);
        let (chunk, after) = rest.split_at(take);
        let last = after.is_empty();
        let kind = match (first, last) {
            (true, true) => FragmentType::Full,
            (true, false) => FragmentType::First,
            (false, false) => FragmentType::Middle,
            (false, true) => FragmentType::Last,
        };
        // `take` ≤ BLOCK_SIZE − HEADER_LEN < 65536, so the length fits in two bytes.
        encode_fragment(out, segment, synced_through, kind, chunk);
        block_offset += HEADER_LEN + take;
        rest = after;
        first = false;
        if last {
            return block_offset;
        }
    }
}

/// Bytes of a LINK or SEAL payload.
pub const MARKER_PAYLOAD: usize = 16;
/// Bytes of a whole LINK or SEAL fragment: a segment's first record starts at this offset.
pub const MARKER_LEN: usize = HEADER_LEN + MARKER_PAYLOAD;

/// The two fields of a LINK or SEAL payload, as written.
pub fn marker_payload(a: u64, b: u64) -> [u8; MARKER_PAYLOAD] {
    let mut p = [0u8; MARKER_PAYLOAD];
    let (x, y) = p.split_at_mut(8);
    x.copy_from_slice(&a.to_le_bytes());
    y.copy_from_slice(&b.to_le_bytes());
    p
}

/// The two fields of a LINK or SEAL payload; `None` if it is not exactly [`MARKER_PAYLOAD`] bytes.
pub fn parse_marker_payload(payload: &[u8]) -> Option<(u64, u64)> {
    let (a, b) = payload.split_first_chunk::<8>()?;
    let b: &[u8; 8] = b.try_into().ok()?;
    Some((u64::from_le_bytes(*a), u64::from_le_bytes(*b)))
}

/// Appends a single-fragment LINK or SEAL (`kind`) with fields `a`, `b` starting at `block_offset`;
/// returns the new block offset. If the block has too little room left, its rest is zero-filled (less
/// than a header) or filled by a PAD fragment, and the marker starts the next block.
pub fn encode_marker(
    out: &mut Vec<u8>,
    mut block_offset: usize,
    segment: u64,
    synced_through: u64,
    kind: FragmentType,
    a: u64,
    b: u64,
) -> usize {
    let left = BLOCK_SIZE - block_offset;
    if left < HEADER_LEN {
        out.resize(out.len() + left, 0);
        block_offset = 0;
    } else if left < MARKER_LEN {
        let pad = vec![0u8; left - HEADER_LEN];
        encode_fragment(out, segment, synced_through, FragmentType::Pad, &pad);
        block_offset = 0;
    }
    encode_fragment(out, segment, synced_through, kind, &marker_payload(a, b));
    block_offset + MARKER_LEN
}

/// Appends one fragment (header and payload; the caller checked it fits in the block).
fn encode_fragment(
    out: &mut Vec<u8>,
    segment: u64,
    synced_through: u64,
    kind: FragmentType,
    payload: &[u8],
) {
    let mut header = [0u8; HEADER_LEN];
    // Callers keep payloads below BLOCK_SIZE − HEADER_LEN < 65536.
    header[4..6].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    header[6] = kind as u8;
    header[7..11].copy_from_slice(&(segment as u32).to_le_bytes());
    header[11..19].copy_from_slice(&synced_through.to_le_bytes());
    let crc = checksum(&header, payload);
    header[0..4].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

fn checksum(header: &[u8; HEADER_LEN], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header.get(4..).unwrap_or_default());
    h.update(payload);
    h.finalize()
}

/// Parses the fragment at the start of `buf` (which must not extend past the end of its block). `None` if
/// the bytes are not a valid fragment of `segment`: too short, unknown type, length past `buf`, another
/// segment's number, or a checksum mismatch.
pub fn parse_fragment(buf: &[u8], segment: u64) -> Option<Fragment<'_>> {
    let (header, rest) = buf.split_first_chunk::<HEADER_LEN>()?;
    let kind = FragmentType::from_byte(header[6])?;
    if u32::from_le_bytes([header[7], header[8], header[9], header[10]]) != segment as u32 {
        return None;
    }
    let len = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let payload = rest.get(..len)?;
    let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if stored != checksum(header, payload) {
        return None;
    }
    let mut synced = [0u8; 8];
    synced.copy_from_slice(&header[11..19]);
    Some(Fragment {
        kind,
        synced_through: u64::from_le_bytes(synced),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_record_is_one_full_fragment() {
        let mut out = Vec::new();
        let off = encode_record(&mut out, 0, 7, 0, b"hello");
        assert_eq!(off, HEADER_LEN + 5);
        let f = parse_fragment(&out, 7).unwrap();
        assert_eq!(f.kind, FragmentType::Full);
        assert_eq!(f.payload, b"hello");
        assert!(
            parse_fragment(&out, 8).is_none(),
            "another segment's fragment"
        );
    }

    #[test]
    fn large_record_spans_blocks_and_pads_trailers() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        // Start 10 bytes before the end of a block: too little room for a header, so pad.
        let start = BLOCK_SIZE - 10;
        out.resize(start, 0);
        let end = encode_record(&mut out, start, 1, 0, &payload);
        assert_eq!(out.len() % BLOCK_SIZE, end);
        assert!(out[start..BLOCK_SIZE].iter().all(|&b| b == 0));
        let mut got = Vec::new();
        let mut kinds = Vec::new();
        let mut pos = BLOCK_SIZE;
        while pos < out.len() {
            let block_end = (pos / BLOCK_SIZE + 1) * BLOCK_SIZE;
            let f = parse_fragment(&out[pos..block_end.min(out.len())], 1).unwrap();
            kinds.push(f.kind);
            got.extend_from_slice(f.payload);
            pos += f.encoded_len();
        }
        assert_eq!(got, payload);
        assert_eq!(kinds.first(), Some(&FragmentType::First));
        assert_eq!(kinds.last(), Some(&FragmentType::Last));
        assert!(
            kinds[1..kinds.len() - 1]
                .iter()
                .all(|k| *k == FragmentType::Middle)
        );
    }

    #[test]
    fn markers_pad_to_the_next_block_when_they_do_not_fit() {
        for gap in [0usize, 5, HEADER_LEN, MARKER_LEN - 1, MARKER_LEN, 100] {
            let start = BLOCK_SIZE - gap;
            let mut out = vec![0u8; start];
            let end = encode_marker(&mut out, start % BLOCK_SIZE, 4, 9, FragmentType::Seal, 7, 8);
            let at = if gap >= MARKER_LEN || gap == 0 {
                start
            } else {
                if gap >= HEADER_LEN {
                    let pad = parse_fragment(&out[start..BLOCK_SIZE], 4).unwrap();
                    assert_eq!(pad.kind, FragmentType::Pad, "gap {gap}");
                    assert_eq!(pad.encoded_len(), gap);
                } else {
                    assert!(out[start..BLOCK_SIZE].iter().all(|&b| b == 0));
                }
                BLOCK_SIZE
            };
            let f = parse_fragment(&out[at..], 4).unwrap();
            assert_eq!(f.kind, FragmentType::Seal, "gap {gap}");
            assert_eq!(parse_marker_payload(f.payload), Some((7, 8)));
            assert_eq!(out.len(), at + MARKER_LEN);
            assert_eq!(end, (at + MARKER_LEN) - at / BLOCK_SIZE * BLOCK_SIZE);
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let mut out = Vec::new();
        encode_record(&mut out, 0, 3, 99, b"payload bytes");
        for bit in 0..out.len() * 8 {
            let mut d = out.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_fragment(&d, 3).is_none(), "bit {bit}");
        }
    }
}
