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
        let steps = engine_history::generate(seed, 40);
        images += engine_history::check_every_crash_point(&Tiny, seed, &steps, &modes)
            .unwrap_or_else(|e| {
                panic!("{e}\nreproduce: RUMDB_SEED={seed} cargo test --test lsm every_crash")
            });
    }
    println!("{images} crash images checked");
}
