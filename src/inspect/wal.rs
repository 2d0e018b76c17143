//! One WAL segment ([`wal_segment`]).

use std::path::Path;

use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::wal::parse_segment_name;
use crate::wal::reader::inspect_segment;

/// One record of a WAL segment: a write batch and the sequence number of its first entry (entry `i`
/// has sequence `sequence + i`; the B-tree calls it the batch's LSN).
///
/// # Examples
///
/// See [`wal_segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalRecord {
    /// Where the record starts in the segment.
    pub offset: u64,
    /// The sequence number of its first entry.
    pub sequence: u64,
    /// Its entries ([`WriteBatch::iter`]).
    pub batch: WriteBatch,
}

/// How a segment ends, judged on its own: where replay stops and why.
///
/// # Examples
///
/// See [`wal_segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalEnd {
    /// A valid SEAL at `offset` ends the segment and names segment `next` as its successor: the writer
    /// moved on from it (rotation or clean close).
    Sealed {
        /// The SEAL's offset.
        offset: u64,
        /// The segment it names.
        next: u64,
    },
    /// The segment ends cleanly after its last record, without a SEAL: the live segment (or one a crash
    /// inside a rotation left unsealed).
    Open,
    /// Replay drops the bytes from `offset` (the end of the last complete record) as a tail that was never
    /// synced: a torn, zeroed or garbage tail after a crash.
    TornTail {
        /// The end of the last complete record.
        offset: u64,
        /// Where the first bad fragment starts.
        fragment_at: u64,
        /// Bytes dropped.
        dropped_bytes: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Replay refuses the segment with `Corruption` at `offset`: the damaged bytes were synced (a later
    /// valid fragment records an fsync covering them) or contradict the segment's SEAL.
    Damaged {
        /// The end of the last complete record.
        offset: u64,
        /// Where the first bad fragment starts.
        fragment_at: u64,
        /// What is wrong, and what proves the bytes synced.
        reason: String,
    },
}

/// A WAL segment decoded on its own.
///
/// The chain checks that need the segment's neighbours (a SEAL naming a missing segment, an unsealed
/// segment followed by records, a LINK recording a longer predecessor) are not made here: `verify` and
/// an open make them.
///
/// # Examples
///
/// See [`wal_segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalSegment {
    /// The segment number (from the file name; every fragment carries it).
    pub number: u64,
    /// The file's length.
    pub file_len: u64,
    /// The LINK at offset 0: the previous segment's number (0: none) and data length.
    pub link: Option<(u64, u64)>,
    /// Complete records.
    pub records: u64,
    /// The end of the last complete record (or the LINK): the segment's data length.
    pub data_end: u64,
    /// How the segment ends.
    pub end: WalEnd,
}

/// Reads the WAL segment at `path` (named `NNNNNN.log`) with the WAL's own replay scan, handing each
/// record to `each` in log order, and reports how the segment ends.
///
/// # Examples
///
/// ```
/// use rumdb::inspect::{WalEnd, wal_segment};
/// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
/// db.put("k", "v")?;
/// let segment = dir.path().join(format!("{:06}.log", rumdb::inspect::manifest(dir.path())?.log_number));
/// let mut keys = Vec::new();
/// let seg = wal_segment(&segment, |rec| {
///     keys.extend(rec.batch.iter().map(|op| op.key().to_vec()));
///     Ok(())
/// })?;
/// assert_eq!((seg.records, seg.end), (1, WalEnd::Open));
/// assert_eq!(keys, [b"k".to_vec()]);
/// db.close()?;
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// # Errors
/// `InvalidArgument` if the file is not named as a segment; `Corruption` if a record that passes its
/// checksum is not a write batch; `Io`; the first error `each` returns. Damage to the framing is not an
/// error: it is the [`WalEnd`].
pub fn wal_segment(
    path: &Path,
    mut each: impl FnMut(WalRecord) -> Result<()>,
) -> Result<WalSegment> {
    let (storage, name) = super::split_path(path)?;
    let number = parse_segment_name(&name).ok_or_else(|| {
        Error::invalid(format!(
            "{name} is not a WAL segment's name (NNNNNN.log: its fragments carry the number)"
        ))
    })?;
    let file = storage.open_required(&name, false)?;
    let report = inspect_segment(&file, number, &mut |rec| {
        let (sequence, batch) = WriteBatch::decode(rec.payload, &name, rec.offset)?;
        each(WalRecord {
            offset: rec.offset,
            sequence,
            batch,
        })
    })?;
    let end = match (report.stop, report.seal) {
        (Some(stop), _) if stop.broken || stop.synced_proof.is_some() => WalEnd::Damaged {
            offset: stop.at,
            fragment_at: stop.fragment_at,
            reason: match stop.synced_proof {
                Some(proof) => format!(
                    "{}; the valid fragment at offset {proof} was written after an fsync covering it",
                    stop.why
                ),
                None => stop.why,
            },
        },
        (Some(stop), _) => WalEnd::TornTail {
            offset: stop.at,
            fragment_at: stop.fragment_at,
            dropped_bytes: report.len - stop.at,
            reason: stop.why,
        },
        (None, Some((offset, next))) => WalEnd::Sealed { offset, next },
        (None, None) => WalEnd::Open,
    };
    Ok(WalSegment {
        number,
        file_len: report.len,
        link: report.link,
        records: report.records,
        data_end: report.data_end,
        end,
    })
}
