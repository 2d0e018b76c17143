//! Whitebox crash points (RocksDB's kill points): named places in flush, compaction, manifest rollover,
//! checkpoint and WAL rotation where a test can make the process die.
//!
//! Crash points exist only in test builds: with feature `testing` (which `cargo test` turns on through
//! the crate's dev-dependency on itself) or in the crate's own unit tests. There a process arms one point
//! from the environment with `RUMDB_CRASH_AT=<name>:<nth>`: the `nth` time execution reaches `name`, the
//! process calls [`std::process::abort`] — no destructors run, the same effect on disk as SIGKILL. The
//! kill -9 tests re-execute their own binary as a writer with the variable set and check what survives.
//! Disarmed, a crash point costs one relaxed atomic load.
//!
//! Without the feature (every user's build) [`hit`] and [`hit_then`] are empty inline functions: they
//! never read the environment and never run their closure, so `RUMDB_CRASH_AT` cannot stop a user's
//! program. `.ci/run` checks this on a release build.

#[cfg(any(test, feature = "testing"))]
use std::sync::OnceLock;
#[cfg(any(test, feature = "testing"))]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Every crash point in the code, for tests that iterate over them.
///
/// `wal.` and `commit.` points are reached by both engines (`wal.` in their WAL, never in the LSM manifest,
/// which shares the framing); `flush.`, `compact.` and `manifest.` points by the LSM engine; `btree.`
/// points by the B-tree engine. `wal.append.*` and `commit.wal_synced` are reached only by `Sync` writes.
pub const CRASH_POINTS: &[&str] = &[
    // WAL: a record handed to the OS, before its fsync; after the fsync, before waiters are released.
    "wal.append.before_sync",
    "wal.append.after_sync",
    // WAL rotation: the next segment created (the old one synced), before its LINK and the directory fsync;
    // `before_dir_sync` is also reached when an open creates the segment it starts writing.
    "wal.rotate.after_create",
    "wal.rotate.before_dir_sync",
    // WAL rotation: the next segment created with its LINK and the directory synced, before the old
    // segment's SEAL is written (the old segment unsealed, the new one holding only its LINK).
    "wal.rotate.before_seal",
    // Open: the new segment created and its directory entry synced, before the metadata naming it as the
    // first live segment (the LSM's manifest edit, the B-tree's checkpoint header) is written.
    "wal.open.before_named",
    // Flush: the table written but not synced; synced; the manifest edit appended but not synced;
    // synced; the sealed memtable dropped, its WAL segments not yet deleted.
    "flush.sst.written",
    "flush.sst.synced",
    "flush.manifest.appended",
    "flush.manifest.synced",
    "flush.old_wal.before_delete",
    // Compaction: a trivial move recorded; outputs synced; the edit synced; an input about to be deleted.
    "compact.move.synced",
    "compact.outputs.synced",
    "compact.manifest.synced",
    "compact.inputs.before_delete",
    // Manifest rollover: the new manifest synced; `CURRENT.tmp` synced, not renamed; renamed; the old
    // manifest about to be deleted.
    "manifest.roll.new_written",
    "manifest.roll.current_tmp_synced",
    "manifest.roll.after_rename",
    "manifest.roll.before_old_delete",
    // Commit (both engines): a Sync batch's WAL record synced, before the call returns.
    "commit.wal_synced",
    // B-tree: half of a checkpoint's page written (then the abort: a torn page no durable header refers
    // to); the pages synced; the header slot written, not synced; the WAL segments deleted.
    "btree.writeback.mid_page",
    "btree.checkpoint.pages_synced",
    "btree.checkpoint.header_written",
    "btree.checkpoint.wal_deleted",
];

#[cfg(any(test, feature = "testing"))]
static ARMED: AtomicBool = AtomicBool::new(true);
#[cfg(any(test, feature = "testing"))]
static HITS: AtomicU64 = AtomicU64::new(0);
#[cfg(any(test, feature = "testing"))]
static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();

#[cfg(any(test, feature = "testing"))]
fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let spec = std::env::var("RUMDB_CRASH_AT").ok()?;
        let (name, nth) = spec.rsplit_once(':')?;
        Some((name.to_string(), nth.parse().ok()?))
    })
}

/// Marks crash point `name`; aborts the process if it is the armed point's `nth` hit.
#[cfg(any(test, feature = "testing"))]
#[inline]
pub fn hit(name: &str) {
    hit_then(name, || {});
}

/// Marks crash point `name`; on the armed point's `nth` hit, runs `before_abort` (e.g. writes half of a
/// page, to leave a torn write behind) and then aborts the process. Disarmed, `before_abort` never runs
/// and the cost is one relaxed atomic load.
#[cfg(any(test, feature = "testing"))]
#[inline]
pub fn hit_then(name: &str, before_abort: impl FnOnce()) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    match target() {
        None => ARMED.store(false, Ordering::Relaxed),
        Some((armed, nth)) if armed == name => {
            if HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
                before_abort();
                std::process::abort();
            }
        }
        Some(_) => {}
    }
}

/// Marks crash point `name`. Without feature `testing` it does nothing: crash points are compiled out.
#[cfg(not(any(test, feature = "testing")))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Marks crash point `name`. Without feature `testing` it does nothing and never runs `before_abort`:
/// crash points are compiled out.
#[cfg(not(any(test, feature = "testing")))]
#[inline(always)]
pub fn hit_then(_name: &str, _before_abort: impl FnOnce()) {}

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

    #[test]
    fn names_are_unique() {
        let mut names = CRASH_POINTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CRASH_POINTS.len());
    }
}
