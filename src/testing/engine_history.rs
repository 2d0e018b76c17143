//! Seeded engine histories over the simulated backend: crash at any storage operation, under any crash
//! mode, recover, and check the recovered state against the model. The oracles:
//!
//! - **I1/I2 prefix + durability:** the recovered state equals the model after some batch `k` with
//!   `synced ≤ k ≤ issued` (after a process kill, `k ≥` the last batch handed to the OS);
//! - **I3 read paths agree:** every key's `get`, the forward scan and the reverse scan give that state;
//! - **I4 structure:** `verify()` passes;
//! - **I5 files:** the engine's own check that no orphan is left and no referenced file is missing;
//! - **I6 idempotence:** crashing again right after recovery and recovering again gives the same state;
//! - **I7 crash during recovery** ([`check_recovery_crashes`]): a recovery of the same crash image that
//!   itself crashes at any of its mutating operations, recovered again, gives the same state as one
//!   clean recovery (and I3–I5 hold).
//!
//! Engines plug in through [`EngineUnderTest`]: how to open one on a storage, and how to list the
//! files it considers orphans.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Rng;
use crate::batch::WriteBatch;
use crate::engine::{Durability, Engine, EngineExt, WriteOptions};
use crate::error::Result;
use crate::storage::Storage;
use crate::storage::sim::{CrashMode, FaultPlan, SimBackend};

/// One step of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write a batch: `(key, Some(value))` puts, `(key, None)` deletes.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>, Durability),
    /// Write one batch that deletes the keys in `start..end`, then applies `then` (puts and deletes,
    /// which win over the range delete where they fall inside it).
    RangeBatch {
        /// The first key deleted.
        start: Vec<u8>,
        /// The first key above the range.
        end: Vec<u8>,
        /// Entries after the range delete, in the same batch.
        then: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        /// The batch's durability.
        durability: Durability,
    },
    /// `Engine::sync`.
    Sync,
    /// `Engine::flush`.
    Flush,
    /// `Engine::compact`.
    Compact,
    /// Close cleanly and open again.
    Reopen,
}

/// An engine configuration under test.
pub trait EngineUnderTest {
    /// The engine type.
    type E: Engine;

    /// Opens (or creates) the engine on `storage` (Manual background, so runs reproduce).
    ///
    /// # Errors
    /// The engine's open errors.
    fn open(&self, storage: Storage) -> Result<Self::E>;

