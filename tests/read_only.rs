//! Read-only open of both engines: shared locks, no change to any file, every write refused, recovery of
//! a crashed writer's unflushed writes in memory, and a directory without write permission.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rumdb::testing::Storage;
use rumdb::testing::{CrashMode, SimBackend};
use rumdb::{
    BTreeEngine, BTreeOptions, Durability, Engine, EngineExt, Error, LsmEngine, LsmOptions,
    WriteBatch, WriteOptions,
};

#[derive(Clone, Copy, Debug)]
enum Kind {
    LsmDefault,
    LsmTiny,
    BTreeDefault,
    BTreeTiny,
}

const KINDS: [Kind; 4] = [
    Kind::LsmDefault,
    Kind::LsmTiny,
    Kind::BTreeDefault,
    Kind::BTreeTiny,
];

/// An entry as read, as owned vectors (what the models hold).
fn owned(item: rumdb::Result<rumdb::KvPair>) -> (Vec<u8>, Vec<u8>) {
    let (k, v) = item.unwrap();
    (k.to_vec(), v.to_vec())
}

fn lsm_options(kind: Kind, read_only: bool) -> LsmOptions {
    let base = match kind {
        Kind::LsmTiny => LsmOptions::tiny(),
        _ => LsmOptions::default(),
    };
    LsmOptions { read_only, ..base }
}

fn btree_options(kind: Kind, read_only: bool) -> BTreeOptions {
    let base = match kind {
        Kind::BTreeTiny => BTreeOptions::tiny(),
        _ => BTreeOptions::default(),
    };
    BTreeOptions { read_only, ..base }
}

fn open(kind: Kind, dir: &Path, read_only: bool) -> rumdb::Result<Box<dyn Engine>> {
    Ok(match kind {
        Kind::LsmDefault | Kind::LsmTiny => {
            Box::new(LsmEngine::open(dir, lsm_options(kind, read_only))?)
        }
        Kind::BTreeDefault | Kind::BTreeTiny => {
            Box::new(BTreeEngine::open(dir, btree_options(kind, read_only))?)
        }
    })
}

fn open_sim(kind: Kind, sim: &SimBackend, read_only: bool) -> rumdb::Result<Box<dyn Engine>> {
    let storage = Storage::new(Arc::new(sim.clone()));
    Ok(match kind {
        Kind::LsmDefault | Kind::LsmTiny => {
            Box::new(LsmEngine::open_with(storage, lsm_options(kind, read_only))?)
        }
        Kind::BTreeDefault | Kind::BTreeTiny => Box::new(BTreeEngine::open_with(
            storage,
            btree_options(kind, read_only),
        )?),
    })
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    // Every tenth value is long enough for a B-tree overflow chain.
    let len = if i.is_multiple_of(10) { 3000 } else { 24 };
    vec![(i + round) as u8; len]
}

/// Every file of the directory and its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn sim_files(sim: &SimBackend) -> BTreeMap<String, Vec<u8>> {
    sim.file_names()
        .into_iter()
        .map(|n| {
            let bytes = sim.read_file(&n).unwrap();
            (n, bytes)
        })
        .collect()
}

/// The expected state after `fill`: keys 0..n, later rounds overwriting the even keys, key 7 deleted.
fn fill(db: &dyn Engine, n: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut want = BTreeMap::new();
    for i in 0..n {
        db.put(key(i), value(i, 0)).unwrap();
        want.insert(key(i), value(i, 0));
    }
    for i in (0..n).step_by(2) {
        db.put(key(i), value(i, 1)).unwrap();
        want.insert(key(i), value(i, 1));
    }
    db.delete(key(7)).unwrap();
    want.remove(&key(7));
    want
}

/// Reads everything through `db` every way and checks it against `want`.
fn read_all(db: &dyn Engine, want: &BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in want {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(&v[..]));
    }
    assert_eq!(db.get(key(7)).unwrap(), None);
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = db.range(..).unwrap().map(owned).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = want.clone().into_iter().collect();
    assert_eq!(fwd, expected);
    let mut back: Vec<(Vec<u8>, Vec<u8>)> = db.range(..).unwrap().rev().map(owned).collect();
    back.reverse();
    assert_eq!(back, expected);
    assert_eq!(
        db.prefix("key0001").unwrap().count(),
        want.keys().filter(|k| k.starts_with(b"key0001")).count()
    );
    assert_eq!(db.keys(..).unwrap().count(), want.len());
    let snap = db.snapshot().unwrap();
    assert_eq!(snap.range(..).unwrap().count(), want.len());
    assert_eq!(
        snap.first().unwrap().map(|kv| owned(Ok(kv))),
        want.first_key_value().map(|(k, v)| (k.clone(), v.clone()))
    );
    let ks: Vec<&[u8]> = want.keys().rev().map(Vec::as_slice).collect();
    let got = db.multi_get(&ks).unwrap();
    assert!(
        got.iter()
            .zip(want.values().rev())
            .all(|(g, v)| g.as_deref() == Some(&v[..]))
    );
    assert_eq!(snap.multi_get(&ks).unwrap(), got);
    drop(snap);
    db.verify().unwrap();
    let _ = db.stats();
    assert!(db.approximate_len().unwrap() >= 1);
    db.wait_idle().unwrap();
}

