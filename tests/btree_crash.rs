//! B-tree engine: crash tests on the simulated backend (the oracles I1–I7 of
//! `rumdb::testing::engine_history`), torn pages of an unfinished checkpoint, and a failed fsync that poisons.
//!
//! `RUMDB_SEED=<n>` runs one seed; `RUMDB_BTREE_SEEDS=<n>` sets how many (defaults keep CI fast; every
//! knob is listed in the `rumdb::testing` docs).

use std::sync::Arc;

use rumdb::BTreeEngine;
use rumdb::testing::Storage;
use rumdb::testing::engine_history::{self, EngineUnderTest};
use rumdb::testing::engines::BTreeTiny as Tiny;
use rumdb::testing::{CrashMode, SimBackend};
use rumdb::{Durability, Engine, EngineExt, WriteBatch, WriteOptions};

fn seeds(default: u64) -> Vec<u64> {
    rumdb::testing::seeds("RUMDB_BTREE_SEEDS", default)
}

/// Every crash point of seeded workloads with several checkpoints and a reopen, under every crash mode.
#[test]
fn every_crash_point_recovers_an_acknowledged_prefix() {
    let modes = engine_history::ENGINE_CRASH_MODES;
    let mut images = 0;
    for seed in seeds(4) {
        let mut steps = engine_history::generate(seed, 60);
        steps.insert(12, engine_history::Step::Reopen);
        steps.insert(20, engine_history::Step::Flush);
        steps.insert(40, engine_history::Step::Reopen);
        images += engine_history::check_every_crash_point(&Tiny, seed, &steps, &modes)
            .unwrap_or_else(|e| {
                panic!(
                    "{e}\nreproduce: RUMDB_SEED={seed} cargo test --test btree_crash every_crash"
                )
            });
    }
    println!("{images} crash images checked");
}

/// A workload whose data is more than 8x the 16-page pool (so dirty pages leave it by eviction all the
/// time) with checkpoints every 1 KiB of WAL, a `flush` and a reopen in the middle, puts and deletes, and
/// two range deletes of a tenth of the key space each.
fn larger_than_the_pool(seed: u64) -> Vec<engine_history::Step> {
    let mut rng = rumdb::testing::Rng::new(seed);
    let mut steps: Vec<_> = (0..120)
        .map(|_| {
            let entries = (0..8)
                .map(|_| {
                    let key = format!("key{:04}", rng.below(800)).into_bytes();
                    if rng.chance(1, 8) {
                        (key, None)
                    } else {
                        let mut value = vec![0u8; 60 + rng.below(140) as usize];
                        rng.fill(&mut value);
                        (key, Some(value))
                    }
                })
                .collect();
            let durability = match rng.below(3) {
                0 => Durability::Sync,
                1 => Durability::Flush,
                _ => Durability::Buffered,
            };
            engine_history::Step::Batch(entries, durability)
        })
        .collect();
    steps.insert(50, engine_history::Step::Flush);
    steps.insert(80, engine_history::Step::Reopen);
    // Range deletes over many leaves (merges, freed pages and overflow chains, under eviction), one
    // with a put inside its range in the same batch.
    let range = |start: u32, end: u32, then| engine_history::Step::RangeBatch {
        start: format!("key{start:04}").into_bytes(),
        end: format!("key{end:04}").into_bytes(),
        then,
        durability: Durability::Flush,
    };
    steps.insert(65, range(200, 300, vec![]));
    steps.insert(
        105,
        range(500, 580, vec![(b"key0540".to_vec(), Some(vec![7; 90]))]),
    );
    steps
}

