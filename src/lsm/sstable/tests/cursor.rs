//! The cursor against a sorted `Vec`: seeks land where `partition_point` says, and any walk of next/prev
//! from there visits the model's neighbours, across block boundaries both ways.

use std::cmp::Ordering;

use super::*;
use crate::lsm::key::MAX_SEQUENCE;
use crate::lsm::sstable::{Compression, TableIter};

/// Seek targets: every key, its neighbouring versions, keys between and beyond the user keys.
fn targets(entries: &[Entry]) -> Vec<Vec<u8>> {
    let mut out = vec![
        key::encode(b"", MAX_SEQUENCE, ValueKind::Put),
        key::encode(b"", 0, ValueKind::Delete),
        key::encode(b"\xff\xff", 0, ValueKind::Put),
    ];
    for (k, _) in entries {
        let (u, s, _) = key::decode(k).unwrap();
        out.push(k.clone());
        out.push(key::encode(u, s + 1, ValueKind::Put));
        out.push(key::encode(u, s.saturating_sub(1), ValueKind::Put));
        out.push(key::encode(u, s, ValueKind::Delete));
        let mut between = u.to_vec();
        between.push(0);
        out.push(key::encode(&between, 5, ValueKind::Put));
    }
    out
}

fn position(it: &TableIter, entries: &[Entry]) -> Option<usize> {
    it.valid().then(|| {
        entries
            .iter()
            .position(|(k, _)| k == it.key())
            .expect("cursor key is in the model")
    })
}

fn check_seeks(table: &Arc<Table>, entries: &[Entry], rng: &mut Rng) {
    let mut it = table.iter(ReadPurpose::Scan);
    for t in targets(entries) {
        let lower = entries.partition_point(|(k, _)| key::compare(k, &t) == Ordering::Less);
        it.seek(&t).unwrap();
        assert_eq!(
            position(&it, entries),
            (lower < entries.len()).then_some(lower)
        );
        if it.valid() {
            assert_eq!(it.value(), entries[lower].1);
        }
        let upper = entries.partition_point(|(k, _)| key::compare(k, &t) != Ordering::Greater);
        it.seek_for_prev(&t).unwrap();
        assert_eq!(position(&it, entries), upper.checked_sub(1));
        // A short random walk from here.
        let mut at = upper.checked_sub(1);
        for _ in 0..6 {
            let Some(i) = at else { break };
            if rng.chance(1, 2) {
                it.next().unwrap();
                at = (i + 1 < entries.len()).then_some(i + 1);
            } else {
                it.prev().unwrap();
                at = i.checked_sub(1);
            }
            assert_eq!(position(&it, entries), at);
        }
    }
}

#[test]
fn seeks_and_walks_match_the_model() {
    let (_sim, storage) = sim_storage(20);
    let mut rng = Rng::new(20);
    let entries = entries(&mut rng, 150, 30);
    let mut number = 1;
    for (block_size, restart_interval) in [(64, 1), (200, 3), (4096, 16)] {
        for compression in [Compression::None, Compression::Zstd { level: 1 }] {
            let options = TableOptions {
                block_size,
                restart_interval,
                compression,
                ..TableOptions::default()
            };
            let meta = build(&storage, number, &options, &entries);
            number += 1;
            let table = open(&storage, &meta, ReadPath::Pread);
            check_seeks(&table, &entries, &mut rng);
        }
    }
}

#[test]
fn full_walks_cross_every_block_both_ways() {
    let (_sim, storage) = sim_storage(21);
    let mut rng = Rng::new(21);
    let entries = entries(&mut rng, 400, 20);
    let options = TableOptions {
        block_size: 100,
        restart_interval: 4,
        ..TableOptions::default()
    };
    let meta = build(&storage, 1, &options, &entries);
    let table = open(&storage, &meta, ReadPath::Pread);
    let mut it = table.iter(ReadPurpose::Scan);
    // Forward to the end, then all the way back with prev, then forward again with next.
    it.seek_to_first().unwrap();
    for i in 0..entries.len() {
        assert_eq!(position(&it, &entries), Some(i));
        if i + 1 < entries.len() {
            it.next().unwrap();
        }
    }
    for i in (0..entries.len()).rev() {
        assert_eq!(position(&it, &entries), Some(i));
        it.prev().unwrap();
    }
    assert!(!it.valid());
    let stats = it.take_stats();
    assert!(stats.data_touches >= 2 * table.properties().data_blocks - 1);
    assert_eq!(it.take_stats().data_touches, 0);
}

#[test]
fn seek_for_prev_finds_the_newest_visible_version_of_the_previous_key() {
    let (_sim, storage) = sim_storage(22);
    let entries: Vec<Entry> = [(&b"a"[..], 9), (b"a", 3), (b"c", 7)]
        .iter()
        .map(|&(u, s)| (key::encode(u, s, ValueKind::Put), vec![s as u8]))
        .collect();
    let meta = build(&storage, 1, &TableOptions::default(), &entries);
    let table = open(&storage, &meta, ReadPath::Pread);
    let mut it = table.iter(ReadPurpose::Get);
    it.seek_for_prev(&key::encode(b"b", MAX_SEQUENCE, ValueKind::Put))
        .unwrap();
    assert_eq!(it.key(), entries[1].0);
    it.seek(&key::encode(b"a", 5, ValueKind::Put)).unwrap();
    assert_eq!(it.key(), entries[1].0);
    it.seek(&key::encode(b"c", 6, ValueKind::Put)).unwrap();
    assert!(!it.valid());
    assert_eq!(it.key(), b"");
}
