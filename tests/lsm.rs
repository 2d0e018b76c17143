//! LSM engine: seeded model tests and crash tests on the simulated backend (Manual background).
//!
//! `RUMDB_SEED=<n>` runs one seed; `RUMDB_LSM_SEEDS=<n>` sets how many (defaults keep CI fast).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use rumdb::storage::Storage;
use rumdb::testing::engine_history::{self, EngineUnderTest};
use rumdb::testing::{CrashMode, Rng, SimBackend};
use rumdb::{Durability, Engine, LsmEngine, LsmOptions, WriteBatch, WriteOptions};

fn seeds(default: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("RUMDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let n = std::env::var("RUMDB_LSM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (0..n).collect()
}

struct Tiny;

impl EngineUnderTest for Tiny {
    type E = LsmEngine;

    fn open(&self, storage: Storage) -> rumdb::Result<LsmEngine> {
        let options = LsmOptions {
            memtable_bytes: 2 << 10,
            l0_compaction_trigger: 3,
            ..LsmOptions::tiny()
        };
        LsmEngine::open_with(storage, options)
    }

    fn stray_files(&self, engine: &LsmEngine, storage: &Storage) -> rumdb::Result<Vec<String>> {
        let live = engine.live_files();
        let listed = storage.list()?;
        let mut stray: Vec<String> = listed
            .iter()
            .filter(|f| !live.contains(f))
            .map(|f| format!("orphan {f}"))
            .collect();
        stray.extend(
            live.iter()
                .filter(|f| !listed.contains(f))
                .map(|f| format!("missing {f}")),
        );
        Ok(stray)
    }
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
        let key = |rng: &mut Rng| format!("k{:04}", rng.below(400)).into_bytes();
        for step in 0..1500 {
            let ctx =
                || format!("seed {seed} step {step} (RUMDB_SEED={seed} cargo test --test lsm)");
            match rng.below(100) {
                0..=49 => {
                    let mut batch = WriteBatch::new();
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
                    assert_eq!(db.get(&k).unwrap(), model.get(&k).cloned(), "{}", ctx());
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
                        .map(|r| r.unwrap())
                        .collect();
                    assert_eq!(fwd, expected, "{}", ctx());
                    let mut bwd: Vec<_> = db
                        .scan(Bound::Included(&lo), Bound::Excluded(&hi))
                        .unwrap()
                        .rev()
                        .map(|r| r.unwrap())
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
                    db.put(&k, b"after-snapshot").unwrap();
                    model.insert(k.clone(), b"after-snapshot".to_vec());
                    db.flush().unwrap();
                    db.compact().unwrap();
                    assert_eq!(snap.get(&k).unwrap(), frozen.get(&k).cloned(), "{}", ctx());
                    let all: BTreeMap<_, _> = snap.range(..).unwrap().map(|r| r.unwrap()).collect();
                    assert_eq!(all, frozen, "snapshot across a compaction, {}", ctx());
                }
                _ => {
                    flushes += db.stats().checkpoints;
                    compactions += db.stats().compactions;
                    db.close().unwrap();
                    db = Tiny.open(storage.clone()).unwrap();
                    let all: BTreeMap<_, _> = db.range(..).unwrap().map(|r| r.unwrap()).collect();
                    assert_eq!(all, model, "full state after reopen, {}", ctx());
                }
            }
        }
        let all: BTreeMap<_, _> = db.range(..).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(all, model, "seed {seed} final");
        db.verify().unwrap();
        flushes += db.stats().checkpoints;
        compactions += db.stats().compactions;
        assert!(
            flushes > 20 && compactions > 5,
            "seed {seed}: {flushes} flushes, {compactions} compactions"
        );
    }
}

use rumdb::EngineExt;

/// Every crash point of seeded workloads that flush, compact and reopen, under every crash mode.
#[test]
fn every_crash_point_recovers_an_acknowledged_prefix() {
    let modes = [
        CrashMode::ProcessKill,
        CrashMode::PowerLossDropAll,
        CrashMode::PowerLossPrefix { torn: true },
        CrashMode::PowerLossAny {
            garbage: true,
            zeros: true,
        },
        CrashMode::DirOnly,
    ];
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
        db.put(format!("key{i:05}").as_bytes(), &[i as u8; 40])
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
                Ok(got) => assert_eq!(got.as_ref(), Some(v), "byte {byte}: wrong value for {k:?}"),
                Err(e) => {
                    assert!(e.is_corruption(), "byte {byte}: {e}");
                    failed = true;
                }
            }
        }
        for item in db.range(..).unwrap() {
            match item {
                Ok((k, v)) => assert_eq!(
                    expected.get(&k),
                    Some(&v),
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
                        db.range(..).unwrap().map(|r| r.unwrap()).collect();
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
