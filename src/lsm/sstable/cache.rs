//! The block cache shared by every table of a database.
//!
//! Decoded data blocks are kept under the key `(table number, block offset)` and charged by their decoded
//! length. The cache is split into [`SHARDS`] independent shards, each holding an equal share of the
//! capacity and evicting by CLOCK (second chance): a hit takes its shard's lock shared and sets the
//! block's reference bit, so concurrent hits never exclude each other and no recency list is reordered;
//! an insert takes the shard's lock exclusively and sweeps the clock hand, clearing reference bits, until
//! an unreferenced block makes room. Table numbers are never reused, so a deleted table's blocks are
//! merely dead weight until evicted.
//!
//! A block larger than a shard's share is not cached (it is returned to the reader and dropped after use).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

use super::block::Block;

/// Independent shards of the cache.
pub const SHARDS: usize = 16;

type Key = (u64, u64);

struct Slot {
    key: Key,
    block: Arc<Block>,
    charge: u64,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Shard {
    /// Key → index in `slots`.
    map: HashMap<Key, usize>,
    /// The clock: occupied slots and holes left by removals (reused through `free`).
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    hand: usize,
    usage: u64,
}

impl Shard {
    fn get(&self, key: Key) -> Option<Arc<Block>> {
        let slot = self.slots.get(*self.map.get(&key)?)?.as_ref()?;
        slot.referenced.store(true, Ordering::Relaxed);
        Some(Arc::clone(&slot.block))
    }

    fn remove_at(&mut self, index: usize) -> u64 {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return 0;
        };
        self.map.remove(&slot.key);
        self.free.push(index);
        self.usage -= slot.charge;
        slot.charge
    }

    fn remove(&mut self, key: &Key) -> u64 {
        match self.map.get(key) {
            Some(&index) => self.remove_at(index),
            None => 0,
        }
    }

    /// Evicts one block: the first unreferenced one from the hand on, clearing reference bits on the
    /// way (two sweeps at most). Returns the bytes freed, `None` if the shard is empty.
    fn evict_one(&mut self) -> Option<u64> {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let index = self.hand;
            self.hand = if index + 1 >= n { 0 } else { index + 1 };
            let Some(slot) = self.slots.get(index).and_then(Option::as_ref) else {
                continue;
            };
            if !slot.referenced.swap(false, Ordering::Relaxed) {
                return Some(self.remove_at(index));
            }
        }
        None
    }

    fn insert(&mut self, key: Key, block: &Arc<Block>, charge: u64) {
        let slot = Slot {
            key,
            block: Arc::clone(block),
            charge,
            referenced: AtomicBool::new(false),
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        if let Some(place) = self.slots.get_mut(index) {
            *place = Some(slot);
            self.map.insert(key, index);
            self.usage += charge;
        }
    }
}

/// A bounded, sharded CLOCK cache of decoded blocks.
pub struct BlockCache {
    shards: Vec<RwLock<Shard>>,
    shard_capacity: u64,
    capacity: u64,
    usage: AtomicU64,
}

impl fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity)
            .field("usage", &self.usage())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of decoded blocks (0 caches nothing).
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        let capacity = capacity_bytes as u64;
        Arc::new(BlockCache {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            shard_capacity: capacity / SHARDS as u64,
            capacity,
            usage: AtomicU64::new(0),
        })
    }

    /// Bytes of decoded blocks held now.
    pub fn usage(&self) -> u64 {
        self.usage.load(Ordering::Relaxed)
    }

    /// The capacity in bytes.
    #[cfg(test)]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn shard(&self, key: Key) -> Option<&RwLock<Shard>> {
        // A fixed mix of both parts, so neighbouring offsets and tables spread over the shards.
        let mut h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1;
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        self.shards.get((h % SHARDS as u64) as usize)
    }

    /// The block of table `number` at `offset`, marking it referenced.
    pub(crate) fn get(&self, number: u64, offset: u64) -> Option<Arc<Block>> {
        self.shard((number, offset))?.read().get((number, offset))
    }

    /// Caches `block` as table `number`'s block at `offset`, evicting unreferenced blocks of its shard
    /// to make room.
    pub(crate) fn insert(&self, number: u64, offset: u64, block: &Arc<Block>) {
        let key = (number, offset);
        let charge = block.len() as u64;
        if charge > self.shard_capacity {
            return;
        }
        let Some(shard) = self.shard(key) else {
            return;
        };
        let mut shard = shard.write();
        let mut freed = shard.remove(&key);
        while shard.usage + charge > self.shard_capacity {
            match shard.evict_one() {
                Some(n) => freed += n,
                None => break,
            }
        }
        shard.insert(key, block, charge);
        drop(shard);
        self.usage.fetch_add(charge, Ordering::Relaxed);
        self.usage.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Drops every cached block of table `number` (when the table is deleted).
    #[cfg(test)]
    pub fn evict_table(&self, number: u64) {
        for shard in &self.shards {
            let mut shard = shard.write();
            let doomed: Vec<usize> = shard
                .map
                .iter()
                .filter(|(k, _)| k.0 == number)
                .map(|(_, &i)| i)
                .collect();
            let freed: u64 = doomed.into_iter().map(|i| shard.remove_at(i)).sum();
            drop(shard);
            self.usage.fetch_sub(freed, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(len: usize) -> Arc<Block> {
        // A valid empty block padded with a value: one entry of `len` bytes.
        let mut b = super::super::block::BlockBuilder::new(1);
        b.add(b"k\0\0\0\0\0\0\0\x01", &vec![0u8; len]);
        Arc::new(Block::new(b.finish().to_vec(), 1, 0).unwrap())
    }

    #[test]
    fn usage_stays_under_capacity_and_lru_evicts() {
        let cache = BlockCache::new(16 * 1000);
        for off in 0..1000 {
            cache.insert(1, off, &block(100));
            assert!(cache.usage() <= cache.capacity());
        }
        assert!(cache.usage() > 0);
        // The newest blocks are still there.
        assert!(cache.get(1, 999).is_some());
        cache.evict_table(1);
        assert_eq!(cache.usage(), 0);
        assert!(cache.get(1, 999).is_none());
    }

    #[test]
    fn oversized_and_zero_capacity_are_not_cached() {
        let cache = BlockCache::new(0);
        cache.insert(1, 0, &block(10));
        assert!(cache.get(1, 0).is_none());
        assert_eq!(cache.usage(), 0);
    }

    #[test]
    fn a_referenced_block_gets_a_second_chance() {
        // One shard's share holds two blocks of this size.
        let b = block(100);
        let cache = BlockCache::new(SHARDS * (2 * b.len() + b.len() / 2));
        // Keys that land in one shard.
        let shard_of = |off| cache.shard((7, off)).map(|s| s as *const _);
        let same: Vec<u64> = (0..1000)
            .filter(|&o| shard_of(o) == shard_of(0))
            .take(3)
            .collect();
        cache.insert(7, same[0], &b);
        cache.insert(7, same[1], &b);
        assert!(cache.get(7, same[0]).is_some()); // referenced
        cache.insert(7, same[2], &b); // evicts the unreferenced one
        assert!(cache.get(7, same[0]).is_some());
        assert!(cache.get(7, same[1]).is_none());
        assert!(cache.get(7, same[2]).is_some());
        assert!(cache.usage() <= cache.capacity());
    }

    #[test]
    fn reinsert_replaces_without_leaking_usage() {
        let cache = BlockCache::new(1 << 20);
        let b = block(50);
        cache.insert(2, 8, &b);
        cache.insert(2, 8, &b);
        assert_eq!(cache.usage(), b.len() as u64);
    }
}
