//! Reading the `RUMDB_*` test knobs (listed in the [`testing`](crate::testing) module docs). A knob that is
//! unset or does not parse leaves its default, so a typo runs the default test rather than failing it.

/// The number in environment variable `var`, or `default` when it is unset or not a number.
pub fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The one seed a single-seed test runs: `RUMDB_SEED`, or `default`.
pub fn seed(default: u64) -> u64 {
    env_u64("RUMDB_SEED", default)
}

/// The seeds a seeded test runs: `RUMDB_SEED=<s>` alone when set (to reproduce a failure), else
/// `0..n` with `n` from the test's count variable `count_var` (e.g. `RUMDB_LSM_SEEDS`), or `default`.
pub fn seeds(count_var: &str, default: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("RUMDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    (0..env_u64(count_var, default)).collect()
}