/// The workload above really outgrows the pool, writes pages back on eviction and checkpoints several
/// times (so the crash matrix below covers those paths).
#[test]
fn the_larger_than_the_pool_workload_evicts_dirty_pages_and_checkpoints() {
    let sim = SimBackend::new(1);
    let open =
        || BTreeEngine::open_with(Storage::new(Arc::new(sim.clone())), Tiny::options()).unwrap();
    let mut db = open();
    let (mut evicted, mut checkpoints) = (0, 0);
    for step in larger_than_the_pool(1) {
        match step {
            engine_history::Step::Batch(entries, d) => {
                let mut b = WriteBatch::new();
                for (k, v) in &entries {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    };
                }
                db.write(&b, WriteOptions::new(d)).unwrap();
            }
            engine_history::Step::Flush => db.flush().unwrap(),
            engine_history::Step::Reopen => {
                let s = db.stats();
                evicted += s.io.written.page_eviction;
                checkpoints += s.checkpoints;
                db.close().unwrap();
                db = open();
            }
            _ => {}
        }
    }
    let s = db.stats();
    evicted += s.io.written.page_eviction;
    checkpoints += s.checkpoints;
    let pool = Tiny::options().pool_bytes as u64;
    let data = sim.read_file("data").unwrap().len() as u64;
    println!(
        "data file {data} B, pool {pool} B, {evicted} B written on eviction, {checkpoints} checkpoints"
    );
    assert!(data >= 8 * pool, "data file {data} B, pool {pool} B");
    assert!(evicted > 8 * pool, "{evicted} B written back on eviction");
    assert!(checkpoints >= 5, "{checkpoints} checkpoints");
    db.verify().unwrap();
}

/// Every crash point (every write and sync: WAL appends, evictions, checkpoint pages, free-list pages,
/// headers, deletions) of the workload above under every crash mode, torn and zeroed pages included. By
/// default every 7th point (about 2 minutes on the 2-core CI machine); `RUMDB_BTREE_CRASH_ALL=1` takes
/// every one.
#[test]
fn every_crash_point_of_a_workload_larger_than_the_pool_recovers() {
    let stride = if std::env::var("RUMDB_BTREE_CRASH_ALL").is_ok_and(|v| v == "1") {
        1
    } else {
        7
    };
    for seed in seeds(1) {
        let steps = larger_than_the_pool(seed);
        let (images, ops) = engine_history::check_crash_points(
            &Tiny,
            seed,
            &steps,
            &engine_history::ENGINE_CRASH_MODES,
            stride,
        )
        .unwrap_or_else(|e| {
            panic!("{e}\nreproduce: RUMDB_SEED={seed} RUMDB_BTREE_CRASH_ALL=1 cargo test --test btree_crash larger_than")
        });
        println!("seed {seed}: {ops} mutating operations, {images} crash images checked");
    }
}

/// I7 on the workload above, checkpointing only on `flush`, reopen and close: a recovery that replays up
/// to 70 batches, whose pages outgrow the pool (so recovery itself writes dirty pages back on eviction
/// before its checkpoint), crashes at sampled points of the run and at its own mutating operations, and
/// recovers again to the state of one clean recovery.
#[test]
fn a_crash_during_recovery_of_a_workload_larger_than_the_pool_recovers_the_same_state() {
    for seed in seeds(1) {
        let steps = larger_than_the_pool(seed);
        let eut = rumdb::testing::engines::BTreeTinyLongReplay;
        let r = engine_history::check_recovery_crash_matrix(&eut, seed, &steps, false)
            .unwrap_or_else(|e| {
                panic!("{e}\nreproduce: RUMDB_SEED={seed} cargo test --test btree_crash a_crash_during_recovery_of")
            });
        println!(
            "seed {seed}: {} recovery crash points, {} images, {} recovery operations",
            r.points, r.images, r.recovery_ops
        );
        assert!(r.points > 0);
    }
    // What the recoveries above do: replaying the 80 batches before the reopen (one a range delete) writes pages back on
    // eviction.
    let sim = SimBackend::new(2);
    let db = rumdb::testing::engines::BTreeTinyLongReplay
        .open(Storage::new(Arc::new(sim.clone())))
        .unwrap();
    let before_reopen = larger_than_the_pool(0)
        .into_iter()
        .take_while(|s| *s != engine_history::Step::Reopen);
    for step in before_reopen {
        let mut b = WriteBatch::new();
        if let engine_history::Step::RangeBatch { start, end, .. } = &step {
            b.delete_range(start, end);
        }
        if let engine_history::Step::Batch(entries, _)
        | engine_history::Step::RangeBatch { then: entries, .. } = step
        {
            for (k, v) in &entries {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                };
            }
            db.write(&b, WriteOptions::new(Durability::Flush)).unwrap();
        }
    }
    let image = sim.crash(CrashMode::ProcessKill);
    drop(db);
    let db = rumdb::testing::engines::BTreeTinyLongReplay
        .open(Storage::new(Arc::new(image)))
        .unwrap();
    let s = db.stats();
    assert!(s.recovery.records_replayed >= 80, "{:?}", s.recovery);
    assert!(
        s.io.written.page_eviction > 0,
        "recovery wrote nothing back on eviction"
    );
    db.verify().unwrap();
}

