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
//! - recovery never appends after a damaged tail: the engine makes the replayed state durable, starts a new
//!   segment, names it in its metadata, and only then deletes the replayed segments.
//!
//! # The segment chain
//!
//! Every WAL segment starts with a LINK record naming its predecessor and that segment's data length;
//! every segment the writer moved on from (by rotation, or by a clean close, which rotates to a new empty
//! segment) ends with a SEAL record naming its successor and its own data length, written and fsync'd
//! only after the successor exists durably. The engine names its first live segment `F` in durable
//! metadata (the LSM manifest's log number, the B-tree header), and creates every segment it names before
//! that metadata is durable. Replay ([`reader`]) walks the chain from `F` and refuses with `Corruption`
//! naming the file:
//! - `F` missing;
//! - a segment a SEAL names missing (it was created and synced before the SEAL was written);
//! - a segment without its SEAL (emptied, cut, or damaged) followed by a segment holding records: the
//!   writer only writes to a segment after sealing the previous one;
//! - a segment shorter than its successor's LINK records (its data was synced before the LINK existed);
//! - a SEAL and LINK that disagree, a SEAL not at the end of its segment.
//!
//! What a crash legally leaves passes: a segment without SEAL followed only by segments holding nothing
//! but their LINK (a crash inside a rotation, or inside recovery before the metadata named the new
//! segment); an extra empty segment after the live one.
//!
//! What remains undetectable: the *live* segment (the last, unsealed one) cut exactly at a record boundary
//! after a crash, or its last synced record damaged, cannot be told from a torn unsynced tail, because the
//! only record of how far the live segment was synced is inside the segment itself (each fragment's
//! `synced_through`). Recording it elsewhere would cost a second fsync per commit; RocksDB's
//! `track_and_verify_wals_in_manifest` has the same limit for the live WAL. A segment the writer moved on
//! from, or closed, is covered: its length is in its successor's LINK and its end is marked by its SEAL.

pub mod format;
pub mod reader;
pub mod writer;

pub use reader::{RecoveryMode, replay, replay_file};
#[cfg(feature = "testing")]
pub use writer::Link;
pub use writer::{LogKind, WalWriter};

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
