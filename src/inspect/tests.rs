//! The inspection views against real databases of both engines, intact and damaged.

use std::path::{Path, PathBuf};

use super::*;
use crate::engine::{Durability, Engine, EngineExt, WriteOptions};
use crate::{BTreeEngine, BTreeOptions, LsmEngine, LsmOptions, TableOptions, WriteBatch};

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// An LSM database with one table of `n` keys in small blocks.
fn lsm_with_table(dir: &Path, n: u32) {
    let options = LsmOptions {
        table: TableOptions {
            block_size: 256,
            ..TableOptions::default()
        },
        ..LsmOptions::default()
    };
    let db = LsmEngine::open(dir, options).unwrap();
    for i in 0..n {
        db.put(format!("key{i:04}"), format!("value{i}")).unwrap();
    }
    db.delete("key0000").unwrap();
    db.flush().unwrap();
    db.close().unwrap();
}

#[test]
fn identity_names_each_engine() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    LsmEngine::open(a.path(), LsmOptions::default())
        .unwrap()
        .close()
        .unwrap();
    BTreeEngine::open(b.path(), BTreeOptions::default())
        .unwrap()
        .close()
        .unwrap();
    let (la, lb) = (identity(a.path()).unwrap(), identity(b.path()).unwrap());
    assert_eq!((la.engine, la.page_size), (EngineKind::Lsm, 0));
    assert_eq!((lb.engine, lb.page_size), (EngineKind::BTree, 4096));
    flip(&a.path().join("IDENTITY"), 13);
    assert!(identity(a.path()).unwrap_err().is_corruption());
    assert!(matches!(
        btree_page(a.path(), 2),
        Err(Error::Corruption { .. })
    ));
    let c = tempfile::tempdir().unwrap();
    assert!(matches!(identity(c.path()), Err(Error::Io(_))));
    // A B-tree IDENTITY with a valid checksum but an impossible page size: refused, not divided by.
    let forged = crate::identity::Identity {
        kind: EngineKind::BTree,
        format_version: crate::btree::BTREE_FORMAT_VERSION,
        page_size: 0,
    };
    std::fs::write(c.path().join("IDENTITY"), forged.encode()).unwrap();
    std::fs::write(c.path().join("data"), [0u8; 8192]).unwrap();
    for result in [
        btree_page(c.path(), 0).map(|_| ()),
        btree_summary(c.path()).map(|_| ()),
    ] {
        assert!(
            matches!(&result, Err(Error::Corruption { file, offset: Some(16), .. }) if file == "IDENTITY"),
            "{result:?}"
        );
    }
}

#[test]
fn sst_view_agrees_with_its_entries_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    lsm_with_table(dir.path(), 300);
    let m = manifest(dir.path()).unwrap();
    let live: Vec<&TableSummary> = m.levels.iter().flatten().collect();
    assert_eq!(live.len(), 1);
    let t = live[0];
    assert_eq!(
        (t.smallest.as_slice(), t.largest.as_slice()),
        (&b"key0000"[..], &b"key0299"[..])
    );
    assert!(
        m.edits
            .iter()
            .any(|e| e.added.iter().any(|a| a.number == t.number))
    );
    assert_eq!(m.truncated_at, None);
    let file = sst(&dir.path().join(format!("{:06}.sst", t.number))).unwrap();
    assert_eq!(file.file_size, t.file_size);
    assert!(file.data_blocks.len() > 1, "small blocks: several of them");
    assert_eq!(file.index.len(), file.data_blocks.len());
    assert_eq!(file.properties.data_blocks, file.data_blocks.len() as u64);
    let per_block: u64 = file.data_blocks.iter().map(|b| b.entries).sum();
    let entries: Vec<SstEntry> = file.entries().collect::<Result<_>>().unwrap();
    assert_eq!(entries.len() as u64, file.properties.entries);
    assert_eq!(per_block, file.properties.entries);
    // 300 puts and one delete of key0000: two versions of it, the tombstone (newer) first.
    assert_eq!(entries.len(), 301);
    assert_eq!(entries[0].key.kind, EntryKind::Delete);
    assert_eq!(entries[1].key.kind, EntryKind::Put);
    assert!(entries[0].key.sequence > entries[1].key.sequence);
    assert_eq!(entries[1].value_len, b"value0".len() as u64);
    let filter = file.filter.as_ref().unwrap();
    assert_eq!((filter.damage.as_ref(), filter.bits_per_key), (None, 10));
    assert!(filter.hash_functions.is_some());
    // Each separator is at least its block's last key: the index's separators are in key order.
    assert!(
        file.index
            .windows(2)
            .all(|w| w[0].separator.key <= w[1].separator.key)
    );
    assert_eq!(file.index[0].block.offset, 0);
    assert_eq!(
        file.footer.index.offset,
        file.footer.filter.offset + file.footer.filter.size
    );
}

#[test]
fn a_damaged_sst_index_is_corruption_at_the_index_offset() {
    let dir = tempfile::tempdir().unwrap();
    lsm_with_table(dir.path(), 100);
    let path = files_with(dir.path(), ".sst").remove(0);
    let intact = std::fs::read(&path).unwrap();
    let footer = sst(&path).unwrap().footer;
    // A damaged filter is reported and ignored, as the reader ignores it: the table still opens.
    flip(&path, footer.filter.offset + 20);
    let damaged = sst(&path).unwrap();
    let filter = damaged.filter.unwrap();
    assert!(filter.damage.is_some() && filter.hash_functions.is_none());
    std::fs::write(&path, &intact).unwrap();
    let index = footer.index;
    flip(&path, index.offset + 3);
    match sst(&path) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, path.file_name().unwrap().to_string_lossy());
            assert_eq!(offset, Some(index.offset));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let elsewhere = dir.path().join("table.sst");
    std::fs::copy(&path, &elsewhere).unwrap();
    assert!(matches!(sst(&elsewhere), Err(Error::InvalidArgument(_))));
}

