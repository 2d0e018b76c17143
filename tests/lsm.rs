//! LSM engine: seeded model tests and crash tests on the simulated backend (Manual background).
//!
//! `RUMDB_SEED=<n>` runs one seed; `RUMDB_LSM_SEEDS=<n>` sets how many (defaults keep CI fast; every knob
//! is listed in the `rumdb::testing` docs).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use rumdb::testing::Storage;
use rumdb::testing::engine_history::{self, EngineUnderTest};
use rumdb::testing::engines::LsmTiny as Tiny;
use rumdb::testing::{CrashMode, Rng, SimBackend};
use rumdb::{
    Durability, Engine, EngineExt, KvPair, LsmEngine, LsmOptions, WriteBatch, WriteOptions,
};

/// An entry as read, as owned vectors (what the models hold).
fn owned(item: rumdb::Result<KvPair>) -> (Vec<u8>, Vec<u8>) {
    let (k, v) = item.unwrap();
    (k.to_vec(), v.to_vec())
}

fn seeds(default: u64) -> Vec<u64> {
    rumdb::testing::seeds("RUMDB_LSM_SEEDS", default)
}

/// Thousands of random operations with flushes, compactions and reopens agree with a BTreeMap after every
/// step: every get, and a range scan in both directions every few steps.
#[test]
fn model_agrees_after_every_step() {
    for seed in seeds(6) {
        let mut rng = Rng::new(seed);
        let sim = SimBackend::new(seed);
        let storage = Storage::new(Arc::new(sim));
        let mut db = Tiny.open(storage.clone()).unwrap();
        let mut model = BTreeMap::<Vec<u8>, Vec<u8>>::new();
        let (mut flushes, mut compactions) = (0, 0);
        let mut deepest = 0;
        let mut below_l0 = 0;
        let key = |rng: &mut Rng| format!("k{:04}", rng.below(400)).into_bytes();
        for step in 0..1500 {
            let ctx =
                || format!("seed {seed} step {step} (RUMDB_SEED={seed} cargo test --test lsm)");
            deepest = deepest.max(deepest_level(&db));
            match rng.below(100) {
                0..=49 => {
                    let mut batch = WriteBatch::new();
                    if rng.chance(1, 12) {
                        // A range delete of up to 60 keys, then the batch's other entries.
                        let lo = key(&mut rng);
                        let hi = format!("k{:04}", rng.below(60) + key_number(&lo)).into_bytes();
                        batch.delete_range(&lo, &hi);
                        model.retain(|k, _| *k < lo || *k >= hi);
                    }
                    for _ in 0..1 + rng.below(5) {
                        let k = key(&mut rng);
                        if rng.chance(1, 4) {
                            batch.delete(&k);
                            model.remove(&k);
                        } else {
                            let mut v = vec![0u8; rng.below(200) as usize];
                            rng.fill(&mut v);
                            batch.put(&k, &v);
                            model.insert(k, v);
                        }
                    }
                    db.write(&batch, WriteOptions::new(Durability::Buffered))
                        .unwrap();
                }
                50..=79 => {
                    let k = key(&mut rng);
                    assert_eq!(
                        db.get(&k).unwrap().as_deref(),
                        model.get(&k).map(Vec::as_slice),
                        "{}",
                        ctx()
                    );
                }
                80..=91 => {
                    let (a, b) = (key(&mut rng), key(&mut rng));
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    let expected: Vec<_> = model
                        .range(lo.clone()..hi.clone())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let fwd: Vec<_> = db
                        .scan(Bound::Included(&lo), Bound::Excluded(&hi))
                        .unwrap()
                        .map(owned)
                        .collect();
                    assert_eq!(fwd, expected, "{}", ctx());
                    let mut bwd: Vec<_> = db
                        .scan(Bound::Included(&lo), Bound::Excluded(&hi))
                        .unwrap()
                        .rev()
                        .map(owned)
                        .collect();
                    bwd.reverse();
                    assert_eq!(bwd, expected, "{}", ctx());
                }
                92..=94 => db.flush().unwrap(),
                95 => db.compact().unwrap(),
                96..=97 => {
                    let snap = db.snapshot().unwrap();
                    let frozen = model.clone();
                    let k = key(&mut rng);
                    let mut batch = WriteBatch::new();
                    if rng.chance(1, 2) {
                        // The snapshot must still see what a later range delete removes.
                        let hi = format!("k{:04}", key_number(&k) + 30).into_bytes();
                        batch.delete_range(&k, &hi);
                        model.retain(|key, _| *key < k || *key >= hi);
                    }
                    batch.put(&k, b"after-snapshot");
                    db.write(&batch, WriteOptions::default()).unwrap();
                    model.insert(k.clone(), b"after-snapshot".to_vec());
                    db.flush().unwrap();
                    db.compact().unwrap();
                    assert_eq!(
                        snap.get(&k).unwrap().as_deref(),
                        frozen.get(&k).map(Vec::as_slice),
                        "{}",
                        ctx()
                    );
                    let all: BTreeMap<_, _> = snap.range(..).unwrap().map(owned).collect();
                    assert_eq!(all, frozen, "snapshot across a compaction, {}", ctx());
                }
                _ => {
                    flushes += db.stats().checkpoints;
                    compactions += db.stats().compactions;
                    below_l0 += below_l0_bytes(&db);
                    db.close().unwrap();
                    db = Tiny.open(storage.clone()).unwrap();
                    let all: BTreeMap<_, _> = db.range(..).unwrap().map(owned).collect();
                    assert_eq!(all, model, "full state after reopen, {}", ctx());
                }
            }
        }
        let all: BTreeMap<_, _> = db.range(..).unwrap().map(owned).collect();
        assert_eq!(all, model, "seed {seed} final");
        db.verify().unwrap();
        flushes += db.stats().checkpoints;
        compactions += db.stats().compactions;
        assert!(
            flushes > 20 && compactions > 5,
            "seed {seed}: {flushes} flushes, {compactions} compactions"
        );
        assert!(deepest >= 2, "seed {seed}: data never reached L2");
        below_l0 += below_l0_bytes(&db);
        assert!(
            below_l0 > 0,
            "seed {seed}: no compaction wrote or moved below L0"
        );
    }
}

