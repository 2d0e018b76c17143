//! I/O errors (a failed fsync, a full disk), both engines on the simulated backend, Manual
//! background: EIO and ENOSPC on append, write_at, fsync, directory fsync and rename, injected at the n-th
//! operation of that kind inside each phase — a plain `Sync` write, a flush (LSM) or checkpoint (B-tree),
//! a full compaction (LSM), and an open that recovers a crashed directory (LSM: WAL replay and manifest
//! rollover; B-tree: WAL replay and the recovery checkpoint).
//!
//! Each case first runs the phase without a fault to count the operations of that kind it performs, then
//! injects the fault at a spread of them (the first and the last included). Every time:
//!
//! - the call fails with `Error::Io` (the open too);
//! - a later write on the handle is `Poisoned` (fail-stop, no retry);
//! - reads of every acknowledged write still work (a poisoned handle refuses writes, not reads);
//! - after a process kill and after a power loss, a reopen holds every acknowledged write and passes
//!   `verify()`;
//! - so does a restart on the same disk (no reboot: the page cache still holds what the failed fsync did
//!   not make durable), a clean close, and then a power loss.
//!
//! A phase that never performs an operation of that kind (a plain write renames nothing) is checked to
//! succeed with the fault planted, and the case says so (`n/a`) when run with `--nocapture`.

use std::io::ErrorKind;
use std::sync::Arc;

use rumdb::BTreeEngine;
use rumdb::testing::Storage;
use rumdb::testing::engines::{BTreeTiny, LsmTiny};
use rumdb::testing::{CrashMode, Fault, FaultPlan, OpKind, SimBackend};
use rumdb::{Durability, Engine, EngineExt, Error, LsmEngine, WriteBatch, WriteOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Lsm,
    BTree,
}

/// Where the fault lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// One `Sync` write into a memtable (or dirty pages) with room.
    Write,
    /// `flush()`: LSM memtable flush, B-tree checkpoint.
    Flush,
    /// `compact()` (LSM).
    Compact,
    /// Open of a killed process's directory with writes to replay.
    Open,
}

const EIO: ErrorKind = ErrorKind::Other;
const ENOSPC: ErrorKind = ErrorKind::StorageFull;

fn open(kind: Kind, storage: Storage) -> rumdb::Result<Box<dyn Engine>> {
    Ok(match kind {
        Kind::Lsm => Box::new(LsmEngine::open_with(storage, LsmTiny::options())?),
        // No WAL volume triggers a checkpoint: they run only on `flush` (and at open).
        Kind::BTree => Box::new(BTreeEngine::open_with(
            storage,
            BTreeTiny::checkpoint_on_flush_options(),
        )?),
    })
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    vec![i as u8; 40 + (i as usize * 13) % 60]
}

/// A database ready for `phase` on a fresh disk, and the keys acknowledged so far (each holds
/// `value(i)`; every one `Sync` except the `Open` phase's last ten, `Flush`, which a process kill keeps).
fn prepare(kind: Kind, phase: Phase) -> (SimBackend, Option<Box<dyn Engine>>, Vec<u32>) {
    let sim = SimBackend::new(31);
    let db = open(kind, Storage::new(Arc::new(sim.clone()))).unwrap();
    let mut acked = Vec::new();
    let mut write = |db: &dyn Engine, i: u32, durability| {
        db.write(
            WriteBatch::new().put(key(i), value(i)),
            WriteOptions::new(durability),
        )
        .unwrap();
        acked.push(i);
    };
    for i in 0..60 {
        write(db.as_ref(), i, Durability::Sync);
    }
    match phase {
        Phase::Write | Phase::Compact => db.flush().unwrap(),
        Phase::Flush => (60..70).for_each(|i| write(db.as_ref(), i, Durability::Sync)),
        Phase::Open => {
            (60..70).for_each(|i| write(db.as_ref(), i, Durability::Flush));
            let image = sim.crash(CrashMode::ProcessKill);
            drop(db);
            return (image, None, acked);
        }
    }
    (sim, Some(db), acked)
}

