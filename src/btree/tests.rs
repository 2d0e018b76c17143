//! Engine-level tests of the B-tree, on the simulated backend (deterministic, no fsync cost):
//! - a seeded model test: thousands of random operations at tiny options against a `BTreeMap`, with
//!   `verify()` after every batch, snapshots and scans both ways, and close/reopen every few hundred ops;
//! - the free list keeps the file from growing under delete-and-reinsert;
//! - every bit flip and every truncation of a small data file opens and reads without a panic, giving
//!   `Corruption` or the right data;
//! - child-pointer and sibling-link cycles are `Corruption`, not a hang;
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
    db.range(..).unwrap().map(|r| r.unwrap()).collect()
}

type KvPairOwned = (Vec<u8>, Vec<u8>);

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
    if let Some(s) = std::env::var("RUMDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![s];
    }
    let n = std::env::var("RUMDB_BTREE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    (0..n).collect()
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
                let kv = r?;
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
        s.snap.get(&k).unwrap(),
        s.model.get(&k).cloned(),
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
                assert!(db.get(&k).unwrap() == model.get(&k).cloned(), "{ctx}: get");
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

// ---------------------------------------------------------------------------------------------------------
// File growth.

fn data_len(storage: &Storage) -> u64 {
    storage.open(DATA_FILE, false).unwrap().len().unwrap()
}

#[test]
fn deleting_half_and_reinserting_grows_the_file_by_at_most_ten_percent() {
    let storage = sim(7);
    let opts = BTreeOptions {
        pool_bytes: 256 * 512,
        max_dirty_pages: 128,
        ..BTreeOptions::tiny()
    };
    let db = open(&storage, opts);
    let value = |i: u32| -> Vec<u8> {
        let len = if i.is_multiple_of(10) { 300 } else { 20 };
        vec![(i % 251) as u8; len]
    };
    let key =
        |i: u32| format!("key{:08}", i.wrapping_mul(2_654_435_761) % 100_000_000).into_bytes();
    let n = 4000u32;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(&key(i), &value(i));
        }
        db.write(&b, WriteOptions::default()).unwrap();
    }
    db.flush().unwrap();
    let before = data_len(&storage);
    for round in 0..2 {
        for chunk in (0..n)
            .filter(|i| i % 2 == round)
            .collect::<Vec<_>>()
            .chunks(100)
        {
            let mut b = WriteBatch::new();
            for &i in chunk {
                b.delete(&key(i));
            }
            db.write(&b, WriteOptions::default()).unwrap();
        }
        db.verify().unwrap();
        for chunk in (0..n)
            .filter(|i| i % 2 == round)
            .collect::<Vec<_>>()
            .chunks(100)
        {
            let mut b = WriteBatch::new();
            for &i in chunk {
                b.put(&key(i), &value(i));
            }
            db.write(&b, WriteOptions::default()).unwrap();
        }
        db.flush().unwrap();
        db.verify().unwrap();
    }
    let after = data_len(&storage);
    println!("data file {before} -> {after} bytes");
    assert!(
        after * 10 <= before * 11,
        "the file grew from {before} to {after} bytes"
    );
    assert_eq!(all(&db).len(), n as usize);
}

// ---------------------------------------------------------------------------------------------------------
// Damage.

/// A small database at tiny options: two levels, an overflow chain, free pages, several checkpoints.
fn small_image() -> (Vec<u8>, Vec<u8>, Model) {
    let storage = sim(11);
    let db = open(&storage, BTreeOptions::tiny());
    let mut model = Model::new();
    for i in 0..30u32 {
        let k = format!("key{i:03}").into_bytes();
        let v = if i == 7 {
            vec![7u8; 700]
        } else {
            vec![i as u8; 12]
        };
        db.put(&k, &v).unwrap();
        model.insert(k, v);
        if i % 10 == 9 {
            db.flush().unwrap();
        }
    }
    db.put(b"gone", &[1u8; 900]).unwrap();
    db.delete(b"gone").unwrap();
    db.verify().unwrap();
    db.close().unwrap();
    let read = |name: &str| {
        storage
            .read_file(name, 1 << 20, ReadPurpose::Recovery)
            .unwrap()
    };
    (read(IDENTITY_FILE), read(DATA_FILE), model)
}

fn storage_with(identity: &[u8], data: &[u8]) -> Storage {
    let s = sim(1);
    for (name, bytes) in [(IDENTITY_FILE, identity), (DATA_FILE, data)] {
        let f = s.create_new(name).unwrap();
        f.append(bytes, WritePurpose::Header).unwrap();
        f.sync_data().unwrap();
    }
    s
}

