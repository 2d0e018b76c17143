//! Test support (feature `testing`): the reference engine, and the harness the crash tests and fuzz
//! targets call into.

pub mod engine_history;
pub mod engines;
pub mod fuzz;
mod model;
pub mod wal_history;
pub mod workload;

pub use crate::storage::sim::{CrashMode, Fault, FaultPlan, OpKind, Rng, SimBackend};
pub use model::{MODEL_FORMAT_VERSION, ModelEngine, ModelOptions};