/// What a phase run left: the disk, the phase's result, the handle (if any), the acknowledged keys and
/// the number of operations of the kind counted.
type Ran = (
    SimBackend,
    rumdb::Result<()>,
    Option<Box<dyn Engine>>,
    Vec<u32>,
    u64,
);

/// Runs `phase` with `fault` planted; returns its result, the handle (if any) and the number of `op`
/// operations the phase issued.
fn run_phase(kind: Kind, phase: Phase, op: OpKind, fault: Option<(u64, ErrorKind)>) -> Ran {
    run_phase_with(kind, phase, op, fault, |plan| plan)
}

/// [`run_phase`] with the fault plan adjusted by `plan` (it gets the plan with the fault, if any).
fn run_phase_with(
    kind: Kind,
    phase: Phase,
    op: OpKind,
    fault: Option<(u64, ErrorKind)>,
    plan: impl FnOnce(FaultPlan) -> FaultPlan,
) -> Ran {
    let (sim, db, acked) = prepare(kind, phase);
    let base = sim.op_count(op);
    let fail = fault
        .map(|(nth, err)| Fault {
            op,
            nth: base + nth,
            kind: err,
        })
        .into_iter()
        .collect();
    sim.set_fault_plan(plan(FaultPlan {
        fail,
        ..FaultPlan::default()
    }));
    let (result, db) = match (phase, db) {
        (Phase::Open, _) => match open(kind, Storage::new(Arc::new(sim.clone()))) {
            Ok(db) => (Ok(()), Some(db)),
            Err(e) => (Err(e), None),
        },
        (Phase::Write, Some(db)) => (
            db.write(
                WriteBatch::new().put(b"new", b"maybe"),
                WriteOptions::new(Durability::Sync),
            ),
            Some(db),
        ),
        (Phase::Flush, Some(db)) => (db.flush(), Some(db)),
        (Phase::Compact, Some(db)) => (db.compact(), Some(db)),
        (_, None) => unreachable!("only the open phase starts without a handle"),
    };
    let count = sim.op_count(op) - base;
    (sim, result, db, acked, count)
}

fn check_acked(db: &dyn Engine, acked: &[u32], ctx: &str) {
    for &i in acked {
        match db.get(key(i)) {
            Ok(got) => assert_eq!(got, Some(value(i).into()), "{ctx}: key{i:03}"),
            Err(e) => panic!("{ctx}: reading acknowledged key{i:03}: {e}"),
        }
    }
    let scanned = db
        .scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .unwrap_or_else(|e| panic!("{ctx}: scan: {e}"))
        .filter(|r| match r {
            Ok((k, _)) => k.starts_with(b"key"),
            Err(e) => panic!("{ctx}: scan: {e}"),
        })
        .count();
    assert_eq!(scanned, acked.len(), "{ctx}: scan");
}

/// After a fault fired: reopen (same disk for a failed open; a process-kill and a power-loss image for
/// every case) and find every acknowledged write.
fn check_recovery(kind: Kind, sim: &SimBackend, acked: &[u32], ctx: &str) {
    sim.set_fault_plan(FaultPlan::default());
    for mode in [CrashMode::ProcessKill, CrashMode::PowerLossDropAll] {
        let image = sim.crash(mode);
        let db = open(kind, Storage::new(Arc::new(image)))
            .unwrap_or_else(|e| panic!("{ctx}: reopen after {mode:?}: {e}"));
        check_acked(
            db.as_ref(),
            acked,
            &format!("{ctx}, reopened after {mode:?}"),
        );
        db.verify()
            .unwrap_or_else(|e| panic!("{ctx}: verify after {mode:?}: {e}"));
        // The reopened handle writes again.
        db.put(b"after-reopen", b"ok")
            .unwrap_or_else(|e| panic!("{ctx}: write after {mode:?}: {e}"));
    }
}