/// The number in a `kNNNN` key.
fn key_number(key: &[u8]) -> u64 {
    String::from_utf8_lossy(&key[1..]).parse().unwrap()
}

/// Bytes compactions wrote or moved into levels below L0 (this handle's counters).
fn below_l0_bytes(db: &LsmEngine) -> u64 {
    db.level_stats()
        .iter()
        .skip(1)
        .map(|l| l.written + l.moved)
        .sum()
}

/// The deepest level holding a table (0 if none).
fn deepest_level(db: &LsmEngine) -> usize {
    db.level_stats()
        .iter()
        .rposition(|l| l.files > 0)
        .unwrap_or(0)
}

/// The crash workloads below do reach L2 (so crash points fall inside compactions into every level).
#[test]
fn crash_workloads_reach_level_two() {
    let mut deepest = 0;
    for seed in seeds(4) {
        let mut steps = engine_history::generate(seed, 40);
        steps.insert(15, engine_history::Step::Reopen);
        steps.insert(30, engine_history::Step::Compact);
        let storage = Storage::new(Arc::new(SimBackend::new(seed)));
        let mut db = Tiny.open(storage.clone()).unwrap();
        for step in steps {
            let range = match &step {
                engine_history::Step::RangeBatch { start, end, .. } => {
                    Some((start.clone(), end.clone()))
                }
                _ => None,
            };
            match step {
                engine_history::Step::Batch(entries, durability)
                | engine_history::Step::RangeBatch {
                    then: entries,
                    durability,
                    ..
                } => {
                    let mut batch = WriteBatch::new();
                    if let Some((start, end)) = &range {
                        batch.delete_range(start, end);
                    }
                    for (k, v) in entries {
                        match v {
                            Some(v) => batch.put(&k, &v),
                            None => batch.delete(&k),
                        };
                    }
                    db.write(&batch, WriteOptions::new(durability)).unwrap();
                }
                engine_history::Step::Sync => db.sync().unwrap(),
                engine_history::Step::Flush => db.flush().unwrap(),
                engine_history::Step::Compact => db.compact().unwrap(),
                engine_history::Step::Reopen => {
                    db.close().unwrap();
                    db = Tiny.open(storage.clone()).unwrap();
                }
            }
            deepest = deepest.max(deepest_level(&db));
        }
    }
    assert!(deepest >= 2, "crash workloads stay above L2");
}

