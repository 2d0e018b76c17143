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
//! | 6 | 1 | type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST (0 never written: zeros are "no data") |
//! | 7 | 4 | low 32 bits of the segment number (stale records of another segment are never accepted) |
//! | 11 | 8 | `synced_through`: the segment offset covered by the last completed fsync of this segment when the fragment was encoded |
//! | 19 | len | payload |
//!
//! `synced_through` is what lets recovery tell a torn tail (tolerated) from damage to synced data (an
//! error): damage at offset `p` followed by any valid fragment with `synced_through > p` means the damaged
//! bytes had been fsync'd, because fsync covers every byte appended before it and a record is appended
//! whole.

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
}

impl FragmentType {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
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
        let mut header = [0u8; HEADER_LEN];
        // `take` ≤ BLOCK_SIZE − HEADER_LEN < 65536, so the length fits in two bytes.
        header[4..6].copy_from_slice(&(take as u16).to_le_bytes());
        header[6] = kind as u8;
        header[7..11].copy_from_slice(&(segment as u32).to_le_bytes());
        header[11..19].copy_from_slice(&synced_through.to_le_bytes());
        let crc = checksum(&header, chunk);
        header[0..4].copy_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(chunk);
        block_offset += HEADER_LEN + take;
        rest = after;
        first = false;
        if last {
            return block_offset;
        }
    }
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