fn value(i: u32, round: u32) -> Vec<u8> {
    vec![(i + round) as u8; 20 + (i as usize * 7) % 90]
}

/// Opens a database on `sim` (checkpoints only on `flush`), loads 80 keys, checkpoints,
/// then overwrites them all with `Flush` writes (not yet checkpointed). Returns the handle.
fn loaded(sim: &SimBackend) -> BTreeEngine {
    let options = Tiny::checkpoint_on_flush_options();
    let db = BTreeEngine::open_with(Storage::new(Arc::new(sim.clone())), options).unwrap();
    for round in 0..2 {
        for i in 0..80u32 {
            let mut b = WriteBatch::new();
            b.put(format!("key{i:03}").as_bytes(), value(i, round));
            db.write(&b, WriteOptions::new(Durability::Flush)).unwrap();
        }
        if round == 0 {
            db.flush().unwrap();
        }
    }
    db
}

fn check_all(db: &BTreeEngine, round: u32) {
    for i in 0..80u32 {
        assert_eq!(
            db.get(format!("key{i:03}").as_bytes()).unwrap(),
            Some(value(i, round).into()),
            "key{i:03}"
        );
    }
    db.verify().unwrap();
}

/// A crash in the middle of a checkpoint, before its header is written, with every page the checkpoint
/// (or the pool, on eviction) wrote since the last header torn — its second half garbage: open reads the
/// previous header, whose pages copy-on-write never overwrote, replays the WAL and loses nothing.
#[test]
fn torn_pages_of_an_unfinished_checkpoint_lose_nothing() {
    let mut torn_cases = 0;
    for c in 1.. {
        let sim = SimBackend::new(5);
        let db = loaded(&sim);
        let before = sim.read_file("data").unwrap();
        let base = sim.mutating_ops();
        sim.set_fault_plan(rumdb::testing::FaultPlan {
            crash_at_op: Some(base + c),
            ..Default::default()
        });
        let finished = db.flush().is_ok();
        drop(db);
        let image = sim.crash(CrashMode::ProcessKill);
        if finished {
            break;
        }
        let data = image.read_file("data").unwrap();
        if data[..64] != before[..64] || data[512..576] != before[512..576] {
            continue; // the header was written: the pages were synced before it
        }
        let mut torn = 0;
        for pgno in 2..data.len() / 512 {
            let page = &data[pgno * 512..(pgno + 1) * 512];
            if before.get(pgno * 512..(pgno + 1) * 512) != Some(page) {
                image
                    .corrupt("data", pgno as u64 * 512 + 256, &[0xA5; 256])
                    .unwrap();
                torn += 1;
            }
        }
        let db =
            BTreeEngine::open_with(Storage::new(Arc::new(image.clone())), Tiny::options()).unwrap();
        check_all(&db, 1);
        torn_cases += usize::from(torn > 0);
    }
    assert!(
        torn_cases > 0,
        "no crash point left a page written but no header"
    );
}

