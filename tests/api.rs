//! The conveniences of the public API, each with every key type it takes, against both engines through
//! every way a caller holds one: the concrete type, `&dyn Engine`, `Box<dyn Engine>`, `Arc<dyn Engine>`
//! and a generic `E: Engine + ?Sized`. Most of what this file checks is that these calls compile with
//! `Engine` and `EngineExt` both imported (no ambiguity, no annotations); the assertions check that each
//! form reads and writes what it says.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use rumdb::{
    BTreeEngine, BTreeOptions, Bytes, Engine, EngineExt, KvPair, LsmEngine, LsmOptions, Snapshot,
    WriteBatch, WriteOptions,
};

fn lsm(dir: &Path) -> LsmEngine {
    LsmEngine::open(dir, LsmOptions::default()).unwrap()
}

fn btree(dir: &Path) -> BTreeEngine {
    BTreeEngine::open(dir, BTreeOptions::default()).unwrap()
}

/// The keys of `iter`, as strings.
fn keys_of(iter: impl Iterator<Item = rumdb::Result<KvPair>>) -> Vec<String> {
    iter.map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect()
}

/// Every convenience on `$db`, an empty database of any engine held in any way.
macro_rules! every_convenience {
    ($db:expr) => {{
        let db = $db;

        // put: every key and value type.
        db.put("s:1", "str").unwrap();
        db.put(String::from("s:2"), String::from("string")).unwrap();
        db.put(b"s:3".to_vec(), b"vec".to_vec()).unwrap();
        db.put(b"s:4", b"array").unwrap();
        db.put(&b"s:5"[..], &b"slice"[..]).unwrap();
        db.put(Bytes::from_static(b"s:6"), Bytes::from_static(b"bytes"))
            .unwrap();
        let owned_key = String::from("s:7");
        db.put(&owned_key, &owned_key).unwrap();

        // get: every key type; the value compares with &[u8], &str, Vec<u8> and Bytes.
        assert_eq!(db.get("s:1").unwrap().as_deref(), Some(&b"str"[..]));
        assert_eq!(db.get(String::from("s:2")).unwrap().unwrap(), "string");
        assert_eq!(db.get(b"s:3".to_vec()).unwrap().unwrap(), b"vec".to_vec());
        assert_eq!(db.get(b"s:4").unwrap(), Some(Bytes::from_static(b"array")));
        assert_eq!(db.get(&b"s:5"[..]).unwrap().unwrap(), &b"slice"[..]);
        assert_eq!(db.get(Bytes::from("s:6")).unwrap(), Some("bytes".into()));
        assert_eq!(db.get(&owned_key).unwrap().unwrap(), "s:7");
        assert_eq!(db.get("missing").unwrap(), None);
        // The object-safe form, with a byte slice.
        let key: &[u8] = b"s:1";
        assert_eq!(db.get_bytes(key).unwrap().unwrap(), "str");
        // A clone shares the bytes.
        let value = db.get("s:1").unwrap().unwrap();
        assert_eq!(value.clone().as_ptr(), value.as_ptr());

        // delete: every key type; a missing key is no error.
        db.delete(&owned_key).unwrap();
        db.delete(String::from("s:6")).unwrap();
        db.delete(b"s:5".to_vec()).unwrap();
        db.delete(b"s:4").unwrap();
        db.delete("never-written").unwrap();
        for gone in ["s:4", "s:5", "s:6", "s:7"] {
            assert_eq!(db.get(gone).unwrap(), None, "{gone}");
        }

        // contains_key.
        assert!(db.contains_key("s:1").unwrap());
        assert!(db.contains_key(b"s:2").unwrap());
        assert!(db.contains_key(String::from("s:3")).unwrap());
        assert!(!db.contains_key(b"s:4".to_vec()).unwrap());

        // A batch with str keys and values.
        let mut batch = WriteBatch::new();
        batch
            .put("user:1", "ada")
            .put("user:2", String::from("grace"))
            .put(String::from("user:3"), b"linus")
            .put(b"users".to_vec(), "")
            .put("video:1", "cats")
            .delete("s:3");
        db.write(&batch, WriteOptions::default()).unwrap();
        assert_eq!(db.get("user:2").unwrap().unwrap(), "grace");
        assert_eq!(db.get("s:3").unwrap(), None);
        let all = ["s:1", "s:2", "user:1", "user:2", "user:3", "users", "video:1"];

        // range: str ranges of every shape, String, Vec and Bytes ranges, byte-slice ranges, bounds,
        // unbounded; both ways.
        assert_eq!(
            keys_of(db.range("user:".."user;").unwrap()),
            ["user:1", "user:2", "user:3"]
        );
        assert_eq!(
            keys_of(db.range("user:".."user;").unwrap().rev()),
            ["user:3", "user:2", "user:1"]
        );
        assert_eq!(
            keys_of(db.range("user:1"..="user:2").unwrap()),
            ["user:1", "user:2"]
        );
        assert_eq!(keys_of(db.range("user:3"..).unwrap()), ["user:3", "users", "video:1"]);
        assert_eq!(keys_of(db.range(.."user:").unwrap()), ["s:1", "s:2"]);
        assert_eq!(keys_of(db.range(..="s:2").unwrap()), ["s:1", "s:2"]);
        assert_eq!(
            keys_of(db.range(String::from("user:")..String::from("user;")).unwrap()),
            ["user:1", "user:2", "user:3"]
        );
        assert_eq!(keys_of(db.range(b"users".to_vec()..).unwrap()), ["users", "video:1"]);
        assert_eq!(keys_of(db.range(..b"s:2".to_vec()).unwrap()), ["s:1"]);
        assert_eq!(
            keys_of(db.range(Bytes::from("s:2")..Bytes::from("user:2")).unwrap()),
            ["s:2", "user:1"]
        );
        assert_eq!(keys_of(db.range(&b"s:"[..]..&b"s;"[..]).unwrap()), ["s:1", "s:2"]);
        assert_eq!(keys_of(db.range(b"s:1"..b"s:2").unwrap()), ["s:1"]);
        assert_eq!(
            keys_of(db.range((Bound::Excluded("user:3"), Bound::Unbounded)).unwrap()),
            ["users", "video:1"]
        );
        assert_eq!(
            keys_of(db.range((Bound::<&str>::Unbounded, Bound::Included("s:1"))).unwrap()),
            ["s:1"]
        );
        let reused = "user:".."user;";
        assert_eq!(db.range(&reused).unwrap().count(), 3);
        assert_eq!(db.range(&reused).unwrap().count(), 3);
        assert_eq!(keys_of(db.range(..).unwrap()), all);
        let mut backwards = keys_of(db.range(..).unwrap().rev());
        backwards.reverse();
        assert_eq!(backwards, all);
        assert_eq!(db.range("z"..).unwrap().count(), 0);
        // The object-safe form.
        assert_eq!(
            keys_of(db.scan(Bound::Included(b"video:"), Bound::Unbounded).unwrap()),
            ["video:1"]
        );
        // Entries are Bytes pairs.
        let (k, v): (Bytes, Bytes) = db.range("video:".."video;").unwrap().next().unwrap().unwrap();
        assert_eq!((k, v), ("video:1".into(), "cats".into()));

        // prefix: str, String, Vec.
        assert_eq!(keys_of(db.prefix("user:").unwrap()), ["user:1", "user:2", "user:3"]);
        assert_eq!(keys_of(db.prefix(String::from("user")).unwrap()).len(), 4);
        assert_eq!(keys_of(db.prefix(b"s:".to_vec()).unwrap().rev()), ["s:2", "s:1"]);
        assert_eq!(db.prefix("").unwrap().count(), all.len());

        // first / last.
        assert_eq!(db.first().unwrap(), Some(("s:1".into(), "str".into())));
        let (k, v) = db.last().unwrap().unwrap();
        assert_eq!((&k[..], &v[..]), (&b"video:1"[..], &b"cats"[..]));

        // keys-only: str ranges, unbounded, both ways.
        let ks: Vec<Bytes> = db.keys("user:".."user;").unwrap().collect::<rumdb::Result<_>>().unwrap();
        assert_eq!(ks, ["user:1", "user:2", "user:3"]);
        let ks: Vec<Bytes> = db.keys(..).unwrap().rev().collect::<rumdb::Result<_>>().unwrap();
        assert_eq!(ks.first().unwrap(), "video:1");
        assert_eq!(ks.len(), all.len());
        assert_eq!(db.range(..).unwrap().keys().count(), all.len());

        // multi_get: str array, String vec, byte arrays, Vec keys, slices; the object-safe form.
        assert_eq!(
            db.multi_get(["user:2", "nope", "user:1", "user:2"]).unwrap(),
            [Some("grace".into()), None, Some("ada".into()), Some("grace".into())]
        );
        assert_eq!(
            db.multi_get(vec![String::from("s:1"), String::from("s:3")]).unwrap(),
            [Some("str".into()), None]
        );
        assert_eq!(db.multi_get(&[b"s:1", b"s:2"]).unwrap(), [Some("str".into()), Some("string".into())]);
        assert_eq!(db.multi_get([b"users".to_vec()]).unwrap(), [Some(Bytes::new())]);
        assert_eq!(db.multi_get(&[&b"s:2"[..]]).unwrap(), [Some("string".into())]);
        assert_eq!(db.multi_get(Vec::<&str>::new()).unwrap(), []);
        assert_eq!(
            db.multi_get_bytes(&[&b"video:1"[..], b"x"]).unwrap(),
            [Some("cats".into()), None]
        );

        // approximate_len: at least the live keys (the LSM counts every version).
        assert!(db.approximate_len().unwrap() >= all.len() as u64);

        // Snapshot: every read with str keys and ranges, at the snapshot's moment.
        let snap: Snapshot = db.snapshot().unwrap();
        db.put("user:4", "new").unwrap();
        db.delete("user:1").unwrap();
        db.put("s:1", "changed").unwrap();
        assert_eq!(snap.get("user:1").unwrap().unwrap(), "ada");
        assert_eq!(snap.get(String::from("user:4")).unwrap(), None);
        assert_eq!(snap.get(b"s:1").unwrap(), Some("str".into()));
        assert_eq!(snap.get(b"s:2".to_vec()).unwrap().as_deref(), Some(&b"string"[..]));
        assert_eq!(
            keys_of(snap.range("user:".."user;").unwrap()),
            ["user:1", "user:2", "user:3"]
        );
        assert_eq!(keys_of(snap.range(b"users".to_vec()..).unwrap()), ["users", "video:1"]);
        assert_eq!(keys_of(snap.range(..).unwrap()), all);
        assert_eq!(
            keys_of(snap.range((Bound::Excluded("users"), Bound::Unbounded)).unwrap()),
            ["video:1"]
        );
        assert_eq!(snap.keys("user:".."user;").unwrap().count(), 3);
        assert_eq!(snap.keys(..).unwrap().rev().next().unwrap().unwrap(), "video:1");
        assert_eq!(keys_of(snap.prefix("user:").unwrap()), ["user:1", "user:2", "user:3"]);
        assert!(snap.contains_key("user:1").unwrap());
        assert!(!snap.contains_key(String::from("user:4")).unwrap());
        assert_eq!(snap.first().unwrap(), Some(("s:1".into(), "str".into())));
        assert_eq!(snap.last().unwrap().unwrap().0, "video:1");
        assert_eq!(
            snap.multi_get(["user:1", "user:4", "s:1"]).unwrap(),
            [Some("ada".into()), None, Some("str".into())]
        );
        assert_eq!(
            keys_of(snap.scan(Bound::Unbounded, Bound::Excluded(b"s:2")).unwrap()),
            ["s:1"]
        );
        drop(snap);
        // The live database moved on.
        assert_eq!(db.get("user:1").unwrap(), None);
        assert_eq!(db.get("s:1").unwrap().unwrap(), "changed");
        assert_eq!(keys_of(db.prefix("user:").unwrap()), ["user:2", "user:3", "user:4"]);
        db.close().unwrap();
    }};
}