/// Every write is `ReadOnly`.
fn refuses_writes(db: &dyn Engine) {
    let ro = |r: rumdb::Result<()>, what: &str| {
        assert!(matches!(r, Err(Error::ReadOnly(_))), "{what}: {r:?}");
    };
    ro(db.put(b"k", b"v"), "put");
    ro(db.delete(b"k"), "delete");
    let mut b = WriteBatch::new();
    b.put(b"k", b"v");
    ro(db.write(&b, WriteOptions::sync()), "write");
    ro(
        db.write(&WriteBatch::new(), WriteOptions::new(Durability::Sync)),
        "empty write",
    );
    ro(db.sync(), "sync");
    ro(db.flush(), "flush");
    ro(db.compact(), "compact");
}

#[test]
fn readers_share_writers_are_excluded_and_nothing_changes() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let writer = open(kind, dir.path(), false).unwrap();
        let want = fill(&*writer, 400);
        // A read-only open is refused while a writer holds the lock.
        assert!(
            matches!(open(kind, dir.path(), true), Err(Error::Locked(_))),
            "{kind:?}"
        );
        writer.close().unwrap();
        drop(writer);
        let before = files(dir.path());

        let r1 = open(kind, dir.path(), true).unwrap();
        let r2 = open(kind, dir.path(), true).unwrap();
        // A writer is refused while read-only handles are open.
        assert!(
            matches!(open(kind, dir.path(), false), Err(Error::Locked(_))),
            "{kind:?}"
        );
        read_all(&*r1, &want);
        read_all(&*r2, &want);
        refuses_writes(&*r1);
        assert_eq!(r1.stats().user_bytes, 0, "{kind:?}: nothing was written");
        r1.close().unwrap();
        assert!(matches!(r1.get(b"k"), Err(Error::Closed)));
        assert!(
            matches!(open(kind, dir.path(), false), Err(Error::Locked(_))),
            "{kind:?}: r2 still holds its shared lock"
        );
        drop(r1);
        drop(r2);
        assert_eq!(files(dir.path()), before, "{kind:?}: the files changed");

        // Once they are gone the writer opens, and a creating read-only open is refused.
        let writer = open(kind, dir.path(), false).unwrap();
        read_all(&*writer, &want);
        writer.close().unwrap();
        let empty = tempfile::tempdir().unwrap();
        assert!(
            matches!(
                open(kind, empty.path(), true),
                Err(Error::InvalidArgument(_))
            ),
            "{kind:?}"
        );
        assert!(files(empty.path()).is_empty(), "{kind:?}: created a file");
        assert!(
            open(kind, &empty.path().join("missing"), true).is_err(),
            "{kind:?}"
        );
        assert!(!empty.path().join("missing").exists());
    }
}

/// After a killed writer the WAL holds `Flush`-acknowledged batches that no table or page holds: a
/// read-only open sees them, and the disk is the same afterwards (bytes, names, no operation counted).
#[test]
fn a_crashed_writers_unflushed_writes_are_visible() {
    for kind in KINDS {
        let sim = SimBackend::new(42);
        let writer = open_sim(kind, &sim, false).unwrap();
        let mut want = fill(&*writer, 300);
        writer.flush().unwrap();
        // Unflushed: only in the WAL (Flush durability: handed to the OS before the call returned).
        for i in 300..305 {
            writer.put(key(i), value(i, 2)).unwrap();
            want.insert(key(i), value(i, 2));
        }
        writer.delete(key(3)).unwrap();
        want.remove(&key(3));
        let image = sim.crash(CrashMode::ProcessKill);
        drop(writer);
        let before = sim_files(&image);
        let ops = image.mutating_ops();

        let r1 = open_sim(kind, &image, true).unwrap();
        let r2 = open_sim(kind, &image, true).unwrap();
        assert!(
            matches!(open_sim(kind, &image, false), Err(Error::Locked(_))),
            "{kind:?}"
        );
        let report = r1.stats().recovery;
        assert!(report.records_replayed > 0, "{kind:?}: {report:?}");
        read_all(&*r1, &want);
        read_all(&*r2, &want);
        refuses_writes(&*r2);
        r1.close().unwrap();
        r2.close().unwrap();
        drop((r1, r2));
        assert_eq!(sim_files(&image), before, "{kind:?}");
        assert_eq!(
            image.mutating_ops(),
            ops,
            "{kind:?}: a mutating operation ran"
        );

        // A read-write open then recovers the same state.
        let writer = open_sim(kind, &image, false).unwrap();
        read_all(&*writer, &want);
        writer.close().unwrap();
    }
}

