//! WAL crash simulation: seeded histories of appends (every durability), syncs and rotations, crashed at
//! every mutating storage operation under every crash mode of the simulated backend, then replayed and
//! checked against what was acknowledged (see `rumdb::testing::wal_history` for the oracle). Also: a bit
//! flipped in provably synced data must be `Corruption`.
//!
//! `RUMDB_WAL_SEEDS=<n>` sets the number of histories (default 1,000); `RUMDB_SEED=<s>` runs one (every
//! knob is listed in the `rumdb::testing` docs).

use rumdb::testing::wal_history::{WalHistory, check_every_crash_point, check_synced_bit_flip};

fn seeds() -> Vec<u64> {
    rumdb::testing::seeds("RUMDB_WAL_SEEDS", 1000)
}

fn reproduce(seed: u64) -> String {
    format!("reproduce with RUMDB_SEED={seed} cargo test --test wal_crash")
}

#[test]
fn every_crash_point_under_every_mode_recovers_an_acknowledged_prefix() {
    let mut images = 0;
    let seeds = seeds();
    for &seed in &seeds {
        let history = WalHistory::generate(seed);
        match check_every_crash_point(&history) {
            Ok(n) => images += n,
            Err(e) => panic!("{e}\n{}\nhistory: {:?}", reproduce(seed), history.ops),
        }
    }
    println!("{} histories, {images} crash images checked", seeds.len());
    assert!(
        images >= seeds.len() as u64 * 6,
        "every history is crashed at least once per mode"
    );
}

#[test]
fn a_bit_flip_in_synced_data_is_corruption() {
    let mut flipped = 0;
    let seeds = seeds();
    for &seed in &seeds {
        let history = WalHistory::generate(seed);
        match check_synced_bit_flip(&history) {
            Ok(true) => flipped += 1,
            Ok(false) => {}
            Err(e) => panic!("{e}\n{}\nhistory: {:?}", reproduce(seed), history.ops),
        }
    }
    println!(
        "{flipped} of {} histories had synced data to damage",
        seeds.len()
    );
    assert!(
        seeds.len() < 50 || flipped * 4 >= seeds.len(),
        "too few histories exercised the check: {flipped}"
    );
}
