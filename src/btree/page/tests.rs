//! Page codec tests.

use super::*;

const GEO: Geometry = Geometry { page_size: 512 };

fn ik(k: &[u8]) -> StoredKey {
    StoredKey::Inline(k.to_vec())
}

/// A long key as stored: its first `max_inline_key` bytes and a chain at page 77 (not read here).
fn long_key(fill: u8) -> StoredKey {
    StoredKey::Overflow {
        prefix: vec![fill; GEO.max_inline_key()],
        len: 1000,
        first: 77,
    }
}

fn search(p: &[u8], key: &[u8]) -> std::result::Result<usize, usize> {
    leaf_search(p, 3, &GEO, &mut |k| {
        Ok(prefix_cmp(k, key).unwrap_or(Ordering::Equal))
    })
    .unwrap()
}

fn child_for(p: &[u8], key: &[u8]) -> (usize, u32) {
    internal_child_for(p, 2, &GEO, &mut |k| {
        Ok(prefix_cmp(k, key).unwrap_or(Ordering::Equal))
    })
    .unwrap()
}

fn leaf() -> LeafNode {
    LeafNode {
        cells: vec![
            LeafCell {
                key: ik(b""),
                value: StoredValue::Inline(b"empty".to_vec()),
            },
            LeafCell {
                key: ik(b"apple"),
                value: StoredValue::Inline(vec![]),
            },
            LeafCell {
                key: ik(b"big"),
                value: StoredValue::Overflow {
                    len: 100_000,
                    first: 42,
                },
            },
            LeafCell {
                key: ik(b"cherry"),
                value: StoredValue::Inline(b"red".to_vec()),
            },
            LeafCell {
                key: long_key(b'x'),
                value: StoredValue::Inline(b"long key".to_vec()),
            },
            LeafCell {
                key: long_key(b'y'),
                value: StoredValue::Overflow {
                    len: 5000,
                    first: 43,
                },
            },
        ],
    }
}

#[test]
fn leaf_round_trip_and_search() {
    let l = leaf();
    let mut p = l.encode(5, &GEO);
    seal(&mut p, 3);
    assert_eq!(check(&p, 3, 5, &GEO).unwrap(), PageType::Leaf);
    assert!(
        check(&p, 4, 5, &GEO).is_err(),
        "page number is in the checksum"
    );
    assert!(check(&p, 3, 4, &GEO).is_err(), "LSN from the future");
    assert_eq!(LeafNode::decode(&p, 3, &GEO).unwrap(), l);
    assert_eq!(search(&p, b"big"), Ok(2));
    assert_eq!(search(&p, b"b"), Err(2));
    assert_eq!(search(&p, b"zzz"), Err(6));
    assert_eq!(search(&p, b""), Ok(0));
    // A key shorter than the prefix it matches sorts before the long key; a tie on the prefix is the
    // chain's to decide (equal here).
    assert_eq!(search(&p, b"xx"), Err(4));
    assert_eq!(search(&p, &[b'y'; 70]), Ok(5));
    let c = leaf_cell(&p, 5, 3, &GEO).unwrap();
    assert_eq!(
        c.key,
        KeyRef::Overflow {
            prefix: &[b'y'; 60][..],
            len: 1000,
            first: 77
        }
    );
    assert_eq!(
        c.value,
        ValueRef::Overflow {
            len: 5000,
            first: 43
        }
    );
    let c = leaf_cell(&p, 2, 3, &GEO).unwrap();
    assert_eq!(
        c.value,
        ValueRef::Overflow {
            len: 100_000,
            first: 42
        }
    );
    assert_eq!(
        l.encoded_len(),
        PAGE_HEADER_LEN + p.len() - content_start(&p) + 12
    );
}