    /// Files in the directory that the open engine does not need (orphans), and files it needs that are
    /// missing, named with a prefix saying which. Empty when clean.
    ///
    /// # Errors
    /// Listing errors.
    fn stray_files(&self, engine: &Self::E, storage: &Storage) -> Result<Vec<String>>;
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The crash modes engine crash tests run (the torn prefix subsumes the untorn one).
pub const ENGINE_CRASH_MODES: [CrashMode; 5] = [
    CrashMode::ProcessKill,
    CrashMode::PowerLossDropAll,
    CrashMode::PowerLossPrefix { torn: true },
    CrashMode::PowerLossAny {
        garbage: true,
        zeros: true,
    },
    CrashMode::DirOnly,
];

/// A seeded history over a small key space, with values large enough to fill tiny memtables.
pub fn generate(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    (0..steps)
        .map(|_| match rng.below(40) {
            0 => Step::Sync,
            1 | 2 => Step::Flush,
            3 => Step::Compact,
            4 => Step::Reopen,
            _ => {
                let ranged = rng.chance(1, 8);
                let n = usize::from(!ranged) + rng.below(6) as usize;
                let entries = (0..n)
                    .map(|_| {
                        let key = format!("key{:03}", rng.below(60)).into_bytes();
                        if rng.chance(1, 5) {
                            (key, None)
                        } else {
                            let mut value = vec![0u8; rng.below(300) as usize];
                            rng.fill(&mut value);
                            (key, Some(value))
                        }
                    })
                    .collect();
                let durability = match rng.below(4) {
                    0 => Durability::Sync,
                    1 | 2 => Durability::Flush,
                    _ => Durability::Buffered,
                };
                if ranged {
                    let a = rng.below(62);
                    let b = a + rng.below(62 - a + 1);
                    Step::RangeBatch {
                        start: format!("key{a:03}").into_bytes(),
                        end: format!("key{b:03}").into_bytes(),
                        then: entries,
                        durability,
                    }
                } else {
                    Step::Batch(entries, durability)
                }
            }
        })
        .collect()
}

/// What a run acknowledged: model states after each batch and the watermarks.
struct Run {
    states: Vec<Model>,
    synced: usize,
    flushed: usize,
    issued: usize,
}

fn apply(model: &mut Model, entries: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in entries {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

/// Runs `steps` until the first error (a planned crash point), tracking what was acknowledged.
fn run<T: EngineUnderTest>(eut: &T, storage: &Storage, steps: &[Step]) -> Run {
    let mut r = Run {
        states: vec![Model::new()],
        synced: 0,
        flushed: 0,
        issued: 0,
    };
    let Ok(mut db) = eut.open(storage.clone()) else {
        return r;
    };
    for step in steps {
        let ok = match step {
            Step::Batch(entries, durability)
            | Step::RangeBatch {
                then: entries,
                durability,
                ..
            } => {
                let mut batch = WriteBatch::new();
                let mut next = r.states.last().cloned().unwrap_or_default();
                if let Step::RangeBatch { start, end, .. } = step {
                    batch.delete_range(start, end);
                    next.retain(|k, _| k < start || k >= end);
                }
                for (k, v) in entries {
                    match v {
                        Some(v) => batch.put(k, v),
                        None => batch.delete(k),
                    };
                }
                apply(&mut next, entries);
                r.states.push(next);
                r.issued += 1;
                let ok = db.write(&batch, WriteOptions::new(*durability)).is_ok();
                if ok {
                    match durability {
                        Durability::Sync => (r.synced, r.flushed) = (r.issued, r.issued),
                        Durability::Flush => r.flushed = r.issued,
                        Durability::Buffered => {}
                    }
                }
                ok
            }
            Step::Sync => {
                let ok = db.sync().is_ok();
                if ok {
                    (r.synced, r.flushed) = (r.issued, r.issued);
                }
                ok
            }
            Step::Flush => db.flush().is_ok(),
            // The B-tree has no compaction: `Unsupported` leaves the handle as it was.
            Step::Compact => matches!(db.compact(), Ok(()) | Err(crate::Error::Unsupported { .. })),
            Step::Reopen => {
                if db.close().is_err() {
                    return r;
                }
                (r.synced, r.flushed) = (r.issued, r.issued);
                match eut.open(storage.clone()) {
                    Ok(d) => {
                        db = d;
                        true
                    }
                    Err(_) => return r,
                }
            }
        };
        if !ok {
            return r;
        }
    }
    r
}

/// The whole state through the three read paths; they must agree.
fn read_state(db: &dyn Engine, keys: &[Vec<u8>]) -> std::result::Result<Model, String> {
    let fwd: Model = db
        .scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .map_err(|e| format!("scan: {e}"))?
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_>>()
        .map_err(|e| format!("scan: {e}"))?;
    let bwd: Vec<_> = db
        .scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .map_err(|e| format!("reverse scan: {e}"))?
        .rev()
        .collect::<Result<_>>()
        .map_err(|e| format!("reverse scan: {e}"))?;
    if !bwd
        .iter()
        .rev()
        .map(|(k, v)| (&k[..], &v[..]))
        .eq(fwd.iter().map(|(k, v)| (&k[..], &v[..])))
    {
        return Err("reverse scan differs from forward scan".into());
    }
    for k in keys {
        let got = db.get(k).map_err(|e| format!("get: {e}"))?;
        if got.as_deref() != fwd.get(k).map(Vec::as_slice) {
            return Err(format!(
                "get({}) differs from the scan",
                String::from_utf8_lossy(k)
            ));
        }
    }
    Ok(fwd)
}

/// Runs `steps` with a crash at mutating operation `crash_at` (None: after the end), crashes under
/// `mode`, recovers and checks every oracle of the module docs. Returns the number of mutating
/// operations the run issued.
///
/// # Errors
/// A description of the violated rule.
pub fn check_crash<T: EngineUnderTest>(
    eut: &T,
    seed: u64,
    steps: &[Step],
    crash_at: Option<u64>,
    mode: CrashMode,
) -> std::result::Result<u64, String> {
    Ok(crash_and_recover(eut, seed, steps, crash_at, mode)?.ops)
}

/// How many crash points a [`check_recovery_crashes`] call covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryCrashes {
    /// Mutating operations the clean recovery of the crash image performed.
    pub recovery_ops: u64,
    /// Crash points inside that recovery that were tried (each under every mode asked for).
    pub points: u64,
    /// Crash images of an interrupted recovery that were recovered again and checked.
    pub images: u64,
}

/// I7, crash during recovery: runs `steps` with a crash at `crash_at` under
/// `mode`, recovers once cleanly (checking every oracle of [`check_crash`]), then opens the same crash
/// image again with a crash at the `k`-th mutating operation of recovery, for every `k` up to the number
/// the clean recovery performed (at most `cap` of them, evenly spread, the last included), crashes that
/// interrupted recovery under each of `after` and recovers again normally: the state must equal the
/// single-recovery state, `verify()` must pass and no file may be orphaned or missing.
///
/// # Errors
/// A description of the violated rule.
pub fn check_recovery_crashes<T: EngineUnderTest>(
    eut: &T,
    seed: u64,
    steps: &[Step],
    crash_at: Option<u64>,
    mode: CrashMode,
    after: &[CrashMode],
    cap: u64,
) -> std::result::Result<RecoveryCrashes, String> {
    let first = crash_and_recover(eut, seed, steps, crash_at, mode)?;
    let mut out = RecoveryCrashes {
        recovery_ops: first.recovery_ops,
        ..RecoveryCrashes::default()
    };
    let total = first.recovery_ops;
    let points: Vec<u64> = if total <= cap {
        (1..=total).collect()
    } else {
        let mut p: Vec<u64> = (1..=cap).map(|i| (i * total).div_ceil(cap)).collect();
        p.dedup();
        p
    };
    for k in points {
        let what = |msg: String| {
            format!(
                "seed {seed} crash_at {crash_at:?} mode {mode:?}, recovery crashed at its op {k} of {total}: {msg}"
            )
        };
        // A fresh copy of the crash image (ProcessKill of a post-reboot disk copies it exactly).
        let copy = first.image.crash(CrashMode::ProcessKill);
        copy.set_fault_plan(FaultPlan {
            crash_at_op: Some(k),
            ..FaultPlan::default()
        });
        // The interrupted recovery may fail or (when the failed operation is best effort) succeed; the
        // handle stays alive until the crash, like a process that dies mid-recovery.
        let interrupted = eut.open(Storage::new(Arc::new(copy.clone())));
        for &again_mode in after {
            let again = copy.crash(again_mode);
            let storage = Storage::new(Arc::new(again));
            let db = eut
                .open(storage.clone())
                .map_err(|e| what(format!("recovery after {again_mode:?} failed: {e}")))?;
            let state = read_state(&db, &first.keys).map_err(what)?;
            if state != first.recovered {
                return Err(what(format!(
                    "after {again_mode:?} the state ({} keys) differs from the single-recovery state ({} keys)",
                    state.len(),
                    first.recovered.len()
                )));
            }
            db.verify()
                .map_err(|e| what(format!("verify after {again_mode:?}: {e}")))?;
            let stray = eut
                .stray_files(&db, &storage)
                .map_err(|e| what(format!("listing: {e}")))?;
            if !stray.is_empty() {
                return Err(what(format!(
                    "orphans or missing files after {again_mode:?}: {stray:?}"
                )));
            }
            out.images += 1;
        }
        drop(interrupted);
        out.points += 1;
    }
    Ok(out)
}

/// What one crash and clean recovery produced.
struct Recovered {
    /// Mutating operations of the run up to the crash.
    ops: u64,
    /// The crash image, untouched by recovery (copy it with `crash(ProcessKill)`).
    image: SimBackend,
    /// The state the clean recovery found.
    recovered: Model,
    /// Every key the history wrote.
    keys: Vec<Vec<u8>>,
    /// Mutating operations the clean recovery (the open) performed.
    recovery_ops: u64,
}

/// Runs, crashes, recovers a copy of the image and checks I1–I6.
fn crash_and_recover<T: EngineUnderTest>(
    eut: &T,
    seed: u64,
    steps: &[Step],
    crash_at: Option<u64>,
    mode: CrashMode,
) -> std::result::Result<Recovered, String> {
    let what = |msg: String| format!("seed {seed} crash_at {crash_at:?} mode {mode:?}: {msg}");
    let sim = SimBackend::new(seed ^ crash_at.unwrap_or(0).rotate_left(17));
    // Creation completes first: a directory whose creation was interrupted has engine files and no
    // IDENTITY, which is Corruption by design (never created over), not a recovery case.
    let created = eut
        .open(Storage::new(Arc::new(sim.clone())))
        .and_then(|db| db.close());
    created.map_err(|e| what(format!("creation failed: {e}")))?;
    let base = sim.mutating_ops();
    sim.set_fault_plan(FaultPlan {
        crash_at_op: crash_at.map(|c| base + c),
        ..FaultPlan::default()
    });
    let r = run(eut, &Storage::new(Arc::new(sim.clone())), steps);
    let ops = sim.mutating_ops() - base;
    let pristine = sim.crash(mode);
    let image = pristine.crash(CrashMode::ProcessKill);
    let keys: Vec<Vec<u8>> = r
        .states
        .iter()
        .flat_map(|m| m.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let (recovered, recovery_ops) = {
        let storage = Storage::new(Arc::new(image.clone()));
        let db = eut
            .open(storage.clone())
            .map_err(|e| what(format!("recovery failed: {e}")))?;
        let recovery_ops = image.mutating_ops();
        let state = read_state(&db, &keys).map_err(what)?;
        db.verify().map_err(|e| what(format!("verify: {e}")))?;
        let stray = eut
            .stray_files(&db, &storage)
            .map_err(|e| what(format!("listing: {e}")))?;
        if !stray.is_empty() {
            return Err(what(format!(
                "orphans or missing files after recovery: {stray:?}"
            )));
        }
        (state, recovery_ops)
    };
    let low = if mode == CrashMode::ProcessKill {
        r.flushed
    } else {
        r.synced
    };
    let k = (low..=r.issued)
        .find(|&k| r.states.get(k) == Some(&recovered))
        .ok_or_else(|| {
            what(format!(
                "recovered state ({} keys) matches no batch boundary in {low}..={} (synced {}, flushed {})",
                recovered.len(),
                r.issued,
                r.synced,
                r.flushed
            ))
        })?;
    // I6: a crash right after recovery (before anything else) recovers to the same state.
    let again = image.crash(CrashMode::PowerLossDropAll);
    let storage = Storage::new(Arc::new(again));
    let db = eut
        .open(storage)
        .map_err(|e| what(format!("second recovery failed: {e}")))?;
    let state = read_state(&db, &keys).map_err(what)?;
    if state != recovered {
        return Err(what(format!(
            "second recovery differs from the first (first matched batch {k})"
        )));
    }
    Ok(Recovered {
        ops,
        image: pristine,
        recovered,
        keys,
        recovery_ops,
    })
}

/// Every crash point of `steps` under every mode in `modes`, plus a crash after the end. Returns the
/// number of crash images checked.
///
/// # Errors
/// The first violation.
pub fn check_every_crash_point<T: EngineUnderTest>(
    eut: &T,
    seed: u64,
    steps: &[Step],
    modes: &[CrashMode],
) -> std::result::Result<u64, String> {
    check_crash_points(eut, seed, steps, modes, 1).map(|(checked, _)| checked)
}

/// [`check_every_crash_point`] at every `stride`-th crash point (1: every one) and after the end. Returns
/// the number of crash images checked and the run's mutating operations.
///
/// # Errors
/// The first violation.
pub fn check_crash_points<T: EngineUnderTest>(
    eut: &T,
    seed: u64,
    steps: &[Step],
    modes: &[CrashMode],
    stride: u64,
) -> std::result::Result<(u64, u64), String> {
    let total = check_crash(eut, seed, steps, None, CrashMode::ProcessKill)?;
    let mut checked = 1;
    for &mode in modes {
        let points = (1..=total).filter(|c| c % stride.max(1) == 0);
        for crash_at in points.map(Some).chain([None]) {
            check_crash(eut, seed, steps, crash_at, mode)?;
            checked += 1;
        }
    }
    Ok((checked, total))
}

/// I7 over one history: [`check_recovery_crashes`] at a sample of run crash points (about sixteen, the
/// end included) under `ProcessKill` and a torn power loss, each recovery crash recovered after a
/// `ProcessKill` and a `PowerLossDropAll`, at most 64 recovery crash points per image. `exhaustive`
/// takes every run crash point under every mode of [`ENGINE_CRASH_MODES`], every recovery crash point
/// and every mode after it. Returns the sums over every image.
///
/// # Errors
/// The first violation.
pub fn check_recovery_crash_matrix<T: EngineUnderTest>(
    eut: &T,
    seed: u64,
    steps: &[Step],
    exhaustive: bool,
) -> std::result::Result<RecoveryCrashes, String> {
    let total = check_crash(eut, seed, steps, None, CrashMode::ProcessKill)?;
    let sampled = [
        CrashMode::ProcessKill,
        CrashMode::PowerLossPrefix { torn: true },
    ];
    let after_sampled = [CrashMode::ProcessKill, CrashMode::PowerLossDropAll];
    let (modes, after, cap, stride): (&[CrashMode], &[CrashMode], u64, u64) = if exhaustive {
        (&ENGINE_CRASH_MODES, &ENGINE_CRASH_MODES, u64::MAX, 1)
    } else {
        (&sampled, &after_sampled, 64, (total / 15).max(1))
    };
    let mut sum = RecoveryCrashes::default();
    for &mode in modes {
        let points = (1..=total)
            .filter(|c| c % stride == 0)
            .map(Some)
            .chain([None]);
        for crash_at in points {
            let r = check_recovery_crashes(eut, seed, steps, crash_at, mode, after, cap)?;
            sum.recovery_ops += r.recovery_ops;
            sum.points += r.points;
            sum.images += r.images;
        }
    }
    Ok(sum)
}