/// A failed fsync poisons the handle (later writes are `Poisoned`, no retry); a reopen recovers every
/// acknowledged write. Once with the WAL's fsync (a `Sync` write), once with a
/// checkpoint's; each with the failed fsync keeping the data (reopen after a process kill: every `Flush`
/// write survives) and dropping it, Linux-style (reopen after a power loss: every write synced before
/// survives; a checkpoint whose data-file fsync dropped its pages never wrote its header, so open replays
/// the WAL onto the previous one).
#[test]
fn a_failed_fsync_poisons_and_reopen_recovers_every_acknowledged_write() {
    for (via_checkpoint, drops) in [(false, false), (true, false), (false, true), (true, true)] {
        let ctx = format!("via_checkpoint {via_checkpoint} drops {drops}");
        let sim = SimBackend::new(9);
        let db = loaded(&sim);
        if drops {
            db.sync().unwrap();
        }
        // A checkpoint fsyncs the sealed WAL segment (its data, then its SEAL), then the data file: with
        // `drops`, fail the data file's.
        let skip = if via_checkpoint && drops { 3 } else { 1 };
        sim.set_fault_plan(rumdb::testing::FaultPlan {
            fail: vec![rumdb::testing::Fault {
                op: rumdb::testing::OpKind::SyncData,
                nth: sim.op_count(rumdb::testing::OpKind::SyncData) + skip,
                kind: std::io::ErrorKind::Other,
            }],
            fsync_drops_data_on_error: drops,
            ..Default::default()
        });
        let failed = if via_checkpoint {
            db.flush()
        } else {
            db.write(
                WriteBatch::new().put(b"key000", b"never acknowledged"),
                WriteOptions::new(Durability::Sync),
            )
        };
        assert!(
            matches!(failed, Err(rumdb::Error::Io(_))),
            "{ctx}: {failed:?}"
        );
        let again = db.put(b"key001", b"refused");
        assert!(
            matches!(again, Err(rumdb::Error::Poisoned { .. })),
            "{ctx}: {again:?}"
        );
        drop(db);
        sim.set_fault_plan(rumdb::testing::FaultPlan::default());
        let image = sim.crash(if drops {
            CrashMode::PowerLossDropAll
        } else {
            CrashMode::ProcessKill
        });
        let db = BTreeEngine::open_with(Storage::new(Arc::new(image)), Tiny::options()).unwrap();
        for i in 1..80u32 {
            assert_eq!(
                db.get(format!("key{i:03}").as_bytes()).unwrap(),
                Some(value(i, 1).into()),
                "key{i:03} {ctx}"
            );
        }
        let k0 = db.get(b"key000").unwrap();
        assert!(
            k0 == Some(value(0, 1).into()) || k0.as_deref() == Some(&b"never acknowledged"[..]),
            "{ctx}"
        );
        if via_checkpoint && drops {
            assert!(db.stats().recovery.records_replayed >= 80, "{ctx}");
        }
        db.verify().unwrap();
    }
}

/// ENOSPC during a checkpoint: the checkpoint fails cleanly, no header flips,
/// reads are still served, and a reopen is consistent with every acknowledged write.
#[test]
fn enospc_during_a_checkpoint_fails_cleanly() {
    for nth in 1..=3 {
        let sim = SimBackend::new(11);
        let db = loaded(&sim);
        sim.set_fault_plan(rumdb::testing::FaultPlan {
            fail: vec![rumdb::testing::Fault {
                op: rumdb::testing::OpKind::WriteAt,
                nth: sim.op_count(rumdb::testing::OpKind::WriteAt) + nth,
                kind: std::io::ErrorKind::StorageFull,
            }],
            ..Default::default()
        });
        assert!(db.flush().is_err(), "write {nth}");
        assert_eq!(
            db.get(b"key005").unwrap(),
            Some(value(5, 1).into()),
            "write {nth}"
        );
        drop(db);
        sim.set_fault_plan(rumdb::testing::FaultPlan::default());
        let image = sim.crash(CrashMode::ProcessKill);
        let db =
            BTreeEngine::open_with(Storage::new(Arc::new(image.clone())), Tiny::options()).unwrap();
        check_all(&db, 1);
    }
}

