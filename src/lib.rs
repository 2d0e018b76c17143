//! rumdb: embedded key-value storage with two engines behind one API.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![deny(unsafe_op_in_unsafe_fn, rustdoc::broken_intra_doc_links)]

pub mod error;
pub mod storage;

pub use error::{EngineKind, Error, Result};
