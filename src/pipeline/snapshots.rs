//! The registry of live snapshots: the sequences they pin, each with how many snapshots pin it.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::Mutex;

/// Pinned sequences. An engine keeps every version a pinned sequence can see (LSM compaction keeps
/// shadowed versions; the B-tree records prior values in its overlay).
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    pinned: Mutex<BTreeMap<u64, usize>>,
}

impl Snapshots {
    /// Pins the sequence `at()` returns, computed under the registry's lock so that nobody who reads the
    /// oldest pin concurrently misses it. Returns the pinned sequence.
    pub(crate) fn pin(&self, at: impl FnOnce() -> u64) -> u64 {
        let mut pinned = self.pinned.lock();
        let seq = at();
        *pinned.entry(seq).or_insert(0) += 1;
        seq
    }

    /// Releases one pin of `seq`.
    pub(crate) fn release(&self, seq: u64) {
        let mut pinned = self.pinned.lock();
        if let Some(n) = pinned.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                pinned.remove(&seq);
            }
        }
    }

    /// The oldest pinned sequence above `after` (any, if `None`).
    pub(crate) fn oldest_after(&self, after: Option<u64>) -> Option<u64> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.pinned
            .lock()
            .range((lower, Bound::Unbounded))
            .next()
            .map(|(seq, _)| *seq)
    }
}
