//! Engine-level tests of the B-tree, on the simulated backend (deterministic, no fsync cost):
//! - a seeded model test: thousands of random operations at tiny options against a `BTreeMap`, with
//!   `verify()` after every batch, snapshots and scans both ways, and close/reopen every few hundred ops;
//! - the free list keeps the file from growing under delete-and-reinsert;
//! - every bit flip and every truncation of a small data file opens and reads without a panic, giving
//!   `Corruption` or the right data;
//! - child-pointer cycles and nonzero former sibling-link bytes are `Corruption`, not a hang;
//! - snapshots past `snapshot_memory` fail with `SnapshotTooOld`; cached reads never touch storage.
//!
//! `RUMDB_SEED=<s>` runs the model test with one seed; `RUMDB_BTREE_SEEDS=<n>` sets how many (default 4).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::header::Header;
use super::page::{self, DATA_FILE};
use super::*;
use crate::engine::EngineExt;
use crate::identity::IDENTITY_FILE;
use crate::testing::{Rng, SimBackend};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn sim(seed: u64) -> Storage {
    Storage::new(Arc::new(SimBackend::new(seed)))
}

fn open(storage: &Storage, opts: BTreeOptions) -> BTreeEngine {
    BTreeEngine::open_with(storage.clone(), opts).unwrap()
}

fn all(db: &dyn Engine) -> Vec<KvPairOwned> {
    db.range(..).unwrap().map(|r| owned(r.unwrap())).collect()
}

type KvPairOwned = (Vec<u8>, Vec<u8>);

/// An entry as read, as owned vectors (what the model holds).
fn owned((k, v): crate::KvPair) -> KvPairOwned {
    (k.to_vec(), v.to_vec())
}

/// Compares two entry lists, reporting the first difference by key (values can be kilobytes).
#[track_caller]
fn assert_same(got: &[KvPairOwned], want: &[KvPairOwned], ctx: &str) {
    if got == want {
        return;
    }
    let show = |kv: Option<&KvPairOwned>| {
        kv.map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.len()))
    };
    let i = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{ctx}: {} entries, expected {}; first difference at {i}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        show(got.get(i)),
        show(want.get(i))
    );
}

fn seeds() -> Vec<u64> {
    crate::testing::seeds("RUMDB_BTREE_SEEDS", 4)
}

// ---------------------------------------------------------------------------------------------------------
// The model test.

fn random_key(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(500);
    // Lengths from 4 to 48 bytes (the key limit at 512-byte pages), all sharing a sortable prefix.
    let mut k = format!("{n:04}").into_bytes();
    k.extend(std::iter::repeat_n(b'x', (n % 45) as usize));
    k
}

fn random_value(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(100) {
        0..70 => rng.below(40),
        70..95 => 60 + rng.below(300), // overflow at 512-byte pages
        _ => 1000 + rng.below(4000),   // chains of many pages
    };
    let mut v = vec![0u8; len as usize];
    rng.fill(&mut v);
    v
}

fn random_bound(rng: &mut Rng) -> Bound<Vec<u8>> {
    match rng.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(random_key(rng)),
        _ => Bound::Excluded(random_key(rng)),
    }
}