/// The process restarts after the failure without a reboot (the same disk, whose page cache still holds
/// what the failed fsync did not make durable), opens, closes cleanly; then the power fails. Every
/// acknowledged write must survive: the reopen must not take what it reads back for durable.
fn restart_then_power_loss(
    kind: Kind,
    phase: Phase,
    op: OpKind,
    fault: (u64, ErrorKind),
    drops: bool,
    ctx: &str,
) {
    let ctx = format!("{ctx}, restart on the same disk");
    let (sim, _, db, acked, _) = run_phase_with(kind, phase, op, Some(fault), |p| FaultPlan {
        fsync_drops_data_on_error: drops,
        ..p
    });
    drop(db);
    sim.set_fault_plan(FaultPlan::default());
    let db = open(kind, Storage::new(Arc::new(sim.clone())))
        .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    check_acked(db.as_ref(), &acked, &ctx);
    db.verify().unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
    db.close().unwrap();
    let image = sim.crash(CrashMode::PowerLossDropAll);
    let db = open(kind, Storage::new(Arc::new(image)))
        .unwrap_or_else(|e| panic!("{ctx}, then a power loss: reopen: {e}"));
    check_acked(db.as_ref(), &acked, &format!("{ctx}, then a power loss"));
    db.verify()
        .unwrap_or_else(|e| panic!("{ctx}, then a power loss: verify: {e}"));
}

/// Up to six fault positions spread over `1..=count`, first and last included.
fn positions(count: u64) -> Vec<u64> {
    let mut p: Vec<u64> = (0..6u64).map(|i| 1 + i * (count - 1) / 5).collect();
    p.dedup();
    p
}

fn run_case(kind: Kind, phase: Phase, op: OpKind, err: ErrorKind) {
    run_case_with(kind, phase, op, err, false);
}

/// [`run_case`]; with `drops`, a failed fsync also discards the file's unsynced bytes (Linux: the page
/// cache drops the dirty pages and a later fsync "succeeds"), so what the handle wrote and read back is no
/// longer there after the failure.
fn run_case_with(kind: Kind, phase: Phase, op: OpKind, err: ErrorKind, drops: bool) {
    let name = format!(
        "{kind:?} {phase:?} {op:?} {err:?}{}",
        if drops { " drops data" } else { "" }
    );
    let (_, result, _, _, count) = run_phase(kind, phase, op, None);
    result.unwrap_or_else(|e| panic!("{name}: the phase fails without a fault: {e}"));
    if count == 0 {
        // The phase performs no such operation: a planted fault changes nothing.
        let (sim, result, db, acked, _) = run_phase(kind, phase, op, Some((1, err)));
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
        sim.set_fault_plan(FaultPlan::default());
        let db = db.unwrap();
        check_acked(db.as_ref(), &acked, &name);
        db.put(b"after", b"ok").unwrap();
        println!("{name}: n/a (the phase issues no {op:?})");
        return;
    }
    let nths = positions(count);
    for &nth in &nths {
        let ctx = format!("{name} at {nth} of {count}");
        let (sim, result, db, acked, _) =
            run_phase_with(kind, phase, op, Some((nth, err)), |p| FaultPlan {
                fsync_drops_data_on_error: drops,
                ..p
            });
        match &result {
            Err(Error::Io(e)) => assert_eq!(e.kind(), err, "{ctx}: {e}"),
            Err(e) => panic!("{ctx}: expected Io, got {e}"),
            Ok(()) => panic!("{ctx}: the call succeeded over a failed {op:?}"),
        }
        if let Some(db) = &db {
            let again = db.put(b"after", b"refused");
            assert!(
                matches!(again, Err(Error::Poisoned { .. })),
                "{ctx}: a write after the failure gave {again:?}"
            );
            // A poisoned handle refuses writes; reads go on.
            check_acked(db.as_ref(), &acked, &format!("{ctx}, poisoned handle"));
        }
        check_recovery(kind, &sim, &acked, &ctx);
        drop(db);
        restart_then_power_loss(kind, phase, op, (nth, err), drops, &ctx);
    }
    println!("{name}: {count} ops in the phase, fault injected at {nths:?}");
}