#[test]
fn the_fast_path_rebuild_matches_the_decoded_edit() {
    let l = leaf();
    let p = l.encode(5, &GEO);
    let new = LeafCell {
        key: ik(b"banana"),
        value: StoredValue::Inline(b"yellow".to_vec()),
    };
    let cell = encode_leaf_cell(&new.key, &new.value);
    // Insert.
    let (got, used) = leaf_rebuild(&p, 3, 3, false, Some(&cell), 6, &GEO)
        .unwrap()
        .unwrap();
    let mut want = l.clone();
    want.cells.insert(3, new.clone());
    assert_eq!(got, want.encode(6, &GEO));
    assert_eq!(used, want.encoded_len());
    // Replace.
    let (got, _) = leaf_rebuild(&p, 3, 1, true, Some(&cell), 6, &GEO)
        .unwrap()
        .unwrap();
    let mut want = l.clone();
    want.cells[1] = new.clone();
    assert_eq!(got, want.encode(6, &GEO));
    // Remove, and append at the end.
    let (got, _) = leaf_rebuild(&p, 3, 0, true, None, 6, &GEO)
        .unwrap()
        .unwrap();
    let mut want = l.clone();
    want.cells.remove(0);
    assert_eq!(got, want.encode(6, &GEO));
    let (got, _) = leaf_rebuild(&p, 3, 6, false, Some(&cell), 6, &GEO)
        .unwrap()
        .unwrap();
    let mut want = l.clone();
    want.cells.push(new);
    assert_eq!(got, want.encode(6, &GEO));
    // Too big.
    let huge = vec![0u8; 500];
    assert!(
        leaf_rebuild(&p, 3, 0, false, Some(&huge), 6, &GEO)
            .unwrap()
            .is_none()
    );
}

#[test]
fn internal_round_trip_and_child_choice() {
    let n = InternalNode {
        first_child: 10,
        cells: vec![(ik(b"d"), 11), (ik(b"m"), 12), (long_key(b'q'), 13)],
    };
    let mut p = n.encode(1, &GEO);
    seal(&mut p, 2);
    assert_eq!(check(&p, 2, 1, &GEO).unwrap(), PageType::Internal);
    assert_eq!(InternalNode::decode(&p, 2, &GEO).unwrap(), n);
    assert_eq!(child_for(&p, b"a"), (0, 10));
    assert_eq!(child_for(&p, b"d"), (1, 11));
    assert_eq!(child_for(&p, b"l"), (1, 11));
    assert_eq!(child_for(&p, b"q"), (2, 12));
    assert_eq!(child_for(&p, b"z"), (3, 13));
}

#[test]
fn every_bit_flip_fails_the_check() {
    let mut p = leaf().encode(5, &GEO);
    seal(&mut p, 3);
    for bit in 0..p.len() * 8 {
        let mut d = p.clone();
        d[bit / 8] ^= 1 << (bit % 8);
        assert!(check(&d, 3, 5, &GEO).is_err(), "bit {bit}");
    }
}

#[test]
fn structure_is_checked_without_the_checksum() {
    let mut p = leaf().encode(5, &GEO);
    // A slot pointing past the page.
    p[PAGE_HEADER_LEN..PAGE_HEADER_LEN + 2].copy_from_slice(&510u16.to_le_bytes());
    assert!(check_structure(&p, 3, 5, &GEO).is_err());
    let mut p = leaf().encode(5, &GEO);
    p[2..4].copy_from_slice(&300u16.to_le_bytes()); // count larger than the page holds
    assert!(check_structure(&p, 3, 5, &GEO).is_err());
    // Garbage that happens to pass the checksum is still refused.
    let mut g = vec![0xA5u8; 512];
    g[0] = 1;
    g[1] = PAGE_FORMAT;
    g[8..16].copy_from_slice(&0u64.to_le_bytes());
    seal(&mut g, 9);
    assert!(check(&g, 9, 5, &GEO).is_err());
}