/// Opens and reads everything: every result must be the right data or `Corruption`.
fn open_and_read_all(storage: &Storage, model: &Model, what: &str) -> bool {
    let db = match BTreeEngine::open_with(storage.clone(), BTreeOptions::tiny()) {
        Ok(db) => db,
        Err(e) => {
            assert!(e.is_corruption(), "{what}: open: {e}");
            return false;
        }
    };
    let mut clean = true;
    let scanned: crate::Result<Vec<_>> = db.range(..).unwrap().collect();
    match scanned {
        Ok(v) => {
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_same(&v, &want, &format!("{what}: a scan returned wrong data"));
        }
        Err(e) => {
            assert!(e.is_corruption(), "{what}: scan: {e}");
            clean = false;
        }
    }
    for (k, v) in model {
        match db.get(k) {
            Ok(got) => assert_eq!(got.as_ref(), Some(v), "{what}: get returned wrong data"),
            Err(e) => {
                assert!(e.is_corruption(), "{what}: get: {e}");
                clean = false;
            }
        }
    }
    if let Err(e) = db.verify() {
        assert!(e.is_corruption(), "{what}: verify: {e}");
    }
    clean
}

#[test]
fn every_bit_flip_and_truncation_of_a_small_data_file_is_corruption_or_correct_data() {
    let (identity, data, model) = small_image();
    assert!(open_and_read_all(
        &storage_with(&identity, &data),
        &model,
        "intact"
    ));
    let mut detected = 0;
    for bit in 0..data.len() * 8 {
        let mut d = data.clone();
        d[bit / 8] ^= 1 << (bit % 8);
        if !open_and_read_all(&storage_with(&identity, &d), &model, &format!("bit {bit}")) {
            detected += 1;
        }
    }
    for len in 0..data.len() {
        open_and_read_all(
            &storage_with(&identity, &data[..len]),
            &model,
            &format!("length {len}"),
        );
    }
    println!(
        "{} bits flipped in a {}-byte file, {detected} detected",
        data.len() * 8,
        data.len()
    );
    assert!(detected > 0);
}

/// The header in use and a page of the image, for surgery.
fn newest_header(data: &[u8]) -> Header {
    let slot = |n: usize| {
        Header::decode(
            &data[n * 512..n * 512 + 64],
            n as u32,
            512,
            BTREE_FORMAT_VERSION,
        )
    };
    Header::choose(slot(0), slot(1)).unwrap()
}

fn patch_page(data: &mut [u8], pgno: u32, at: usize, bytes: &[u8]) {
    let start = pgno as usize * 512;
    let p = &mut data[start..start + 512];
    p[at..at + bytes.len()].copy_from_slice(bytes);
    page::seal(p, pgno);
}

fn expect_corruption_everywhere(identity: &[u8], data: &[u8], what: &str) {
    let storage = storage_with(identity, data);
    let db = BTreeEngine::open_with(storage, BTreeOptions::tiny()).unwrap();
    let scan: crate::Result<Vec<_>> = db.range(..).unwrap().collect();
    assert!(scan.unwrap_err().is_corruption(), "{what}: scan");
    let back: crate::Result<Vec<_>> = db.range(..).unwrap().rev().collect();
    assert!(back.unwrap_err().is_corruption(), "{what}: reverse scan");
    assert!(db.verify().unwrap_err().is_corruption(), "{what}: verify");
}

fn two_level_image() -> (Vec<u8>, Vec<u8>, Header) {
    let storage = sim(13);
    let db = open(&storage, BTreeOptions::tiny());
    let mut b = WriteBatch::new();
    for i in 0..400u32 {
        b.put(
            format!("key-with-some-length-{i:05}").as_bytes(),
            &[1u8; 20],
        );
    }
    db.write(&b, WriteOptions::default()).unwrap();
    db.close().unwrap();
    let read = |name: &str| {
        storage
            .read_file(name, 1 << 22, ReadPurpose::Recovery)
            .unwrap()
    };
    let data = read(DATA_FILE);
    let h = newest_header(&data);
    assert!(h.height >= 2, "height {}", h.height);
    (read(IDENTITY_FILE), data, h)
}