/// The live WAL segment of an open database.
fn live_segment(dir: &Path) -> PathBuf {
    files_with(dir, ".log").pop().unwrap()
}

#[test]
fn wal_view_lists_batches_and_classifies_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = LsmEngine::open(dir.path(), LsmOptions::default()).unwrap();
    for i in 0..3u32 {
        let mut b = WriteBatch::new();
        b.put(format!("k{i}"), "v").delete("gone");
        db.write(&b, WriteOptions::new(Durability::Sync)).unwrap();
    }
    let path = live_segment(dir.path());
    let mut records = Vec::new();
    let seg = wal_segment(&path, |r| {
        records.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!((seg.records, seg.end.clone()), (3, WalEnd::Open));
    assert_eq!(seg.data_end, seg.file_len);
    let seqs: Vec<u64> = records.iter().map(|r| r.sequence).collect();
    assert_eq!(seqs[1], seqs[0] + 2, "two entries per batch");
    assert_eq!(records[2].batch.len(), 2);
    assert_eq!(records[2].batch.iter().next().unwrap().key(), b"k2");

    // Cut inside the last record: a torn tail, dropped from the end of the second record.
    let copy = tempfile::tempdir().unwrap();
    let cut = copy.path().join(path.file_name().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    let torn = wal_segment(&cut, |_| Ok(())).unwrap();
    assert_eq!(torn.records, 2);
    match torn.end {
        WalEnd::TornTail {
            offset,
            dropped_bytes,
            reason,
            ..
        } => {
            assert_eq!(offset, records[2].offset);
            assert_eq!(offset + dropped_bytes, bytes.len() as u64 - 5);
            assert!(reason.contains("runs past the end"), "{reason}");
        }
        other => panic!("expected a torn tail, got {other:?}"),
    }

    // Damage to the first record, which later synced records prove durable: replay refuses it.
    std::fs::write(&cut, &bytes).unwrap();
    flip(&cut, records[0].offset + 25);
    let seg = wal_segment(&cut, |_| Ok(())).unwrap();
    assert!(
        matches!(&seg.end, WalEnd::Damaged { offset, .. } if *offset == records[0].offset),
        "{:?}",
        seg.end
    );
    assert_eq!(seg.records, 0);
    db.close().unwrap();
    assert!(matches!(
        wal_segment(&dir.path().join("CURRENT"), |_| Ok(())),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn btree_page_and_summary_decode_and_catch_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = BTreeEngine::open(
        dir.path(),
        BTreeOptions {
            page_size: 512,
            ..BTreeOptions::default()
        },
    )
    .unwrap();
    for i in 0..400u32 {
        db.put(format!("key{i:04}"), "v".repeat(20)).unwrap();
    }
    db.put("big", vec![7u8; 2000]).unwrap();
    db.close().unwrap();
    let s = btree_summary(dir.path()).unwrap();
    assert_eq!(s.entries, 401);
    assert_eq!(s.levels, s.header.height + 1);
    assert!(s.levels >= 2);
    assert!(s.overflow_pages >= 4, "2000 bytes at 480 a page");
    assert!(
        s.fill_factor > 0.2 && s.fill_factor <= 1.0,
        "{}",
        s.fill_factor
    );
    let total = 2
        + s.leaf_pages
        + s.internal_pages
        + s.overflow_pages
        + s.free_list_pages
        + s.free_pages
        + s.other_pages;
    assert_eq!(total, u64::from(s.header.page_count));

    let root = btree_page(dir.path(), s.header.root).unwrap();
    assert_eq!(root.kind, PageKind::Internal);
    assert!(root.checksum_ok && root.problem.is_none());
    assert!(
        root.cells
            .iter()
            .all(|c| c.child.is_some() && c.value_len.is_none())
    );
    let header = btree_page(dir.path(), s.header.slot).unwrap();
    assert_eq!(header.header, Some(s.header));

    // Down the leftmost children to the first leaf.
    let mut leaf = root.next.unwrap();
    let mut page = btree_page(dir.path(), leaf).unwrap();
    for _ in 1..s.header.height {
        assert_eq!(page.kind, PageKind::Internal);
        leaf = page.next.unwrap();
        page = btree_page(dir.path(), leaf).unwrap();
    }
    assert_eq!(page.kind, PageKind::Leaf);
    assert_eq!(page.cells[0].key, b"big");
    assert!(page.used_bytes.unwrap() <= 512);

    let out_of_range = btree_page(dir.path(), s.header.page_count + 1000).unwrap_err();
    assert!(matches!(out_of_range, Error::InvalidArgument(_)));
    assert!(out_of_range.to_string().contains("data"));

    let data = dir.path().join("data");
    flip(&data, page.offset + 100);
    let damaged = btree_page(dir.path(), leaf).unwrap();
    assert!(!damaged.checksum_ok);
    match damaged.problem {
        Some(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file.as_str(), offset), ("data", Some(page.offset)));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    match btree_summary(dir.path()) {
        Err(Error::Corruption { offset, .. }) => assert_eq!(offset, Some(page.offset)),
        other => panic!("expected corruption, got {other:?}"),
    }
}