macro_rules! cases {
    ($($name:ident: $kind:ident $phase:ident $op:ident $err:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run_case(Kind::$kind, Phase::$phase, OpKind::$op, $err);
            }
        )*
    };
}

cases! {
    lsm_write_append_eio: Lsm Write Append EIO;
    lsm_write_append_enospc: Lsm Write Append ENOSPC;
    lsm_write_write_at_eio: Lsm Write WriteAt EIO;
    lsm_write_write_at_enospc: Lsm Write WriteAt ENOSPC;
    lsm_write_fsync_eio: Lsm Write SyncData EIO;
    lsm_write_fsync_enospc: Lsm Write SyncData ENOSPC;
    lsm_write_dir_fsync_eio: Lsm Write SyncDir EIO;
    lsm_write_rename_eio: Lsm Write Rename EIO;
    lsm_write_rename_enospc: Lsm Write Rename ENOSPC;

    lsm_flush_append_eio: Lsm Flush Append EIO;
    lsm_flush_append_enospc: Lsm Flush Append ENOSPC;
    lsm_flush_write_at_eio: Lsm Flush WriteAt EIO;
    lsm_flush_write_at_enospc: Lsm Flush WriteAt ENOSPC;
    lsm_flush_fsync_eio: Lsm Flush SyncData EIO;
    lsm_flush_fsync_enospc: Lsm Flush SyncData ENOSPC;
    lsm_flush_dir_fsync_eio: Lsm Flush SyncDir EIO;
    lsm_flush_rename_eio: Lsm Flush Rename EIO;
    lsm_flush_rename_enospc: Lsm Flush Rename ENOSPC;

    lsm_compaction_append_eio: Lsm Compact Append EIO;
    lsm_compaction_append_enospc: Lsm Compact Append ENOSPC;
    lsm_compaction_write_at_eio: Lsm Compact WriteAt EIO;
    lsm_compaction_write_at_enospc: Lsm Compact WriteAt ENOSPC;
    lsm_compaction_fsync_eio: Lsm Compact SyncData EIO;
    lsm_compaction_fsync_enospc: Lsm Compact SyncData ENOSPC;
    lsm_compaction_dir_fsync_eio: Lsm Compact SyncDir EIO;
    lsm_compaction_rename_eio: Lsm Compact Rename EIO;
    lsm_compaction_rename_enospc: Lsm Compact Rename ENOSPC;

    lsm_open_rollover_append_eio: Lsm Open Append EIO;
    lsm_open_rollover_append_enospc: Lsm Open Append ENOSPC;
    lsm_open_rollover_write_at_eio: Lsm Open WriteAt EIO;
    lsm_open_rollover_write_at_enospc: Lsm Open WriteAt ENOSPC;
    lsm_open_rollover_fsync_eio: Lsm Open SyncData EIO;
    lsm_open_rollover_fsync_enospc: Lsm Open SyncData ENOSPC;
    lsm_open_rollover_dir_fsync_eio: Lsm Open SyncDir EIO;
    lsm_open_rollover_rename_eio: Lsm Open Rename EIO;
    lsm_open_rollover_rename_enospc: Lsm Open Rename ENOSPC;

    btree_write_append_eio: BTree Write Append EIO;
    btree_write_append_enospc: BTree Write Append ENOSPC;
    btree_write_write_at_eio: BTree Write WriteAt EIO;
    btree_write_write_at_enospc: BTree Write WriteAt ENOSPC;
    btree_write_fsync_eio: BTree Write SyncData EIO;
    btree_write_fsync_enospc: BTree Write SyncData ENOSPC;
    btree_write_dir_fsync_eio: BTree Write SyncDir EIO;
    btree_write_rename_eio: BTree Write Rename EIO;
    btree_write_rename_enospc: BTree Write Rename ENOSPC;

    btree_checkpoint_append_eio: BTree Flush Append EIO;
    btree_checkpoint_append_enospc: BTree Flush Append ENOSPC;
    btree_checkpoint_write_at_eio: BTree Flush WriteAt EIO;
    btree_checkpoint_write_at_enospc: BTree Flush WriteAt ENOSPC;
    btree_checkpoint_fsync_eio: BTree Flush SyncData EIO;
    btree_checkpoint_fsync_enospc: BTree Flush SyncData ENOSPC;
    btree_checkpoint_dir_fsync_eio: BTree Flush SyncDir EIO;
    btree_checkpoint_rename_eio: BTree Flush Rename EIO;
    btree_checkpoint_rename_enospc: BTree Flush Rename ENOSPC;

    btree_open_recovery_append_eio: BTree Open Append EIO;
    btree_open_recovery_append_enospc: BTree Open Append ENOSPC;
    btree_open_recovery_write_at_eio: BTree Open WriteAt EIO;
    btree_open_recovery_write_at_enospc: BTree Open WriteAt ENOSPC;
    btree_open_recovery_fsync_eio: BTree Open SyncData EIO;
    btree_open_recovery_fsync_enospc: BTree Open SyncData ENOSPC;
    btree_open_recovery_dir_fsync_eio: BTree Open SyncDir EIO;
    btree_open_recovery_rename_eio: BTree Open Rename EIO;
    btree_open_recovery_rename_enospc: BTree Open Rename ENOSPC;
}

