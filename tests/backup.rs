//! Backups (`Engine::backup`) beyond the contract suite, both engines:
//!
//! - a crash of the target disk at every storage operation of a backup, under every crash mode, leaves a
//!   target that every open refuses or one that holds the whole copy, never a copy that opens with part
//!   of the data; the source is untouched and keeps every write;
//! - a crash of the source disk at every storage operation the backup makes there (the LSM's seal, the
//!   B-tree's checkpoint) recovers the source with every acknowledged write;
//! - a byte flipped in a copied table or page is found: the copy refuses to open or fails `verify()`,
//!   and never returns other data;
//! - a read-only handle backs up what it reads, WAL included;
//! - on real files the LSM's tables are hard-linked (and outlive the source's compaction), the copy opens
//!   read-only, and the B-tree copies its data file.

use std::collections::BTreeMap;
use std::sync::Arc;

use rumdb::testing::engines::{BTreeTiny, LsmTiny};
use rumdb::testing::{CrashMode, FaultPlan, SimBackend, Storage};
use rumdb::{
    BTreeEngine, BTreeOptions, BackupInfo, CreateOptions, Durability, Engine, EngineExt, Error,
    LsmEngine, LsmOptions, WriteBatch, WriteOptions,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Lsm,
    BTree,
}

const KINDS: [Kind; 2] = [Kind::Lsm, Kind::BTree];

/// A handle of either engine: `backup_with` (onto the simulated disk) is each engine's own.
enum Db {
    Lsm(LsmEngine),
    BTree(BTreeEngine),
}

impl Db {
    fn engine(&self) -> &dyn Engine {
        match self {
            Db::Lsm(db) => db,
            Db::BTree(db) => db,
        }
    }

    fn backup_with(&self, target: Storage) -> rumdb::Result<BackupInfo> {
        match self {
            Db::Lsm(db) => db.backup_with(target),
            Db::BTree(db) => db.backup_with(target),
        }
    }
}

const NO_CREATE: CreateOptions = CreateOptions {
    create_if_missing: false,
    error_if_exists: false,
};

fn open(kind: Kind, sim: &SimBackend, read_only: bool) -> rumdb::Result<Db> {
    let storage = Storage::new(Arc::new(sim.clone()));
    Ok(match kind {
        Kind::Lsm => Db::Lsm(LsmEngine::open_with(
            storage,
            LsmOptions {
                read_only,
                create: NO_CREATE,
                ..LsmTiny::options()
            },
        )?),
        // Checkpoints only on flush: the WAL holds every batch after the last one.
        Kind::BTree => Db::BTree(BTreeEngine::open_with(
            storage,
            BTreeOptions {
                read_only,
                create: NO_CREATE,
                // A read-only open applies the WAL in the pool: room for all of it.
                pool_bytes: if read_only {
                    1 << 20
                } else {
                    BTreeTiny::checkpoint_on_flush_options().pool_bytes
                },
                ..BTreeTiny::checkpoint_on_flush_options()
            },
        )?),
    })
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// `got == want`, naming the first difference (not printing both maps).
#[track_caller]
fn assert_same(got: &State, want: &State, what: &str) {
    if got == want {
        return;
    }
    let diff = want
        .iter()
        .find(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, _)| format!("{} differs or is missing", String::from_utf8_lossy(k)))
        .or_else(|| {
            got.keys()
                .find(|k| !want.contains_key(*k))
                .map(|k| format!("{} is extra", String::from_utf8_lossy(k)))
        });
    panic!(
        "{what}: {} keys, expected {}; {diff:?}",
        got.len(),
        want.len()
    );
}

