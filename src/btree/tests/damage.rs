//! Damage: every bit flip and truncation of a small data file, header fallback, cycles, a batch that
//! fails part-way.

use super::*;

/// A small database at tiny options: two levels, an overflow chain, free pages, several checkpoints.
/// Every file of an image but the data file: `IDENTITY` and the WAL segments (the header names the first
/// live one, so it must be there).
type Others = Vec<(String, Vec<u8>)>;

/// `IDENTITY` and the WAL segments of `storage`.
fn others(storage: &Storage) -> Others {
    let mut names = vec![IDENTITY_FILE.to_string()];
    names.extend(
        wal::list_segments(storage)
            .unwrap()
            .into_iter()
            .map(wal::segment_name),
    );
    names
        .into_iter()
        .map(|n| {
            let bytes = storage
                .read_file(&n, 1 << 22, ReadPurpose::Recovery)
                .unwrap();
            (n, bytes)
        })
        .collect()
}

fn small_image() -> (Others, Vec<u8>, Model) {
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
    db.put(b"gone", [1u8; 900]).unwrap();
    db.delete(b"gone").unwrap();
    db.verify().unwrap();
    db.close().unwrap();
    let read = |name: &str| {
        storage
            .read_file(name, 1 << 20, ReadPurpose::Recovery)
            .unwrap()
    };
    (others(&storage), read(DATA_FILE), model)
}

fn storage_with(others: &Others, data: &[u8]) -> Storage {
    let s = sim(1);
    let files = others
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .chain([(DATA_FILE, data)]);
    for (name, bytes) in files {
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
    let scanned: crate::Result<Vec<_>> = db.range(..).unwrap().map(|r| r.map(owned)).collect();
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
            Ok(got) => assert_eq!(
                got.as_deref(),
                Some(&v[..]),
                "{what}: get returned wrong data"
            ),
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

fn expect_corruption_everywhere(identity: &Others, data: &[u8], what: &str) {
    let storage = storage_with(identity, data);
    let db = BTreeEngine::open_with(storage, BTreeOptions::tiny()).unwrap();
    let scan: crate::Result<Vec<_>> = db.range(..).unwrap().collect();
    assert!(scan.unwrap_err().is_corruption(), "{what}: scan");
    let back: crate::Result<Vec<_>> = db.range(..).unwrap().rev().collect();
    assert!(back.unwrap_err().is_corruption(), "{what}: reverse scan");
    assert!(db.verify().unwrap_err().is_corruption(), "{what}: verify");
}

fn two_level_image() -> (Others, Vec<u8>, Header) {
    let storage = sim(13);
    let db = open(&storage, BTreeOptions::tiny());
    let mut b = WriteBatch::new();
    for i in 0..400u32 {
        b.put(format!("key-with-some-length-{i:05}").as_bytes(), [1u8; 20]);
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
    (others(&storage), data, h)
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
    // The leftmost leaf with a nonzero former sibling-link field (reserved since format 2) under a valid
    // checksum: refused, not followed.
    let mut pgno = h.root;
    for _ in 0..h.height {
        pgno = page::link_a(&data[pgno as usize * 512..]);
    }
    for at in [16, 20] {
        let mut d = data.clone();
        patch_page(&mut d, pgno, at, &pgno.to_le_bytes());
        expect_corruption_everywhere(&identity, &d, &format!("leaf link at {at}"));
    }
}

/// A database written by format 1 (the `IDENTITY` and header slots say 1) is `UnsupportedVersion` at open,
/// never read with the new page layout.
#[test]
fn an_older_format_is_unsupported_version() {
    let (current, data, _) = small_image();
    let mut others = current.clone();
    let (_, identity) = others
        .iter_mut()
        .find(|(name, _)| name == IDENTITY_FILE)
        .unwrap();
    let mut old_id = crate::identity::Identity::decode(identity).unwrap();
    assert_eq!(old_id.format_version, BTREE_FORMAT_VERSION);
    old_id.format_version = 1;
    *identity = old_id.encode().to_vec();
    let err =
        BTreeEngine::open_with(storage_with(&others, &data), BTreeOptions::tiny()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 1,
                supported: BTREE_FORMAT_VERSION
            }
        ),
        "{err}"
    );
    // Header slots of version 1 (with a current IDENTITY) are refused the same way.
    let mut d = data.clone();
    for slot in 0..2 {
        let at = slot * 512;
        d[at + 8..at + 12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&d[at..at + 60]);
        d[at + 60..at + 64].copy_from_slice(&crc.to_le_bytes());
    }
    let err = BTreeEngine::open_with(storage_with(&current, &d), BTreeOptions::tiny()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { found: 1, .. }),
        "{err}"
    );
}

#[test]
fn a_damaged_newest_header_falls_back_and_newer_pages_are_corruption() {
    let (identity, data, model) = small_image();
    let h = newest_header(&data);
    let mut d = data.clone();
    let slot = (h.counter % 2) as usize * 512;
    d[slot + 20] ^= 0xff;
    let storage = storage_with(&identity, &d);
    // The older slot names a WAL segment the newer checkpoint deleted (and its root was rewritten
    // since): refused at open, naming the data file.
    let err = BTreeEngine::open_with(storage.clone(), BTreeOptions::tiny()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if file == DATA_FILE),
        "{err}"
    );
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

/// An error a damaged database may report: `Corruption`, or `Poisoned` once a write met the damage.
fn allowed(e: &Error) -> bool {
    e.is_corruption() || matches!(e, Error::Poisoned { .. })
}

