//! Replays every committed fuzz input — `fuzz/corpus/<target>/*` and `fuzz/regressions/<target>/*` — and
//! the built-in seed corpus through `rumdb::testing::fuzz::run`, naming the file that fails, plus seeded
//! mutations of the seeds (bit flips, truncations) for a bounded number of rounds.
//!
//! `RUMDB_WRITE_CORPUS=1 cargo test --test fuzz_corpus` (re)writes the seed files into `fuzz/corpus/`.

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
    if std::env::var("RUMDB_WRITE_CORPUS").is_ok() {
        for (i, (target, data)) in seed_corpus().into_iter().enumerate() {
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
    let mut rng = Rng::new(
        std::env::var("RUMDB_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
    );
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
