//! Tests of the table format, builder and reader, against a sorted `Vec` model.
//!
//! - `roundtrip`: many shapes and options, gets at every sequence number, both read paths;
//! - `cursor`: seek / seek_for_prev / next / prev against the model;
//! - `damage`: every bit flip and every truncation of small tables;
//! - `filter`: the checked-in fixture, the pinned hash and the false-positive rate.

mod cursor;
mod damage;
mod filter;
mod roundtrip;

use std::sync::Arc;

use crate::lsm::key::{self, ValueKind};
use crate::storage::sim::{Rng, SimBackend};
use crate::storage::{ReadPurpose, Storage, WritePurpose};

use super::{BlockCache, ReadPath, Table, TableBuilder, TableMeta, TableOptions, table_file_name};

/// One table entry: an internal key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// A simulated directory.
fn sim_storage(seed: u64) -> (SimBackend, Storage) {
    let sim = SimBackend::new(seed);
    let storage = Storage::new(Arc::new(sim.clone()));
    (sim, storage)
}

/// Writes `entries` (sorted) as table `number`.
fn build(storage: &Storage, number: u64, options: &TableOptions, entries: &[Entry]) -> TableMeta {
    let file = storage.create_new(&table_file_name(number)).unwrap();
    let mut b = TableBuilder::new(file, number, options.clone(), WritePurpose::MemtableFlush);
    for (k, v) in entries {
        b.add(k, v).unwrap();
    }
    assert_eq!(b.entries(), entries.len() as u64);
    b.finish().unwrap()
}

fn open(storage: &Storage, meta: &TableMeta, path: ReadPath) -> Arc<Table> {
    Table::open(
        storage,
        meta.number,
        meta.file_size,
        path,
        BlockCache::new(1 << 20),
        ReadPurpose::Recovery,
    )
    .unwrap()
}

/// The user key of the `i`-th key of a generated table.
fn user_key(i: u64) -> Vec<u8> {
    format!("key{i:07}").into_bytes()
}

/// `n` user keys, each with 1..=3 versions (some tombstones), values of sizes up to `max_value`, sorted.
fn entries(rng: &mut Rng, n: u64, max_value: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    for i in 0..n {
        let versions = 1 + rng.below(3);
        let mut seq = 1000 + rng.below(1000);
        for _ in 0..versions {
            let kind = if rng.chance(1, 5) {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let value = match kind {
                ValueKind::Delete => Vec::new(),
                ValueKind::Put => {
                    let len = rng.below(max_value + 1) as usize;
                    value(rng, len)
                }
            };
            out.push((key::encode(&user_key(i * 2), seq, kind), value));
            seq -= 1 + rng.below(10);
        }
    }
    out.sort_by(|a, b| key::compare(&a.0, &b.0));
    out
}

/// A compressible value: words from a small vocabulary.
fn value(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 6] = [b"alpha ", b"beta ", b"gamma ", b"delta ", b"eps ", b"zeta "];
    let mut v = Vec::with_capacity(len + 6);
    while v.len() < len {
        v.extend_from_slice(WORDS[rng.below(6) as usize]);
    }
    v.truncate(len);
    v
}

/// The model answer to `Table::get(user_key, seq)`.
fn model_get(entries: &[Entry], user_key: &[u8], seq: u64) -> Option<(ValueKind, Vec<u8>)> {
    entries.iter().find_map(|(k, v)| {
        let (u, s, kind) = key::decode(k).unwrap();
        (u == user_key && s <= seq).then(|| (kind, v.clone()))
    })
}

/// Every entry, by a forward scan.
fn scan(table: &Arc<Table>) -> crate::Result<Vec<Entry>> {
    let mut it = table.iter(ReadPurpose::Scan);
    it.seek_to_first()?;
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.next()?;
    }
    Ok(out)
}

/// Every entry, by a backward scan, returned in forward order.
fn scan_back(table: &Arc<Table>) -> crate::Result<Vec<Entry>> {
    let mut it = table.iter(ReadPurpose::Scan);
    it.seek_to_last()?;
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.prev()?;
    }
    out.reverse();
    Ok(out)
}

#[test]
fn shared_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Table>();
    send_sync::<BlockCache>();
    send::<super::TableIter>();
    send::<TableBuilder>();
}

