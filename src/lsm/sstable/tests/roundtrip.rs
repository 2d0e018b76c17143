//! Round trips: what goes into a builder comes back from scans and gets, whatever the shape and options.

use super::*;
use crate::Error;
use crate::lsm::key::MAX_SEQUENCE;
use crate::lsm::sstable::{Compression, ReadStats, parse_table_file_name};

/// Scans both ways, gets every version at its own sequence number and around it, verifies.
fn check_table(table: &Arc<Table>, meta: &TableMeta, entries: &[Entry], every: usize) {
    assert_eq!(table.meta(), *meta);
    assert_eq!(scan(table).unwrap(), entries);
    assert_eq!(scan_back(table).unwrap(), entries);
    let mut stats = ReadStats::default();
    for (k, _) in entries.iter().step_by(every.max(1)) {
        let (u, s, _) = key::decode(k).unwrap();
        for seq in [s, s + 1, s.saturating_sub(1), 0, MAX_SEQUENCE] {
            assert_eq!(
                table.get(u, seq, &mut stats).unwrap(),
                model_get(entries, u, seq),
                "key {u:?} at {seq}"
            );
        }
        let mut absent = u.to_vec();
        absent.push(b'!');
        assert_eq!(table.get(&absent, MAX_SEQUENCE, &mut stats).unwrap(), None);
    }
    for edge in [&b""[..], b"\xff"] {
        assert_eq!(
            table.get(edge, MAX_SEQUENCE, &mut stats).unwrap(),
            model_get(entries, edge, MAX_SEQUENCE)
        );
    }
    let (blocks, n) = table.verify().unwrap();
    assert_eq!(n, entries.len() as u64);
    assert_eq!(blocks, table.properties().data_blocks);
}

#[test]
fn many_shapes_and_options_round_trip() {
    let (_sim, storage) = sim_storage(1);
    let mut rng = Rng::new(1);
    let mut number = 1;
    for count in [0, 1, 2, 300] {
        let entries = entries(&mut rng, count, 40);
        for block_size in [64, 512, 4096] {
            for restart_interval in [1, 3, 16] {
                for compression in [Compression::None, Compression::Zstd { level: 1 }] {
                    let options = TableOptions {
                        block_size,
                        restart_interval,
                        compression,
                        ..TableOptions::default()
                    };
                    let meta = build(&storage, number, &options, &entries);
                    assert_eq!(meta.entries, entries.len() as u64);
                    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
                        assert_eq!(meta.smallest, first.0);
                        assert_eq!(meta.largest, last.0);
                    }
                    let table = open(&storage, &meta, ReadPath::Pread);
                    check_table(&table, &meta, &entries, 1);
                    number += 1;
                }
            }
        }
    }
}

#[test]
fn empty_table_has_no_filter_and_answers_nothing() {
    let (_sim, storage) = sim_storage(2);
    let meta = build(&storage, 7, &TableOptions::default(), &[]);
    assert_eq!((meta.entries, meta.min_seq, meta.max_seq), (0, 0, 0));
    assert!(meta.smallest.is_empty() && meta.largest.is_empty());
    let table = open(&storage, &meta, ReadPath::Mmap);
    assert_eq!(table.filter_bytes(), 0);
    assert_eq!(table.verify().unwrap(), (0, 0));
    let mut it = table.iter(ReadPurpose::Scan);
    it.seek(b"anything\0\0\0\0\0\0\0\x01").unwrap();
    assert!(!it.valid());
    it.seek_for_prev(b"anything\0\0\0\0\0\0\0\x01").unwrap();
    assert!(!it.valid());
}

#[test]
fn fifty_thousand_entries_with_and_without_compression() {
    let (_sim, storage) = sim_storage(3);
    let mut rng = Rng::new(3);
    let entries = entries(&mut rng, 25_000, 60);
    assert!(entries.len() >= 40_000);
    let mut sizes = Vec::new();
    for (number, compression) in [(1, Compression::None), (2, Compression::Zstd { level: 1 })] {
        let options = TableOptions {
            compression,
            ..TableOptions::default()
        };
        let meta = build(&storage, number, &options, &entries);
        let table = open(&storage, &meta, ReadPath::Pread);
        check_table(&table, &meta, &entries, 97);
        let p = table.properties();
        sizes.push((meta.file_size, p.raw_data_bytes, p.stored_data_bytes));
        println!(
            "{compression:?}: {} entries, {} blocks, file {} B, data raw {} B stored {} B, index {} B, filter {} B",
            p.entries,
            p.data_blocks,
            meta.file_size,
            p.raw_data_bytes,
            p.stored_data_bytes,
            table.index_bytes(),
            table.filter_bytes()
        );
    }
    // Compressible values: zstd stores less.
    assert!(sizes[1].2 < sizes[0].2 * 3 / 4, "{sizes:?}");
}

