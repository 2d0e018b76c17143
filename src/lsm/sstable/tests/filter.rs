//! The bloom filter: a stable hashing path (pinned hash values and a checked-in fixture), the serialized
//! header checks, and the measured false-positive rate.

use super::*;
use crate::lsm::sstable::filter::{self, Filter, key_hash, seed_for_table};

/// The fixture: a filter for table 42 over these keys, at 10 bits per key.
const FIXTURE_TABLE: u64 = 42;
const FIXTURE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bloom_fixture.bin"
);

fn fixture_keys() -> Vec<Vec<u8>> {
    (0..1000u32)
        .map(|i| format!("fixture-key-{i:05}").into_bytes())
        .chain([Vec::new(), vec![0xff; 100], b"a".to_vec()])
        .collect()
}

fn fixture_filter() -> Vec<u8> {
    let hashes: Vec<u64> = fixture_keys().iter().map(|k| key_hash(k)).collect();
    filter::build(&hashes, 10, FIXTURE_TABLE).unwrap()
}

/// Writes the fixture. Run once, on purpose, when the filter format changes (with a format version bump):
/// `cargo test --lib --features testing write_bloom_fixture -- --ignored`.
#[test]
#[ignore = "writes tests/fixtures/bloom_fixture.bin"]
fn write_bloom_fixture() {
    std::fs::write(FIXTURE_PATH, fixture_filter()).unwrap();
}

#[test]
fn checked_in_fixture_still_answers_its_keys() {
    let bytes =
        std::fs::read(FIXTURE_PATH).expect("tests/fixtures/bloom_fixture.bin is checked in");
    let filter = Filter::decode(&bytes, FIXTURE_TABLE).unwrap();
    for k in fixture_keys() {
        assert!(
            filter.may_contain(&k),
            "fixture lost key {k:?}: the hashing path changed"
        );
    }
    // And this build writes the very same bytes.
    assert_eq!(bytes, fixture_filter(), "the filter serialization changed");
}

#[test]
fn key_hash_and_seed_are_pinned() {
    // Computed by Appleby's reference C MurmurHash64A with seed 0x7275_6d64_6220_6b31: this is that
    // function, and a change means existing filters would lie.
    let pinned: [(&[u8], u64); 4] = [
        (b"", 0x9d95_3036_0aac_365d),
        (b"a", 0x9fac_774a_1e18_7c32),
        (b"rumdb", 0xc911_14ed_ae47_7660),
        (b"exactly8more-bytes", 0xf50e_7cb0_8170_0ae1),
    ];
    for (input, expected) in pinned {
        assert_eq!(
            key_hash(input),
            expected,
            "key_hash({input:?}) = {:#x}",
            key_hash(input)
        );
    }
    assert_ne!(seed_for_table(1), seed_for_table(2));
    assert_eq!(seed_for_table(7), seed_for_table(7));
}

#[test]
fn header_checks_reject_every_malformed_filter() {
    let good = fixture_filter();
    assert!(Filter::decode(&good, FIXTURE_TABLE).is_ok());
    assert_eq!(
        Filter::decode(&good, FIXTURE_TABLE + 1).unwrap_err(),
        "filter seed is not this table's"
    );
    // Rewrites a header field and fixes the CRC, so the field check itself is what rejects it.
    let with = |at: usize, bytes: &[u8]| {
        let mut f = good.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        let crc = crc32fast::hash(&f[4..]);
        f[..4].copy_from_slice(&crc.to_le_bytes());
        f
    };
    for (bad, why) in [
        (with(4, &[2]), "format"),
        (with(5, &[0]), "k = 0"),
        (with(5, &[31]), "k = 31"),
        (with(5, &[200]), "k = 200"),
        (with(6, &0u64.to_le_bytes()), "m = 0"),
        (with(6, &u64::MAX.to_le_bytes()), "m huge"),
        (with(14, &[2]), "crate version"),
        (with(15, &1u64.to_le_bytes()), "crate m"),
        (with(23, &9u32.to_le_bytes()), "crate k"),
        (with(30, &[0xaa]), "seed"),
    ] {
        assert!(Filter::decode(&bad, FIXTURE_TABLE).is_err(), "{why}");
    }
    for len in 0..good.len() {
        assert!(
            Filter::decode(&good[..len], FIXTURE_TABLE).is_err(),
            "prefix {len}"
        );
    }
    let mut flipped = good.clone();
    flipped[100] ^= 4;
    assert_eq!(
        Filter::decode(&flipped, FIXTURE_TABLE).unwrap_err(),
        "filter checksum mismatch"
    );
}

