//! WAL replay: reads segments back, record by record, and classifies damage.
//!
//! Recovery steps for one segment:
//! 1. Read block by block; parse fragments and reassemble records (FIRST, MIDDLE…, LAST or FULL).
//!    Every complete record is handed to the caller in log order.
//! 2. The first thing that is not a valid continuation — a bad checksum, an unknown type (zeros), a length
//!    past the block or file, another segment's number, a fragment out of sequence, or the end of the file
//!    inside a record — ends the valid log at `p`, the end of the last complete record.
//! 3. In [`RecoveryMode::TolerateCorruptedTail`] (the default) the rest of the segment is searched for any
//!    valid fragment whose `synced_through` is beyond `p`. If one exists the damaged bytes had been synced:
//!    the result is `Corruption` naming the segment and `p`. Otherwise the tail was never durable (a torn,
//!    zeroed or garbage tail after a crash) and is dropped and counted.
//! 4. Every segment but the last was fsync'd whole before the next was created, so damage there is
//!    `Corruption` in that mode too.
//!
//! The limit of this rule: damage to the *last* record of the log is indistinguishable from a torn tail
//! (no later fragment records a sync covering it), so it is dropped and counted even if it had been
//! synced.
//!
//! [`RecoveryMode::PointInTime`] instead stops at the first damage wherever it is, ignores everything after
//! it (later segments included) and reports where it stopped.
//!
//! Allocation is bounded by the file: a record is reassembled from fragments actually present.

use super::format::{BLOCK_SIZE, FragmentType, HEADER_LEN, parse_fragment};
use super::segment_name;
use crate::error::{Error, Result};
use crate::storage::{File, ReadPurpose, Storage};

/// How replay treats damage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Drop a damaged tail that was never synced; damage in synced data is `Corruption`.
    #[default]
    TolerateCorruptedTail,
    /// Stop at the first damage, wherever it is, and open with the state before it.
    PointInTime,
}

/// One record handed to the replay callback.
#[derive(Debug, Clone, Copy)]
pub struct ReplayRecord<'a> {
    /// The segment it came from.
    pub segment: u64,
    /// Its offset in the segment (for error messages).
    pub offset: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Segments read.
    pub segments: u64,
    /// Records handed to the callback.
    pub records: u64,
    /// Bytes dropped after the valid log ended.
    pub truncated_bytes: u64,
    /// Where the valid log ended, if anything was dropped: segment file name and offset.
    pub truncated_at: Option<(String, u64)>,
}

