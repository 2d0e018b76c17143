//! The block cache shared by every table of a database.
//!
//! Decoded data blocks are kept under the key `(table number, block offset)` and charged by their decoded
//! length. The cache is split into [`SHARDS`] independent LRU shards, each behind its own mutex and holding
//! an equal share of the capacity, so a lookup locks one shard only and never a global lock. Table numbers
//! are never reused, so a deleted table's blocks are merely dead weight until evicted (or dropped with
//! [`BlockCache::evict_table`]).
//!
//! A block larger than a shard's share is not cached (it is returned to the reader and dropped after use).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::block::Block;

/// Independent shards of the cache.
pub const SHARDS: usize = 16;

type Key = (u64, u64);

struct Slot {
    block: Arc<Block>,
    charge: u64,
    tick: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Slot>,
    /// Recency order: tick → key; the smallest tick is the least recently used.
    lru: BTreeMap<u64, Key>,
    tick: u64,
    usage: u64,
}

impl Shard {
    fn touch(&mut self, key: Key) -> Option<Arc<Block>> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.map.get_mut(&key)?;
        self.lru.remove(&slot.tick);
        slot.tick = tick;
        self.lru.insert(tick, key);
        Some(Arc::clone(&slot.block))
    }

    fn remove(&mut self, key: &Key) -> u64 {
        match self.map.remove(key) {
            Some(slot) => {
                self.lru.remove(&slot.tick);
                self.usage -= slot.charge;
                slot.charge
            }
            None => 0,
        }
    }
}

/// A bounded, sharded LRU cache of decoded blocks.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
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
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
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
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn shard(&self, key: Key) -> Option<&Mutex<Shard>> {
        // A fixed mix of both parts, so neighbouring offsets and tables spread over the shards.
        let mut h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1;
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        self.shards.get((h % SHARDS as u64) as usize)
    }

    /// The block of table `number` at `offset`, marking it recently used.
    pub(crate) fn get(&self, number: u64, offset: u64) -> Option<Arc<Block>> {
        self.shard((number, offset))?.lock().touch((number, offset))
    }

    /// Caches `block` as table `number`'s block at `offset`, evicting the least recently used blocks of
    /// its shard to make room.
    pub(crate) fn insert(&self, number: u64, offset: u64, block: &Arc<Block>) {
        let key = (number, offset);
        let charge = block.len() as u64;
        if charge > self.shard_capacity {
            return;
        }
        let Some(shard) = self.shard(key) else {
            return;
        };
        let mut shard = shard.lock();
        let mut freed = shard.remove(&key);
        while shard.usage + charge > self.shard_capacity {
            let Some((_, victim)) = shard.lru.pop_first() else {
                break;
            };
            // The map entry goes too; its recency entry was just popped.
            if let Some(slot) = shard.map.remove(&victim) {
                shard.usage -= slot.charge;
                freed += slot.charge;
            }
        }
        shard.tick += 1;
        let tick = shard.tick;
        shard.map.insert(
            key,
            Slot {
                block: Arc::clone(block),
                charge,
                tick,
            },
        );
        shard.lru.insert(tick, key);
        shard.usage += charge;
        drop(shard);
        self.usage.fetch_add(charge, Ordering::Relaxed);
        self.usage.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Drops every cached block of table `number` (when the table is deleted).
    pub fn evict_table(&self, number: u64) {
        for shard in &self.shards {
            let mut shard = shard.lock();
            let keys: Vec<Key> = shard
                .map
                .keys()
                .filter(|k| k.0 == number)
                .copied()
                .collect();
            let freed: u64 = keys.iter().map(|k| shard.remove(k)).sum();
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
    fn reinsert_replaces_without_leaking_usage() {
        let cache = BlockCache::new(1 << 20);
        let b = block(50);
        cache.insert(2, 8, &b);
        cache.insert(2, 8, &b);
        assert_eq!(cache.usage(), b.len() as u64);
    }
}
