//! Damage: every bit of small tables flipped, every truncation, garbage with valid checksums. Nothing
//! panics; every answer is either `Corruption` or exactly the stored data; damage outside the filter is
//! always detected by open or a full scan; damage inside the filter never hides a present key.

use std::sync::Arc;

use super::*;
use crate::lsm::key::MAX_SEQUENCE;
use crate::lsm::sstable::block::{Block, BlockIter};
use crate::lsm::sstable::format::{BLOCK_ZSTD, encode_trailer};
use crate::lsm::sstable::{Compression, ReadStats};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    OpenFailed,
    ReadFailed,
    Clean { filter_damaged: bool },
}

fn assert_corruption(e: &crate::Error, what: &str) {
    assert!(e.is_corruption(), "{what}: expected Corruption, got {e}");
    if let crate::Error::Corruption { file, .. } = e {
        assert!(file.ends_with(".sst"), "{e}");
    }
}

/// Opens the (possibly damaged) table and reads everything: gets first (cold cache), then scans.
fn read_everything(
    storage: &Storage,
    meta: &TableMeta,
    entries: &[Entry],
    path: ReadPath,
) -> Outcome {
    let table = match Table::open(
        storage,
        meta.number,
        meta.file_size,
        path,
        BlockCache::new(1 << 16),
        ReadPurpose::Recovery,
    ) {
        Ok(t) => t,
        Err(e) => {
            assert_corruption(&e, "open");
            return Outcome::OpenFailed;
        }
    };
    let mut failed = false;
    let mut stats = ReadStats::default();
    for (k, _) in entries {
        let (u, s, _) = key::decode(k).unwrap();
        for seq in [s, MAX_SEQUENCE] {
            match table.get(u, seq, &mut stats) {
                Ok(found) => assert_eq!(found, model_get(entries, u, seq), "wrong answer"),
                Err(e) => {
                    assert_corruption(&e, "get");
                    failed = true;
                }
            }
        }
    }
    for result in [scan(&table), scan_back(&table)] {
        match result {
            Ok(all) => assert_eq!(all, entries, "scan returned wrong data"),
            Err(e) => {
                assert_corruption(&e, "scan");
                failed = true;
            }
        }
    }
    if failed {
        return Outcome::ReadFailed;
    }
    let filter_damaged = table.filter_damage().is_some();
    if filter_damaged {
        assert!(table.verify().unwrap_err().is_corruption());
    }
    Outcome::Clean { filter_damaged }
}

fn small_table(
    storage: &Storage,
    number: u64,
    compression: Compression,
) -> (TableMeta, Vec<Entry>) {
    let mut rng = Rng::new(number);
    let entries = entries(&mut rng, 16, 24);
    let options = TableOptions {
        block_size: 160,
        restart_interval: 2,
        compression,
        ..TableOptions::default()
    };
    (build(storage, number, &options, &entries), entries)
}

#[test]
fn every_bit_flip_is_detected_or_harmless() {
    let (sim, storage) = sim_storage(30);
    for (number, compression) in [(1, Compression::None), (2, Compression::Zstd { level: 1 })] {
        let (meta, entries) = small_table(&storage, number, compression);
        let clean = open(&storage, &meta, ReadPath::Pread);
        let filter_start = clean.properties().stored_data_bytes;
        let filter = filter_start..filter_start + clean.filter_bytes();
        assert!(!filter.is_empty());
        if compression != Compression::None {
            assert!(clean.properties().stored_data_bytes < clean.properties().raw_data_bytes);
        }
        drop(clean);
        let name = table_file_name(number);
        let mut counts = [0u32; 3];
        for bit in 0..meta.file_size * 8 {
            sim.flip_bit(&name, bit).unwrap();
            let outcome = read_everything(&storage, &meta, &entries, ReadPath::Pread);
            sim.flip_bit(&name, bit).unwrap();
            if filter.contains(&(bit / 8)) {
                assert_eq!(
                    outcome,
                    Outcome::Clean {
                        filter_damaged: true
                    },
                    "bit {bit}"
                );
            } else {
                assert!(
                    !matches!(outcome, Outcome::Clean { .. }),
                    "bit {bit} of {} went unnoticed",
                    meta.file_size
                );
            }
            counts[match outcome {
                Outcome::OpenFailed => 0,
                Outcome::ReadFailed => 1,
                Outcome::Clean { .. } => 2,
            }] += 1;
        }
        println!(
            "{compression:?}: {} bytes; flips failing open {}, failing a read {}, harmless (filter) {}",
            meta.file_size, counts[0], counts[1], counts[2]
        );
    }
}