/// Replays `segments` in order (ascending numbers), calling `apply` for each complete record.
///
/// # Errors
/// `Corruption` for damage in synced data (see the module docs); `Io`; the first error `apply` returns.
pub fn replay(
    storage: &Storage,
    segments: &[u64],
    mode: RecoveryMode,
    mut apply: impl FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<ReplayOutcome> {
    let mut outcome = ReplayOutcome::default();
    for (i, &segment) in segments.iter().enumerate() {
        let sealed = i + 1 < segments.len();
        let stop = replay_one(
            storage,
            &segment_name(segment),
            segment,
            sealed,
            mode,
            &mut outcome,
            &mut apply,
        )?;
        if stop {
            break;
        }
    }
    Ok(outcome)
}

/// Replays one log file in WAL framing, named `name`, whose fragments carry log number `number` (the LSM
/// manifest is such a log). A damaged tail is tolerated exactly as for the last WAL segment.
///
/// # Errors
/// As [`replay`].
pub fn replay_file(
    storage: &Storage,
    name: &str,
    number: u64,
    mode: RecoveryMode,
    mut apply: impl FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<ReplayOutcome> {
    let mut outcome = ReplayOutcome::default();
    replay_one(storage, name, number, false, mode, &mut outcome, &mut apply)?;
    Ok(outcome)
}

/// Replays one file into `outcome`; returns true if replay must stop here (point-in-time damage).
fn replay_one(
    storage: &Storage,
    name: &str,
    number: u64,
    sealed: bool,
    mode: RecoveryMode,
    outcome: &mut ReplayOutcome,
    apply: &mut dyn FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<bool> {
    let file = storage.open_required(name, false)?;
    outcome.segments += 1;
    let scan = scan_segment(&file, number, &mut |rec| {
        outcome.records += 1;
        apply(rec)
    })?;
    let Some(end) = scan.damaged_at else {
        return Ok(false);
    };
    outcome.truncated_bytes += scan.len - end;
    outcome.truncated_at = Some((name.to_string(), end));
    if mode == RecoveryMode::PointInTime {
        return Ok(true);
    }
    if sealed {
        return Err(Error::corruption(
            name,
            Some(end),
            "damaged record in a sealed (fully synced) WAL segment",
        ));
    }
    if let Some(at) = find_synced_after(&file, number, scan.len, end, scan.resume_at)? {
        return Err(Error::corruption(
            name,
            Some(end),
            format!(
                "damaged record in synced data (a valid record at offset {at} was written after an \
                 fsync covering it)"
            ),
        ));
    }
    Ok(false)
}

struct SegmentScan {
    len: u64,
    /// End of the last complete record, if the segment does not end cleanly there.
    damaged_at: Option<u64>,
    /// Where to search for later valid fragments.
    resume_at: u64,
}

/// Reads one block (the last may be short) into `buf`.
fn read_block(file: &File, index: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
    let start = index * BLOCK_SIZE as u64;
    let n = (len - start).min(BLOCK_SIZE as u64) as usize;
    buf.resize(n, 0);
    file.read_exact_at(start, buf, ReadPurpose::Recovery)
}

fn scan_segment(
    file: &File,
    segment: u64,
    apply: &mut dyn FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<SegmentScan> {
    let len = file.len()?;
    let blocks = len.div_ceil(BLOCK_SIZE as u64);
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    // The record being reassembled: its start offset and payload so far.
    let mut partial: Option<(u64, Vec<u8>)> = None;
    let mut valid_end = 0u64;
    for index in 0..blocks {
        read_block(file, index, len, &mut block)?;
        let base = index * BLOCK_SIZE as u64;
        let mut at = 0usize;
        while BLOCK_SIZE - at >= HEADER_LEN && at < block.len() {
            let here = base + at as u64;
            let damaged = |valid_end| {
                Ok(SegmentScan {
                    len,
                    damaged_at: Some(valid_end),
                    resume_at: here,
                })
            };
            let Some(frag) = block.get(at..).and_then(|b| parse_fragment(b, segment)) else {
                return damaged(valid_end);
            };
            let next = at + frag.encoded_len();
            match (frag.kind, partial.take()) {
                (FragmentType::Full, None) => {
                    apply(ReplayRecord {
                        segment,
                        offset: here,
                        payload: frag.payload,
                    })?;
                    valid_end = base + next as u64;
                }
                (FragmentType::First, None) => partial = Some((here, frag.payload.to_vec())),
                (FragmentType::Middle, Some((start, mut data))) => {
                    data.extend_from_slice(frag.payload);
                    partial = Some((start, data));
                }
                (FragmentType::Last, Some((start, mut data))) => {
                    data.extend_from_slice(frag.payload);
                    apply(ReplayRecord {
                        segment,
                        offset: start,
                        payload: &data,
                    })?;
                    valid_end = base + next as u64;
                }
                // Out of sequence: a FULL or FIRST inside a record, a MIDDLE or LAST outside one.
                _ => return damaged(valid_end),
            }
            at = next;
        }
    }
    // A record cut off by the end of the file, or stray bytes after the last record.
    let damaged_at = (partial.is_some() || valid_end < len).then_some(valid_end);
    Ok(SegmentScan {
        len,
        damaged_at,
        resume_at: len,
    })
}

/// Searches `[from, len)` for a valid fragment of `segment` with `synced_through > end`; returns its
/// offset. Valid fragments are skipped whole; elsewhere the search moves a byte at a time (skipping block
/// trailers), so damage to a length field cannot hide a later record.
fn find_synced_after(
    file: &File,
    segment: u64,
    len: u64,
    end: u64,
    from: u64,
) -> Result<Option<u64>> {
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    let mut pos = from;
    while pos < len {
        let index = pos / BLOCK_SIZE as u64;
        read_block(file, index, len, &mut block)?;
        let base = index * BLOCK_SIZE as u64;
        let mut at = (pos - base) as usize;
        while BLOCK_SIZE - at >= HEADER_LEN && at < block.len() {
            match block.get(at..).and_then(|b| parse_fragment(b, segment)) {
                Some(frag) if frag.synced_through > end => return Ok(Some(base + at as u64)),
                Some(frag) => at += frag.encoded_len(),
                None => at += 1,
            }
        }
        pos = base + BLOCK_SIZE as u64;
    }
    Ok(None)
}