/// Concurrent `Sync` writers (each waits for its fsync after the writer latch is released, sharing
/// fsyncs): after a power loss every one of their writes is present.
#[test]
fn concurrent_sync_writers_survive_a_power_loss() {
    let sim = SimBackend::new(13);
    let db = Arc::new(
        BTreeEngine::open_with(Storage::new(Arc::new(sim.clone())), Tiny::options()).unwrap(),
    );
    let syncs_before = sim.op_count(rumdb::testing::OpKind::SyncData);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let db = Arc::clone(&db);
            s.spawn(move || {
                for i in 0..25u32 {
                    let mut b = WriteBatch::new();
                    b.put(format!("t{t}k{i:02}").as_bytes(), value(i, t));
                    db.write(&b, WriteOptions::new(Durability::Sync)).unwrap();
                }
            });
        }
    });
    // At most one WAL fsync per write, plus four per checkpoint (the sealed segment's records and its
    // SEAL, the pages, the header); fewer when writers shared one.
    let syncs = sim.op_count(rumdb::testing::OpKind::SyncData) - syncs_before;
    let checkpoints = db.stats().checkpoints;
    assert!(
        syncs <= 100 + 4 * checkpoints,
        "{syncs} fsyncs, {checkpoints} checkpoints"
    );
    // The power loss comes before any close: only what the writes themselves made durable survives.
    let image = sim.crash(CrashMode::PowerLossDropAll);
    drop(db);
    let db = BTreeEngine::open_with(Storage::new(Arc::new(image)), Tiny::options()).unwrap();
    for t in 0..4u32 {
        for i in 0..25u32 {
            assert_eq!(
                db.get(format!("t{t}k{i:02}").as_bytes()).unwrap(),
                Some(value(i, t).into()),
                "t{t}k{i:02}"
            );
        }
    }
    db.verify().unwrap();
}

/// The RecoveryReport counts what open replayed: the batches after the last checkpoint, their segments,
/// and a torn WAL tail (dropped, its batch lost, every earlier one kept).
#[test]
fn recovery_report_counts_replayed_batches_and_a_torn_tail() {
    let crashed = || {
        let sim = SimBackend::new(17);
        let db = loaded(&sim);
        let image = sim.crash(CrashMode::ProcessKill);
        drop(db);
        image
    };
    let (image, torn) = (crashed(), crashed());
    let segment = image
        .file_names()
        .into_iter()
        .find(|f| rumdb::testing::wal::parse_segment_name(f).is_some())
        .unwrap();
    let len = torn.read_file(&segment).unwrap().len() as u64;
    torn.truncate(&segment, len - 10).unwrap();

    let db = BTreeEngine::open_with(Storage::new(Arc::new(image)), Tiny::options()).unwrap();
    let r = db.stats().recovery;
    assert_eq!((r.records_replayed, r.segments_replayed), (80, 1), "{r:?}");
    assert_eq!(r.truncated_bytes, 0, "{r:?}");
    check_all(&db, 1);
    drop(db);

    let db = BTreeEngine::open_with(Storage::new(Arc::new(torn)), Tiny::options()).unwrap();
    let r = db.stats().recovery;
    assert_eq!(r.records_replayed, 79, "{r:?}");
    assert!(r.truncated_bytes > 0 && r.truncated_at.is_some(), "{r:?}");
    for i in 0..79u32 {
        assert_eq!(
            db.get(format!("key{i:03}").as_bytes()).unwrap(),
            Some(value(i, 1).into())
        );
    }
    assert_eq!(db.get(b"key079").unwrap(), Some(value(79, 0).into()));
    db.verify().unwrap();
}