#[test]
fn a_child_pointer_cycle_is_corruption_not_a_hang() {
    let (identity, data, h) = two_level_image();
    // The root's leftmost child is the root itself.
    let mut d = data.clone();
    patch_page(&mut d, h.root, 16, &h.root.to_le_bytes());
    expect_corruption_everywhere(&identity, &d, "root points to itself");
    let db = BTreeEngine::open_with(storage_with(&identity, &d), BTreeOptions::tiny()).unwrap();
    assert!(
        db.get(b"key-with-some-length-00000")
            .unwrap_err()
            .is_corruption()
    );
    // A child out of the file.
    let mut d = data.clone();
    patch_page(&mut d, h.root, 16, &9_999u32.to_le_bytes());
    expect_corruption_everywhere(&identity, &d, "child out of range");
    // The leftmost leaf's next sibling is itself.
    let mut pgno = h.root;
    for _ in 0..h.height {
        pgno = page::link_a(&data[pgno as usize * 512..]);
    }
    let mut d = data.clone();
    patch_page(&mut d, pgno, 20, &pgno.to_le_bytes());
    let db = BTreeEngine::open_with(storage_with(&identity, &d), BTreeOptions::tiny()).unwrap();
    let scan: crate::Result<Vec<_>> = db.range(..).unwrap().collect();
    assert!(scan.unwrap_err().is_corruption(), "sibling cycle: scan");
    assert!(
        db.verify().unwrap_err().is_corruption(),
        "sibling cycle: verify"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Snapshots, stats, the pool.

#[test]
fn the_oldest_snapshot_fails_once_the_overlay_passes_its_bound() {
    let storage = sim(3);
    let opts = BTreeOptions {
        snapshot_memory: 8 << 10,
        ..BTreeOptions::tiny()
    };
    let db = open(&storage, opts);
    db.put(b"a", b"old").unwrap();
    let old = db.snapshot().unwrap();
    let it = db.range(..).unwrap();
    db.put(b"a", b"mid").unwrap();
    let newer = db.snapshot().unwrap();
    assert_eq!(old.get(b"a").unwrap().as_deref(), Some(&b"old"[..]));
    // Overwrite enough to pass 8 KiB of prior values.
    for round in 0..3u32 {
        for i in 0..50u32 {
            db.put(format!("k{i}").as_bytes(), &[round as u8; 100])
                .unwrap();
        }
    }
    assert!(matches!(old.get(b"a"), Err(Error::SnapshotTooOld)));
    let rest: crate::Result<Vec<_>> = it.collect();
    assert!(matches!(rest, Err(Error::SnapshotTooOld)));
    // The newer snapshot may or may not have been released; if it answers, it is right.
    match newer.get(b"a") {
        Ok(v) => assert_eq!(v.as_deref(), Some(&b"mid"[..])),
        Err(e) => assert!(matches!(e, Error::SnapshotTooOld)),
    }
    drop((old, newer));
    assert!(db.stats().memory.snapshot_overlay <= 8 << 10);
    let s = db.snapshot().unwrap();
    db.put(b"a", b"new").unwrap();
    assert_eq!(s.get(b"a").unwrap().as_deref(), Some(&b"mid"[..]));
}

#[test]
fn cached_reads_touch_no_storage_and_stats_count_pages() {
    let storage = sim(5);
    let opts = BTreeOptions {
        pool_bytes: 1024 * 512,
        ..BTreeOptions::tiny()
    };
    let db = open(&storage, opts);
    let mut b = WriteBatch::new();
    for i in 0..500u32 {
        b.put(format!("k{i:05}").as_bytes(), &[3u8; 16]);
    }
    db.write(&b, WriteOptions::default()).unwrap();
    db.close().unwrap();
    let db = open(&storage, opts);
    let s0 = db.stats();
    assert_eq!(db.get(b"k00042").unwrap().as_deref(), Some(&[3u8; 16][..]));
    let s1 = db.stats().since(&s0);
    assert_eq!(s1.reads.gets, 1);
    assert!(s1.reads.index_touches >= 1 && s1.reads.data_touches == 1);
    assert_eq!(
        s1.reads.index_fetches + s1.reads.data_fetches,
        s1.reads.index_touches + 1
    );
    assert!(s1.io.read.get > 0);
    for _ in 0..3 {
        db.get(b"k00042").unwrap();
    }
    let s2 = db.stats().since(&db.stats());
    let s3 = db.stats().since(&s0);
    assert_eq!(
        s3.io.read.get, s1.io.read.get,
        "a cached page is never read again"
    );
    assert_eq!(s3.reads.cache_hits, 3 * s1.reads.index_touches + 3);
    assert_eq!(s2.reads.gets, 0);
    assert!(db.stats().memory.buffer_pool > 0);
}

#[test]
fn a_pool_of_a_few_pages_evicts_and_still_reads_everything() {
    let storage = sim(9);
    let db = open(&storage, BTreeOptions::tiny());
    let mut model = Model::new();
    for i in 0..2000u32 {
        let k = format!("k{:06}", (i * 7919) % 2000).into_bytes();
        let v = vec![(i % 200) as u8; (i % 150) as usize];
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    assert!(
        db.stats().checkpoints > 10,
        "the dirty limit ran checkpoints"
    );
    assert!(db.stats().memory.buffer_pool <= 16 * 512 * 2);
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(all(&db).len(), model.len());
    db.verify().unwrap();
    assert!(db.shared.store.pool.evictions() > 0);
}

#[test]
fn closed_handles_and_their_snapshots_refuse_everything() {
    let storage = sim(2);
    let db = open(&storage, BTreeOptions::tiny());
    db.put(b"k", b"v").unwrap();
    let snap = db.snapshot().unwrap();
    db.close().unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::Closed)));
    assert!(matches!(db.put(b"k", b"v"), Err(Error::Closed)));
    assert!(matches!(snap.get(b"k"), Err(Error::Closed)));
    assert!(matches!(db.close(), Err(Error::Closed)));
    let again = open(&storage, BTreeOptions::tiny());
    assert_eq!(again.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// Found by the model test: the back end must read past the front's read-ahead (the front's buffered
/// run), or the iteration ends early when the ends' runs overlap.
#[test]
fn alternating_ends_read_every_entry_when_runs_overlap() {
    let storage = sim(1);
    let db = open(&storage, BTreeOptions::tiny());
    for i in 0..98u32 {
        db.put(format!("{i:04}").as_bytes(), &[1u8; 36]).unwrap();
    }
    let mut it = db.range(..).unwrap();
    let mut n = 0;
    let mut turn = false;
    loop {
        let x = if turn { it.next_back() } else { it.next() };
        match x {
            None => break,
            Some(r) => {
                r.unwrap();
                n += 1;
            }
        }
        turn = !turn;
    }
    assert_eq!(n, 98);
}

#[test]
fn a_failed_checkpoint_fsync_poisons_writes_and_reads_go_on() {
    let sim_backend = SimBackend::new(21);
    let storage = Storage::new(Arc::new(sim_backend.clone()));
    let db = open(&storage, BTreeOptions::tiny());
    db.put(b"k", b"v").unwrap();
    let next_sync = sim_backend.op_count(crate::testing::OpKind::SyncData) + 1;
    sim_backend.set_fault_plan(crate::testing::FaultPlan {
        fail: vec![crate::testing::Fault {
            op: crate::testing::OpKind::SyncData,
            nth: next_sync,
            kind: std::io::ErrorKind::Other,
        }],
        ..Default::default()
    });
    assert!(matches!(db.flush(), Err(Error::Io(_))));
    assert!(matches!(db.put(b"k2", b"v"), Err(Error::Poisoned { .. })));
    assert!(matches!(db.flush(), Err(Error::Poisoned { .. })));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(matches!(db.close(), Err(Error::Poisoned { .. })));
}

#[test]
fn overwriting_a_large_value_reuses_its_overflow_pages() {
    let storage = sim(23);
    let db = open(&storage, BTreeOptions::tiny());
    let mut sizes = Vec::new();
    for round in 0..40u32 {
        db.put(b"big", &vec![round as u8; 5000]).unwrap();
        db.put(b"small", &round.to_le_bytes()).unwrap();
        db.flush().unwrap();
        sizes.push(data_len(&storage));
    }
    db.verify().unwrap();
    assert_eq!(sizes[5], sizes[39], "the file stopped growing: {sizes:?}");
    db.delete(b"big").unwrap();
    db.verify().unwrap();
    assert_eq!(db.get(b"big").unwrap(), None);
}

#[test]
fn readers_snapshots_and_a_writer_at_tiny_options() {
    let storage = sim(25);
    let db = open(&storage, BTreeOptions::tiny());
    // Every batch sets all 40 keys to one round number; readers must never see two rounds at once.
    let keys: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("key{i:03}").into_bytes())
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..150u32 {
                let mut b = WriteBatch::new();
                for k in &keys {
                    b.put(k, &[round as u8; 30]);
                }
                if round % 3 == 0 {
                    b.delete(&keys[(round as usize) % 40]);
                    b.put(&keys[(round as usize) % 40], &[round as u8; 30]);
                }
                db.write(&b, WriteOptions::default()).unwrap();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..60 {
                    let seen: Vec<_> = all(&db);
                    if let Some(first) = seen.first() {
                        assert_eq!(seen.len(), 40);
                        assert!(
                            seen.iter().all(|(_, v)| v == &first.1),
                            "a scan saw two batches"
                        );
                    }
                    let snap = db.snapshot().unwrap();
                    let a = snap.get(&keys[0]).unwrap();
                    let z = snap.get(&keys[39]).unwrap();
                    assert_eq!(a, z, "a snapshot saw two batches");
                }
            });
        }
    });
    db.verify().unwrap();
}