/// fsync fails with EIO and the kernel drops the file's unsynced data. Every phase that syncs.
macro_rules! dropping_fsync_cases {
    ($($name:ident: $kind:ident $phase:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run_case_with(Kind::$kind, Phase::$phase, OpKind::SyncData, EIO, true);
            }
        )*
    };
}

dropping_fsync_cases! {
    lsm_write_fsync_eio_drops_data: Lsm Write;
    lsm_flush_fsync_eio_drops_data: Lsm Flush;
    lsm_compaction_fsync_eio_drops_data: Lsm Compact;
    lsm_open_rollover_fsync_eio_drops_data: Lsm Open;
    btree_write_fsync_eio_drops_data: BTree Write;
    btree_checkpoint_fsync_eio_drops_data: BTree Flush;
    btree_open_recovery_fsync_eio_drops_data: BTree Open;
}

// A short write or an EINTR, once. The storage layer's write-all loop must finish the write, so
// the phase succeeds, and nothing is silently cut short: a reopen after a process kill and after a power
// loss holds every acknowledged write (and the phase's own write) and passes `verify()`.

/// How one write is disturbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hiccup {
    /// The nth write (append or write_at) writes half its bytes and returns the short count.
    Short,
    /// The nth operation of this kind fails with `Interrupted` (EINTR) and writes nothing.
    Eintr(OpKind),
}

/// The number of write operations so far (append and write_at together, as `short_write_at` counts).
fn writes(sim: &SimBackend) -> u64 {
    sim.op_count(OpKind::Append) + sim.op_count(OpKind::WriteAt)
}

/// What a disturbed phase left: the disk, the acknowledged keys (the phase's own write included), the
/// writes the phase issued and its operations of the disturbed kind.
type Hiccuped = (SimBackend, Vec<u32>, u64, u64);