#[test]
fn every_truncation_is_corruption() {
    let (sim, storage) = sim_storage(31);
    let (meta, entries) = small_table(&storage, 1, Compression::Zstd { level: 1 });
    let name = table_file_name(1);
    let original = sim.read_file(&name).unwrap();
    for len in 0..meta.file_size {
        sim.truncate(&name, len).unwrap();
        assert_eq!(
            read_everything(&storage, &meta, &entries, ReadPath::Pread),
            Outcome::OpenFailed
        );
        // Even if the manifest recorded the shorter length.
        let short = TableMeta {
            file_size: len,
            ..meta.clone()
        };
        assert_eq!(
            read_everything(&storage, &short, &entries, ReadPath::Pread),
            Outcome::OpenFailed,
            "truncated to {len}"
        );
        sim.corrupt(&name, 0, &original).unwrap();
    }
    assert_eq!(
        read_everything(&storage, &meta, &entries, ReadPath::Pread),
        Outcome::Clean {
            filter_damaged: false
        }
    );
}

#[test]
fn random_garbage_never_returns_wrong_data() {
    let (sim, storage) = sim_storage(32);
    let (meta, entries) = small_table(&storage, 1, Compression::Zstd { level: 1 });
    let name = table_file_name(1);
    let original = sim.read_file(&name).unwrap();
    let mut rng = Rng::new(32);
    for _ in 0..1500 {
        let at = rng.below(meta.file_size);
        let len = 1 + rng.below(16.min(meta.file_size - at));
        let mut garbage = vec![0u8; len as usize];
        rng.fill(&mut garbage);
        sim.corrupt(&name, at, &garbage).unwrap();
        read_everything(&storage, &meta, &entries, ReadPath::Pread);
        sim.corrupt(&name, 0, &original).unwrap();
    }
}

/// Overwrites the stored bytes of the first data block with `garbage` of the same length, stamped with a
/// valid trailer of `kind` claiming `raw_len`: damage a CRC cannot see.
fn forge_first_block(
    sim: &SimBackend,
    name: &str,
    size: usize,
    kind: u8,
    raw_len: u32,
    rng: &mut Rng,
) {
    let mut garbage = vec![0u8; size];
    rng.fill(&mut garbage);
    let trailer = encode_trailer(&garbage, kind, raw_len);
    garbage.extend_from_slice(&trailer);
    sim.corrupt(name, 0, &garbage).unwrap();
}

#[test]
fn checksum_valid_garbage_in_a_block_is_an_error_not_a_panic() {
    let (sim, storage) = sim_storage(33);
    let (meta, entries) = small_table(&storage, 1, Compression::Zstd { level: 1 });
    let name = table_file_name(1);
    let original = sim.read_file(&name).unwrap();
    let first = {
        let t = open(&storage, &meta, ReadPath::Pread);
        let mut it = BlockIter::new(Arc::clone(t.index_block()));
        it.seek_to_first().unwrap();
        t.handle(&it).unwrap()
    };
    let mut rng = Rng::new(33);
    for round in 0..300u32 {
        let (kind, raw_len) = match round % 3 {
            0 => (BLOCK_ZSTD, 1 + rng.below(4096) as u32),
            1 => (BLOCK_ZSTD, u32::MAX),
            _ => (0, first.size as u32),
        };
        forge_first_block(&sim, &name, first.size as usize, kind, raw_len, &mut rng);
        let table = open(&storage, &meta, ReadPath::Pread);
        let mut stats = ReadStats::default();
        let (u, _, _) = key::decode(&entries[0].0).unwrap();
        match table.get(u, MAX_SEQUENCE, &mut stats) {
            // Garbage that decodes is possible for a raw block only, and then it is well-formed entries.
            Ok(_) => assert_eq!(kind, 0),
            Err(e) => assert_corruption(&e, "forged block"),
        }
        let _ = scan(&table);
        let _ = table.verify();
        sim.corrupt(&name, 0, &original).unwrap();
    }
}

/// A valid block of a few entries.
fn valid_block(rng: &mut Rng) -> Vec<u8> {
    let mut b = crate::lsm::sstable::block::BlockBuilder::new(1 + rng.below(3) as usize);
    for i in 0..1 + rng.below(6) {
        let mut v = vec![0u8; rng.below(8) as usize];
        rng.fill(&mut v);
        b.add(&key::encode(&user_key(i), 1, ValueKind::Put), &v);
    }
    b.finish().to_vec()
}

