//! Internal keys: a user key with the sequence number and kind of one version.
//!
//! Encoding: the user key, then an 8-byte trailer holding `(sequence << 8) | kind` big-endian.
//!
//! Order ([`compare`]): user key ascending, then sequence **descending**, then kind descending — so the
//! newest version of a key comes first, and seeking to `encode(key, s, ValueKind::Put)` lands on the newest
//! version visible at sequence `s`. Plain byte order of the encodings is *not* this order (a shorter user
//! key's trailer would compare against a longer key's bytes): every sorted structure uses [`compare`].

use std::cmp::Ordering;

/// Bytes of the sequence/kind trailer.
pub const TRAILER_LEN: usize = 8;

/// The largest sequence number (56 bits).
pub const MAX_SEQUENCE: u64 = (1 << 56) - 1;

/// What a version says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueKind {
    /// A tombstone: the key is deleted as of this version.
    Delete = 0,
    /// A value.
    Put = 1,
}

impl ValueKind {
    /// The kind for a trailer byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// The encoding of `(user_key, seq, kind)`.
pub fn encode(user_key: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    encode_into(&mut out, user_key, seq, kind);
    out
}

/// Appends the encoding of `(user_key, seq, kind)` to `out`.
pub fn encode_into(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: ValueKind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&((seq.min(MAX_SEQUENCE) << 8) | kind as u64).to_be_bytes());
}

/// The parts of an internal key, or `None` if it is shorter than a trailer or has an unknown kind.
pub fn decode(ikey: &[u8]) -> Option<(&[u8], u64, ValueKind)> {
    let split = ikey.len().checked_sub(TRAILER_LEN)?;
    let (user, trailer) = ikey.split_at(split);
    let packed = u64::from_be_bytes(trailer.try_into().ok()?);
    Some((user, packed >> 8, ValueKind::from_byte(packed as u8)?))
}

/// The user key of an internal key (the whole input if it is too short to have a trailer).
pub fn user_key(ikey: &[u8]) -> &[u8] {
    ikey.get(..ikey.len().saturating_sub(TRAILER_LEN))
        .unwrap_or_default()
}

fn trailer(ikey: &[u8]) -> u64 {
    ikey.len()
        .checked_sub(TRAILER_LEN)
        .and_then(|at| ikey.get(at..))
        .and_then(|t| t.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// The internal-key order: user key ascending, then sequence and kind descending.
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    user_key(a)
        .cmp(user_key(b))
        .then_with(|| trailer(b).cmp(&trailer(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_user_key_then_newest_first() {
        let mut keys = [
            encode(b"ab", 5, ValueKind::Put),
            encode(b"a", 1, ValueKind::Put),
            encode(b"a", 9, ValueKind::Delete),
            encode(b"", 3, ValueKind::Put),
            encode(b"a", 9, ValueKind::Put),
            encode(b"b", 0, ValueKind::Delete),
        ];
        keys.sort_by(|x, y| compare(x, y));
        let parts: Vec<_> = keys.iter().map(|k| decode(k).unwrap()).collect();
        assert_eq!(
            parts,
            vec![
                (&b""[..], 3, ValueKind::Put),
                (&b"a"[..], 9, ValueKind::Put),
                (&b"a"[..], 9, ValueKind::Delete),
                (&b"a"[..], 1, ValueKind::Put),
                (&b"ab"[..], 5, ValueKind::Put),
                (&b"b"[..], 0, ValueKind::Delete),
            ]
        );
    }

    #[test]
    fn seek_key_lands_on_newest_visible_version() {
        let v7 = encode(b"k", 7, ValueKind::Put);
        let v3 = encode(b"k", 3, ValueKind::Delete);
        let seek = encode(b"k", 5, ValueKind::Put);
        assert_eq!(compare(&seek, &v7), Ordering::Greater);
        assert_eq!(compare(&seek, &v3), Ordering::Less);
    }

    #[test]
    fn malformed_keys_do_not_panic() {
        assert_eq!(decode(b"short"), None);
        let mut bad = encode(b"k", 1, ValueKind::Put);
        *bad.last_mut().unwrap() = 7;
        assert_eq!(decode(&bad), None);
        assert_eq!(user_key(b"abc"), b"");
        let _ = compare(b"", b"x");
    }
}
