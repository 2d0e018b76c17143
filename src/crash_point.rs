//! Whitebox crash points (RocksDB's kill points): named places in flush, compaction, manifest rollover,
//! checkpoint and WAL rotation where a test can make the process die.
//!
//! Disarmed, a crash point costs one relaxed atomic load. A process arms one point from the environment
//! with `RUMDB_CRASH_AT=<name>:<nth>`: the `nth` time execution reaches `name`, the process calls
//! [`std::process::abort`] — no destructors run, the same effect on disk as SIGKILL. The kill -9 tests
//! re-execute their own binary as a writer with the variable set and check what survives.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Every crash point in the code, for tests that iterate over them.
pub const CRASH_POINTS: &[&str] = &[
    "wal.rotate.after_create",
    "flush.sst.synced",
    "flush.manifest.synced",
    "flush.old_wal.before_delete",
    "compact.move.synced",
    "compact.outputs.synced",
    "compact.manifest.synced",
    "manifest.roll.new_written",
    "manifest.roll.after_rename",
    "btree.checkpoint.after_doublewrite",
];

static ARMED: AtomicBool = AtomicBool::new(true);
static HITS: AtomicU64 = AtomicU64::new(0);
static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let spec = std::env::var("RUMDB_CRASH_AT").ok()?;
        let (name, nth) = spec.rsplit_once(':')?;
        Some((name.to_string(), nth.parse().ok()?))
    })
}

/// Marks crash point `name`; aborts the process if it is the armed point's `nth` hit.
#[inline]
pub fn hit(name: &str) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    match target() {
        None => ARMED.store(false, Ordering::Relaxed),
        Some((armed, nth)) if armed == name => {
            if HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
                std::process::abort();
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disarmed_points_do_nothing() {
        // The test environment does not set RUMDB_CRASH_AT.
        for p in CRASH_POINTS {
            hit(p);
        }
        assert!(target().is_none() || std::env::var("RUMDB_CRASH_AT").is_ok());
    }
}