/// I7 (the crash-during-recovery oracle of `rumdb::testing::engine_history`): a recovery that itself crashes at any of its mutating operations (WAL
/// replay, the recovery checkpoint), recovered again after a process kill or a
/// power loss, gives the state of one clean recovery. `RUMDB_RECOVERY_CRASHES=all` tries every run crash
/// point under every mode and every recovery crash point.
#[test]
fn a_crash_during_recovery_recovers_the_same_state() {
    let exhaustive = std::env::var("RUMDB_RECOVERY_CRASHES").is_ok_and(|v| v == "all");
    let mut sum = engine_history::RecoveryCrashes::default();
    for seed in seeds(2) {
        let mut steps = engine_history::generate(seed, 40);
        steps.insert(12, engine_history::Step::Reopen);
        steps.insert(20, engine_history::Step::Flush);
        let r = engine_history::check_recovery_crash_matrix(&Tiny, seed, &steps, exhaustive)
            .unwrap_or_else(|e| {
                panic!(
                    "{e}\nreproduce: RUMDB_SEED={seed} cargo test --test btree_crash a_crash_during"
                )
            });
        sum.recovery_ops += r.recovery_ops;
        sum.points += r.points;
        sum.images += r.images;
    }
    println!(
        "btree: {} crash points inside recovery covered ({} recovery ops seen), {} images recovered again",
        sum.points, sum.recovery_ops, sum.images
    );
    assert!(sum.points > 20, "recovery crash points: {sum:?}");
}

/// Regression (found by I7): recovery removed the old WAL segments and created the next one without a
/// directory fsync in between. A power loss during that recovery that kept the new segment but undid the
/// removal left the old last segment — whose damaged tail recovery had just tolerated — as a *sealed*
/// segment, and the next open refused it as Corruption.
#[test]
fn a_power_loss_during_recovery_never_seals_a_damaged_tail() {
    let sim = SimBackend::new(21);
    let db = BTreeEngine::open_with(Storage::new(Arc::new(sim.clone())), Tiny::options()).unwrap();
    for i in 0..20u32 {
        db.put(format!("key{i:03}").as_bytes(), value(i, 0))
            .unwrap();
    }
    db.close().unwrap();
    // A torn, unsynced tail in the last segment: garbage where the next record would start.
    let segment = sim
        .file_names()
        .into_iter()
        .filter(|f| rumdb::testing::wal::parse_segment_name(f).is_some())
        .max()
        .unwrap();
    let len = sim.read_file(&segment).unwrap().len() as u64;
    sim.corrupt(&segment, len, &[0xA5; 64]).unwrap();
    let image = sim.crash(CrashMode::ProcessKill);
    let recovery_ops = {
        let copy = image.crash(CrashMode::ProcessKill);
        let db =
            BTreeEngine::open_with(Storage::new(Arc::new(copy.clone())), Tiny::options()).unwrap();
        assert!(db.stats().recovery.truncated_bytes > 0);
        copy.mutating_ops()
    };
    let mut images = 0;
    for k in 1..=recovery_ops {
        for _ in 0..16 {
            let copy = image.crash(CrashMode::ProcessKill);
            copy.set_fault_plan(rumdb::testing::FaultPlan {
                crash_at_op: Some(k),
                ..Default::default()
            });
            let interrupted =
                BTreeEngine::open_with(Storage::new(Arc::new(copy.clone())), Tiny::options());
            let again = copy.crash(CrashMode::PowerLossAny {
                garbage: false,
                zeros: false,
            });
            drop(interrupted);
            let db = BTreeEngine::open_with(Storage::new(Arc::new(again)), Tiny::options())
                .unwrap_or_else(|e| panic!("recovery crashed at its op {k}: {e}"));
            for i in 0..20u32 {
                assert_eq!(
                    db.get(format!("key{i:03}").as_bytes()).unwrap(),
                    Some(value(i, 0).into())
                );
            }
            images += 1;
        }
    }
    assert!(images > 0);
}