#[test]
fn no_filter_without_keys_or_bits() {
    assert_eq!(filter::build(&[], 10, 1), None);
    assert_eq!(filter::build(&[1, 2, 3], 0, 1), None);
    // One key at the clamped maximum still gives 1 ≤ k ≤ 30.
    let one = filter::build(&[5], 1000, 1).unwrap();
    let f = Filter::decode(&one, 1).unwrap();
    assert!((1..=30).contains(&f.k()));
}

#[test]
fn false_positive_rate_at_ten_bits_per_key() {
    const KEYS: u64 = 100_000;
    let present: Vec<u64> = (0..KEYS).map(|i| key_hash(&user_key(2 * i))).collect();
    let bytes = filter::build(&present, 10, 9).unwrap();
    let f = Filter::decode(&bytes, 9).unwrap();
    for i in (0..KEYS).step_by(101) {
        assert!(f.may_contain(&user_key(2 * i)));
    }
    let false_positives = (0..KEYS)
        .filter(|&i| f.may_contain(&user_key(2 * i + 1)))
        .count();
    let rate = false_positives as f64 / KEYS as f64;
    let k = f64::from(f.k());
    let target = (1.0 - (-k / 10.0).exp()).powf(k);
    println!(
        "bloom FPR at 10 bits/key, k = {}: measured {:.4}% ({false_positives} of {KEYS} absent probes), \
         target (1 - e^(-k/10))^k = {:.4}%, filter {} bytes for {KEYS} keys",
        f.k(),
        rate * 100.0,
        target * 100.0,
        f.bytes()
    );
    assert!(rate < 0.03, "{rate}");
}

#[test]
fn damaged_filter_never_hides_a_present_key() {
    let (sim, storage) = sim_storage(40);
    let mut rng = Rng::new(40);
    let entries = entries(&mut rng, 300, 10);
    let meta = build(&storage, 1, &TableOptions::default(), &entries);
    let clean = open(&storage, &meta, ReadPath::Pread);
    let start = clean.properties().stored_data_bytes;
    let len = clean.filter_bytes();
    drop(clean);
    // Zero the whole bitmap (a filter that answers "absent" for everything) and flip its bits.
    for damage in 0..3 {
        let original = sim.read_file(&table_file_name(1)).unwrap();
        match damage {
            0 => sim
                .zero_range(&table_file_name(1), start + 59, len - 59)
                .unwrap(),
            1 => sim.flip_bit(&table_file_name(1), start * 8).unwrap(),
            _ => sim.corrupt(&table_file_name(1), start + 5, &[0]).unwrap(),
        }
        let table = open(&storage, &meta, ReadPath::Pread);
        assert!(table.filter_damage().is_some());
        assert_eq!(table.filter_bytes(), 0);
        let mut stats = crate::lsm::sstable::ReadStats::default();
        for (k, _) in &entries {
            let (u, s, _) = key::decode(k).unwrap();
            assert_eq!(
                table.get(u, s, &mut stats).unwrap(),
                model_get(&entries, u, s)
            );
        }
        assert_eq!(stats.bloom_probes, 0);
        assert!(table.verify().unwrap_err().is_corruption());
        sim.corrupt(&table_file_name(1), 0, &original).unwrap();
    }
}