/// The same calls written against a generic engine, as library code over "any engine" would.
fn through_a_generic<E: Engine + ?Sized>(db: &E) {
    let key: &[u8] = b"g:1";
    let value: &[u8] = b"one";
    db.put(key, value).unwrap();
    db.put("g:2", "two").unwrap();
    assert_eq!(db.get(key).unwrap().as_deref(), Some(value));
    assert_eq!(db.get("g:2").unwrap().unwrap(), "two");
    assert_eq!(keys_of(db.range("g:".."g;").unwrap()), ["g:1", "g:2"]);
    assert_eq!(keys_of(db.range(..).unwrap()), ["g:1", "g:2"]);
    assert_eq!(
        db.multi_get(["g:2", "g:1"]).unwrap(),
        [Some("two".into()), Some("one".into())]
    );
    db.delete("g:1").unwrap();
    assert!(!db.contains_key(key).unwrap());
    assert_eq!(db.first().unwrap().unwrap().0, "g:2");
    assert_eq!(db.snapshot().unwrap().get("g:2").unwrap().unwrap(), "two");
}

#[test]
fn lsm_engine() {
    let dir = tempfile::tempdir().unwrap();
    every_convenience!(lsm(dir.path()));
}

#[test]
fn btree_engine() {
    let dir = tempfile::tempdir().unwrap();
    every_convenience!(btree(dir.path()));
}

#[test]
fn lsm_through_a_dyn_engine_reference() {
    let dir = tempfile::tempdir().unwrap();
    let db = lsm(dir.path());
    every_convenience!(&db as &dyn Engine);
}

#[test]
fn btree_through_a_dyn_engine_reference() {
    let dir = tempfile::tempdir().unwrap();
    let db = btree(dir.path());
    every_convenience!(&db as &dyn Engine);
}

#[test]
fn boxed_and_shared_dyn_engines() {
    let dir = tempfile::tempdir().unwrap();
    let boxed: Box<dyn Engine> = Box::new(lsm(&dir.path().join("lsm")));
    every_convenience!(boxed);
    let shared: Arc<dyn Engine> = Arc::new(btree(&dir.path().join("btree")));
    every_convenience!(shared);
}

#[test]
fn generic_engines() {
    let dir = tempfile::tempdir().unwrap();
    let db = lsm(&dir.path().join("lsm"));
    through_a_generic(&db);
    through_a_generic(&db as &dyn Engine);
    let db = btree(&dir.path().join("btree"));
    through_a_generic(&db);
    through_a_generic(&db as &dyn Engine);
}