#[test]
fn incompressible_blocks_stay_raw() {
    let (_sim, storage) = sim_storage(4);
    let mut rng = Rng::new(4);
    let mut entries = Vec::new();
    for i in 0..200 {
        let mut v = vec![0u8; 300];
        rng.fill(&mut v);
        entries.push((key::encode(&user_key(i), 5, ValueKind::Put), v));
    }
    let options = TableOptions {
        compression: Compression::Zstd { level: 3 },
        ..TableOptions::default()
    };
    let meta = build(&storage, 1, &options, &entries);
    let table = open(&storage, &meta, ReadPath::Pread);
    let p = table.properties().clone();
    // Every block raw: stored = raw + one 9-byte trailer per block.
    assert_eq!(p.stored_data_bytes, p.raw_data_bytes + 9 * p.data_blocks);
    check_table(&table, &meta, &entries, 1);
}

#[test]
fn large_and_empty_values_get_their_own_blocks() {
    let (_sim, storage) = sim_storage(5);
    let mut rng = Rng::new(5);
    let sizes = [0, 1, 2047, 2048, 2049, 4096, 100 << 10, 3 << 20, 0, 7];
    let entries: Vec<Entry> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mut v = vec![0u8; n];
            rng.fill(&mut v);
            (key::encode(&user_key(i as u64), 9, ValueKind::Put), v)
        })
        .collect();
    for (number, compression) in [(1, Compression::None), (2, Compression::Zstd { level: 1 })] {
        let options = TableOptions {
            compression,
            ..TableOptions::default()
        };
        let meta = build(&storage, number, &options, &entries);
        let table = open(&storage, &meta, ReadPath::Pread);
        // Values over block_size / 2 (2048) sit alone: 2049, 4096, 100 KiB, 3 MiB.
        assert!(table.properties().data_blocks >= 6);
        check_table(&table, &meta, &entries, 1);
    }
}

#[test]
fn empty_user_key_and_equal_user_keys_across_blocks() {
    let (_sim, storage) = sim_storage(6);
    // 200 versions of one user key over many 64-byte blocks, then the empty key before it.
    let mut entries = vec![(key::encode(b"", 1, ValueKind::Put), b"e".to_vec())];
    for seq in (1..=200).rev() {
        let kind = if seq % 7 == 0 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        entries.push((key::encode(b"k", seq, kind), seq.to_string().into_bytes()));
    }
    let options = TableOptions {
        block_size: 64,
        restart_interval: 2,
        ..TableOptions::default()
    };
    let meta = build(&storage, 1, &options, &entries);
    let table = open(&storage, &meta, ReadPath::Pread);
    assert!(table.properties().data_blocks > 10);
    check_table(&table, &meta, &entries, 1);
}

#[test]
fn builder_rejects_bad_input_without_panicking() {
    let (_sim, storage) = sim_storage(7);
    let file = storage.create_new(&table_file_name(1)).unwrap();
    let mut b = TableBuilder::new(file, 1, TableOptions::default(), WritePurpose::Compaction);
    let k5 = key::encode(b"b", 5, ValueKind::Put);
    b.add(&k5, b"v").unwrap();
    for bad in [
        k5.clone(),                                  // duplicate
        key::encode(b"b", 6, ValueKind::Put),        // newer version after older: out of order
        key::encode(b"a", 9, ValueKind::Put),        // smaller user key
        b"short".to_vec(),                           // no trailer
        b"b\0\0\0\0\0\0\0\x07".to_vec(),             // unknown kind
        key::encode(&[0; 65537], 1, ValueKind::Put), // key over the limit
    ] {
        assert!(matches!(b.add(&bad, b""), Err(Error::InvalidArgument(_))));
    }
    assert!(matches!(
        b.add(
            &key::encode(b"c", 1, ValueKind::Put),
            &vec![0; (64 << 20) + 1]
        ),
        Err(Error::InvalidArgument(_))
    ));
    // Rejected adds leave the builder usable.
    b.add(&key::encode(b"b", 4, ValueKind::Delete), b"")
        .unwrap();
    let meta = b.finish().unwrap();
    assert_eq!(meta.entries, 2);
    assert_eq!((meta.min_seq, meta.max_seq), (4, 5));
}

