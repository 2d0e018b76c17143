//! The peer workload's pieces, shared by `examples/speed`, `examples/space` and `benches/engines`: the
//! figures the engine issues quote against fjall, RocksDB, redb and LMDB use exactly these keys and values.

use std::path::Path;

use crate::{BTreeEngine, BTreeOptions, Engine, Error, LsmEngine, LsmOptions, Result};

use super::Rng;

/// Bytes of a [`key`].
pub const KEY_LEN: usize = 16;
/// Bytes of a [`value`].
pub const VALUE_LEN: usize = 100;

/// Key `id`: the decimal id zero-padded to 16 bytes, so byte order is numeric order.
pub fn key(id: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    // Ids past 16 digits keep their low 16 digits: the workloads stay far below that.
    let digits = format!("{:016}", id % 10_000_000_000_000_000);
    k.copy_from_slice(digits.as_bytes());
    k
}

/// A 100-byte value: 50 random bytes followed by a copy of them, so it compresses to about half.
pub fn value(rng: &mut Rng) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let (a, b) = v.split_at_mut(VALUE_LEN / 2);
    rng.fill(a);
    b.copy_from_slice(a);
    v
}

/// Shuffles `ids` in place (Fisher–Yates, seeded, so every run writes the same order).
pub fn shuffle(ids: &mut [u64], seed: u64) {
    let mut rng = Rng::new(seed);
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// Opens `engine` ("lsm" or "btree") in `dir` with default options.
///
/// # Errors
/// `InvalidArgument` for another name; the engine's open errors.
pub fn open_default(engine: &str, dir: &Path) -> Result<Box<dyn Engine>> {
    match engine {
        "lsm" => Ok(Box::new(LsmEngine::open(dir, LsmOptions::default())?)),
        "btree" => Ok(Box::new(BTreeEngine::open(dir, BTreeOptions::default())?)),
        other => Err(Error::invalid(format!(
            "unknown engine {other:?} (lsm or btree)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_values_repeat_their_first_half() {
        assert_eq!(&key(42), b"0000000000000042");
        assert!(key(9) < key(10) && key(10) < key(1_000_000));
        let v = value(&mut Rng::new(1));
        assert_eq!(v[..50], v[50..]);
        assert_ne!(v, value(&mut Rng::new(2)));
        let mut ids: Vec<u64> = (0..1000).collect();
        shuffle(&mut ids, 7);
        assert_ne!(ids, (0..1000).collect::<Vec<_>>());
        ids.sort_unstable();
        assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    }
}