/// Like the fuzz target that fixes up checksums: random bytes written into pages whose checksum is then
/// recomputed, so the damage reaches the structural checks of every reader and of the writer. Nothing may
/// panic or hang; every error is `Corruption` (or `Poisoned` after a write met it).
#[test]
fn structural_damage_behind_a_valid_checksum_never_panics() {
    let (identity, data, model) = small_image();
    let pages = (data.len() / 512) as u32;
    let iterations = crate::testing::env_u64("RUMDB_BTREE_DAMAGE", 1500);
    let errors = std::sync::atomic::AtomicU64::new(0);
    let note = |e: &Error| {
        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        allowed(e)
    };
    for i in 0..iterations {
        let mut rng = Rng::new(i);
        let mut d = data.clone();
        let pgno = 2 + rng.below(u64::from(pages - 2)) as u32;
        for _ in 0..1 + rng.below(4) {
            let at = if rng.chance(1, 2) {
                rng.below(64)
            } else {
                rng.below(512)
            };
            d[pgno as usize * 512 + at as usize] = rng.next_u64() as u8;
        }
        // Keep the type and format bytes plausible half the time, so the damage gets past them.
        if rng.chance(1, 2) {
            d[pgno as usize * 512 + 1] = page::PAGE_FORMAT;
        }
        page::seal(&mut d[pgno as usize * 512..(pgno as usize + 1) * 512], pgno);
        if rng.chance(1, 4) {
            // A header slot with a fixed-up checksum: fields out of range must be refused, fields in range
            // must be survived.
            let slot = rng.below(2) as usize * 512;
            let at = 16 + rng.below(44) as usize;
            d[slot + at] = if rng.chance(1, 2) {
                rng.next_u64() as u8
            } else {
                d[slot + at] ^ 1
            };
            let crc = crc32fast::hash(&d[slot..slot + 60]);
            d[slot + 60..slot + 64].copy_from_slice(&crc.to_le_bytes());
        }
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let db = match BTreeEngine::open_with(storage_with(&identity, &d), BTreeOptions::tiny())
            {
                Ok(db) => db,
                Err(e) => return assert!(note(&e) && e.is_corruption(), "open: {e}"),
            };
            for r in db.range(..).unwrap() {
                if let Err(e) = r {
                    assert!(note(&e), "scan: {e}");
                }
            }
            for r in db.range(..).unwrap().rev() {
                if let Err(e) = r {
                    assert!(note(&e), "reverse scan: {e}");
                }
            }
            for k in model.keys() {
                if let Err(e) = db.get(k) {
                    assert!(note(&e), "get: {e}");
                }
            }
            if let Err(e) = db.verify() {
                assert!(note(&e), "verify: {e}");
            }
            let mut b = WriteBatch::new();
            b.put(b"key005", [1u8; 300])
                .put(b"new", b"v")
                .delete(b"key007")
                .delete(b"key012");
            if let Err(e) = db.write(&b, WriteOptions::default()) {
                assert!(note(&e), "write: {e}");
            }
            for r in db.range(..).unwrap() {
                if let Err(e) = r {
                    assert!(note(&e), "scan after the write: {e}");
                }
            }
            if let Err(e) = db.close() {
                assert!(allowed(&e) || e.is_corruption(), "close: {e}");
            }
        }));
        assert!(
            run.is_ok(),
            "iteration {i} (page {pgno}) panicked; rerun with RUMDB_BTREE_DAMAGE"
        );
    }
    let errors = errors.into_inner();
    println!("{iterations} damaged images, {errors} errors reported");
    assert!(errors > iterations, "the damage reached the checks");
}

/// A database whose overflow pages hold only keys (long keys with short values, and the separators
/// between them): a flipped byte in any of them is `Corruption` for every read that needs it, never a
/// wrong answer (every get and scan is right or `Corruption`, some read reports it, and verify does).
/// A full scan needs no separator, so a damaged separator chain shows in gets and verify only.
#[test]
fn a_flipped_byte_in_a_key_overflow_page_is_corruption() {
    let storage = sim(17);
    let db = open(&storage, BTreeOptions::tiny());
    let mut model = Model::new();
    for i in 0..40u32 {
        let mut k = vec![b'k'; 700 + (i as usize % 3) * 300];
        k.extend_from_slice(format!("{i:03}").as_bytes());
        db.put(&k, [i as u8; 10]).unwrap();
        model.insert(k, vec![i as u8; 10]);
    }
    db.verify().unwrap();
    db.close().unwrap();
    let read = |name: &str| {
        storage
            .read_file(name, 1 << 22, ReadPurpose::Recovery)
            .unwrap()
    };
    let (identity, data) = (others(&storage), read(DATA_FILE));
    let overflow: Vec<usize> = (2..data.len() / 512)
        .filter(|&n| page::page_type(&data[n * 512..]) == Some(page::PageType::Overflow))
        .collect();
    assert!(overflow.len() > 40, "{} overflow pages", overflow.len());
    for &n in &overflow {
        let mut d = data.clone();
        d[n * 512 + 32 + (n * 31) % 400] ^= 0x10;
        let what = format!("overflow page {n}");
        assert!(
            !open_and_read_all(&storage_with(&identity, &d), &model, &what),
            "{what}: no read noticed"
        );
        let db = BTreeEngine::open_with(storage_with(&identity, &d), BTreeOptions::tiny()).unwrap();
        assert!(db.verify().unwrap_err().is_corruption(), "{what}: verify");
    }
}