#[test]
fn random_and_mutated_blocks_never_panic() {
    let mut rng = Rng::new(34);
    let mut accepted = 0;
    for round in 0..20_000u64 {
        let data = if round % 2 == 0 {
            let mut data = vec![0u8; rng.below(64) as usize];
            rng.fill(&mut data);
            data
        } else {
            let mut data = valid_block(&mut rng);
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(data.len() as u64) as usize;
                data[at] ^= 1 << rng.below(8);
            }
            data
        };
        let Ok(block) = Block::new(data, 1, 0) else {
            continue;
        };
        accepted += 1;
        let mut it = BlockIter::new(Arc::new(block));
        let _ = it.seek_to_first();
        while it.valid() {
            if it.next().is_err() {
                break;
            }
        }
        let _ = it.seek_to_last();
        while it.valid() {
            if it.prev().is_err() {
                break;
            }
        }
        let _ = it.seek(&key::encode(&user_key(2), 1, ValueKind::Put));
    }
    assert!(accepted > 1000, "{accepted}");
}

#[test]
fn mmap_reads_of_damaged_files_never_return_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::os(dir.path(), false).unwrap();
    let (meta, entries) = small_table(&storage, 1, Compression::None);
    let path = dir.path().join(table_file_name(1));
    let original = std::fs::read(&path).unwrap();
    let mut rng = Rng::new(35);
    for _ in 0..150 {
        let bit = rng.below(meta.file_size * 8);
        let mut damaged = original.clone();
        damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
        // Replace the file (a new inode), never writing under a live mapping.
        std::fs::write(dir.path().join("tmp"), &damaged).unwrap();
        std::fs::rename(dir.path().join("tmp"), &path).unwrap();
        read_everything(&storage, &meta, &entries, ReadPath::Mmap);
    }
}

/// Two entries of a data block swapped under a valid checksum (a writer bug, or damage the CRC cannot
/// see): before blocks checked their key order when decoded, the restart-point binary search missed the
/// moved key and `get` answered "absent" for a key the table holds. Now the block is `Corruption` on every
/// read path.
#[test]
fn checksum_valid_block_with_keys_out_of_order_is_corruption_not_a_miss() {
    let (sim, storage) = sim_storage(35);
    // Equal-length entries and a full key per entry: swapping two encoded entries keeps every offset.
    let entries: Vec<Entry> = (0..8u64)
        .map(|i| {
            (
                key::encode(&user_key(i), 1, ValueKind::Put),
                vec![i as u8; 4],
            )
        })
        .collect();
    let options = TableOptions {
        block_size: 4096,
        restart_interval: 1,
        compression: Compression::None,
        ..TableOptions::default()
    };
    let meta = build(&storage, 1, &options, &entries);
    let name = table_file_name(1);
    let first = {
        let t = open(&storage, &meta, ReadPath::Pread);
        let mut it = BlockIter::new(Arc::clone(t.index_block()));
        it.seek_to_first().unwrap();
        t.handle(&it).unwrap()
    };
    let file = sim.read_file(&name).unwrap();
    let at = first.offset as usize;
    let mut block = file[at..at + first.size as usize].to_vec();
    let entry_len = block.len().saturating_sub(4 * (entries.len() + 1)) / entries.len();
    let (e1, e2) = (entry_len..2 * entry_len, 2 * entry_len..3 * entry_len);
    let (one, two) = (block[e1.clone()].to_vec(), block[e2.clone()].to_vec());
    block[e1].copy_from_slice(&two);
    block[e2].copy_from_slice(&one);
    assert!(Block::new(block.clone(), 1, 0).unwrap_err().is_corruption());
    let trailer = encode_trailer(&block, 0, block.len() as u32);
    block.extend_from_slice(&trailer);
    sim.corrupt(&name, first.offset, &block).unwrap();

    let table = open(&storage, &meta, ReadPath::Pread);
    let (moved, _, _) = key::decode(&entries[1].0).unwrap();
    match table.get(moved, MAX_SEQUENCE, &mut ReadStats::default()) {
        Err(e) => assert_corruption(&e, "get of a key in the unsorted block"),
        Ok(found) => panic!("get answered {found:?} from an unsorted block"),
    }
    assert_corruption(&scan(&table).unwrap_err(), "scan of the unsorted block");
    assert_corruption(&table.verify().unwrap_err(), "verify of the unsorted block");
}