/// Every crash point of seeded workloads that flush, compact and reopen, under every crash mode.
#[test]
fn every_crash_point_recovers_an_acknowledged_prefix() {
    let modes = engine_history::ENGINE_CRASH_MODES;
    let mut images = 0;
    for seed in seeds(4) {
        let mut steps = engine_history::generate(seed, 40);
        // Every workload flushes several times (tiny memtable), reopens and compacts at least once.
        steps.insert(15, engine_history::Step::Reopen);
        steps.insert(30, engine_history::Step::Compact);
        images += engine_history::check_every_crash_point(&Tiny, seed, &steps, &modes)
            .unwrap_or_else(|e| {
                panic!("{e}\nreproduce: RUMDB_SEED={seed} cargo test --test lsm every_crash")
            });
    }
    println!("{images} crash images checked");
}

/// A database of a few tables on the simulated disk, closed cleanly; returns the disk.
fn small_db() -> SimBackend {
    let sim = SimBackend::new(7);
    let db = Tiny.open(Storage::new(Arc::new(sim.clone()))).unwrap();
    for i in 0..300u32 {
        db.put(format!("key{i:05}").as_bytes(), [i as u8; 40])
            .unwrap();
    }
    db.close().unwrap();
    sim
}

fn table_files(sim: &SimBackend) -> Vec<String> {
    sim.file_names()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect()
}

fn open_err(sim: &SimBackend) -> rumdb::Error {
    match Tiny.open(Storage::new(Arc::new(sim.clone()))) {
        Ok(_) => panic!("open must fail"),
        Err(e) => e,
    }
}

#[test]
fn missing_table_is_corruption_naming_it() {
    let sim = small_db();
    let victim = table_files(&sim).remove(0);
    sim.delete(&victim).unwrap();
    let err = open_err(&sim);
    assert!(
        matches!(&err, rumdb::Error::Corruption { file, .. } if *file == victim),
        "{err}"
    );
}

#[test]
fn truncated_table_is_corruption_at_open() {
    let sim = small_db();
    let victim = table_files(&sim).remove(0);
    let len = sim.read_file(&victim).unwrap().len() as u64;
    sim.truncate(&victim, len - 1).unwrap();
    assert!(open_err(&sim).is_corruption());
}

#[test]
fn damaged_or_missing_current_is_corruption_never_a_new_database() {
    for damage in ["garbage", "empty", "dangling", "missing"] {
        let sim = small_db();
        match damage {
            "garbage" => sim.corrupt("CURRENT", 0, b"\xff\xfe not a name").unwrap(),
            "empty" => sim.truncate("CURRENT", 0).unwrap(),
            "dangling" => sim.corrupt("CURRENT", 0, b"MANIFEST-999999\n").unwrap(),
            _ => sim.delete("CURRENT").unwrap(),
        }
        let before = sim.file_names();
        let err = open_err(&sim);
        assert!(err.is_corruption(), "{damage}: {err}");
        assert_eq!(
            sim.file_names(),
            before,
            "{damage}: the failed open must not touch the files"
        );
    }
}

/// Every byte of one table flipped in turn: opening and reading never panics and never returns a wrong
/// value; a damaged block is Corruption on the read that touches it (or, for the footer, index and
/// properties, at open).
#[test]
fn flipped_table_bytes_are_corruption_or_correct_data() {
    let sim = small_db();
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = (0..300u32)
        .map(|i| (format!("key{i:05}").into_bytes(), vec![i as u8; 40]))
        .collect();
    let victim = table_files(&sim).remove(0);
    let len = sim.read_file(&victim).unwrap().len() as u64;
    let (mut at_open, mut at_read) = (0, 0);
    for byte in 0..len {
        let image = sim.crash(CrashMode::ProcessKill);
        image.flip_bit(&victim, byte * 8 + byte % 8).unwrap();
        let db = match Tiny.open(Storage::new(Arc::new(image))) {
            Ok(db) => db,
            Err(e) => {
                assert!(e.is_corruption(), "byte {byte}: {e}");
                at_open += 1;
                continue;
            }
        };
        let mut failed = false;
        for (k, v) in &expected {
            match db.get(k) {
                Ok(got) => assert_eq!(
                    got.as_deref(),
                    Some(&v[..]),
                    "byte {byte}: wrong value for {k:?}"
                ),
                Err(e) => {
                    assert!(e.is_corruption(), "byte {byte}: {e}");
                    failed = true;
                }
            }
        }
        for item in db.range(..).unwrap() {
            match item {
                Ok((k, v)) => assert_eq!(
                    expected.get(&k[..]).map(Vec::as_slice),
                    Some(&v[..]),
                    "byte {byte}: scan returned a wrong entry"
                ),
                Err(e) => {
                    assert!(e.is_corruption(), "byte {byte}: {e}");
                    failed = true;
                    break;
                }
            }
        }
        at_read += u64::from(failed);
    }
    println!("{len} bytes flipped: {at_open} refused at open, {at_read} reported on read");
    assert!(at_open + at_read > len / 2, "most flips must be detected");
}

