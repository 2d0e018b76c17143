//! WAL replay: reads segments back, record by record, classifies damage, and validates the segment chain.
//!
//! Recovery steps for one segment:
//! 1. Read block by block; parse fragments and reassemble records (FIRST, MIDDLE…, LAST or FULL).
//!    Every complete record is handed to the caller in log order. A LINK at offset 0 and PAD fragments
//!    are skipped; a SEAL ends the segment (anything after it is `Corruption`, as is a SEAL whose length
//!    is not where it stands).
//! 2. The first thing that is not a valid continuation — a bad checksum, an unknown type (zeros), a length
//!    past the block or file, another segment's number, a fragment out of sequence, or the end of the file
//!    inside a record — ends the valid log at `p`, the end of the last complete record (or LINK).
//! 3. In [`RecoveryMode::TolerateCorruptedTail`] (the default) the rest of the segment is searched for any
//!    valid fragment whose `synced_through` is beyond `p`. If one exists the damaged bytes had been synced:
//!    the result is `Corruption` naming the segment and `p`. Otherwise the tail was never durable (a torn,
//!    zeroed or garbage tail after a crash) and is dropped and counted.
//!
//! The chain (see [the module docs of `wal`](super)), from the first live segment `F` the caller passes
//! (`None`: not recorded, not checked), for consecutive segments `A`, `B`:
//! - `F` must be present.
//! - `A` ends with a valid SEAL: it must name `B` (naming a smaller number: that segment is missing,
//!   `Corruption` naming it; a larger one: `Corruption` naming `A`), and `B`'s LINK, if valid, must name
//!   `A` and `A`'s data length. A sealed `A` was synced whole: damage in it means its SEAL is not seen,
//!   which is the next case.
//! - `A` has no valid SEAL (never written, cut off, or damage before it): `A` is treated as the last
//!   segment (the tail rules above apply to it), and every later segment must hold no record and no SEAL
//!   (what a crash between a rotation's LINK and SEAL, or inside recovery, leaves); one that does proves
//!   `A` was sealed: `Corruption` naming `A`. A later segment's valid LINK must name its predecessor and a
//!   length no greater than the predecessor's valid data (the writer synced that much before writing the
//!   LINK): a longer one means `A` was cut or emptied, `Corruption` naming `A`.
//! - The last segment ends with a valid SEAL naming `X`: `X` was created and synced before that SEAL was
//!   written, so it is missing: `Corruption` naming `X`.
//!
//! The limit of these rules: the *live* segment (the last one, unsealed) cut at a record boundary, or
//! damage to its last record, is indistinguishable from a torn tail (no later fragment records a sync
//! covering it, and nothing outside the segment records its synced length), so it is dropped and counted
//! even if it had been synced.
//!
//! [`RecoveryMode::PointInTime`] instead stops at the first damage wherever it is, ignores everything after
//! it (later segments included) and reports where it stopped. A chain break stops it the same way: a
//! missing `F` replays nothing (`truncated_at` names `F`, offset 0); a SEAL naming a missing or unexpected
//! segment stops after the sealed segment's records; an unsealed segment followed by records stops at the
//! unsealed segment's end.
//!
//! Allocation is bounded by the file: a record is reassembled from fragments actually present.

use super::format::{
    BLOCK_SIZE, FragmentType, HEADER_LEN, MARKER_LEN, parse_fragment, parse_marker_payload,
};
use super::segment_name;
use super::writer::Link;
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
    /// The LINK the next segment must carry: the last segment read and its data length (as replayed).
    pub next_link: Link,
}

