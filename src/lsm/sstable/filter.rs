//! The table's bloom filter over user keys (`bloomfilter` 3.0.2, pinned exactly).
//!
//! # The hashing path, and why it is stable
//!
//! `bloomfilter::Bloom<T>` hashes an item with `T: Hash` into two SipHash-1-3 hashers keyed by the
//! filter's 32-byte seed, and derives the k bit positions from the two results by double hashing. The
//! bytes those hashers see are whatever `T`'s `Hash` impl feeds them, and std's impls are not promised to
//! be stable: `[u8]` and `[u8; N]` write a `usize` length prefix first (8 bytes on 64-bit targets, 4 on
//! 32-bit, through an API std may change), and integers go through `write_u64`, whose default is
//! native-endian. So no std type is handed to the filter. Instead:
//!
//! 1. the user key is hashed to a `u64` by [`key_hash`], MurmurHash64A written out here (fixed seed), so
//!    it depends on nothing but the key's bytes;
//! 2. that `u64` is wrapped in `FilterKey`, whose hand-written `Hash` impl makes exactly one call:
//!    `state.write(&hash.to_le_bytes())`, 8 bytes, no length prefix, fixed byte order;
//! 3. `bloomfilter` runs SipHash-1-3 (a fixed, specified function, from the `siphasher` crate) over those
//!    8 bytes with the seed's two 16-byte halves, then its double hashing, both pinned by the exact version.
//!
//! The path goes through a 64-bit intermediate hash, which adds about n / 2^64 to the false-positive rate
//! (nothing measurable). A test pins [`key_hash`] on known inputs, and a checked-in fixture filter
//! (`tests/fixtures/bloom_fixture.bin`) must still report every key it was built from: a change anywhere
//! in the path, ours or the crate's, fails them.
//!
//! The seed is 32 bytes of splitmix64 output from the table number ([`seed_for_table`]), as the crate's
//! `*_with_seed` constructors are the only ones used (no `random` feature).
//!
//! The serialized form and the rule that a damaged filter is ignored are in the module docs of `src/lsm/sstable/mod.rs`.

use std::hash::{Hash, Hasher};

use bloomfilter::Bloom;

/// Bytes of our header before the crate's serialization.
const HEADER_LEN: usize = 14;
/// Bytes of `bloomfilter` 3.0.2's own header: version, bitmap length, k, seed.
const CRATE_HEADER_LEN: usize = 1 + 8 + 4 + 32;
/// Our filter format byte.
const FILTER_FORMAT: u8 = 1;
/// The crate's serialization version byte.
const CRATE_VERSION: u8 = 1;
/// The largest k accepted (the crate rounds `bits_per_key × ln 2`; the builder clamps bits per key to 40).
pub const MAX_K: u32 = 30;
/// The largest bits per key the builder uses.
pub const MAX_BITS_PER_KEY: u32 = 40;

/// A user key's 64-bit hash, as the filter sees it: MurmurHash64A (Austin Appleby) with a fixed seed.
pub fn key_hash(user_key: &[u8]) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    const SEED: u64 = 0x7275_6d64_6220_6b31; // "rumdb k1"
    let mut h = SEED ^ (user_key.len() as u64).wrapping_mul(M);
    let mut words = user_key.chunks_exact(8);
    for word in &mut words {
        let mut k = word
            .first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The filter seed of table `number`: four splitmix64 outputs, little-endian.
pub fn seed_for_table(number: u64) -> [u8; 32] {
    let mut state = number;
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    seed
}

/// What the filter hashes: a key's [`key_hash`], fed to the hasher as exactly 8 little-endian bytes.
struct FilterKey(u64);

impl Hash for FilterKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0.to_le_bytes());
    }
}