/// Every byte of the live manifest and of the WAL flipped in turn (on a database whose last writes are
/// still in the WAL): open returns Corruption or a state that is a prefix of the history — never a panic,
/// never a wrong value.
#[test]
fn flipped_manifest_and_wal_bytes_are_corruption_or_a_prefix() {
    let sim = SimBackend::new(11);
    let mut states = vec![BTreeMap::new()];
    {
        let db = Tiny.open(Storage::new(Arc::new(sim.clone()))).unwrap();
        let mut model = BTreeMap::new();
        for i in 0..40u32 {
            let k = format!("key{:03}", i % 25).into_bytes();
            let v = vec![i as u8; 60];
            db.write(
                &{
                    let mut b = WriteBatch::new();
                    b.put(&k, &v);
                    b
                },
                WriteOptions::new(Durability::Sync),
            )
            .unwrap();
            model.insert(k, v);
            states.push(model.clone());
        }
        // Crash without closing: the tail stays in the WAL.
        let _ = sim.crash(CrashMode::ProcessKill);
        std::mem::forget(db);
    }
    let image = sim.crash(CrashMode::ProcessKill);
    let targets: Vec<String> = image
        .file_names()
        .into_iter()
        .filter(|n| n.starts_with("MANIFEST-") || n.ends_with(".log"))
        .collect();
    assert!(
        targets.iter().any(|n| n.ends_with(".log")),
        "the WAL must hold data: {targets:?}"
    );
    let (mut refused, mut opened) = (0, 0);
    for name in &targets {
        let len = image.read_file(name).unwrap().len() as u64;
        for byte in 0..len {
            let damaged = image.crash(CrashMode::ProcessKill);
            damaged.flip_bit(name, byte * 8 + (byte % 8)).unwrap();
            match Tiny.open(Storage::new(Arc::new(damaged))) {
                Err(e) => {
                    assert!(e.is_corruption(), "{name} byte {byte}: {e}");
                    refused += 1;
                }
                Ok(db) => {
                    let got: BTreeMap<Vec<u8>, Vec<u8>> =
                        db.range(..).unwrap().map(owned).collect();
                    assert!(
                        states.contains(&got),
                        "{name} byte {byte}: state is not a prefix of the history"
                    );
                    opened += 1;
                }
            }
        }
    }
    println!(
        "{targets:?}: {refused} flips refused as Corruption, {opened} opened to a history prefix"
    );
    assert!(refused > 0);
}

