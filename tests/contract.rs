//! The contract suite: one set of checks every `Engine` configuration must pass.
//!
//! Each configuration is one `contract_suite!` line at the bottom: a module name and a factory
//! `fn(&Path) -> rumdb::Result<Box<dyn Engine>>` that opens (or creates) the database in a directory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use rumdb::testing::Storage;
use rumdb::testing::{Identity, finish_create};
use rumdb::{Durability, Engine, EngineExt, EngineKind, Error, WriteBatch, WriteOptions};

type Factory = fn(&Path) -> rumdb::Result<Box<dyn Engine>>;

/// The entries as owned vectors, to compare with a model.
fn collect(iter: impl Iterator<Item = rumdb::Result<rumdb::KvPair>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(|r| r.unwrap())
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// Values as owned vectors, to compare with a model.
fn owned_values(values: Vec<Option<rumdb::Bytes>>) -> Vec<Option<Vec<u8>>> {
    values.into_iter().map(|v| v.map(|v| v.to_vec())).collect()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

pub fn put_get_delete_overwrite(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    assert_eq!(db.get(b"missing").unwrap(), None);
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"2").unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    db.put(b"a", b"one").unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"one"[..]));
    db.delete(b"a").unwrap();
    assert_eq!(db.get(b"a").unwrap(), None);
    db.delete(b"never-existed").unwrap();
    db.put(b"a", b"again").unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"again"[..]));
    assert_eq!(collect(db.range(..).unwrap()).len(), 2);
    let stats = db.stats();
    assert!(
        stats.user_bytes >= 2 + 2 + 4 + 1 + 13 + 6,
        "user bytes counted: {}",
        stats.user_bytes
    );
    db.close().unwrap();
}

pub fn batches_are_atomic_and_later_entries_win(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"k", b"first")
        .put(b"k", b"second")
        .put(b"gone", b"x")
        .delete(b"gone");
    db.write(&b, WriteOptions::default()).unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(db.get(b"gone").unwrap(), None);
    let mut b = WriteBatch::new();
    b.delete(b"k").put(b"k", b"third");
    db.write(&b, WriteOptions::default()).unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"third"[..]));
    // An empty batch is a no-op under every durability.
    for d in [Durability::Sync, Durability::Flush, Durability::Buffered] {
        db.write(&WriteBatch::new(), WriteOptions::new(d)).unwrap();
    }
    assert_eq!(collect(db.range(..).unwrap()).len(), 1);

    // Readers never see part of a batch: every batch sets all of k0..k9 to the same value.
    let db: std::sync::Arc<dyn Engine> = std::sync::Arc::from(db);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for round in 0..200u32 {
                let mut b = WriteBatch::new();
                for i in 0..10 {
                    b.put(key(i), round.to_le_bytes());
                }
                db.write(&b, WriteOptions::new(Durability::Buffered))
                    .unwrap();
            }
        });
        let mut checks = 0;
        while !writer.is_finished() || checks < 10 {
            let seen = collect(db.range(key(0).as_slice()..=key(9).as_slice()).unwrap());
            if !seen.is_empty() {
                assert_eq!(seen.len(), 10);
                assert!(
                    seen.iter().all(|(_, v)| *v == seen[0].1),
                    "a scan saw part of a batch"
                );
            }
            let snap = db.snapshot().unwrap();
            let values: Vec<_> = (0..10).map(|i| snap.get(key(i)).unwrap()).collect();
            assert!(
                values.iter().all(|v| *v == values[0]),
                "a snapshot saw part of a batch"
            );
            checks += 1;
        }
        writer.join().unwrap();
    });
}

pub fn every_bound_both_ways(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    let mut model = BTreeMap::new();
    for i in (0..40u32).step_by(2) {
        db.put(key(i), i.to_be_bytes()).unwrap();
        model.insert(key(i), i.to_be_bytes().to_vec());
    }
    let points: Vec<Vec<u8>> = [0u32, 1, 2, 17, 18, 38, 39, 45]
        .iter()
        .map(|&i| key(i))
        .collect();
    let mut bounds: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
    for p in &points {
        bounds.push(Bound::Included(p));
        bounds.push(Bound::Excluded(p));
    }
    for lo in &bounds {
        for hi in &bounds {
            let expected: Vec<_> = model
                .iter()
                .filter(|(k, _)| rumdb::testing::in_bounds(k, *lo, *hi))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let fwd = collect(db.scan(*lo, *hi).unwrap());
            assert_eq!(fwd, expected, "forward {lo:?}..{hi:?}");
            let mut rev = collect(db.scan(*lo, *hi).unwrap().rev());
            rev.reverse();
            assert_eq!(rev, expected, "reverse {lo:?}..{hi:?}");
        }
    }
}