/// Building a table, then reading it back with point lookups and a cursor: the module docs' example.
#[test]
fn build_then_read_one_table() -> crate::Result<()> {
    use crate::lsm::key::{self, ValueKind};
    use crate::lsm::sstable::{
        BlockCache, ReadPath, ReadStats, Table, TableBuilder, TableOptions, table_file_name,
    };
    use crate::storage::{ReadPurpose, Storage, WritePurpose};

    let dir = tempfile::tempdir()?;
    let storage = Storage::os(dir.path(), false)?;
    let file = storage.create_new(&table_file_name(1))?;
    let mut builder = TableBuilder::new(
        file,
        1,
        TableOptions::default(),
        WritePurpose::MemtableFlush,
    );
    builder.add(&key::encode(b"apple", 7, ValueKind::Put), b"red")?;
    builder.add(&key::encode(b"apple", 3, ValueKind::Delete), b"")?;
    builder.add(&key::encode(b"pear", 5, ValueKind::Put), b"green")?;
    let meta = builder.finish()?;
    storage.sync_dir()?; // before a manifest edit refers to the table

    let cache = BlockCache::new(8 << 20);
    let table = Table::open(
        &storage,
        meta.number,
        meta.file_size,
        ReadPath::Mmap,
        cache,
        ReadPurpose::Recovery,
    )?;
    let mut stats = ReadStats::default();
    assert_eq!(
        table.get(b"apple", 9, &mut stats)?,
        Some((ValueKind::Put, b"red".to_vec()))
    );
    assert_eq!(
        table.get(b"apple", 4, &mut stats)?,
        Some((ValueKind::Delete, Vec::new()))
    );
    assert_eq!(table.get(b"apple", 2, &mut stats)?, None);

    let mut it = table.iter(ReadPurpose::Scan);
    it.seek(&key::encode(b"b", key::MAX_SEQUENCE, ValueKind::Put))?;
    assert_eq!(key::user_key(it.key()), b"pear");
    Ok(())
}

/// A table with range tombstones (format 2): they come back from the range-deletion block, the manifest
/// record spans them (an end that is a key's successor counts as that key) and their sequences, a table
/// of tombstones alone opens, and any flipped bit in the block is corruption at open.
#[test]
fn range_tombstones_round_trip_and_damage_is_corruption() {
    use crate::lsm::range_del::RangeTombstone;
    let (sim, storage) = sim_storage(3);
    let tombstones = vec![
        RangeTombstone {
            start: b"a".to_vec(),
            end: b"key0000005\0".to_vec(),
            seq: 3000,
        },
        RangeTombstone {
            start: b"key0000002".to_vec(),
            end: b"key0000003".to_vec(),
            seq: 2500,
        },
    ];
    let mut rng = Rng::new(5);
    let rows = entries(&mut rng, 20, 40);
    for (number, rows) in [(1u64, rows), (2, Vec::new())] {
        let file = storage.create_new(&table_file_name(number)).unwrap();
        let mut b = TableBuilder::new(
            file,
            number,
            TableOptions::default(),
            WritePurpose::MemtableFlush,
        );
        for (k, v) in &rows {
            b.add(k, v).unwrap();
        }
        b.set_range_tombstones(tombstones.clone());
        let meta = b.finish().unwrap();
        assert_eq!(key::user_key(&meta.smallest), b"a");
        let largest = key::user_key(&meta.largest);
        let expect_largest = rows
            .last()
            .map_or(&b"key0000005"[..], |(k, _)| key::user_key(k));
        assert_eq!(largest, expect_largest.max(&b"key0000005"[..]));
        assert_eq!(meta.max_seq, 3000);
        assert_eq!(meta.entries, rows.len() as u64);
        for path in [ReadPath::Pread, ReadPath::Mmap] {
            let table = open(&storage, &meta, path);
            assert_eq!(table.range_tombstones(), &tombstones[..]);
            assert_eq!(table.verify().unwrap().1, rows.len() as u64);
        }
        // Every bit of the range-deletion block (it sits right before the properties' trailer-ended
        // block and the footer): flipping any is corruption at open.
        let name = table_file_name(number);
        let bytes = sim.read_file(&name).unwrap();
        let block = crate::lsm::range_del::encode_block(&tombstones);
        let at = bytes
            .windows(block.len())
            .rposition(|w| w == block.as_slice())
            .expect("the block is in the file");
        for bit in 0..(block.len() + 9) * 8 {
            let flip = (at * 8 + bit) as u64;
            sim.flip_bit(&name, flip).unwrap();
            let err = Table::open(
                &storage,
                meta.number,
                meta.file_size,
                ReadPath::Pread,
                BlockCache::new(1 << 20),
                ReadPurpose::Recovery,
            )
            .unwrap_err();
            assert!(err.is_corruption(), "bit {bit}: {err}");
            sim.flip_bit(&name, flip).unwrap();
        }
        assert_eq!(sim.read_file(&name).unwrap(), bytes);
    }
}