/// Background::Threads: two writers, two readers and the worker's flushes and compactions together, with
/// backpressure thresholds low enough to hit. Counters only, never durations: every acknowledged key is
/// read back with its value while the writers run, the final scan holds every key exactly once, and L0
/// never passes the stop trigger.
#[test]
fn threads_writers_readers_and_background_compaction() {
    use rumdb::Background;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    const PER_WRITER: u64 = 1500;
    let options = LsmOptions {
        memtable_bytes: 2 << 10,
        l0_compaction_trigger: 2,
        l0_slowdown_trigger: 3,
        l0_stop_trigger: 4,
        base_level_bytes: 4 << 10,
        target_file_bytes: 2 << 10,
        background: Background::Threads,
        ..LsmOptions::tiny()
    };
    let storage = Storage::new(Arc::new(SimBackend::new(1)));
    let db = LsmEngine::open_with(storage, options.clone()).unwrap();
    let key = |w: u64, i: u64| format!("w{w}-{i:06}").into_bytes();
    let value = |w: u64, i: u64| format!("value {w}/{i} {}", "x".repeat(40)).into_bytes();
    let progress = [AtomicU64::new(0), AtomicU64::new(0)];
    let done = AtomicBool::new(false);
    let max_l0 = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (db, progress) = (&db, &progress);
                s.spawn(move || {
                    for i in 0..PER_WRITER {
                        db.put(key(w, i), value(w, i)).unwrap();
                        progress[w as usize].store(i + 1, Ordering::Release);
                    }
                })
            })
            .collect();
        for r in 0..2u64 {
            let (db, progress, done, max_l0, reads) = (&db, &progress, &done, &max_l0, &reads);
            s.spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ r;
                while !done.load(Ordering::Acquire) {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let w = (x >> 33) % 2;
                    let p = progress[w as usize].load(Ordering::Acquire);
                    if p > 0 {
                        let i = (x >> 40) % p;
                        assert_eq!(
                            db.get(key(w, i)).unwrap(),
                            Some(value(w, i).into()),
                            "lost {w}/{i}"
                        );
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    max_l0.fetch_max(db.stats().l0_files, Ordering::Relaxed);
                }
            });
        }
        for h in writers {
            h.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    db.wait_idle().unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = db.range(..).unwrap().map(owned).collect();
    assert_eq!(all.len() as u64, 2 * PER_WRITER, "lost or duplicated keys");
    assert!(all.windows(2).all(|p| p[0].0 < p[1].0), "scan out of order");
    for w in 0..2u64 {
        for i in 0..PER_WRITER {
            assert_eq!(
                db.get(key(w, i)).unwrap(),
                Some(value(w, i).into()),
                "lost {w}/{i}"
            );
        }
    }
    let stats = db.stats();
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(stats.compactions > 0, "no background compaction ran");
    assert!(
        max_l0.load(Ordering::Relaxed) <= options.l0_stop_trigger as u64,
        "L0 reached {} tables, stop trigger {}",
        max_l0.load(Ordering::Relaxed),
        options.l0_stop_trigger
    );
    db.verify().unwrap();
    db.close().unwrap();
}

/// Ascending keys flush into disjoint L0 tables that overlap nothing below: compaction moves them down
/// (a manifest edit, no rewrite), and the moves show in the level stats.
#[test]
fn disjoint_flushes_are_moved_not_rewritten() {
    let storage = Storage::new(Arc::new(SimBackend::new(3)));
    let db = Tiny.open(storage).unwrap();
    for i in 0..2000u32 {
        db.put(format!("seq{i:06}").as_bytes(), [7u8; 60]).unwrap();
    }
    let levels = db.level_stats();
    let moves: u64 = levels.iter().map(|l| l.moves).sum();
    let moved: u64 = levels.iter().map(|l| l.moved).sum();
    assert!(moves > 0 && moved > 0, "{levels:?}");
    assert!(deepest_level(&db) >= 2, "{levels:?}");
    for i in (0..2000u32).step_by(97) {
        assert_eq!(
            db.get(format!("seq{i:06}").as_bytes()).unwrap(),
            Some(vec![7u8; 60].into())
        );
    }
    db.verify().unwrap();
}

/// A full compaction drops tombstones (and what they delete) once nothing below can hold the key — but
/// not while a snapshot still sees the deleted values.
#[test]
fn full_compaction_drops_tombstones_unless_a_snapshot_sees_them() {
    let storage = Storage::new(Arc::new(SimBackend::new(4)));
    let db = Tiny.open(storage).unwrap();
    let keys: Vec<Vec<u8>> = (0..500u32)
        .map(|i| format!("key{i:05}").into_bytes())
        .collect();
    for k in &keys {
        db.put(k, [1u8; 50]).unwrap();
    }
    db.compact().unwrap();
    let snap = db.snapshot().unwrap();
    for k in &keys {
        db.delete(k).unwrap();
    }
    db.compact().unwrap();
    assert!(
        db.verify().unwrap().entries >= keys.len() as u64,
        "the snapshot's values must survive"
    );
    assert_eq!(snap.range(..).unwrap().count(), keys.len());
    drop(snap);
    db.compact().unwrap();
    assert_eq!(db.range(..).unwrap().count(), 0);
    assert_eq!(
        db.verify().unwrap().entries,
        0,
        "tombstones left at the bottom"
    );
}

