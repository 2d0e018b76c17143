//! Test support (feature `testing`): the reference engine, and the harness the crash tests and fuzz
//! targets call into — the engine configurations they share ([`engines`]) and the readers of the test
//! knobs below ([`seeds`], [`seed`], [`env_u64`]).
//!
//! # Environment knobs
//!
//! Every `RUMDB_*` variable the crate, its tests, examples, benches and fuzz targets read, in one place
//! (README.md and the test files point here). Unset, or not a number where one is expected, each takes
//! its default, so plain `cargo test` runs the fast CI configuration.
//!
//! | Variable | What it does | Default | Read by |
//! |---|---|---|---|
//! | `RUMDB_SEED=<n>` | Runs only seed `n` (the reproduce line a failing seeded test prints); in single-seed tests, the seed | each test's seed range; `kill`: 8, `fuzz_corpus` mutations: 1 | `tests/lsm.rs`, `tests/btree_crash.rs`, `tests/wal_crash.rs`, `tests/kill.rs` (kill rounds), `tests/fuzz_corpus.rs` (`mutated_seeds_do_not_panic`), the B-tree model unit test (`src/btree/tests`) |
//! | `RUMDB_LSM_SEEDS=<n>` | Runs seeds `0..n` | 6 (`model_agrees_after_every_step`), 4 (`crash_workloads_reach_level_two`, `every_crash_point_…`), 2 (`a_crash_during_recovery_…`) | `tests/lsm.rs` |
//! | `RUMDB_BTREE_SEEDS=<n>` | Runs seeds `0..n` | 4 (`every_crash_point_…`, the model unit test), 2 (`a_crash_during_recovery_…`), 1 (the `…larger_than_the_pool…` tests) | `tests/btree_crash.rs`, `src/btree/tests` (model test) |
//! | `RUMDB_BTREE_CRASH_ALL=1` | Takes every crash point of the workload larger than the pool, not every 7th | every 7th | `tests/btree_crash.rs` (`every_crash_point_of_a_workload_larger_than_the_pool_recovers`) |
//! | `RUMDB_DIFF_SEEDS=<n>` | Runs `n` random operation strings through the engines' differential target | 24 | `src/testing/fuzz.rs` (`engines_agree_on_random_histories_with_range_deletes`) |
//! | `RUMDB_WAL_SEEDS=<n>` | Runs `n` WAL histories | 1,000 | `tests/wal_crash.rs` |
//! | `RUMDB_RECOVERY_CRASHES=all` | Crashes recovery at every storage call of every run crash point, not a sample | a sample | `tests/lsm.rs`, `tests/btree_crash.rs` (`a_crash_during_recovery_…`) |
//! | `RUMDB_KILL_ROUNDS=<n>` | kill -9 rounds per engine and durability | 6 | `tests/kill.rs` |
//! | `RUMDB_BTREE_DAMAGE=<n>` | Iterations of random structural damage behind valid checksums | 1,500 | `src/btree/tests/damage.rs` |
//! | `RUMDB_WRITE_CORPUS=1` or `=<target>,…` | (Re)writes the built-in fuzz seeds into `fuzz/corpus/` (all targets, or those named) instead of only replaying them | unset: replay only | `tests/fuzz_corpus.rs` |
//! | `RUMDB_CRASH_AT=<point>:<nth>` | Aborts the process the `nth` time it reaches crash point `point` (one of [`CRASH_POINTS`]). Only in builds with feature `testing`: a user's build never reads it | unset: disarmed | the library (any program built with `testing`); `tests/kill.rs` sets it for its writers |
//! | `RUMDB_BENCH_KEYS=<n>` | Keys each engine's database is loaded with | 200,000 | `benches/engines.rs` |
//! | `RUMDB_KILL_CHILD=<dir>`, `RUMDB_KILL_ENGINE`, `RUMDB_KILL_DURABILITY`, `RUMDB_KILL_START`, `RUMDB_KILL_LIMIT`, `RUMDB_KILL_KEYS` | Internal: set by the kill test on the writer process it re-executes (its directory, engine, durability, first batch, batch count, key order); not for setting by hand | unset: the parent test | `tests/kill.rs` |
//! | `RUMDB_LOCK_HOLDER=<dir>` | Internal: set by the lock test on the process it re-executes to hold the lock | unset: the parent test | `tests/lock.rs` |
//!
//! The examples and the fuzz targets read none; `fuzz/run.sh` and `scripts/` take arguments instead.

pub mod engine_history;
pub mod engines;
pub mod fuzz;
mod knobs;
pub(crate) mod model;
pub mod wal_history;
pub mod workload;

pub use crate::crash_point::CRASH_POINTS;
pub use crate::engine::in_bounds;
pub use crate::identity::{IDENTITY_FILE, Identity, finish_create};
pub use crate::lsm::memtable::Memtable;
pub use crate::lsm::sstable::filter;
pub use crate::storage::sim::{CrashMode, Fault, FaultPlan, OpKind, Rng, SimBackend};
pub use crate::storage::{Backend, BackendFile, File, ReadPurpose, Storage, WritePurpose};
pub use knobs::{env_u64, seed, seeds};
pub use model::{MODEL_FORMAT_VERSION, ModelEngine, ModelOptions};

/// The write-ahead log, for the WAL benchmark, the group-commit example and the damage tests that forge
/// or locate segments.
pub mod wal {
    pub use crate::wal::format::encode_record;
    pub use crate::wal::reader::{ReplayOutcome, ReplayRecord};
    pub use crate::wal::writer::LogPosition;
    pub use crate::wal::{
        Link, RecoveryMode, WalWriter, list_segments, parse_segment_name, replay, segment_name,
    };
}