/// Runs `phase` with `hiccup` at operation `nth` (of the disturbed kind) of the phase, or undisturbed.
fn run_hiccup(kind: Kind, phase: Phase, hiccup: Hiccup, nth: Option<u64>, ctx: &str) -> Hiccuped {
    let (sim, db, mut acked) = prepare(kind, phase);
    let base = writes(&sim);
    let kind_base = match hiccup {
        Hiccup::Short => base,
        Hiccup::Eintr(op) => sim.op_count(op),
    };
    if let Some(nth) = nth {
        sim.set_fault_plan(match hiccup {
            Hiccup::Short => FaultPlan {
                short_write_at: Some(kind_base + nth),
                ..FaultPlan::default()
            },
            Hiccup::Eintr(op) => FaultPlan {
                fail: vec![Fault {
                    op,
                    nth: kind_base + nth,
                    kind: ErrorKind::Interrupted,
                }],
                ..FaultPlan::default()
            },
        });
    }
    let result = match (phase, &db) {
        (Phase::Open, _) => open(kind, Storage::new(Arc::new(sim.clone()))).and_then(|db| {
            check_acked(db.as_ref(), &acked, ctx);
            db.close()
        }),
        (Phase::Write, Some(db)) => {
            let r = db.write(
                WriteBatch::new().put(key(900), value(900)),
                WriteOptions::new(Durability::Sync),
            );
            acked.push(900);
            r
        }
        (Phase::Flush, Some(db)) => db.flush(),
        (Phase::Compact, Some(db)) => db.compact(),
        (_, None) => unreachable!("only the open phase starts without a handle"),
    };
    result.unwrap_or_else(|e| panic!("{ctx}: the phase failed: {e}"));
    if let Some(db) = &db {
        check_acked(db.as_ref(), &acked, &format!("{ctx}, same handle"));
        db.put(b"after", b"ok")
            .unwrap_or_else(|e| panic!("{ctx}: a later write: {e}"));
    }
    drop(db);
    let of_kind = match hiccup {
        Hiccup::Short => writes(&sim),
        Hiccup::Eintr(op) => sim.op_count(op),
    } - kind_base;
    (sim.clone(), acked, writes(&sim) - base, of_kind)
}

fn hiccup_case(kind: Kind, phase: Phase, hiccup: Hiccup) {
    let name = format!("{kind:?} {phase:?} {hiccup:?}");
    let (_, _, count, of_kind) = run_hiccup(kind, phase, hiccup, None, &name);
    assert!(of_kind > 0, "{name}: the phase issues no write to disturb");
    let nths = positions(of_kind);
    for &nth in &nths {
        let ctx = format!("{name} at {nth} of {of_kind}");
        let (sim, acked, disturbed, _) = run_hiccup(kind, phase, hiccup, Some(nth), &ctx);
        check_recovery(kind, &sim, &acked, &ctx);
        // The hiccup fired, and the write-all loop issued one more write to finish it.
        assert_eq!(
            disturbed,
            count + 1,
            "{ctx}: expected one extra write to finish the disturbed one"
        );
    }
    println!("{name}: {of_kind} ops in the phase, disturbed at {nths:?}");
}

macro_rules! hiccup_cases {
    ($($name:ident: $kind:ident $phase:ident $hiccup:expr;)*) => {
        $(
            #[test]
            fn $name() {
                hiccup_case(Kind::$kind, Phase::$phase, $hiccup);
            }
        )*
    };
}

hiccup_cases! {
    lsm_write_short_write: Lsm Write Hiccup::Short;
    lsm_flush_short_write: Lsm Flush Hiccup::Short;
    lsm_compaction_short_write: Lsm Compact Hiccup::Short;
    lsm_open_short_write: Lsm Open Hiccup::Short;
    lsm_write_append_eintr: Lsm Write Hiccup::Eintr(OpKind::Append);
    lsm_flush_append_eintr: Lsm Flush Hiccup::Eintr(OpKind::Append);
    lsm_compaction_append_eintr: Lsm Compact Hiccup::Eintr(OpKind::Append);
    btree_write_short_write: BTree Write Hiccup::Short;
    btree_checkpoint_short_write: BTree Flush Hiccup::Short;
    btree_open_short_write: BTree Open Hiccup::Short;
    btree_write_append_eintr: BTree Write Hiccup::Eintr(OpKind::Append);
    btree_checkpoint_append_eintr: BTree Flush Hiccup::Eintr(OpKind::Append);
    btree_checkpoint_write_at_eintr: BTree Flush Hiccup::Eintr(OpKind::WriteAt);
}