/// Serializes a filter over the keys whose [`key_hash`]es are `hashes` (duplicates allowed), for table
/// `number`. `None` if there are no keys or `bits_per_key` is 0.
pub fn build(hashes: &[u64], bits_per_key: u32, number: u64) -> Option<Vec<u8>> {
    let bits_per_key = bits_per_key.min(MAX_BITS_PER_KEY);
    if hashes.is_empty() || bits_per_key == 0 {
        return None;
    }
    let bytes = (hashes.len() as u64)
        .checked_mul(u64::from(bits_per_key))?
        .div_ceil(8)
        .max(1);
    let bytes = usize::try_from(bytes).ok()?;
    // Both sizes are ≥ 1, so the crate's assertion holds.
    let mut bloom: Bloom<FilterKey> =
        Bloom::new_with_seed(bytes, hashes.len(), &seed_for_table(number)).ok()?;
    let k = bloom.number_of_hash_functions();
    if !(1..=MAX_K).contains(&k) {
        return None;
    }
    for &h in hashes {
        bloom.set(&FilterKey(h));
    }
    let body = bloom.as_slice();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&[0; 4]);
    out.push(FILTER_FORMAT);
    out.push(k as u8);
    out.extend_from_slice(&(bytes as u64).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32fast::hash(out.get(4..).unwrap_or_default());
    if let Some(c) = out.first_chunk_mut::<4>() {
        *c = crc.to_le_bytes();
    }
    Some(out)
}

/// A filter read back from a table.
pub struct Filter {
    bloom: Bloom<FilterKey>,
    bytes: u64,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("bytes", &self.bytes)
            .field("k", &self.bloom.number_of_hash_functions())
            .finish()
    }
}

impl Filter {
    /// Checks and decodes a serialized filter of table `number`. Every field is validated before the
    /// crate sees the bytes; the error says which check failed.
    ///
    /// # Errors
    /// A description of the first failed check.
    pub fn decode(region: &[u8], number: u64) -> Result<Self, &'static str> {
        let (header, body) = region
            .split_first_chunk::<HEADER_LEN>()
            .ok_or("filter shorter than its header")?;
        let [c0, c1, c2, c3, format, k, len @ ..] = *header;
        let covered = region.get(4..).ok_or("short header")?;
        if u32::from_le_bytes([c0, c1, c2, c3]) != crc32fast::hash(covered) {
            return Err("filter checksum mismatch");
        }
        if format != FILTER_FORMAT {
            return Err("unknown filter format");
        }
        let k = u32::from(k);
        if !(1..=MAX_K).contains(&k) {
            return Err("filter k outside 1..=30");
        }
        let len = u64::from_le_bytes(len);
        if len == 0 {
            return Err("empty filter bitmap");
        }
        let (crate_header, bitmap) = body
            .split_first_chunk::<CRATE_HEADER_LEN>()
            .ok_or("filter shorter than the bloom header")?;
        if bitmap.len() as u64 != len {
            return Err("filter bitmap length disagrees with the header");
        }
        let [version, rest @ ..] = *crate_header;
        let (crate_len, rest) = rest.split_first_chunk::<8>().ok_or("short bloom header")?;
        let (crate_k, seed) = rest.split_first_chunk::<4>().ok_or("short bloom header")?;
        if version != CRATE_VERSION
            || u64::from_le_bytes(*crate_len) != len
            || u32::from_le_bytes(*crate_k) != k
        {
            return Err("bloom header disagrees with the filter header");
        }
        if seed != seed_for_table(number) {
            return Err("filter seed is not this table's");
        }
        let bloom: Bloom<FilterKey> =
            Bloom::from_slice(body).map_err(|_| "bloom header rejected")?;
        if bloom.number_of_hash_functions() != k || bloom.len() != len.saturating_mul(8) {
            return Err("bloom filter disagrees with its header");
        }
        Ok(Filter {
            bloom,
            bytes: region.len() as u64,
        })
    }

    /// False only if `user_key` is certainly not in the table.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(key_hash(user_key))
    }

    /// [`Self::may_contain`] for a key whose [`key_hash`] the caller computed (once for every table a
    /// get probes).
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        self.bloom.check(&FilterKey(hash))
    }

    /// The serialized size (what the filter costs in memory, roughly).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The number of hash functions.
    pub fn k(&self) -> u32 {
        self.bloom.number_of_hash_functions()
    }
}