fn model_range(model: &Model, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Vec<KvPairOwned> {
    model
        .iter()
        .filter(|(k, _)| {
            crate::engine::in_bounds(
                k,
                lo.as_ref().map(Vec::as_slice),
                hi.as_ref().map(Vec::as_slice),
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Reads a range alternating ends at random; returns the entries in ascending order.
fn read_range(rng: &mut Rng, iter: Iter) -> crate::Result<Vec<KvPairOwned>> {
    let mut iter = iter;
    let (mut front, mut back) = (Vec::new(), Vec::new());
    let mode = rng.below(3);
    loop {
        let from_back = match mode {
            0 => false,
            1 => true,
            _ => rng.chance(1, 2),
        };
        let item = if from_back {
            iter.next_back()
        } else {
            iter.next()
        };
        match item {
            None => break,
            Some(r) => {
                let kv = owned(r?);
                if from_back {
                    back.push(kv);
                } else {
                    front.push(kv);
                }
            }
        }
    }
    back.reverse();
    front.extend(back);
    Ok(front)
}

struct LiveSnapshot {
    snap: Snapshot,
    model: Model,
}

fn check_snapshot(rng: &mut Rng, s: &LiveSnapshot, seed: u64, op: usize) {
    let k = random_key(rng);
    assert_eq!(
        s.snap.get(&k).unwrap().as_deref(),
        s.model.get(&k).map(Vec::as_slice),
        "seed {seed} op {op}: snapshot get"
    );
    let (lo, hi) = (random_bound(rng), random_bound(rng));
    let got = read_range(rng, s.snap.scan(bref(&lo), bref(&hi)).unwrap()).unwrap();
    assert_same(
        &got,
        &model_range(&s.model, &lo, &hi),
        &format!("seed {seed} op {op}: snapshot scan"),
    );
}

fn bref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

fn run_model(seed: u64, ops: usize) {
    let storage = sim(seed);
    let opts = BTreeOptions::tiny();
    let mut db = open(&storage, opts);
    let mut rng = Rng::new(seed);
    let mut model = Model::new();
    let mut snaps: Vec<LiveSnapshot> = Vec::new();
    for op in 0..ops {
        let ctx = format!("seed {seed} op {op}");
        match rng.below(100) {
            0..40 => {
                let mut batch = WriteBatch::new();
                let n = 1 + rng.below(8);
                // Sometimes a run of deletes over a key range, to drive merges.
                let range_delete = rng.chance(1, 10);
                let start = rng.below(500);
                for i in 0..n {
                    if range_delete {
                        for j in 0..10 {
                            let key_n = (start + i * 10 + j) % 500;
                            let mut k = format!("{key_n:04}").into_bytes();
                            k.extend(std::iter::repeat_n(b'x', (key_n % 45) as usize));
                            batch.delete(&k);
                            model.remove(&k);
                        }
                    } else if rng.chance(1, 4) {
                        let k = random_key(&mut rng);
                        batch.delete(&k);
                        model.remove(&k);
                    } else {
                        let (k, v) = (random_key(&mut rng), random_value(&mut rng));
                        batch.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                db.write(&batch, WriteOptions::default()).unwrap();
                db.verify().unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
            }
            40..55 => {
                let k = random_key(&mut rng);
                assert!(
                    db.get(&k).unwrap().as_deref() == model.get(&k).map(Vec::as_slice),
                    "{ctx}: get"
                );
            }
            55..67 => {
                let (lo, hi) = (random_bound(&mut rng), random_bound(&mut rng));
                let got = read_range(&mut rng, db.scan(bref(&lo), bref(&hi)).unwrap()).unwrap();
                assert_same(
                    &got,
                    &model_range(&model, &lo, &hi),
                    &format!("{ctx}: scan {lo:?}..{hi:?}"),
                );
            }
            67..72 => {
                if snaps.len() < 3 {
                    snaps.push(LiveSnapshot {
                        snap: db.snapshot().unwrap(),
                        model: model.clone(),
                    });
                } else {
                    snaps.remove(rng.below(3) as usize);
                }
            }
            72..80 => {
                if !snaps.is_empty() {
                    let i = rng.below(snaps.len() as u64) as usize;
                    check_snapshot(&mut rng, &snaps[i], seed, op);
                }
            }
            80..82 => db.flush().unwrap(),
            _ => {
                let (k, v) = (random_key(&mut rng), random_value(&mut rng));
                db.put(&k, &v).unwrap();
                model.insert(k, v);
                db.verify().unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
            }
        }
        if op % 300 == 299 {
            for s in &snaps {
                check_snapshot(&mut rng, s, seed, op);
            }
            snaps.clear();
            db.close().unwrap();
            db = open(&storage, opts);
            db.verify()
                .unwrap_or_else(|e| panic!("{ctx}: verify after reopen: {e}"));
            let got = all(&db);
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_same(&got, &want, &format!("{ctx}: state after reopen"));
        }
    }
    let got = all(&db);
    assert_eq!(got.len(), model.len(), "seed {seed}: final size");
    db.close().unwrap();
}

#[test]
fn random_operations_agree_with_the_model() {
    for seed in seeds() {
        println!("btree model test seed {seed} (reproduce with RUMDB_SEED={seed})");
        run_model(seed, 3000);
    }
}

mod damage;
mod engine;
mod long_keys;
