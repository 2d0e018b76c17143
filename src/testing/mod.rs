//! Test support (feature `testing`): the reference engine, and the harness the crash tests and fuzz
//! targets call into.

mod model;

pub use model::{MODEL_FORMAT_VERSION, ModelEngine, ModelOptions};
mod rng;
pub mod wal_history;

pub use rng::Rng;

pub use crate::storage::sim::{CrashMode, Fault, FaultPlan, OpKind, SimBackend};
