//! The write-ahead log: a segmented log of opaque records, shared by both engines.
//!
//! Segments are files named `NNNNNN.log` (the segment number, zero-padded to six digits, more when it
//! grows). The byte format is in [its module](mod@self::format); writing, group commit and rotation in [`writer`]; replay and
//! the classification of damage in [`reader`].
//!
//! Rules the engines rely on:
//! - records come back in the order their appends took the writer's lock (log order = apply order);
//! - a record comes back whole or not at all;
//! - after a crash every record acknowledged with `Sync` comes back unless synced bytes were damaged, which
//!   is `Corruption`; after a killed process every record acknowledged with `Flush` comes back too;
//! - recovery never appends after a damaged tail: the engine makes the replayed state durable, deletes the
//!   replayed segments, and starts a new segment.

pub mod format;
pub mod reader;
pub mod writer;

pub use reader::{RecoveryMode, ReplayOutcome, ReplayRecord, replay, replay_file};
pub use writer::{Link, LogKind, LogPosition, WalWriter};

use crate::error::Result;
use crate::storage::Storage;

/// The file name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("{n:06}.log")
}

/// The segment number a file name stands for, if it names a segment.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The numbers of every segment in the directory, ascending.
///
/// # Errors
/// `Io`.
pub fn list_segments(storage: &Storage) -> Result<Vec<u64>> {
    let mut segments: Vec<u64> = storage
        .list()?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    segments.sort_unstable();
    Ok(segments)
}

#[cfg(test)]
mod tests;