pub fn iterators_meet_in_the_middle(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for i in 0..9u32 {
        db.put(key(i), b"v").unwrap();
    }
    for front_first in [true, false] {
        let mut it = db.range(..).unwrap();
        let mut seen = Vec::new();
        let mut turn = front_first;
        loop {
            let next = if turn { it.next() } else { it.next_back() };
            match next {
                Some(kv) => seen.push(kv.unwrap().0),
                None => break,
            }
            turn = !turn;
        }
        seen.sort();
        let expected: Vec<_> = (0..9).map(key).collect();
        assert_eq!(seen, expected, "every key once, none twice");
        assert!(it.next().is_none() && it.next_back().is_none());
    }
}

pub fn scans_and_snapshots_read_their_moment(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for i in 0..100u32 {
        db.put(key(i), b"old").unwrap();
    }
    let snap = db.snapshot().unwrap();
    let mut it = db.range(..).unwrap();
    let first = it.next().unwrap().unwrap();
    for i in 0..100u32 {
        if i % 2 == 0 {
            db.delete(key(i)).unwrap();
        } else {
            db.put(key(i), b"new").unwrap();
        }
    }
    db.put(b"zzz-after", b"new").unwrap();
    let rest = collect(it);
    assert_eq!(first.0, key(0));
    assert_eq!(
        rest.len(),
        99,
        "the scan reads the state when it was created"
    );
    assert!(rest.iter().all(|(_, v)| v == b"old"));
    assert_eq!(snap.get(key(0)).unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(snap.get(b"zzz-after").unwrap(), None);
    let snap_all = collect(snap.range(..).unwrap());
    assert_eq!(snap_all.len(), 100);
    assert!(snap_all.iter().all(|(_, v)| v == b"old"));
    assert_eq!(db.get(key(0)).unwrap(), None);
    assert_eq!(collect(db.range(..).unwrap()).len(), 51);
    drop(snap);
}

pub fn empty_keys_and_values_and_large_values(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    db.put(b"", b"empty key").unwrap();
    db.put(b"empty value", b"").unwrap();
    assert_eq!(db.get(b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(db.get(b"empty value").unwrap().as_deref(), Some(&b""[..]));
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    db.put(b"big", &big).unwrap();
    assert_eq!(db.get(b"big").unwrap().as_deref(), Some(&big[..]));
    let all = collect(db.range(..).unwrap());
    assert_eq!(all[0].0, b"");
    db.close().unwrap();
    let db = open(dir.path()).unwrap();
    assert_eq!(db.get(b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(db.get(b"big").unwrap().as_deref(), Some(&big[..]));
}

pub fn every_limit_is_invalid_argument(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    let limits = db.limits();
    // Both engines accept the same: 64 KiB keys (the B-tree keeps long keys in overflow chains), 64 MiB
    // values, 256 MiB batches.
    assert_eq!(
        limits,
        rumdb::Limits {
            max_key_len: 64 << 10,
            max_value_len: 64 << 20,
            max_batch_len: 256 << 20,
        }
    );
    let long_key = vec![b'k'; limits.max_key_len + 1];
    assert!(matches!(
        db.put(&long_key, b"v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.delete(&long_key),
        Err(Error::InvalidArgument(_))
    ));
    let max_key = vec![b'k'; limits.max_key_len];
    db.put(&max_key, b"fits").unwrap();
    // Another key of the limit's length differing only in its last byte.
    let mut max_key2 = max_key.clone();
    *max_key2.last_mut().unwrap() = b'j';
    db.put(&max_key2, b"also").unwrap();
    assert_eq!(db.get(&max_key2).unwrap().as_deref(), Some(&b"also"[..]));
    assert_eq!(db.get(&max_key[1..]).unwrap(), None);
    let long_value = vec![0u8; limits.max_value_len + 1];
    assert!(matches!(
        db.put(b"v", &long_value),
        Err(Error::InvalidArgument(_))
    ));
    let mut big = WriteBatch::new();
    let chunk = vec![1u8; limits.max_value_len];
    while big.encoded_len() <= limits.max_batch_len {
        big.put(b"chunk", &chunk);
    }
    assert!(matches!(
        db.write(&big, WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    // A batch with one bad entry writes nothing.
    let mut mixed = WriteBatch::new();
    mixed.put(b"good", b"1").put(&long_key, b"2");
    assert!(matches!(
        db.write(&mixed, WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(db.get(b"good").unwrap(), None);
    assert_eq!(db.get(b"v").unwrap(), None);
    assert_eq!(db.get(&max_key).unwrap().as_deref(), Some(&b"fits"[..]));
}

pub fn reopen_keeps_data_under_every_durability(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for (i, d) in [Durability::Sync, Durability::Flush, Durability::Buffered]
        .iter()
        .enumerate()
    {
        let mut b = WriteBatch::new();
        for j in 0..50u32 {
            b.put(key(i as u32 * 100 + j), [i as u8; 40]);
        }
        db.write(&b, WriteOptions::new(*d)).unwrap();
    }
    db.delete(key(0)).unwrap();
    db.close().unwrap();
    let db = open(dir.path()).unwrap();
    assert_eq!(collect(db.range(..).unwrap()).len(), 149);
    assert_eq!(db.get(key(0)).unwrap(), None);
    assert_eq!(db.get(key(201)).unwrap().as_deref(), Some(&[2u8; 40][..]));
    // Dropping without close is a close that cannot report errors.
    db.put(b"after-reopen", b"x").unwrap();
    drop(db);
    let db = open(dir.path()).unwrap();
    assert_eq!(db.get(b"after-reopen").unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(collect(db.range(..).unwrap()).len(), 150);
    db.verify().unwrap();
}

pub fn second_open_is_locked(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    db.put(b"k", b"v").unwrap();
    match open(dir.path()) {
        Err(e @ Error::Locked(_)) => {
            let message = e.to_string();
            assert!(
                message.contains(&dir.path().display().to_string())
                    && message.contains("already open"),
                "{message}"
            );
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, the open succeeded"),
    }
    assert_eq!(
        db.get(b"k").unwrap().as_deref(),
        Some(&b"v"[..]),
        "the failed open touched nothing"
    );
    drop(db);
    let db = open(dir.path()).unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

pub fn wrong_engine_kind_is_refused(open: Factory) {
    let probe = tempfile::tempdir().unwrap();
    let kind = open(probe.path()).unwrap().kind();
    let other = if kind == EngineKind::Lsm {
        EngineKind::BTree
    } else {
        EngineKind::Lsm
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::os(dir.path(), false).unwrap();
    let id = Identity {
        kind: other,
        format_version: 1,
        page_size: 0,
    };
    finish_create(&storage, &id).unwrap();
    match open(dir.path()) {
        Err(Error::WrongEngine { expected, found }) => {
            assert_eq!((expected, found), (kind, other));
        }
        Err(e) => panic!("expected WrongEngine, got {e}"),
        Ok(_) => panic!("expected WrongEngine, the open succeeded"),
    }
    assert_eq!(
        storage.list().unwrap(),
        vec!["IDENTITY".to_string(), "LOCK".to_string()]
    );
}

pub fn files_without_identity_are_not_overwritten(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("000001.log"), b"not ours").unwrap();
    let err = open(dir.path()).err().expect("open must fail");
    assert!(err.is_corruption(), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("000001.log")).unwrap(),
        b"not ours"
    );
}

pub fn foreign_files_are_not_a_database(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
    match open(dir.path()) {
        Err(Error::NotADatabase {
            dir: d,
            example_file,
        }) => {
            assert_eq!(example_file, "notes.txt");
            assert_eq!(d, dir.path().display().to_string());
        }
        Err(e) => panic!("expected NotADatabase, got {e}"),
        Ok(_) => panic!("expected NotADatabase, the open succeeded"),
    }
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"not ours"
    );
}

/// `compact` (LSM: into one level; B-tree: shrinking the data file) keeps the data and the handle as
/// they were.
pub fn compact_keeps_the_data(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for i in 0..200 {
        db.put(key(i), b"value").unwrap();
    }
    db.delete(key(7)).unwrap();
    db.compact().unwrap();
    assert_eq!(collect(db.range(..).unwrap()).len(), 199);
    assert_eq!(db.get(key(8)).unwrap().as_deref(), Some(&b"value"[..]));
    db.put(b"after", b"compact").unwrap();
    db.close().unwrap();
}

pub fn readers_run_beside_a_writer(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db: std::sync::Arc<dyn Engine> = std::sync::Arc::from(open(dir.path()).unwrap());
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..2000u32 {
                db.put(key(i), i.to_le_bytes()).unwrap();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                let mut last = 0;
                while last < 2000 {
                    let n = collect(db.range(..).unwrap()).len();
                    assert!(n >= last, "a later scan saw fewer keys");
                    last = n;
                    if let Some(v) = db.get(key(0)).unwrap() {
                        assert_eq!(v, &0u32.to_le_bytes()[..]);
                    }
                }
            });
        }
    });
    assert_eq!(collect(db.range(..).unwrap()).len(), 2000);
}

/// The conveniences, each through `&dyn Engine` and `Box<dyn Engine>`: prefix (0xFF edges and the empty
/// prefix), contains_key, first/last, keys-only both ways (over values long enough for B-tree overflow
/// chains), multi_get in the caller's order with duplicates and misses (object-safe and generic),
/// approximate_len.
pub fn conveniences_through_dyn_engine(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let boxed: Box<dyn Engine> = open(dir.path()).unwrap();
    let db: &dyn Engine = &*boxed;
    assert_eq!(db.first().unwrap(), None);
    assert_eq!(db.last().unwrap(), None);
    assert_eq!(boxed.first().unwrap(), None);
    assert_eq!(db.prefix("").unwrap().count(), 0);
    assert_eq!(db.multi_get([&b"x"[..]]).unwrap(), vec![None]);
    assert_eq!(db.multi_get_bytes(&[&b"x"[..]]).unwrap(), vec![None]);
    assert_eq!(db.approximate_len().unwrap(), 0);
    let big = vec![7u8; 3000];
    let keys: Vec<&[u8]> = vec![
        b"",
        b"a",
        b"ab",
        b"ab\x00",
        b"ab\xff",
        b"ab\xff\xff",
        b"ac",
        b"b",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\x01",
    ];
    for (i, k) in keys.iter().enumerate() {
        let v = if i % 3 == 0 {
            big.clone()
        } else {
            vec![i as u8]
        };
        db.put(k, &v).unwrap();
    }
    let value = |k: &[u8]| -> Vec<u8> {
        let i = keys.iter().position(|x| *x == k).unwrap();
        if i % 3 == 0 {
            big.clone()
        } else {
            vec![i as u8]
        }
    };
    let prefixed = |p: &[u8]| -> Vec<Vec<u8>> {
        keys.iter()
            .filter(|k| k.starts_with(p))
            .map(|k| k.to_vec())
            .collect()
    };
    for p in [
        &b""[..],
        b"a",
        b"ab",
        b"ab\xff",
        b"ab\xff\xff",
        b"b",
        b"\xff",
        b"\xff\xff",
        b"zz",
        b"ab\x00",
    ] {
        let want = prefixed(p);
        let got: Vec<Vec<u8>> = collect(db.prefix(p).unwrap())
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(v, value(&k));
                k
            })
            .collect();
        assert_eq!(got, want, "prefix {p:?}");
        let mut back: Vec<Vec<u8>> = boxed
            .prefix(p)
            .unwrap()
            .rev()
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        back.reverse();
        assert_eq!(back, want, "prefix {p:?} backwards");
    }
    let owned: Vec<u8> = b"ab".to_vec();
    assert_eq!(db.prefix(&owned).unwrap().count(), 4);
    assert!(db.contains_key("ab").unwrap());
    assert!(db.contains_key(b"").unwrap());
    assert!(!boxed.contains_key(b"ab\x01").unwrap());
    assert_eq!(db.first().unwrap(), Some(("".into(), big.clone().into())));
    assert_eq!(
        boxed.last().unwrap(),
        Some((b"\xff\xff\x01"[..].into(), value(b"\xff\xff\x01").into()))
    );
    let all: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    let ks: Vec<Vec<u8>> = db.keys(..).unwrap().map(|r| r.unwrap().to_vec()).collect();
    assert_eq!(ks, all);
    let mut ks: Vec<Vec<u8>> = boxed
        .keys(..)
        .unwrap()
        .rev()
        .map(|r| r.unwrap().to_vec())
        .collect();
    ks.reverse();
    assert_eq!(ks, all);
    let ks: Vec<Vec<u8>> = db
        .scan(Bound::Excluded(&b"a"[..]), Bound::Included(&b"b"[..]))
        .unwrap()
        .keys()
        .map(|r| r.unwrap().to_vec())
        .collect();
    assert_eq!(
        ks,
        prefixed(b"a")
            .into_iter()
            .skip(1)
            .chain([b"b".to_vec()])
            .collect::<Vec<_>>()
    );
    // multi_get: the caller's order, duplicates and misses.
    let ask: Vec<&[u8]> = vec![b"b", b"missing", b"", b"b", b"ab\xff", b"\x00", b"a"];
    let want: Vec<Option<Vec<u8>>> = ask
        .iter()
        .map(|k| keys.contains(k).then(|| value(k)))
        .collect();
    assert_eq!(owned_values(db.multi_get(&ask).unwrap()), want);
    assert_eq!(owned_values(db.multi_get_bytes(&ask).unwrap()), want);
    assert_eq!(owned_values(boxed.multi_get(&ask).unwrap()), want);
    assert_eq!(
        owned_values(db.multi_get(ask.iter().map(|k| k.to_vec())).unwrap()),
        want
    );
    assert_eq!(
        owned_values(boxed.multi_get(["b", "zz"]).unwrap()),
        vec![Some(value(b"b")), None]
    );
    assert_eq!(db.multi_get_bytes(&[]).unwrap(), Vec::new());
    assert_eq!(db.multi_get(Vec::<&str>::new()).unwrap(), Vec::new());
    let n = db.approximate_len().unwrap();
    assert!(n >= 1 && n <= 4 * keys.len() as u64, "approximate_len {n}");
    assert!(boxed.approximate_len().unwrap() >= 1);

    // Snapshots: every convenience reads the snapshot's moment.
    let snap = db.snapshot().unwrap();
    db.delete(b"").unwrap();
    db.delete(b"\xff\xff\x01").unwrap();
    db.put(b"ab\x01", b"new").unwrap();
    db.put(b"b", b"changed").unwrap();
    assert_eq!(snap.first().unwrap(), Some(("".into(), big.clone().into())));
    assert_eq!(snap.last().unwrap().unwrap().0, b"\xff\xff\x01".to_vec());
    assert_eq!(db.first().unwrap().unwrap().0, "a");
    assert_eq!(db.last().unwrap().unwrap().0, b"\xff\xff".to_vec());
    assert!(!snap.contains_key("ab\x01").unwrap());
    assert!(db.contains_key("ab\x01").unwrap());
    assert!(snap.contains_key("").unwrap());
    assert_eq!(
        snap.prefix("ab")
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect::<Vec<_>>(),
        prefixed(b"ab")
    );
    assert_eq!(db.prefix("ab").unwrap().count(), 5);
    assert_eq!(snap.keys(..).unwrap().count(), keys.len());
    assert_eq!(owned_values(snap.multi_get(&ask).unwrap()), want);
    assert_eq!(
        db.multi_get([&b"b"[..], b"", b"ab\x01"]).unwrap(),
        vec![Some("changed".into()), None, Some("new".into())]
    );
    drop(snap);
    // The estimate survives a reopen (tables / checkpointed pages).
    boxed.flush().unwrap();
    assert!(boxed.approximate_len().unwrap() >= 1);
    boxed.close().unwrap();
    drop(boxed);
    let again = open(dir.path()).unwrap();
    assert!(again.approximate_len().unwrap() >= 1);
    assert_eq!(again.first().unwrap().unwrap().0, "a");
    again.close().unwrap();
}

/// approximate_len tracks the size of a larger database within a factor (the LSM counts overwrites).
pub fn approximate_len_tracks_size(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for i in 0..2000 {
        db.put(key(i), [i as u8; 20]).unwrap();
    }
    let n = db.approximate_len().unwrap();
    assert!((1000..=4000).contains(&n), "estimate {n} for 2000 keys");
    db.flush().unwrap();
    let n = db.approximate_len().unwrap();
    assert!(
        (1000..=4000).contains(&n),
        "estimate {n} for 2000 keys after flush"
    );
    let many: Vec<Vec<u8>> = (0..2000).rev().step_by(7).map(key).collect();
    let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let got = db.multi_get(&refs).unwrap();
    for (k, v) in many.iter().zip(got) {
        let i: u32 = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
        assert_eq!(v.as_deref(), Some(&[i as u8; 20][..]));
    }
    db.close().unwrap();
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A scan of one read view (the engine or a snapshot).
type ScanFn<'a> = dyn Fn(Bound<&[u8]>, Bound<&[u8]>) -> rumdb::Result<rumdb::Iter> + 'a;

/// Checks one read view (the engine or a snapshot) against `model`: every key's get, a full scan both
/// ways, and bounded scans both ways over and across the deleted region.
fn check_view(
    what: &str,
    model: &Model,
    get: &dyn Fn(&[u8]) -> rumdb::Result<Option<rumdb::Bytes>>,
    scan: &ScanFn<'_>,
) {
    for i in 0..320 {
        let k = key(i);
        assert_eq!(
            get(&k).unwrap().map(|v| v.to_vec()),
            model.get(&k).cloned(),
            "{what}: get {i}"
        );
    }
    for (lo, hi) in [
        (0, 320),
        (5, 12),
        (9, 11),
        (100, 250),
        (150, 160),
        (199, 201),
    ] {
        let (lo, hi) = (key(lo), key(hi));
        let expected: Vec<_> = model
            .range(lo.clone()..hi.clone())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let bounds = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        assert_eq!(
            collect(scan(bounds.0, bounds.1).unwrap()),
            expected,
            "{what}: forward scan"
        );
        let mut bwd = collect(scan(bounds.0, bounds.1).unwrap().rev());
        bwd.reverse();
        assert_eq!(bwd, expected, "{what}: reverse scan");
    }
}

fn check_engine(what: &str, db: &dyn Engine, model: &Model) {
    check_view(what, model, &|k| db.get(k), &|l, u| db.scan(l, u));
}

fn check_snapshot(what: &str, snap: &rumdb::Snapshot, model: &Model) {
    check_view(what, model, &|k| snap.get(k), &|l, u| snap.scan(l, u));
}

/// `WriteBatch::delete_range`: atomic with the rest of its batch (later entries win), visible to gets
/// and scans both ways, snapshots before it still see what it deleted, a later put inside the range is
/// visible, and all of that holds across flush, compaction and reopen. An empty range deletes nothing,
/// an inverted one is refused and writes nothing of its batch, and both bounds are held to the key limit.
pub fn range_deletes_at_every_snapshot(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    let mut model = Model::new();
    let mut b = WriteBatch::new();
    for i in 0..300 {
        // Every 37th value is long (overflow pages in the B-tree).
        let len = if i % 37 == 0 { 5000 } else { 30 };
        let v = vec![(i % 251) as u8; len];
        b.put(key(i), &v);
        model.insert(key(i), v);
    }
    db.write(&b, WriteOptions::default()).unwrap();
    let before = (db.snapshot().unwrap(), model.clone());

    // One batch: a put before the range delete (removed by it), the range delete, a put inside the range
    // after it (stays), and a delete past it.
    let mut b = WriteBatch::new();
    b.put(key(20), b"removed by the range")
        .delete_range(key(10), key(200))
        .put(key(50), b"after the range")
        .delete(key(250));
    db.write(&b, WriteOptions::default()).unwrap();
    model.retain(|k, _| *k < key(10) || *k >= key(200));
    model.insert(key(50), b"after the range".to_vec());
    model.remove(&key(250));
    check_engine("after the range delete", &*db, &model);
    let after = (db.snapshot().unwrap(), model.clone());

    // Newer puts inside the range are visible; an empty range deletes nothing.
    db.put(key(100), b"newer").unwrap();
    model.insert(key(100), b"newer".to_vec());
    let mut b = WriteBatch::new();
    b.delete_range(key(5), key(5));
    db.write(&b, WriteOptions::default()).unwrap();
    let newer = (db.snapshot().unwrap(), model.clone());
    check_engine("after newer puts", &*db, &model);

    // An inverted range is refused, with the rest of its batch; so is a bound over the key limit.
    let mut b = WriteBatch::new();
    b.put(key(7), b"never").delete_range(key(9), key(8));
    assert!(matches!(
        db.write(&b, WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    let long_key = vec![b'k'; db.limits().max_key_len + 1];
    let mut b = WriteBatch::new();
    b.delete_range(key(0), &long_key);
    assert!(matches!(
        db.write(&b, WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    check_engine("after refused batches", &*db, &model);

    for stage in ["flush", "compact", "second range", "reopen"] {
        match stage {
            "flush" => db.flush().unwrap(),
            "compact" => match db.compact() {
                Ok(()) | Err(Error::Unsupported { .. }) => {}
                Err(e) => panic!("compact: {e}"),
            },
            "second range" => {
                // A range over keys already deleted, tables and memtable alike, then compaction again.
                let mut b = WriteBatch::new();
                b.delete_range(key(150), key(280));
                db.write(&b, WriteOptions::default()).unwrap();
                model.retain(|k, _| *k < key(150) || *k >= key(280));
                db.flush().unwrap();
                let _ = db.compact();
            }
            _ => {}
        }
        if stage == "reopen" {
            break;
        }
        check_engine(stage, &*db, &model);
        check_snapshot(&format!("{stage}: snapshot before"), &before.0, &before.1);
        check_snapshot(&format!("{stage}: snapshot after"), &after.0, &after.1);
        check_snapshot(&format!("{stage}: snapshot newer"), &newer.0, &newer.1);
    }
    drop((before, after, newer));
    db.verify().unwrap();
    db.close().unwrap();
    let db = open(dir.path()).unwrap();
    check_engine("after reopen", &*db, &model);
    // Everything, with unbounded-like bounds.
    let mut b = WriteBatch::new();
    b.delete_range(b"", [0xffu8; 4]);
    db.write(&b, WriteOptions::sync()).unwrap();
    assert_eq!(collect(db.range(..).unwrap()), vec![]);
    let _ = db.compact();
    assert_eq!(collect(db.range(..).unwrap().rev()), vec![]);
    db.verify().unwrap();
    db.close().unwrap();
}

/// A backup holds the state at its sequence, opens on its own (its own `LOCK`, its own `IDENTITY`),
/// passes `verify`, and shares nothing with the source afterwards; a non-empty target is refused.
pub fn backup_holds_the_state_at_its_sequence(open: Factory) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db")).unwrap();
    let mut ops = 0u64;
    for i in 0..300u32 {
        db.put(key(i), vec![i as u8; (i % 7) as usize * 40])
            .unwrap();
        ops += 1;
        if i % 3 == 0 {
            db.delete(key(i / 2)).unwrap();
            ops += 1;
        }
        if i == 150 {
            db.flush().unwrap(); // some data in the main files, some only in the WAL
        }
    }
    let expected = collect(db.range(..).unwrap());
    let copy_dir = dir.path().join("copy");
    let info = db.backup(&copy_dir).unwrap();
    assert_eq!(info.sequence, ops, "one sequence per operation");
    db.put(b"after", b"backup").unwrap();
    db.delete(key(299)).unwrap();
    for target in [&copy_dir, &dir.path().join("db")] {
        let err = db.backup(target).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    let copy = open(&copy_dir).unwrap();
    assert!(
        matches!(open(&copy_dir), Err(Error::Locked(_))),
        "its own LOCK"
    );
    assert_eq!(collect(copy.range(..).unwrap()), expected);
    assert_eq!(collect(copy.range(..).unwrap().rev()).len(), expected.len());
    assert_eq!(copy.get(b"after").unwrap(), None);
    copy.verify().unwrap();
    copy.put(b"only", b"in the copy").unwrap();
    assert_eq!(db.get(b"only").unwrap(), None);
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"backup"[..]));
    copy.close().unwrap();
    db.close().unwrap();
    let copy = open(&copy_dir).unwrap();
    assert_eq!(
        copy.get(key(299)).unwrap(),
        expected
            .iter()
            .find(|(k, _)| *k == key(299))
            .map(|(_, v)| rumdb::Bytes::from(v.clone()))
    );
    assert_eq!(
        copy.get(b"only").unwrap().as_deref(),
        Some(&b"in the copy"[..])
    );
    copy.verify().unwrap();
}

/// A backup taken while two threads write holds, per thread, a prefix of what it wrote: at least every
/// write acknowledged before the call, nothing written after it returned, and exactly `sequence` keys
/// (each put takes one sequence, and every key is new: the copy is the history through `sequence`).
pub fn backup_under_concurrent_writers_holds_a_prefix(open: Factory) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db: std::sync::Arc<dyn Engine> =
        std::sync::Arc::from(open(&dir.path().join("db")).unwrap());
    let done = [AtomicU32::new(0), AtomicU32::new(0)];
    let stop = AtomicBool::new(false);
    let tkey = |t: usize, i: u32| format!("t{t}-{i:07}").into_bytes();
    let copy_dir = dir.path().join("copy");
    let (before, after, info) = std::thread::scope(|s| {
        for (t, count) in done.iter().enumerate() {
            let (db, stop, tkey) = (&db, &stop, &tkey);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) || i < 500 {
                    db.put(tkey(t, i), [7u8; 100]).unwrap();
                    i += 1;
                    count.store(i, Ordering::Release);
                }
            });
        }
        while done.iter().any(|c| c.load(Ordering::Acquire) < 300) {
            std::thread::yield_now();
        }
        let before: Vec<u32> = done.iter().map(|c| c.load(Ordering::Acquire)).collect();
        let info = db.backup(&copy_dir).unwrap();
        let after: Vec<u32> = done.iter().map(|c| c.load(Ordering::Acquire)).collect();
        stop.store(true, Ordering::Release);
        (before, after, info)
    });
    let copy = open(&copy_dir).unwrap();
    copy.verify().unwrap();
    let keys: Vec<Vec<u8>> = collect(copy.range(..).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys.len() as u64,
        info.sequence,
        "the copy is the history through its sequence"
    );
    for t in 0..2 {
        let held: Vec<&Vec<u8>> = keys
            .iter()
            .filter(|k| k.starts_with(format!("t{t}-").as_bytes()))
            .collect();
        let n = held.len() as u32;
        assert!(
            (before[t]..=after[t] + 1).contains(&n),
            "thread {t}: the copy holds {n} keys; {} were acknowledged before the call, {} when it returned",
            before[t],
            after[t]
        );
        for (i, k) in held.iter().enumerate() {
            assert_eq!(**k, tkey(t, i as u32), "thread {t}: not a prefix");
        }
    }
}

macro_rules! contract_suite {
    ($name:ident, $factory:expr) => {
        mod $name {
            use super::*;
            const OPEN: Factory = $factory;
            #[test]
            fn put_get_delete_overwrite() {
                super::put_get_delete_overwrite(OPEN)
            }
            #[test]
            fn batches_are_atomic_and_later_entries_win() {
                super::batches_are_atomic_and_later_entries_win(OPEN)
            }
            #[test]
            fn every_bound_both_ways() {
                super::every_bound_both_ways(OPEN)
            }
            #[test]
            fn iterators_meet_in_the_middle() {
                super::iterators_meet_in_the_middle(OPEN)
            }
            #[test]
            fn scans_and_snapshots_read_their_moment() {
                super::scans_and_snapshots_read_their_moment(OPEN)
            }
            #[test]
            fn empty_keys_and_values_and_large_values() {
                super::empty_keys_and_values_and_large_values(OPEN)
            }
            #[test]
            fn every_limit_is_invalid_argument() {
                super::every_limit_is_invalid_argument(OPEN)
            }
            #[test]
            fn reopen_keeps_data_under_every_durability() {
                super::reopen_keeps_data_under_every_durability(OPEN)
            }
            #[test]
            fn second_open_is_locked() {
                super::second_open_is_locked(OPEN)
            }
            #[test]
            fn wrong_engine_kind_is_refused() {
                super::wrong_engine_kind_is_refused(OPEN)
            }
            #[test]
            fn files_without_identity_are_not_overwritten() {
                super::files_without_identity_are_not_overwritten(OPEN)
            }
            #[test]
            fn foreign_files_are_not_a_database() {
                super::foreign_files_are_not_a_database(OPEN)
            }
            #[test]
            fn compact_keeps_the_data() {
                super::compact_keeps_the_data(OPEN)
            }
            #[test]
            fn readers_run_beside_a_writer() {
                super::readers_run_beside_a_writer(OPEN)
            }
            #[test]
            fn conveniences_through_dyn_engine() {
                super::conveniences_through_dyn_engine(OPEN)
            }
            #[test]
            fn approximate_len_tracks_size() {
                super::approximate_len_tracks_size(OPEN)
            }
            #[test]
            fn range_deletes_at_every_snapshot() {
                super::range_deletes_at_every_snapshot(OPEN)
            }
            #[test]
            fn backup_holds_the_state_at_its_sequence() {
                super::backup_holds_the_state_at_its_sequence(OPEN)
            }
            #[test]
            fn backup_under_concurrent_writers_holds_a_prefix() {
                super::backup_under_concurrent_writers_holds_a_prefix(OPEN)
            }
        }
    };
}

contract_suite!(model, |dir| {
    Ok(Box::new(rumdb::testing::ModelEngine::open(
        dir,
        Default::default(),
    )?))
});

contract_suite!(lsm_default, |dir| {
    Ok(Box::new(rumdb::LsmEngine::open(
        dir,
        rumdb::LsmOptions::default(),
    )?))
});

contract_suite!(lsm_tiny, |dir| {
    Ok(Box::new(rumdb::LsmEngine::open(
        dir,
        rumdb::LsmOptions::tiny(),
    )?))
});

contract_suite!(lsm_tiny_pread, |dir| {
    let options = rumdb::LsmOptions {
        read_path: rumdb::ReadPath::Pread,
        ..rumdb::LsmOptions::tiny()
    };
    Ok(Box::new(rumdb::LsmEngine::open(dir, options)?))
});

contract_suite!(btree, |dir| {
    Ok(Box::new(rumdb::BTreeEngine::open(
        dir,
        rumdb::BTreeOptions::default(),
    )?))
});

// 512 B pages and a pool of 16 pages: splits, merges, overflow chains, free-list reuse and eviction all
// happen within the suite's small workloads.
contract_suite!(btree_tiny, |dir| {
    Ok(Box::new(rumdb::BTreeEngine::open(
        dir,
        rumdb::BTreeOptions::tiny(),
    )?))
});

// The tiny geometry with background checkpoints: the thread checkpoints at 6 dirty pages or 4 KiB of WAL,
// so checkpoints run beside the suite's writes and reads, and pool misses hit frozen copies.
contract_suite!(btree_threads, |dir| {
    Ok(Box::new(rumdb::BTreeEngine::open(
        dir,
        rumdb::BTreeOptions {
            background: rumdb::Background::Threads,
            checkpoint_wal_bytes: 4 << 10,
            ..rumdb::BTreeOptions::tiny()
        },
    )?))
});