#[test]
fn options_are_checked_and_the_page_size_is_fixed_at_creation() {
    let storage = sim(27);
    for bad in [0, 100, 1000, 32768] {
        let opts = BTreeOptions {
            page_size: bad,
            ..BTreeOptions::default()
        };
        assert!(matches!(
            BTreeEngine::open_with(storage.clone(), opts),
            Err(Error::InvalidArgument(_))
        ));
    }
    let db = open(&storage, BTreeOptions::tiny());
    assert_eq!(db.limits().max_key_len, 512 / 8 - 16);
    db.put(b"k", b"v").unwrap();
    db.close().unwrap();
    let db = open(&storage, BTreeOptions::default());
    assert_eq!(
        db.limits().max_key_len,
        48,
        "the page size of the existing database wins"
    );
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    let default = sim(28);
    let db = open(&default, BTreeOptions::default());
    assert_eq!(db.limits().max_key_len, 496);
}

#[test]
fn larger_page_sizes_work_end_to_end() {
    for page_size in [8192, 16384] {
        let storage = sim(page_size as u64);
        let opts = BTreeOptions {
            page_size,
            pool_bytes: 8 * page_size,
            max_dirty_pages: 6,
            ..BTreeOptions::default()
        };
        let db = open(&storage, opts);
        let mut model = Model::new();
        for i in 0..3000u32 {
            let k = format!("{:08}", (i * 7919) % 3000).into_bytes();
            let v = vec![
                i as u8;
                if i % 97 == 0 {
                    40_000
                } else {
                    (i % 300) as usize
                }
            ];
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        for i in (0..3000u32).step_by(3) {
            let k = format!("{i:08}").into_bytes();
            db.delete(&k).unwrap();
            model.remove(&k);
        }
        db.verify().unwrap();
        db.close().unwrap();
        let db = open(&storage, opts);
        let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_same(&all(&db), &want, &format!("page size {page_size}"));
        assert_eq!(db.limits().max_key_len, page_size / 8 - 16);
    }
}

#[test]
fn a_damaged_newest_header_falls_back_and_newer_pages_are_corruption() {
    let (identity, data, model) = small_image();
    let h = newest_header(&data);
    let mut d = data.clone();
    let slot = (h.counter % 2) as usize * 512;
    d[slot + 20] ^= 0xff;
    let storage = storage_with(&identity, &d);
    let db = BTreeEngine::open_with(storage.clone(), BTreeOptions::tiny()).unwrap();
    let scan: crate::Result<Vec<_>> = db.range(..).unwrap().collect();
    assert!(
        scan.unwrap_err().is_corruption(),
        "the older slot's root was rewritten since"
    );
    drop(db);
    assert!(!open_and_read_all(
        &storage,
        &model,
        "newest header damaged"
    ));
    // Both slots damaged: Corruption at open.
    d[(1 - h.counter as usize % 2) * 512 + 3] ^= 1;
    let err =
        BTreeEngine::open_with(storage_with(&identity, &d), BTreeOptions::tiny()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn a_batch_that_fails_part_way_is_never_seen() {
    let (identity, data, h) = two_level_image();
    let mut leftmost = h.root;
    for _ in 0..h.height {
        leftmost = page::link_a(&data[leftmost as usize * 512..]);
    }
    let mut d = data.clone();
    d[leftmost as usize * 512 + 300] ^= 1;
    let db = BTreeEngine::open_with(storage_with(&identity, &d), BTreeOptions::tiny()).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"key-with-some-length-00399", b"first half")
        .put(b"key-with-some-length-00000", b"second half");
    assert!(
        db.write(&b, WriteOptions::default())
            .unwrap_err()
            .is_corruption()
    );
    assert!(matches!(
        db.get(b"key-with-some-length-00399"),
        Err(Error::Poisoned { .. })
    ));
    let scan: crate::Result<Vec<_>> = db.range(..).unwrap().collect();
    assert!(matches!(scan, Err(Error::Poisoned { .. })));
    assert!(matches!(db.put(b"x", b"y"), Err(Error::Poisoned { .. })));
    assert!(matches!(db.close(), Err(Error::Poisoned { .. })));
}