fn state(db: &dyn Engine) -> State {
    db.range(..)
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// A source on a fresh disk holding tables (or checkpointed pages) and WAL-only writes, every write
/// `Sync`; and its state.
fn source(kind: Kind) -> (SimBackend, Db, State) {
    let sim = SimBackend::new(7);
    {
        let storage = Storage::new(Arc::new(sim.clone()));
        match kind {
            Kind::Lsm => drop(LsmEngine::open_with(storage, LsmTiny::options()).unwrap()),
            Kind::BTree => drop(
                BTreeEngine::open_with(storage, BTreeTiny::checkpoint_on_flush_options()).unwrap(),
            ),
        }
    }
    let db = open(kind, &sim, false).unwrap();
    let e = db.engine();
    for i in 0..120u32 {
        let mut batch = WriteBatch::new();
        batch.put(
            format!("key{i:04}"),
            vec![i as u8; 20 + (i as usize * 37) % 200],
        );
        if i % 5 == 0 {
            batch.delete(format!("key{:04}", i / 3));
        }
        e.write(&batch, WriteOptions::new(Durability::Sync))
            .unwrap();
        if i == 80 {
            e.flush().unwrap();
        }
    }
    let expected = state(e);
    (sim, db, expected)
}

const MODES: [CrashMode; 6] = [
    CrashMode::ProcessKill,
    CrashMode::PowerLossDropAll,
    CrashMode::PowerLossPrefix { torn: false },
    CrashMode::PowerLossPrefix { torn: true },
    CrashMode::PowerLossAny {
        garbage: true,
        zeros: true,
    },
    CrashMode::DirOnly,
];

/// What opening a crashed target gave: refused, or the whole copy (checked).
fn check_target(kind: Kind, target: &SimBackend, expected: &State, what: &str) -> bool {
    match open(kind, target, false) {
        Ok(copy) => {
            assert_same(
                &state(copy.engine()),
                expected,
                &format!("{what}: a copy that opens holds it all"),
            );
            copy.engine().verify().unwrap();
            true
        }
        Err(e) => {
            assert!(
                e.is_corruption() || matches!(e, Error::InvalidArgument(_)),
                "{what}: refused with {e}"
            );
            false
        }
    }
}

#[test]
fn a_crash_at_every_operation_of_a_backup_leaves_no_partial_copy() {
    for kind in KINDS {
        let (_sim, db, expected) = source(kind);
        let target = SimBackend::new(9);
        let info = db
            .backup_with(Storage::new(Arc::new(target.clone())))
            .unwrap();
        let ops = target.mutating_ops();
        assert!(ops > 5, "{kind:?}: {ops} operations");
        assert!(check_target(
            kind,
            &target.crash(CrashMode::PowerLossDropAll),
            &expected,
            "done"
        ));
        let (mut refused, mut opened) = (0, 0);
        for n in 1..=ops {
            let (sim, db, expected) = source(kind);
            let target = SimBackend::new(9);
            target.set_fault_plan(FaultPlan {
                crash_at_op: Some(n),
                ..FaultPlan::default()
            });
            let err = db
                .backup_with(Storage::new(Arc::new(target.clone())))
                .unwrap_err();
            assert!(matches!(err, Error::Io(_)), "{kind:?} op {n}: {err}");
            // The source goes on as before, and keeps every write through a crash of its own.
            assert_same(
                &state(db.engine()),
                &expected,
                &format!("{kind:?} op {n}: source"),
            );
            db.engine()
                .write(
                    WriteBatch::new().put("after", "the failed backup"),
                    WriteOptions::new(Durability::Sync),
                )
                .unwrap();
            for mode in MODES {
                let what = format!("{kind:?}, crash at op {n} of {ops}, {mode:?}");
                if check_target(kind, &target.crash(mode), &expected, &what) {
                    opened += 1;
                } else {
                    refused += 1;
                }
            }
            let reopened = open(kind, &sim.crash(CrashMode::PowerLossDropAll), false).unwrap();
            let mut with_after = expected.clone();
            with_after.insert(b"after".to_vec(), b"the failed backup".to_vec());
            assert_same(
                &state(reopened.engine()),
                &with_after,
                &format!("{kind:?} op {n}: source after a crash"),
            );
        }
        // Only a crash after IDENTITY's rename (the last operations) can leave a copy that opens.
        assert!(
            refused > opened,
            "{kind:?}: {refused} refused, {opened} opened"
        );
        println!(
            "{kind:?}: sequence {}, {ops} operations, {refused} crashed copies refused, {opened} complete",
            info.sequence
        );
    }
}

#[test]
fn a_crash_of_the_source_during_a_backup_keeps_every_write() {
    for kind in KINDS {
        let (sim, db, _) = source(kind);
        let before = sim.mutating_ops();
        db.backup_with(Storage::new(Arc::new(SimBackend::new(9))))
            .unwrap();
        let after = sim.mutating_ops();
        assert!(
            after > before,
            "{kind:?}: the backup seals or checkpoints the source"
        );
        for n in before + 1..=after {
            let (sim, db, expected) = source(kind);
            sim.set_fault_plan(FaultPlan {
                crash_at_op: Some(n),
                ..FaultPlan::default()
            });
            let target = SimBackend::new(9);
            assert!(
                db.backup_with(Storage::new(Arc::new(target.clone())))
                    .is_err()
            );
            assert!(matches!(
                db.engine().put("k", "v"),
                Err(Error::Poisoned { .. })
            ));
            for mode in MODES {
                let what = format!("{kind:?}, source crash at op {n}, {mode:?}");
                let reopened = open(kind, &sim.crash(mode), false).unwrap();
                assert_same(&state(reopened.engine()), &expected, &what);
                reopened.engine().verify().unwrap();
                check_target(kind, &target.crash(mode), &expected, &what);
            }
        }
    }
}

/// Every table (LSM) or page (B-tree) of a copy with one byte flipped: the copy refuses to open, fails
/// `verify()`, or (a B-tree page no header uses: a free page) reads exactly the data it held.
#[test]
fn a_damaged_copy_is_refused() {
    for kind in KINDS {
        let (_sim, db, expected) = source(kind);
        db.engine().flush().unwrap(); // everything in the main files: every byte is checked
        let target = SimBackend::new(9);
        db.backup_with(Storage::new(Arc::new(target.clone())))
            .unwrap();
        // Undamaged, it opens with everything (after a flush: the LSM's copy has no WAL records, its
        // live segment only a LINK naming a segment it does not have).
        let undamaged = target.crash(CrashMode::PowerLossDropAll);
        assert!(check_target(kind, &undamaged, &expected, "undamaged"));
        let files: Vec<(String, u64)> = target
            .file_names()
            .into_iter()
            .filter(|f| f.ends_with(".sst") || f == "data")
            .map(|f| {
                let len = target.read_file(&f).unwrap().len() as u64;
                (f, len)
            })
            .collect();
        let (mut caught, mut harmless) = (0, 0);
        for (file, len) in &files {
            let step = if file == "data" { 512 } else { len / 3 };
            let mut at = if file == "data" {
                2 * 512 + 100
            } else {
                len / 2
            };
            while at < *len {
                let image = target.crash(CrashMode::ProcessKill);
                image.flip_bit(file, at * 8).unwrap();
                let outcome = open(kind, &image, false).and_then(|copy| {
                    copy.engine().verify()?;
                    Ok(state(copy.engine()))
                });
                match outcome {
                    Err(e) => {
                        assert!(e.is_corruption(), "{kind:?} {file}@{at}: {e}");
                        caught += 1;
                    }
                    Ok(s) => {
                        assert_same(
                            &s,
                            &expected,
                            &format!("{kind:?} {file}@{at}: wrong data, not an error"),
                        );
                        assert_eq!(
                            kind,
                            Kind::BTree,
                            "{file}@{at}: a table byte flipped unnoticed"
                        );
                        harmless += 1;
                    }
                }
                at += step;
            }
        }
        assert!(
            caught > 0,
            "{kind:?}: {caught} caught, {harmless} on free pages"
        );
    }
}

#[test]
fn a_read_only_handle_backs_up_its_wal_too() {
    for kind in KINDS {
        let (sim, db, expected) = source(kind);
        let image = sim.crash(CrashMode::ProcessKill); // the WAL holds the writes after the flush
        drop(db);
        let ro = open(kind, &image, true).unwrap();
        let files_before = image.file_names();
        let target = SimBackend::new(9);
        let info = ro
            .backup_with(Storage::new(Arc::new(target.clone())))
            .unwrap();
        assert_eq!(
            image.file_names(),
            files_before,
            "{kind:?}: the source is not touched"
        );
        assert!(info.files_copied >= 2, "{kind:?}: {info:?}");
        let copy = open(kind, &target.crash(CrashMode::PowerLossDropAll), false).unwrap();
        assert_same(&state(copy.engine()), &expected, &format!("{kind:?}"));
        copy.engine().verify().unwrap();
    }
}

#[test]
fn on_real_files_tables_are_linked_and_the_copy_opens_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let lsm = LsmEngine::open(&dir.path().join("lsm"), LsmOptions::tiny()).unwrap();
    let btree = BTreeEngine::open(&dir.path().join("btree"), BTreeOptions::tiny()).unwrap();
    for db in [&lsm as &dyn Engine, &btree] {
        for i in 0..2000u32 {
            db.put(format!("key{i:05}"), [i as u8; 50]).unwrap();
        }
        db.flush().unwrap();
        for i in 0..100u32 {
            db.put(format!("key{i:05}"), "newer").unwrap(); // in the WAL only (LSM)
        }
    }
    let lsm_info = lsm.backup(&dir.path().join("lsm-copy")).unwrap();
    assert!(
        lsm_info.files_linked > 0 && lsm_info.bytes_linked > 0,
        "{lsm_info:?}"
    );
    assert!(
        lsm_info.files_copied >= 1,
        "the unflushed WAL is copied: {lsm_info:?}"
    );
    let btree_info = btree.backup(&dir.path().join("btree-copy")).unwrap();
    assert_eq!(btree_info.files_linked, 0, "{btree_info:?}");
    assert!(btree_info.bytes_copied >= 2000 * 50, "{btree_info:?}");
    // The pages the overwrites relocated are free in the checkpoint copied: holes, not copied.
    let data_len = std::fs::metadata(dir.path().join("btree-copy").join("data"))
        .unwrap()
        .len();
    assert!(
        btree_info.bytes_copied < data_len,
        "{btree_info:?}, data file {data_len}"
    );
    assert_eq!(lsm_info.sequence, 2100);
    assert_eq!(btree_info.sequence, 2100);
    let expected = state(&lsm);
    assert_eq!(expected.len(), 2000);
    // The source replaces every table; the copy keeps its links.
    lsm.compact().unwrap();
    lsm.put("key00000", "later").unwrap();
    let copy = LsmEngine::open(
        &dir.path().join("lsm-copy"),
        LsmOptions {
            read_only: true,
            ..LsmOptions::tiny()
        },
    )
    .unwrap();
    assert_same(&state(&copy), &expected, "copy");
    copy.verify().unwrap();
    let copy = BTreeEngine::open(
        &dir.path().join("btree-copy"),
        BTreeOptions {
            read_only: true,
            ..BTreeOptions::tiny()
        },
    )
    .unwrap();
    assert_same(&state(&copy), &expected, "copy");
    copy.verify().unwrap();
    assert!(lsm.stats().io.read.backup > 0);
    assert!(btree.stats().io.read.backup >= btree_info.bytes_copied);
}