/// Replays the WAL: the segments of `segments` (ascending numbers) at or above `first`, the first live
/// segment the engine's durable metadata names (`None`: not recorded, so not checked), calling `apply`
/// for each complete record in log order, and validates the chain of LINK and SEAL records (see the
/// module docs).
///
/// # Errors
/// `Corruption` for damage in synced data and for a missing, emptied or cut segment the chain proves
/// held synced data (see the module docs); `Io`; the first error `apply` returns.
pub fn replay(
    storage: &Storage,
    segments: &[u64],
    first: Option<u64>,
    mode: RecoveryMode,
    mut apply: impl FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<ReplayOutcome> {
    let mut outcome = ReplayOutcome::default();
    let live: Vec<u64> = segments
        .iter()
        .copied()
        .filter(|s| first.is_none_or(|f| *s >= f))
        .collect();
    if let Some(f) = first
        && live.first() != Some(&f)
    {
        let name = segment_name(f);
        if mode == RecoveryMode::PointInTime {
            outcome.truncated_at = Some((name, 0));
            return Ok(outcome);
        }
        return Err(Error::corruption(
            name,
            None,
            "missing, though the engine's metadata (MANIFEST log number or B-tree header) names it as \
             the first live WAL segment",
        ));
    }
    // `Some((segment, data end))` once a segment without a valid SEAL was read: it is treated as the
    // last segment, and the segments after it must be what a crash inside a rotation (or inside
    // recovery) leaves: no record, no SEAL, and any LINK consistent with its predecessor.
    let mut unsealed: Option<(u64, u64)> = None;
    // The previous segment and its data length (as replayed).
    let mut prev: Option<(u64, u64)> = None;
    // A chain break in `PointInTime` mode: replay stops there.
    let stop = |outcome: &mut ReplayOutcome, name: String, at: u64| {
        outcome.truncated_at = Some((name, at));
    };
    for (i, &segment) in live.iter().enumerate() {
        let name = segment_name(segment);
        let next_present = live.get(i + 1).copied();
        let file = storage.open_required(&name, false)?;
        let link = read_link(&file, segment)?;
        if let Some((open, open_len)) = unsealed {
            // A trailing segment after an unsealed one: scanned, never applied.
            outcome.segments += 1;
            let scan = scan_segment(&file, segment, true, &mut |_| Ok(()))?;
            let checked = if scan.records > 0 || scan.seal.is_some() {
                Err(Error::corruption(
                    segment_name(open),
                    Some(open_len),
                    format!(
                        "ends without a valid SEAL (cut, emptied or damaged) although the later segment \
                         {name} holds {}: the writer moves to a new segment only after sealing and \
                         syncing the old one",
                        if scan.records > 0 {
                            "records"
                        } else {
                            "a SEAL"
                        }
                    ),
                ))
            } else {
                match (link, prev) {
                    (Some(link), Some((p, p_len))) => check_trailing_link(&name, link, p, p_len),
                    _ => Ok(()),
                }
            };
            if let Err(e) = checked {
                if mode == RecoveryMode::PointInTime {
                    stop(&mut outcome, segment_name(open), open_len);
                    return Ok(outcome);
                }
                return Err(e);
            }
            prev = Some((segment, scan.data_end));
            continue;
        }
        if let (Some(link), Some((p, p_len))) = (link, prev) {
            // The predecessor was sealed (or this segment would be a trailing one).
            let checked = if link.0 != p {
                Err(Error::corruption(
                    &name,
                    Some(0),
                    format!(
                        "its LINK names segment {} as its predecessor, but {} precedes it",
                        segment_name(link.0),
                        segment_name(p)
                    ),
                ))
            } else if link.1 != p_len {
                Err(Error::corruption(
                    segment_name(p),
                    Some(p_len),
                    format!(
                        "its SEAL records data length {p_len}, but the LINK of {name} records {}",
                        link.1
                    ),
                ))
            } else {
                Ok(())
            };
            if let Err(e) = checked {
                if mode == RecoveryMode::PointInTime {
                    stop(&mut outcome, name, 0);
                    return Ok(outcome);
                }
                return Err(e);
            }
        }
        outcome.segments += 1;
        let scan = scan_segment(&file, segment, true, &mut |rec| {
            outcome.records += 1;
            apply(rec)
        })?;
        prev = Some((segment, scan.data_end));
        if let Some(end) = scan.damaged_at {
            outcome.truncated_bytes += scan.len - end;
            outcome.truncated_at = Some((name.clone(), end));
            if mode == RecoveryMode::PointInTime {
                return Ok(outcome);
            }
            if let Some(why) = scan.broken {
                return Err(Error::corruption(&name, Some(end), why));
            }
            if let Some(at) = find_synced_after(&file, segment, scan.len, end, scan.resume_at)? {
                return Err(Error::corruption(
                    &name,
                    Some(end),
                    format!(
                        "damaged record in synced data (a valid fragment at offset {at} was written \
                         after an fsync covering it)"
                    ),
                ));
            }
            // A torn tail: legal only if nothing after this segment holds records (checked above).
            unsealed = Some((segment, end));
            continue;
        }
        let Some(seal) = scan.seal else {
            // The live segment, or one a crash inside a rotation left unsealed.
            unsealed = Some((segment, scan.data_end));
            continue;
        };
        if next_present == Some(seal.next) {
            continue;
        }
        let (file_named, at, why) = if next_present.is_none_or(|n| seal.next < n) {
            (
                segment_name(seal.next),
                None,
                format!(
                    "missing, though the SEAL of {name} (offset {}) names it as the next WAL segment \
                     (it was created and synced before that SEAL was written)",
                    seal.at
                ),
            )
        } else {
            (
                name.clone(),
                Some(seal.at),
                format!(
                    "its SEAL names {} as the next WAL segment, but the next one present is {}",
                    segment_name(seal.next),
                    next_present.map_or_else(String::new, segment_name),
                ),
            )
        };
        if mode == RecoveryMode::PointInTime {
            stop(&mut outcome, name, seal.at);
            return Ok(outcome);
        }
        return Err(Error::corruption(file_named, at, why));
    }
    outcome.next_link = prev.map_or_else(Link::default, |(p, p_len)| Link {
        prev: p,
        prev_len: p_len,
    });
    Ok(outcome)
}

/// The LINK at offset 0 of `file`, if there is a valid one.
fn read_link(file: &File, segment: u64) -> Result<Option<(u64, u64)>> {
    let mut buf = [0u8; MARKER_LEN];
    let got = file.read_at(0, &mut buf, ReadPurpose::Recovery)?;
    Ok(buf
        .get(..got)
        .and_then(|b| parse_fragment(b, segment))
        .filter(|f| f.kind == FragmentType::Link)
        .and_then(|f| parse_marker_payload(f.payload)))
}

/// Checks the LINK `(prev, prev_len)` of trailing segment `name` (after an unsealed segment) against the
/// segment before it, `p`, whose data as replayed ends at `p_len`: that segment was synced through the
/// LINK's `prev_len` before the LINK was written (by the rotation, or by [`WalWriter::create`] at open).
///
/// [`WalWriter::create`]: super::WalWriter::create
fn check_trailing_link(name: &str, link: (u64, u64), p: u64, p_len: u64) -> Result<()> {
    if link.0 != p {
        return Err(Error::corruption(
            name,
            Some(0),
            format!(
                "its LINK names segment {} as its predecessor, but {} precedes it",
                segment_name(link.0),
                segment_name(p)
            ),
        ));
    }
    if link.1 > p_len {
        return Err(Error::corruption(
            segment_name(p),
            Some(p_len),
            format!(
                "its valid data ends at {p_len}, but the LINK of {name} records {} bytes, synced \
                 before that LINK was written (the segment was cut or emptied)",
                link.1
            ),
        ));
    }
    Ok(())
}

/// Replays one log file in WAL framing, named `name`, whose fragments carry log number `number` (the LSM
/// manifest is such a log). A damaged tail is tolerated exactly as for the last WAL segment. LINK, SEAL
/// and PAD fragments are not part of this framing: one is damage.
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
    let file = storage.open_required(name, false)?;
    outcome.segments += 1;
    let scan = scan_segment(&file, number, false, &mut |rec| {
        outcome.records += 1;
        apply(rec)
    })?;
    let Some(end) = scan.damaged_at else {
        return Ok(outcome);
    };
    outcome.truncated_bytes += scan.len - end;
    outcome.truncated_at = Some((name.to_string(), end));
    if mode == RecoveryMode::PointInTime {
        return Ok(outcome);
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
    Ok(outcome)
}

/// A valid SEAL found at the end of a segment.
#[derive(Clone, Copy, Debug)]
struct Seal {
    /// Its offset.
    at: u64,
    /// The segment it names as the next.
    next: u64,
}

struct SegmentScan {
    len: u64,
    /// End of the last complete record, if the segment does not end cleanly there.
    damaged_at: Option<u64>,
    /// Where to search for later valid fragments.
    resume_at: u64,
    /// Damage that is `Corruption` whatever came before (a SEAL that contradicts its position, bytes
    /// after a SEAL): why.
    broken: Option<String>,
    /// End of the last complete record or LINK: the segment's data length.
    data_end: u64,
    /// Complete records (LINK, SEAL and PAD excluded).
    records: u64,
    /// The LINK at offset 0: `(prev, prev_len)`.
    link: Option<(u64, u64)>,
    /// The SEAL that ends the segment, if it is valid and consistent.
    seal: Option<Seal>,
    /// Why the valid log ends at `damaged_at` (for `rumdb inspect wal`; replay's errors say it their
    /// own way).
    why: String,
}

/// Reads one block (the last may be short) into `buf`.
fn read_block(file: &File, index: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
    let start = index * BLOCK_SIZE as u64;
    let n = (len - start).min(BLOCK_SIZE as u64) as usize;
    buf.resize(n, 0);
    file.read_exact_at(start, buf, ReadPurpose::Recovery)
}

/// Scans one file, handing each complete record to `apply`. `ledger`: LINK, SEAL and PAD fragments are
/// part of the framing (WAL segments); otherwise each is damage.
fn scan_segment(
    file: &File,
    segment: u64,
    ledger: bool,
    apply: &mut dyn FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<SegmentScan> {
    let len = file.len()?;
    let blocks = len.div_ceil(BLOCK_SIZE as u64);
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    // The record being reassembled: its start offset and payload so far.
    let mut partial: Option<(u64, Vec<u8>)> = None;
    let mut scan = SegmentScan {
        len,
        damaged_at: None,
        resume_at: len,
        broken: None,
        data_end: 0,
        records: 0,
        link: None,
        seal: None,
        why: String::new(),
    };
    for index in 0..blocks {
        read_block(file, index, len, &mut block)?;
        let base = index * BLOCK_SIZE as u64;
        let mut at = 0usize;
        while BLOCK_SIZE - at >= HEADER_LEN && at < block.len() {
            let here = base + at as u64;
            let Some(frag) = block.get(at..).and_then(|b| parse_fragment(b, segment)) else {
                scan.damaged_at = Some(scan.data_end);
                scan.resume_at = here;
                scan.why = describe_bad_fragment(block.get(at..).unwrap_or_default());
                return Ok(scan);
            };
            let next = at + frag.encoded_len();
            let end = base + next as u64;
            match (frag.kind, partial.take()) {
                (FragmentType::Full, None) => {
                    apply(ReplayRecord {
                        segment,
                        offset: here,
                        payload: frag.payload,
                    })?;
                    scan.records += 1;
                    scan.data_end = end;
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
                    scan.records += 1;
                    scan.data_end = end;
                }
                (FragmentType::Link, None) if ledger && here == 0 => {
                    if let Some(fields) = parse_marker_payload(frag.payload) {
                        scan.link = Some(fields);
                        scan.data_end = end;
                    } else {
                        scan.damaged_at = Some(scan.data_end);
                        scan.resume_at = here;
                        scan.why = "malformed LINK payload".to_string();
                        return Ok(scan);
                    }
                }
                (FragmentType::Pad, None) if ledger => {}
                (FragmentType::Seal, None) if ledger => {
                    let Some((next_segment, sealed_len)) = parse_marker_payload(frag.payload)
                    else {
                        scan.damaged_at = Some(scan.data_end);
                        scan.resume_at = here;
                        scan.why = "malformed SEAL payload".to_string();
                        return Ok(scan);
                    };
                    if sealed_len != scan.data_end || next_segment <= segment {
                        scan.damaged_at = Some(scan.data_end);
                        scan.resume_at = here;
                        let why = format!(
                            "SEAL at offset {here} records data length {sealed_len} and next segment \
                             {next_segment}, but the data ends at {}",
                            scan.data_end
                        );
                        scan.why.clone_from(&why);
                        scan.broken = Some(why);
                        return Ok(scan);
                    }
                    if end < len {
                        scan.damaged_at = Some(scan.data_end);
                        scan.resume_at = end;
                        let why = format!(
                            "{} bytes follow the SEAL at offset {here}, which ends the segment",
                            len - end
                        );
                        scan.why.clone_from(&why);
                        scan.broken = Some(why);
                        return Ok(scan);
                    }
                    scan.seal = Some(Seal {
                        at: here,
                        next: next_segment,
                    });
                    return Ok(scan);
                }
                // Out of sequence: a FULL or FIRST inside a record, a MIDDLE or LAST outside one, a
                // LINK past offset 0, a ledger fragment inside a record or outside a WAL segment.
                (kind, partial) => {
                    scan.damaged_at = Some(scan.data_end);
                    scan.resume_at = here;
                    scan.why = format!(
                        "{kind:?} fragment out of sequence ({})",
                        if partial.is_some() {
                            "inside a record"
                        } else {
                            "outside a record"
                        }
                    );
                    return Ok(scan);
                }
            }
            at = next;
        }
    }
    // A record cut off by the end of the file, or stray bytes after the last record.
    if partial.is_some() || scan.data_end < len {
        scan.damaged_at = Some(scan.data_end);
        scan.why = if partial.is_some() {
            "the file ends inside a record (its last fragment is missing)".to_string()
        } else {
            "bytes after the last record that hold no fragment".to_string()
        };
    }
    Ok(scan)
}

/// Why `bytes` (from where a fragment should start) hold none: zeros, or a header that fails its checks.
fn describe_bad_fragment(bytes: &[u8]) -> String {
    let header = bytes.get(..HEADER_LEN).unwrap_or(bytes);
    let payload_len = bytes
        .get(4..6)
        .and_then(|l| l.first_chunk::<2>())
        .map_or(0, |l| usize::from(u16::from_le_bytes(*l)));
    if header.iter().all(|&b| b == 0) {
        "zeros where a fragment should start (never written, or preallocated)".to_string()
    } else if header.len() < HEADER_LEN || HEADER_LEN + payload_len > bytes.len() {
        "a fragment runs past the end of its block or of the file (a torn write)".to_string()
    } else {
        "a fragment fails its checks (checksum, type, length or segment number)".to_string()
    }
}

/// What [`inspect_segment`] found in one WAL segment on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentReport {
    /// The file's length.
    pub len: u64,
    /// The LINK at offset 0: `(prev, prev_len)`.
    pub link: Option<(u64, u64)>,
    /// A valid SEAL ending the segment: its offset and the segment it names.
    pub seal: Option<(u64, u64)>,
    /// End of the last complete record or LINK.
    pub data_end: u64,
    /// Complete records.
    pub records: u64,
    /// Where the valid log ends before the end of the file, if it does.
    pub stop: Option<SegmentStop>,
}

/// Where and why replay of a segment stops before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentStop {
    /// The end of the last complete record: what replay keeps.
    pub at: u64,
    /// Where the first fragment that is not a valid continuation starts.
    pub fragment_at: u64,
    /// What is wrong there.
    pub why: String,
    /// The offset of a later valid fragment whose `synced_through` covers the damage: the damaged bytes
    /// were synced, so replay refuses the segment (`Corruption`) instead of dropping the tail.
    pub synced_proof: Option<u64>,
    /// The damage contradicts the segment's SEAL (always `Corruption`).
    pub broken: bool,
}

/// Scans one WAL segment as replay does, handing each record to `apply`, and reports how it ends,
/// without the chain checks that need its neighbours: where replay would stop and why, and whether
/// that stop is a tolerated torn tail or `Corruption`.
///
/// # Errors
/// `Io`; the first error `apply` returns.
pub(crate) fn inspect_segment(
    file: &File,
    segment: u64,
    apply: &mut dyn FnMut(ReplayRecord<'_>) -> Result<()>,
) -> Result<SegmentReport> {
    let scan = scan_segment(file, segment, true, apply)?;
    let stop = match scan.damaged_at {
        None => None,
        Some(at) => Some(SegmentStop {
            at,
            fragment_at: scan.resume_at,
            synced_proof: if scan.broken.is_some() {
                None
            } else {
                find_synced_after(file, segment, scan.len, at, scan.resume_at)?
            },
            broken: scan.broken.is_some(),
            why: scan.why,
        }),
    };
    Ok(SegmentReport {
        len: scan.len,
        link: scan.link,
        seal: scan.seal.map(|s| (s.at, s.next)),
        data_end: scan.data_end,
        records: scan.records,
        stop,
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
