//! Keys up to the key limit (64 KiB) on 512-byte pages: whole keys, keys just over the inline limit, keys
//! sharing 2 KB, 20 KB and ~64 KB prefixes (so leaf searches and separators tie on the inline prefix and
//! compare through overflow chains, and separators themselves overflow), and long keys that differ early
//! (short separators). A model test with splits, merges, deletes, snapshots, scans both ways and reopen,
//! and a crash test through `engine_history`.

use super::*;
use crate::engine::LSM_MAX_KEY_LEN;
use crate::testing::engine_history::{self, ENGINE_CRASH_MODES, Step};
use crate::testing::engines::BTreeTiny;

/// Distinct key numbers.
const KEYS: u64 = 240;

/// Key number `n`: a class prefix, the number, a tail. Deterministic, so deletes and gets hit stored keys.
fn long_key(n: u64) -> Vec<u8> {
    let tag = format!("{n:04}").into_bytes();
    let (prefix, tail) = match n % 6 {
        // Whole keys, up to 44 bytes.
        0 => (0, (n % 41) as usize),
        // Around the inline limit at 512-byte pages (60 bytes): 57 to 64.
        1 => (53, (n / 6 % 8) as usize),
        // A shared 2,000-byte prefix, then the number: separators of ~2 KB, overflowing.
        2 => (2_000, (n % 3) as usize),
        // A shared 20,000-byte prefix (the 2,000-byte one extended): chains compared deep.
        3 => (20_000, (n * 37 % 500) as usize),
        // Exactly the key limit, prefixes of different lengths.
        4 => {
            let tail = (n % 5) as usize;
            (LSM_MAX_KEY_LEN - tag.len() - tail, tail)
        }
        // Long keys that differ in their first bytes: overflow keys, short separators.
        _ => (0, 3_000 + n as usize),
    };
    let mut k = vec![b'p'; prefix];
    k.extend_from_slice(&tag);
    k.extend(std::iter::repeat_n(b'x', tail));
    k
}

fn key_of(rng: &mut Rng) -> Vec<u8> {
    long_key(rng.below(KEYS))
}

fn options() -> BTreeOptions {
    BTreeOptions {
        pool_bytes: 512 * 512,
        snapshot_memory: 64 << 20,
        ..BTreeOptions::tiny()
    }
}

#[test]
fn the_key_generator_covers_every_class() {
    let lens: Vec<usize> = (0..KEYS).map(|n| long_key(n).len()).collect();
    assert!(lens.contains(&LSM_MAX_KEY_LEN));
    let geo = Geometry { page_size: 512 };
    assert!(lens.iter().any(|&l| l == geo.max_inline_key()));
    assert!(lens.iter().any(|&l| l == geo.max_inline_key() + 1));
    let mut keys: Vec<Vec<u8>> = (0..KEYS).map(long_key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len() as u64, KEYS, "keys are distinct");
}

#[test]
fn long_keys_agree_with_the_model() {
    for seed in seeds() {
        println!("btree long-key model seed {seed} (reproduce with RUMDB_SEED={seed})");
        run_long_keys(seed, 700);
    }
}