/// The B-tree applies replayed batches to pool pages it never writes back; when they need more dirty
/// pages than the pool holds, a read-only open fails clearly instead of writing.
#[test]
fn btree_replay_beyond_the_pool_is_a_clear_error() {
    let sim = SimBackend::new(5);
    let storage = Storage::new(Arc::new(sim.clone()));
    let no_checkpoints = BTreeOptions {
        checkpoint_wal_bytes: u64::MAX,
        ..BTreeOptions::tiny()
    };
    let writer = BTreeEngine::open_with(storage, no_checkpoints).unwrap();
    for i in 0..40 {
        writer.put(key(i * 97 % 4000), value(i, 0)).unwrap();
    }
    let image = sim.crash(CrashMode::ProcessKill);
    drop(writer);
    let before = sim_files(&image);
    let options = BTreeOptions {
        read_only: true,
        pool_bytes: 2 * 512,
        ..BTreeOptions::tiny()
    };
    let storage = Storage::new(Arc::new(image.clone()));
    match BTreeEngine::open_with(storage, options) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("pool_bytes"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(sim_files(&image), before);
    // With a pool of 256 pages it fits.
    let storage = Storage::new(Arc::new(image.clone()));
    let ro = BTreeEngine::open_with(
        storage,
        BTreeOptions {
            read_only: true,
            pool_bytes: 256 * 512,
            ..BTreeOptions::tiny()
        },
    )
    .unwrap();
    assert_eq!(ro.get(key(0)).unwrap(), Some(value(0, 0).into()));
    drop(ro);
    assert_eq!(sim_files(&image), before);
}

/// A directory without `LOCK` (a copy) opens read-only without a lock, and creates none.
#[test]
fn a_directory_without_lock_opens_unlocked() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let writer = open(kind, dir.path(), false).unwrap();
        let want = fill(&*writer, 50);
        writer.close().unwrap();
        drop(writer);
        std::fs::remove_file(dir.path().join("LOCK")).unwrap();
        let before = files(dir.path());
        let ro = open(kind, dir.path(), true).unwrap();
        read_all(&*ro, &want);
        drop(ro);
        assert_eq!(files(dir.path()), before, "{kind:?}");
    }
}

/// True if this process can create a file in `dir` (false when permissions are enforced on it).
fn can_write_in(dir: &Path) -> bool {
    let probe = dir.join("write-probe");
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// On a `chmod a-w` directory whose files are read-only too, a read-only open reads everything. Root
/// ignores permissions: there the test still runs the open, but cannot show that no write was needed by
/// the permission check, and says so (the byte comparison still shows nothing changed).
#[test]
fn a_read_only_directory_opens_read_only() {
    use std::os::unix::fs::PermissionsExt;
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        let writer = open(kind, &db_dir, false).unwrap();
        let want = fill(&*writer, 200);
        writer.close().unwrap();
        drop(writer);
        let before = files(&db_dir);
        for name in before.keys() {
            let p = db_dir.join(name);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let enforced = !can_write_in(&db_dir);
        if !enforced {
            println!(
                "{kind:?}: running as root (or permissions are not enforced here): the chmod a-w \
                 part cannot prove that nothing tried to write; the open and the byte comparison \
                 still run"
            );
        }
        let ro = open(kind, &db_dir, true).unwrap();
        read_all(&*ro, &want);
        refuses_writes(&*ro);
        drop(ro);
        if enforced {
            assert!(
                open(kind, &db_dir, false).is_err(),
                "{kind:?}: a writer cannot open a read-only directory"
            );
        }
        assert_eq!(files(&db_dir), before, "{kind:?}");
        std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