/// I7 (the crash-during-recovery oracle of `rumdb::testing::engine_history`): a recovery that itself crashes at any of its mutating operations (WAL
/// replay flush, orphan removal, manifest rollover), recovered again after a process kill or a power
/// loss, gives the state of one clean recovery. `RUMDB_RECOVERY_CRASHES=all` tries every run crash point
/// under every mode and every recovery crash point.
#[test]
fn a_crash_during_recovery_recovers_the_same_state() {
    let exhaustive = std::env::var("RUMDB_RECOVERY_CRASHES").is_ok_and(|v| v == "all");
    let mut sum = engine_history::RecoveryCrashes::default();
    for seed in seeds(2) {
        let mut steps = engine_history::generate(seed, 30);
        steps.insert(10, engine_history::Step::Reopen);
        steps.insert(20, engine_history::Step::Compact);
        let r = engine_history::check_recovery_crash_matrix(&Tiny, seed, &steps, exhaustive)
            .unwrap_or_else(|e| {
                panic!("{e}\nreproduce: RUMDB_SEED={seed} cargo test --test lsm a_crash_during")
            });
        sum.recovery_ops += r.recovery_ops;
        sum.points += r.points;
        sum.images += r.images;
    }
    println!(
        "lsm: {} crash points inside recovery covered ({} recovery ops seen), {} images recovered again",
        sum.points, sum.recovery_ops, sum.images
    );
    assert!(sum.points > 20, "recovery crash points: {sum:?}");
}

/// Settling (`LsmOptions::settle_after`): L0 tables left below the trigger by a burst of writes are merged
/// into L1 by `wait_idle` (both background modes) and, in Threads mode, by the worker once writes pause;
/// with `settle_after: None` they stay. Every key still reads back afterwards.
#[test]
fn settling_merges_l0_into_l1() {
    use rumdb::Background;
    use std::time::{Duration, Instant};

    let fill = |db: &LsmEngine| {
        for i in 0..3 {
            db.put(format!("key{i}"), "first").unwrap();
            db.flush().unwrap(); // one L0 table per round, below the trigger of 4
        }
    };
    let check = |db: &LsmEngine| {
        for i in 0..3 {
            assert_eq!(db.get(format!("key{i}")).unwrap().unwrap(), "first");
        }
    };
    let open = |background, settle_after| {
        let options = LsmOptions {
            background,
            settle_after,
            ..LsmOptions::tiny()
        };
        LsmEngine::open_with(Storage::new(Arc::new(SimBackend::new(7))), options).unwrap()
    };
    for background in [Background::Manual, Background::Threads] {
        let db = open(background, Some(Duration::from_secs(3600)));
        fill(&db);
        assert_eq!(db.level_stats()[0].files, 3);
        db.wait_idle().unwrap();
        assert_eq!(
            db.level_stats()[0].files,
            0,
            "{background:?}: wait_idle settles"
        );
        assert!(db.level_stats()[1].files >= 1);
        check(&db);

        let db = open(background, None);
        fill(&db);
        db.wait_idle().unwrap();
        assert_eq!(
            db.level_stats()[0].files,
            3,
            "{background:?}: settling is off"
        );
        check(&db);
    }
    // The worker settles by itself once writes pause (it looks every 100 ms).
    let db = open(Background::Threads, Some(Duration::from_millis(50)));
    fill(&db);
    let start = Instant::now();
    while db.level_stats()[0].files > 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "never settled");
        std::thread::sleep(Duration::from_millis(20));
    }
    check(&db);
}

/// Every file number names one file: a WAL segment and a table never share one, across opens and closes
/// (the segment a close rotates to is reserved from the counter tables use).
#[test]
fn segments_and_tables_never_share_a_number() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let db = LsmEngine::open(dir.path(), LsmOptions::default()).unwrap();
        db.put(format!("k{round}"), "v").unwrap();
        if round % 2 == 0 {
            db.flush().unwrap();
        }
        db.close().unwrap();
        let mut numbers = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some((stem, "log" | "sst")) = name.split_once('.') {
                let n: u64 = stem.parse().unwrap();
                assert!(
                    numbers.insert(n),
                    "round {round}: number {n} used twice ({name})"
                );
            }
        }
    }
}