#[test]
fn nonzero_reserved_header_bytes_are_corruption() {
    let clean = leaf().encode(5, &GEO);
    assert_eq!(&clean[16..24], &[0u8; 8], "a leaf has no sibling links");
    for at in 16..24 {
        let mut p = clean.clone();
        p[at] = 1;
        seal(&mut p, 3);
        let err = check(&p, 3, 5, &GEO).unwrap_err();
        assert!(err.to_string().contains("reserved"), "byte {at}: {err}");
    }
    let mut p = InternalNode {
        first_child: 4,
        cells: vec![(ik(b"m"), 5)],
    }
    .encode(5, &GEO);
    p[21] = 1;
    seal(&mut p, 3);
    assert!(check(&p, 3, 5, &GEO).unwrap_err().is_corruption());
}

#[test]
fn overflow_and_free_pages() {
    let data = vec![7u8; GEO.overflow_capacity()];
    let mut p = encode_overflow(12, &data, 3, &GEO);
    seal(&mut p, 11);
    assert_eq!(check(&p, 11, 3, &GEO).unwrap(), PageType::Overflow);
    assert_eq!(link_a(&p), 12);
    assert_eq!(overflow_data(&p).unwrap(), &data[..]);
    let entries: Vec<u32> = (100..100 + GEO.free_list_capacity() as u32).collect();
    let mut f = encode_free_list(5, &entries, 3, &GEO);
    seal(&mut f, 6);
    assert_eq!(check(&f, 6, 3, &GEO).unwrap(), PageType::Free);
    assert_eq!(link_a(&f), 5);
    assert_eq!(free_list_entries(&f).collect::<Vec<_>>(), entries);
    // A count past the page's capacity is damage.
    put_at(&mut f, 20, &(entries.len() as u32 + 1).to_le_bytes());
    seal(&mut f, 6);
    assert!(check(&f, 6, 3, &GEO).is_err());
}

#[test]
fn in_place_puts_match_the_decoded_edit_and_leave_reclaimable_holes() {
    let mut rng = crate::testing::Rng::new(11);
    let mut want = leaf();
    let mut p = want.encode(5, &GEO);
    let (mut in_place, mut rebuilt, mut full) = (0, 0, 0);
    for lsn in 6..2000u64 {
        let key = format!("k{:02}", rng.below(40)).into_bytes();
        let value = StoredValue::Inline(vec![lsn as u8; rng.below(30) as usize]);
        let cell = encode_leaf_cell(&StoredKey::Inline(key.clone()), &value);
        let pos = search(&p, &key);
        let (at, replace) = match pos {
            Ok(i) => (i, true),
            Err(i) => (i, false),
        };
        let before = p.clone();
        if put_cell_in_place(&mut p, at, replace, &cell, lsn) {
            in_place += 1;
        } else {
            assert_eq!(p, before, "a refused in-place put changed the page");
            match leaf_rebuild(&p, 3, at, replace, Some(&cell), lsn, &GEO).unwrap() {
                Some((bytes, _)) => {
                    rebuilt += 1;
                    p = bytes;
                }
                None => {
                    // The leaf is full of live cells: drop a key, as a split would move some away.
                    full += 1;
                    let victim = rng.below(want.cells.len() as u64) as usize;
                    let (bytes, _) = leaf_rebuild(&p, 3, victim, true, None, lsn, &GEO)
                        .unwrap()
                        .unwrap();
                    p = bytes;
                    want.cells.remove(victim);
                    continue;
                }
            }
        }
        let cell = LeafCell {
            key: StoredKey::Inline(key),
            value,
        };
        match pos {
            Ok(i) => want.cells[i] = cell,
            Err(i) => want.cells.insert(i, cell),
        }
        let mut sealed = p.clone();
        seal(&mut sealed, 3);
        assert_eq!(check(&sealed, 3, lsn, &GEO).unwrap(), PageType::Leaf);
        assert_eq!(page_lsn(&p), lsn);
        assert_eq!(LeafNode::decode(&p, 3, &GEO).unwrap().cells, want.cells);
    }
    // All three paths ran: in place, rebuild to reclaim the holes, and a page full of live cells.
    assert!(
        in_place > rebuilt && rebuilt > 20 && full > 20,
        "{in_place} {rebuilt} {full}"
    );
}
