//! Replays every committed fuzz input — `fuzz/corpus/<target>/*` and `fuzz/regressions/<target>/*` — and
//! the built-in seed corpus through `rumdb::testing::fuzz::run`, naming the file that fails, plus seeded
//! mutations of the seeds (bit flips, truncations) for a bounded number of rounds.
//!
//! `RUMDB_WRITE_CORPUS=1 cargo test --test fuzz_corpus` (re)writes the seed files into `fuzz/corpus/`;
//! `RUMDB_WRITE_CORPUS=wal_roundtrip,sst_roundtrip` writes only those targets' seeds.
//!
//! Every minimized crash in `fuzz/regressions/<target>/` also has a named test below, so a regression
//! names the bug it brings back.

use std::path::Path;

use rumdb::testing::Rng;
use rumdb::testing::fuzz::{TARGETS, run, seed_corpus};

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn committed_corpora_and_regressions_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    if let Ok(only) = std::env::var("RUMDB_WRITE_CORPUS") {
        // `1` writes every target's seeds; a comma-separated list of targets writes only theirs.
        let wanted = |t: &str| only == "1" || only.split(',').any(|w| w == t);
        for (i, (target, data)) in seed_corpus().into_iter().enumerate() {
            if !wanted(target) {
                continue;
            }
            let dir = root.join("corpus").join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{i:02}")), data).unwrap();
        }
    }
    let mut replayed = 0;
    for target in TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in files(&root.join(kind).join(target)) {
                let data = std::fs::read(&file).unwrap();
                let result = std::panic::catch_unwind(|| run(target, &data));
                assert!(
                    result.is_ok(),
                    "fuzz input {} fails target {target}",
                    file.display()
                );
                replayed += 1;
            }
        }
    }
    println!("{replayed} committed inputs replayed");
    assert!(
        replayed >= TARGETS.len(),
        "every target has committed seeds"
    );
}

#[test]
fn mutated_seeds_do_not_panic() {
    let mut rng = Rng::new(rumdb::testing::seed(1));
    for (target, seed) in seed_corpus() {
        for round in 0..40 {
            let mut data = seed.clone();
            match round % 3 {
                0 if !data.is_empty() => {
                    let bit = rng.below(data.len() as u64 * 8) as usize;
                    data[bit / 8] ^= 1 << (bit % 8);
                }
                1 => data.truncate(rng.below(data.len() as u64 + 1) as usize),
                _ => {
                    let at = rng.below(data.len() as u64 + 1) as usize;
                    let mut junk = vec![0u8; rng.below(64) as usize];
                    rng.fill(&mut junk);
                    data.splice(at..at, junk);
                }
            }
            let result = std::panic::catch_unwind(|| run(target, &data));
            assert!(
                result.is_ok(),
                "target {target}, round {round}: a mutated seed panics"
            );
        }
    }
}

/// Replays the committed regression input `fuzz/regressions/<target>/<name>` through the target's entry
/// point: it must exist (a missing file is a failure, not a pass) and must not panic.
fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
        .join(name);
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("regression input {} is missing: {e}", path.display()));
    assert!(TARGETS.contains(&target), "no target {target}");
    let result = std::panic::catch_unwind(|| run(target, &data));
    assert!(result.is_ok(), "regression {} fails again", path.display());
    data
}

/// A block whose third restart run holds a key smaller than the previous one (`key6` mutated to `key3`,
/// then minimized): the decoder accepted it and the iterator walked backwards. Blocks now check key order
/// when decoded.
#[test]
fn regression_block_decode_restart_run_key_smaller_than_previous() {
    regression("block_decode", "restart-run-key-smaller-than-previous");
}

/// A table whose data block (under a valid checksum) holds keys out of order: the table scan went
/// backwards. Fixed by the same block-decode order check.
#[test]
fn regression_sst_open_data_block_keys_out_of_order_under_valid_crc() {
    regression("sst_open", "data-block-keys-out-of-order-under-valid-crc");
}

/// An `IDENTITY` with a nonzero reserved byte and a recomputed CRC decoded and re-encoded to other
/// bytes; it is now `Corruption`.
#[test]
fn regression_identity_decode_nonzero_reserved_bytes_under_valid_crc() {
    let data = regression("identity_decode", "nonzero-reserved-bytes-under-valid-crc");
    let err = rumdb::testing::Identity::decode(&data).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

/// A B-tree header slot 1 with nonzero reserved bytes (52..60) and a recomputed CRC decoded and
/// re-encoded to other bytes. Those bytes are now the first live WAL segment, so the slot decodes and
/// re-encodes to the same bytes (slot 0 of the input is not a valid slot either).
#[test]
fn regression_btree_header_decode_slot1_nonzero_reserved_bytes_under_valid_crc() {
    regression(
        "btree_header_decode",
        "slot1-nonzero-reserved-bytes-under-valid-crc",
    );
}