#[test]
fn options_are_clamped() {
    let (_sim, storage) = sim_storage(8);
    let mut rng = Rng::new(8);
    let entries = entries(&mut rng, 50, 30);
    let options = TableOptions {
        block_size: 0,
        restart_interval: 0,
        bloom_bits_per_key: 1000,
        compression: Compression::Zstd { level: 99 },
    };
    let meta = build(&storage, 1, &options, &entries);
    let table = open(&storage, &meta, ReadPath::Pread);
    assert!(table.filter_bytes() > 0);
    check_table(&table, &meta, &entries, 1);
}

#[test]
fn file_length_must_match_the_manifest() {
    let (_sim, storage) = sim_storage(9);
    let mut rng = Rng::new(9);
    let meta = build(
        &storage,
        3,
        &TableOptions::default(),
        &entries(&mut rng, 10, 10),
    );
    for size in [meta.file_size - 1, meta.file_size + 1, 0] {
        let err = Table::open(
            &storage,
            3,
            size,
            ReadPath::Pread,
            BlockCache::new(0),
            ReadPurpose::Get,
        )
        .unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }
    let err = Table::open(
        &storage,
        4,
        100,
        ReadPath::Pread,
        BlockCache::new(0),
        ReadPurpose::Get,
    )
    .unwrap_err();
    assert!(err.is_corruption(), "a missing table is corruption: {err}");
}

#[test]
fn mmap_and_pread_read_the_same_and_count_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::os(dir.path(), false).unwrap();
    let mut rng = Rng::new(10);
    let entries = entries(&mut rng, 2000, 100);
    let options = TableOptions {
        compression: Compression::Zstd { level: 1 },
        ..TableOptions::default()
    };
    let meta = build(&storage, 12, &options, &entries);
    for path in [ReadPath::Mmap, ReadPath::Pread] {
        let table = open(&storage, &meta, path);
        assert_eq!(table.is_mapped(), path == ReadPath::Mmap);
        check_table(&table, &meta, &entries, 7);
        // A second get of a present key hits the cache; an absent key is mostly stopped by the filter.
        let (u, s, _) = key::decode(&entries[100].0).unwrap();
        let mut first = ReadStats::default();
        table.get(u, s, &mut first).unwrap();
        let mut second = ReadStats::default();
        table.get(u, s, &mut second).unwrap();
        assert_eq!(
            (second.data_fetches, second.cache_hits, second.data_touches),
            (0, 1, 1)
        );
        assert_eq!(second.bloom_probes, 1);
        let mut absent = ReadStats::default();
        for i in 0..1000 {
            table
                .get(&user_key(2 * i + 1), MAX_SEQUENCE, &mut absent)
                .unwrap();
        }
        assert_eq!(absent.bloom_probes, 1000);
        assert!(absent.bloom_negatives > 950, "{absent:?}");
        assert!(absent.data_touches < 50, "{absent:?}");
    }
}

#[test]
fn mmap_falls_back_to_pread_on_the_simulated_backend() {
    let (_sim, storage) = sim_storage(11);
    let mut rng = Rng::new(11);
    let entries = entries(&mut rng, 100, 10);
    let meta = build(&storage, 1, &TableOptions::default(), &entries);
    let table = open(&storage, &meta, ReadPath::Mmap);
    assert!(!table.is_mapped());
    check_table(&table, &meta, &entries, 1);
}

#[test]
fn table_file_names_round_trip() {
    assert_eq!(table_file_name(7), "000007.sst");
    assert_eq!(table_file_name(12_345_678), "12345678.sst");
    assert_eq!(parse_table_file_name("000007.sst"), Some(7));
    assert_eq!(parse_table_file_name("12345678.sst"), Some(12_345_678));
    for bad in [
        "7.sst",
        "000007.log",
        "00000x.sst",
        "000007.sst.tmp",
        ".sst",
    ] {
        assert_eq!(parse_table_file_name(bad), None, "{bad}");
    }
}

#[test]
fn concurrent_readers_share_one_table() {
    let (_sim, storage) = sim_storage(12);
    let mut rng = Rng::new(12);
    let entries = entries(&mut rng, 500, 20);
    let meta = build(&storage, 1, &TableOptions::default(), &entries);
    let table = open(&storage, &meta, ReadPath::Pread);
    assert_eq!(table.open_stats().index_fetches, 4);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (table, entries) = (&table, &entries);
            s.spawn(move || {
                let mut stats = ReadStats::default();
                for (k, _) in entries.iter().skip(t).step_by(2) {
                    let (u, seq, _) = key::decode(k).unwrap();
                    assert_eq!(
                        table.get(u, seq, &mut stats).unwrap(),
                        model_get(entries, u, seq)
                    );
                }
                assert_eq!(scan(table).unwrap(), *entries);
            });
        }
    });
}
