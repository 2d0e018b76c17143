//! Seeded WAL histories run over the simulated backend, crashed at every storage operation under every
//! crash mode, and checked against what was acknowledged (tests/wal_crash.rs, and later the fuzz targets).
//!
//! The oracle, for a crash at any point under any mode:
//! - replay succeeds: damage to unsynced bytes is never `Corruption`;
//! - the records replayed are exactly the first `k` records appended, byte for byte (no hole, no partial
//!   record, nothing invented);
//! - `k ≥` the records acknowledged as synced (a `Sync` append, `sync()` or a rotation that returned `Ok`);
//! - after a process kill, `k ≥` the records handed to the OS (a `Flush` append returned `Ok`, which also
//!   writes out every buffered record before it);
//! - `k ≤` the records whose append was called (a failed append may or may not be there).
#![expect(
    clippy::indexing_slicing,
    reason = "a test harness: indices come from the loops over the same vectors"
)]

use std::sync::Arc;

use super::Rng;
use crate::engine::Durability;
use crate::error::Error;
use crate::storage::Storage;
use crate::storage::sim::{CrashMode, FaultPlan, SimBackend};
use crate::wal::format::{BLOCK_SIZE, HEADER_LEN, MARKER_LEN};
use crate::wal::{self, Link, RecoveryMode, WalWriter};

/// One step of a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalOp {
    /// Append a record of `len` bytes with this durability.
    Append {
        /// Payload length.
        len: usize,
        /// Durability of the append.
        durability: Durability,
    },
    /// `WalWriter::sync`.
    Sync,
    /// `WalWriter::rotate` to the next segment.
    Rotate,
    /// `WalWriter::close` (seals the segment, starting an empty one); always the last operation.
    Close,
}

/// A seeded sequence of WAL operations.
#[derive(Clone, Debug)]
pub struct WalHistory {
    /// The seed it was generated from (payload bytes derive from it too).
    pub seed: u64,
    /// The operations.
    pub ops: Vec<WalOp>,
}

/// Every crash mode, with each flag setting that changes what survives.
pub const ALL_CRASH_MODES: [CrashMode; 6] = [
    CrashMode::ProcessKill,
    CrashMode::PowerLossDropAll,
    CrashMode::PowerLossPrefix { torn: false },
    CrashMode::PowerLossPrefix { torn: true },
    CrashMode::PowerLossAny {
        garbage: true,
        zeros: true,
    },
    CrashMode::DirOnly,
];

impl WalHistory {
    /// A history of 1–12 operations; records are mostly small, sometimes spanning several blocks.
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let n = 1 + rng.below(12) as usize;
        let ops = (0..n)
            .map(|_| match rng.below(20) {
                0 => WalOp::Sync,
                1 => WalOp::Rotate,
                _ => {
                    let len = match rng.below(10) {
                        0 => 200 + rng.below(70_000),
                        1 | 2 => 200 + rng.below(5_000),
                        _ => rng.below(200),
                    } as usize;
                    let durability = match rng.below(3) {
                        0 => Durability::Sync,
                        1 => Durability::Flush,
                        _ => Durability::Buffered,
                    };
                    WalOp::Append { len, durability }
                }
            })
            .collect::<Vec<_>>();
        let mut ops = ops;
        if rng.below(3) == 0 {
            ops.push(WalOp::Close);
        }
        WalHistory { seed, ops }
    }

    /// The payload of the `index`-th append: its index, then seeded bytes.
    pub fn payload(&self, index: usize, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        Rng::new(self.seed.wrapping_mul(31).wrapping_add(index as u64)).fill(&mut out);
        let tag = (index as u64).to_le_bytes();
        for (o, t) in out.iter_mut().zip(tag) {
            *o = t;
        }
        out
    }
}

/// Where an acknowledged record landed.
#[derive(Clone, Copy, Debug)]
pub struct RecordPlace {
    /// Its segment.
    pub segment: u64,
    /// Its first byte (the end of the previous record: padding may come first).
    pub start: u64,
    /// Its length.
    pub len: usize,
    /// How many records were known durable when it was appended.
    pub synced_before: usize,
}

/// What a run acknowledged.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// Appends called, including one that failed.
    pub issued: usize,
    /// Records known handed to the OS.
    pub flushed: usize,
    /// Records known durable.
    pub synced: usize,
    /// Acknowledged records, in order.
    pub places: Vec<RecordPlace>,
    /// The last segment created.
    pub last_segment: u64,
    /// Whether segment 1 was created (its directory entry synced): it must be there after any crash.
    pub created: bool,
}

/// Runs `history` on `storage` until the first error.
pub fn run_history(storage: &Storage, history: &WalHistory) -> RunOutcome {
    let mut out = RunOutcome::default();
    let Ok(w) = WalWriter::create(storage, 1, Link::default()) else {
        return out;
    };
    out.last_segment = 1;
    out.created = true;
    let mut start = MARKER_LEN as u64;
    for op in &history.ops {
        match *op {
            WalOp::Append { len, durability } => {
                let index = out.issued;
                out.issued += 1;
                let payload = history.payload(index, len);
                let segment = w.segment();
                let Ok(end) = w.append(&payload, durability) else {
                    return out;
                };
                out.places.push(RecordPlace {
                    segment,
                    start,
                    len,
                    synced_before: out.synced,
                });
                start = end.offset;
                match durability {
                    Durability::Sync => (out.synced, out.flushed) = (out.issued, out.issued),
                    Durability::Flush => out.flushed = out.issued,
                    Durability::Buffered => {}
                }
            }
            WalOp::Sync => {
                if w.sync().is_err() {
                    return out;
                }
                (out.synced, out.flushed) = (out.issued, out.issued);
            }
            WalOp::Rotate => {
                let next = out.last_segment + 1;
                if w.rotate(next).is_err() {
                    return out;
                }
                out.last_segment = next;
                start = MARKER_LEN as u64;
                (out.synced, out.flushed) = (out.issued, out.issued);
            }
            WalOp::Close => {
                if w.close().is_err() {
                    return out;
                }
                out.last_segment += 1;
                (out.synced, out.flushed) = (out.issued, out.issued);
                return out;
            }
        }
    }
    out
}