fn run_long_keys(seed: u64, ops: usize) {
    let storage = sim(seed);
    let opts = options();
    let mut db = open(&storage, opts);
    let mut rng = Rng::new(seed ^ 0x10f6);
    let mut model = Model::new();
    let mut snap: Option<LiveSnapshot> = None;
    let mut checkpoints = 0u64;
    for op in 0..ops {
        let ctx = format!("seed {seed} op {op}");
        match rng.below(100) {
            0..45 => {
                let mut batch = WriteBatch::new();
                if rng.chance(1, 8) {
                    // Delete a run of neighbours in one class: empties leaves, drives merges.
                    let start = rng.below(KEYS);
                    for j in 0..12 {
                        let k = long_key((start + 6 * j) % KEYS);
                        batch.delete(&k);
                        model.remove(&k);
                    }
                } else {
                    for _ in 0..1 + rng.below(4) {
                        let k = key_of(&mut rng);
                        if rng.chance(1, 4) {
                            batch.delete(&k);
                            model.remove(&k);
                        } else {
                            let v = random_value(&mut rng);
                            batch.put(&k, &v);
                            model.insert(k, v);
                        }
                    }
                }
                let before = db.stats().checkpoints;
                db.write(&batch, WriteOptions::default()).unwrap();
                checkpoints += db.stats().checkpoints - before;
                if op % 7 == 0 {
                    db.verify().unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
                }
            }
            45..60 => {
                let k = key_of(&mut rng);
                assert!(
                    db.get(&k).unwrap().as_deref() == model.get(&k).map(Vec::as_slice),
                    "{ctx}: get"
                );
            }
            60..75 => {
                let bound = |rng: &mut Rng| match rng.below(3) {
                    0 => Bound::Unbounded,
                    1 => Bound::Included(key_of(rng)),
                    _ => Bound::Excluded(key_of(rng)),
                };
                let (lo, hi) = (bound(&mut rng), bound(&mut rng));
                let got = read_range(&mut rng, db.scan(bref(&lo), bref(&hi)).unwrap()).unwrap();
                assert_same(
                    &got,
                    &model_range(&model, &lo, &hi),
                    &format!("{ctx}: scan"),
                );
            }
            75..80 => {
                snap = Some(LiveSnapshot {
                    snap: db.snapshot().unwrap(),
                    model: model.clone(),
                });
            }
            80..86 => {
                if let Some(s) = &snap {
                    let k = key_of(&mut rng);
                    assert_eq!(
                        s.snap.get(&k).unwrap().as_deref(),
                        s.model.get(&k).map(Vec::as_slice),
                        "{ctx}"
                    );
                    let got = read_range(&mut rng, s.snap.range(..).unwrap()).unwrap();
                    let want = model_range(&s.model, &Bound::Unbounded, &Bound::Unbounded);
                    assert_same(&got, &want, &format!("{ctx}: snapshot scan"));
                }
            }
            86..89 => db.flush().unwrap(),
            _ => {
                let (k, v) = (key_of(&mut rng), random_value(&mut rng));
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        if op % 150 == 149 {
            snap = None;
            db.close().unwrap();
            db = open(&storage, opts);
            db.verify()
                .unwrap_or_else(|e| panic!("{ctx}: verify after reopen: {e}"));
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_same(&all(&db), &want, &format!("{ctx}: state after reopen"));
        }
    }
    drop(snap);
    let report = db.verify().unwrap();
    assert_eq!(report.entries, model.len() as u64, "seed {seed}: entries");
    // Deleting everything frees every key and separator chain: the file holds only the root leaf and the
    // free list (verify's reachable ∪ free = allocated check sees any leaked chain page).
    let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
    for k in &keys {
        db.delete(k).unwrap();
    }
    let report = db.verify().unwrap();
    assert_eq!(report.entries, 0);
    assert!(checkpoints > 0, "seed {seed}: checkpoints ran");
    db.close().unwrap();
}

/// A tree several levels deep built only from keys sharing a 1,000-byte prefix: every separator overflows,
/// every search compares through chains, and deleting all but a few keys merges the tree back down.
#[test]
fn separators_that_overflow_split_and_merge() {
    let storage = sim(91);
    let db = open(&storage, options());
    let key = |i: u32| {
        let mut k = vec![b'q'; 1_000];
        k.extend_from_slice(format!("{i:05}").as_bytes());
        k
    };
    let mut model = Model::new();
    for chunk in (0..300u32).collect::<Vec<_>>().chunks(20) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(key(i * 7 % 300), [i as u8; 8]);
            model.insert(key(i * 7 % 300), vec![i as u8; 8]);
        }
        db.write(&b, WriteOptions::default()).unwrap();
    }
    db.verify().unwrap();
    let height = db.shared.tree.read().height;
    assert!(height >= 2, "height {height}");
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(&v[..]));
    }
    let mut shorter = key(7);
    shorter.pop();
    assert_eq!(db.get(&shorter).unwrap(), None, "a prefix of a stored key");
    let mut b = WriteBatch::new();
    for i in (0..300u32).filter(|i| i % 50 != 0) {
        b.delete(key(i));
    }
    db.write(&b, WriteOptions::default()).unwrap();
    let report = db.verify().unwrap();
    assert_eq!(report.entries, 6);
    assert!(db.shared.tree.read().height < height, "the tree shrank");
    let got: Vec<Vec<u8>> = all(&db).into_iter().map(|(k, _)| k).collect();
    let want: Vec<Vec<u8>> = (0..300u32).filter(|i| i % 50 == 0).map(key).collect();
    assert_eq!(got, want);
    db.close().unwrap();
}

/// Crash recovery with long keys: seeded histories of batches over the long-key space, checked by the
/// crash harness at a sample of crash points under every crash mode.
#[test]
fn crashes_with_long_keys_recover_an_acknowledged_prefix() {
    let mut checked = 0;
    for seed in seeds().into_iter().take(2) {
        let mut rng = Rng::new(seed ^ 0xc4a5);
        let mut steps = Vec::new();
        for i in 0..24 {
            let ops = (0..1 + rng.below(3))
                .map(|_| {
                    let k = key_of(&mut rng);
                    let v = (!rng.chance(1, 4)).then(|| random_value(&mut rng));
                    (k, v)
                })
                .collect();
            steps.push(Step::Batch(ops, crate::Durability::Flush));
            match i {
                8 => steps.push(Step::Flush),
                16 => steps.push(Step::Reopen),
                _ => {}
            }
        }
        let total = engine_history::check_crash(
            &BTreeTiny,
            seed,
            &steps,
            None,
            crate::testing::CrashMode::ProcessKill,
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(total > 20, "seed {seed}: {total} operations");
        for mode in ENGINE_CRASH_MODES {
            for at in (1..=total).step_by((total / 6).max(1) as usize) {
                engine_history::check_crash(&BTreeTiny, seed, &steps, Some(at), mode)
                    .unwrap_or_else(|e| panic!("seed {seed} crash at {at} {mode:?}: {e}"));
                checked += 1;
            }
        }
    }
    println!("{checked} long-key crash images checked");
    assert!(checked >= 30);
}