/// Replays every segment on `storage` (segment 1 must be there if `created`); the payloads, or the
/// error.
pub fn replay_all(storage: &Storage, created: bool) -> crate::Result<Vec<Vec<u8>>> {
    let mut got = Vec::new();
    let segments = wal::list_segments(storage)?;
    let first = created.then_some(1);
    wal::replay(storage, &segments, first, RecoveryMode::default(), |r| {
        got.push(r.payload.to_vec());
        Ok(())
    })?;
    Ok(got)
}

/// Runs `history` with a crash at mutating operation `crash_at` (or after the end), crashes under `mode`,
/// replays, and checks the oracle of the module docs. Returns the number of mutating operations the run
/// issued.
///
/// # Errors
/// A description of the violated rule.
pub fn check_crash(
    history: &WalHistory,
    crash_at: Option<u64>,
    mode: CrashMode,
) -> Result<u64, String> {
    let sim = SimBackend::new(history.seed ^ crash_at.unwrap_or(0).rotate_left(32));
    sim.set_fault_plan(FaultPlan {
        crash_at_op: crash_at,
        ..FaultPlan::default()
    });
    let storage = Storage::new(Arc::new(sim.clone()));
    let outcome = run_history(&storage, history);
    let ops = sim.mutating_ops();
    let after = Storage::new(Arc::new(sim.crash(mode)));
    let what = || format!("seed {} crash_at {crash_at:?} mode {mode:?}", history.seed);
    let got = replay_all(&after, outcome.created)
        .map_err(|e| format!("{}: replay failed: {e}", what()))?;
    let k = got.len();
    let mut lens = history.ops.iter().filter_map(|op| match op {
        WalOp::Append { len, .. } => Some(*len),
        _ => None,
    });
    for (i, payload) in got.iter().enumerate() {
        let len = lens
            .next()
            .ok_or_else(|| format!("{}: more records than appends", what()))?;
        if *payload != history.payload(i, len) {
            return Err(format!(
                "{}: record {i} differs from what was appended",
                what()
            ));
        }
    }
    if k > outcome.issued {
        return Err(format!(
            "{}: {k} records but only {} appends",
            what(),
            outcome.issued
        ));
    }
    if k < outcome.synced {
        return Err(format!(
            "{}: {k} records but {} were acknowledged as synced",
            what(),
            outcome.synced
        ));
    }
    if mode == CrashMode::ProcessKill && k < outcome.flushed {
        return Err(format!(
            "{}: {k} records but {} had reached the OS",
            what(),
            outcome.flushed
        ));
    }
    Ok(ops)
}

/// Every crash point of `history` under every crash mode (plus a crash after the end). Returns the number
/// of crash images checked.
///
/// # Errors
/// The first violation.
pub fn check_every_crash_point(history: &WalHistory) -> Result<u64, String> {
    let total = check_crash(history, None, CrashMode::ProcessKill)?;
    let mut checked = 0;
    for mode in ALL_CRASH_MODES {
        for crash_at in (1..=total).map(Some).chain([None]) {
            check_crash(history, crash_at, mode)?;
            checked += 1;
        }
    }
    Ok(checked)
}

/// Runs `history` to the end, then flips one bit inside a record that is provably synced (a later record
/// of its segment was appended after a sync covering it, or its segment was sealed): replay must be
/// `Corruption` naming the segment. Returns `Ok(false)` when the history has no such record.
///
/// # Errors
/// A description of the violated rule.
pub fn check_synced_bit_flip(history: &WalHistory) -> Result<bool, String> {
    let sim = SimBackend::new(history.seed);
    let outcome = run_history(&Storage::new(Arc::new(sim.clone())), history);
    let proven: Vec<usize> = (0..outcome.places.len())
        .filter(|&i| {
            let place = outcome.places[i];
            outcome.places[i + 1..]
                .iter()
                .any(|later| later.segment > place.segment || later.synced_before > i)
        })
        .collect();
    let mut rng = Rng::new(history.seed ^ 0xb17f);
    let Some(&victim) = proven.get(rng.below(proven.len() as u64) as usize) else {
        return Ok(false);
    };
    let place = outcome.places[victim];
    let block = BLOCK_SIZE as u64;
    let mut start = place.start;
    if block - start % block < HEADER_LEN as u64 {
        start = start.div_ceil(block) * block;
    }
    let room = block - start % block - HEADER_LEN as u64;
    let first_fragment = HEADER_LEN as u64 + (place.len as u64).min(room);
    let bit = start * 8 + rng.below(first_fragment * 8);
    let image = sim.crash(CrashMode::ProcessKill);
    let name = wal::segment_name(place.segment);
    image
        .flip_bit(&name, bit)
        .map_err(|e| format!("seed {}: flip failed: {e}", history.seed))?;
    match replay_all(&Storage::new(Arc::new(image)), outcome.created) {
        Err(Error::Corruption { file, .. }) if file == name => Ok(true),
        Err(e) => Err(format!(
            "seed {}: bit {bit} of {name}: wrong error {e}",
            history.seed
        )),
        Ok(got) => Err(format!(
            "seed {}: bit {bit} of {name} (record {victim}) flipped in synced data, yet replay returned {} records",
            history.seed,
            got.len()
        )),
    }
}
