//! Fuzz entry points: each takes raw bytes, must never panic, hang or allocate without bound on any
//! input, and panics only when a property it checks is violated (a finding). The cargo-fuzz targets in
//! `fuzz/fuzz_targets/` are one line each calling [`run`]; `tests/fuzz_corpus.rs` replays the committed
//! corpora and regressions through the same function under `cargo test`.

use std::ops::Bound;
use std::sync::Arc;

use crate::batch::WriteBatch;
use crate::btree::{BTreeEngine, BTreeOptions};
use crate::engine::{Durability, Engine, WriteOptions};
use crate::error::{EngineKind, Error};
use crate::identity::{self, Identity};
use crate::lsm::edit::VersionEdit;
use crate::lsm::key;
use crate::lsm::sstable::block::{Block, BlockIter};
use crate::lsm::sstable::filter::Filter;
use crate::lsm::sstable::{BlockCache, ReadPath, Table};
use crate::lsm::{LsmEngine, LsmOptions};
use crate::storage::sim::SimBackend;
use crate::storage::{ReadPurpose, Storage, WritePurpose};
use crate::testing::ModelEngine;
use crate::testing::engine_history::{self, ENGINE_CRASH_MODES, EngineUnderTest, Step};
use crate::testing::engines::{BTreeTiny, LsmTiny};
use crate::wal::{self, RecoveryMode};

/// The targets, by name.
pub const TARGETS: &[&str] = &[
    "wal_decode",
    "batch_decode",
    "edit_decode",
    "identity_decode",
    "sst_open",
    "block_decode",
    "bloom_decode",
    "manifest_replay",
    "btree_file_open",
    "btree_page_decode",
    "btree_header_decode",
    "engines_differential",
    "lsm_ops_crash",
    "btree_ops_crash",
];

/// Runs target `name` on `data`. Unknown names are a panic (a harness bug).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "wal_decode" => wal_decode(data),
        "batch_decode" => batch_decode(data),
        "edit_decode" => edit_decode(data),
        "identity_decode" => identity_decode(data),
        "sst_open" => sst_open(data),
        "block_decode" => block_decode(data),
        "bloom_decode" => bloom_decode(data),
        "manifest_replay" => manifest_replay(data),
        "btree_file_open" => btree_file_open(data),
        "btree_page_decode" => report(crate::btree::fuzz_hooks::page_decode(data)),
        "btree_header_decode" => report(crate::btree::fuzz_hooks::header_decode(data)),
        "engines_differential" => engines_differential(data),
        "lsm_ops_crash" => ops_crash(&LsmTiny, data),
        "btree_ops_crash" => ops_crash(&BTreeTiny, data),
        other => unreachable_target(other),
    }
}

#[expect(
    clippy::panic,
    reason = "an unknown target name is a bug in the harness, not an input"
)]
fn unreachable_target(name: &str) {
    panic!("unknown fuzz target {name}");
}

#[expect(
    clippy::panic,
    reason = "a violated property is the finding the fuzzer reports"
)]
fn finding(what: String) -> ! {
    panic!("{what}");
}

fn report(result: std::result::Result<(), String>) {
    if let Err(what) = result {
        finding(what);
    }
}

/// Longest history an operation-sequence input decodes to (each step costs a crash and a recovery's worth
/// of work per execution).
const MAX_STEPS: usize = 48;

/// Decodes a history: per step one opcode byte; `0` sync, `1` flush, `2` compact (checkpoint), `3`
/// close + reopen, anything else a batch whose next byte gives 1–6 entries (low bits) and the
/// durability (high bits: Sync, Flush or Buffered), then two bytes per entry: key `keyNNN` (NNN < 64)
/// and the value length in units of 3 bytes (0: a delete). Values are filled from the entry's bytes and
/// position, so inputs stay small while values still reach several pages.
pub fn steps_from(data: &[u8]) -> Vec<Step> {
    let mut bytes = data.iter().copied();
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS {
        let Some(op) = bytes.next() else { break };
        steps.push(match op % 16 {
            0 => Step::Sync,
            1 => Step::Flush,
            2 => Step::Compact,
            3 => Step::Reopen,
            _ => {
                let shape = bytes.next().unwrap_or(0);
                let durability = match shape >> 6 {
                    0 => Durability::Sync,
                    1 => Durability::Buffered,
                    _ => Durability::Flush,
                };
                let entries = (0..1 + usize::from(shape % 6))
                    .map(|i| {
                        let k = bytes.next().unwrap_or(0);
                        let len = usize::from(bytes.next().unwrap_or(0)) * 3;
                        let key = format!("key{:03}", k % 64).into_bytes();
                        let value = (len > 0).then(|| {
                            (0..len)
                                .map(|j| k ^ (j as u8).wrapping_mul(31) ^ (steps.len() + i) as u8)
                                .collect()
                        });
                        (key, value)
                    })
                    .collect();
                Step::Batch(entries, durability)
            }
        });
    }
    steps
}

/// The bytes [`steps_from`] decodes to `steps`, as far as they can be represented (at most six entries a
/// batch, keys `keyNNN` by number modulo 64, value lengths rounded down to a multiple of 3, at most 765;
/// an empty value becomes a delete). Builds the seed corpus from generated histories.
pub fn steps_to_bytes(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Sync => out.push(0),
            Step::Flush => out.push(1),
            Step::Compact => out.push(2),
            Step::Reopen => out.push(3),
            Step::Batch(entries, durability) => {
                let n = entries.len().clamp(1, 6);
                let bits = match durability {
                    Durability::Sync => 0u8,
                    Durability::Buffered => 1 << 6,
                    Durability::Flush => 2 << 6,
                };
                out.extend([4, bits | (n - 1) as u8]);
                for i in 0..n {
                    let (key, value) = entries.get(i).cloned().unwrap_or_default();
                    let number = String::from_utf8_lossy(key.get(3..).unwrap_or_default())
                        .parse::<u32>()
                        .unwrap_or(0);
                    let len = value.map_or(0, |v| (v.len() / 3).min(255));
                    out.extend([(number % 64) as u8, len as u8]);
                }
            }
        }
    }
    out
}

/// `data[0]`: crash mode (index into [`ENGINE_CRASH_MODES`]); `data[1..3]`: the mutating storage call to
/// crash at (little-endian; 0 = after the last step); `data[3]`: the simulator's seed (torn and garbage
/// choices); the rest: the history ([`steps_from`]). Runs it on the simulated backend with tiny options and
/// Manual background, crashes, recovers and checks every oracle of [`engine_history`] (synced writes
/// present, a history prefix, no partial batch, read paths agree, `verify()`, no orphan or missing file,
/// a second crash right after recovery gives the same state).
fn ops_crash<T: EngineUnderTest>(eut: &T, data: &[u8]) {
    let [mode, c0, c1, seed, rest @ ..] = data else {
        return;
    };
    let Some(&mode) = ENGINE_CRASH_MODES.get(usize::from(*mode) % ENGINE_CRASH_MODES.len()) else {
        return;
    };
    let crash_at = u16::from_le_bytes([*c0, *c1]);
    let crash_at = (crash_at != 0).then_some(u64::from(crash_at));
    report(
        engine_history::check_crash(eut, u64::from(*seed), &steps_from(rest), crash_at, mode)
            .map(|_| ()),
    );
}

fn storage_with(files: &[(&str, &[u8])]) -> (SimBackend, Storage) {
    let sim = SimBackend::new(0);
    let storage = Storage::new(Arc::new(sim.clone()));
    for (name, bytes) in files {
        if let Ok(f) = storage.create_new(name) {
            let _ = f.append(bytes, WritePurpose::Wal);
            let _ = f.sync_data();
        }
    }
    let _ = storage.sync_dir();
    (sim, storage)
}

/// Raw bytes as WAL segment 1, replayed in both recovery modes: the tolerant result, when `Ok`, equals
/// the point-in-time result; every error is `Corruption`.
pub fn wal_decode(data: &[u8]) {
    let (_sim, storage) = storage_with(&[(&wal::segment_name(1), data)]);
    let collect = |mode| {
        let mut out = Vec::new();
        wal::replay(&storage, &[1], mode, |r| {
            out.push(r.payload.to_vec());
            Ok(())
        })
        .map(|_| out)
    };
    let pit = collect(RecoveryMode::PointInTime);
    let tolerant = collect(RecoveryMode::TolerateCorruptedTail);
    match (&pit, &tolerant) {
        (Ok(a), Ok(b)) if a != b => finding(format!(
            "tolerant replay ({}) differs from point-in-time ({})",
            b.len(),
            a.len()
        )),
        (Err(e), _) => finding(format!("point-in-time replay failed: {e}")),
        (_, Err(e)) if !e.is_corruption() => {
            finding(format!("replay error is not Corruption: {e}"))
        }
        _ => {}
    }
}

/// Raw bytes as a batch payload: a decoded batch re-encodes to the same bytes.
pub fn batch_decode(data: &[u8]) {
    if let Ok((seq, batch)) = WriteBatch::decode(data, "fuzz", 0)
        && batch.encode(seq) != data
    {
        finding("a decoded batch does not re-encode to its input".into());
    }
}

/// Raw bytes as a version edit: a decoded edit survives an encode/decode round trip.
pub fn edit_decode(data: &[u8]) {
    if let Ok(edit) = VersionEdit::decode(data, "fuzz", 0) {
        match VersionEdit::decode(&edit.encode(), "fuzz", 0) {
            Ok(again) if again == edit => {}
            _ => finding("a decoded edit does not round-trip".into()),
        }
    }
}

/// Raw bytes as `IDENTITY`: decoding never panics and a decoded identity re-encodes to its input.
pub fn identity_decode(data: &[u8]) {
    if let Ok(id) = Identity::decode(data)
        && id.encode() != data
    {
        finding("a decoded identity does not re-encode to its input".into());
    }
}

/// Raw bytes as table 1 (pread path): open, full scan both ways with keys strictly increasing, and gets
/// of the keys seen plus some that are not.
pub fn sst_open(data: &[u8]) {
    let (_sim, storage) = storage_with(&[("000001.sst", data)]);
    let cache = BlockCache::new(1 << 20);
    let Ok(table) = Table::open(
        &storage,
        1,
        data.len() as u64,
        ReadPath::Pread,
        cache,
        ReadPurpose::Recovery,
    ) else {
        return;
    };
    let mut it = table.iter(ReadPurpose::Scan);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut step = it.seek_to_first();
    while step.is_ok() && it.valid() && keys.len() < 100_000 {
        if let Some(last) = keys.last()
            && key::compare(last, it.key()) != std::cmp::Ordering::Less
        {
            finding("table keys are not strictly increasing".into());
        }
        keys.push(it.key().to_vec());
        step = it.next();
    }
    let mut stats = Default::default();
    for k in keys.iter().take(16) {
        if let Some((user, seq, _)) = key::decode(k) {
            let _ = table.get(user, seq, &mut stats);
            let _ = table.get(user, 0, &mut stats);
        }
    }
    let _ = table.get(b"absent", u64::MAX >> 8, &mut stats);
    let _ = table.verify();
}

/// Raw bytes as a decoded data or index block: iteration yields sorted keys or an error.
pub fn block_decode(data: &[u8]) {
    let Ok(block) = Block::new(data.to_vec(), 1, 0) else {
        return;
    };
    let mut it = BlockIter::new(Arc::new(block));
    let mut last: Option<Vec<u8>> = None;
    let mut step = it.seek_to_first();
    let mut n = 0;
    while step.is_ok() && it.valid() && n < 100_000 {
        if let Some(l) = &last
            && key::compare(l, it.key()) == std::cmp::Ordering::Greater
        {
            finding("block keys go backwards".into());
        }
        last = Some(it.key().to_vec());
        step = it.next();
        n += 1;
    }
    if let Some(l) = last {
        let _ = it.seek(&l);
    }
}

/// Raw bytes as a filter region: decoding validates the header; probing never panics.
pub fn bloom_decode(data: &[u8]) {
    if let Ok(filter) = Filter::decode(data, 1) {
        for probe in [
            &b""[..],
            b"a",
            b"key",
            data.get(..data.len().min(16)).unwrap_or_default(),
        ] {
            let _ = filter.may_contain(probe);
        }
    }
}

fn identity_file(kind: EngineKind, page_size: u32) -> Vec<u8> {
    Identity {
        kind,
        format_version: 1,
        page_size,
    }
    .encode()
}

/// Raw bytes as the manifest of an LSM directory (with a valid `IDENTITY` and `CURRENT`): open returns
/// `Ok` or an error, never a panic; an opened database passes `verify()` and scans.
pub fn manifest_replay(data: &[u8]) {
    let id = identity_file(EngineKind::Lsm, 0);
    let (_sim, storage) = storage_with(&[
        (identity::IDENTITY_FILE, &id),
        ("CURRENT", b"MANIFEST-000001\n"),
        ("MANIFEST-000001", data),
    ]);
    if let Ok(db) = LsmEngine::open_with(storage, LsmOptions::tiny()) {
        if let Err(e) = db.verify() {
            finding(format!("an opened database fails verify: {e}"));
        }
        let _ = db
            .scan(Bound::Unbounded, Bound::Unbounded)
            .map(|it| it.take(10_000).count());
    }
}

/// Raw bytes as a B-tree data file (512-byte pages, valid `IDENTITY`): open, verify and scan with bounded
/// effort, never a panic, a hang or a stack overflow.
pub fn btree_file_open(data: &[u8]) {
    let id = identity_file(EngineKind::BTree, 512);
    let (_sim, storage) = storage_with(&[(identity::IDENTITY_FILE, &id), ("data", data)]);
    if let Ok(db) = BTreeEngine::open_with(storage, BTreeOptions::tiny()) {
        let _ = db.verify();
        let _ = db
            .scan(Bound::Unbounded, Bound::Unbounded)
            .map(|it| it.take(10_000).count());
        let _ = db.get(b"key");
    }
}

/// Bytes decoded as operations (put, delete, flush, range check) applied to the LSM engine, the B-tree
/// engine and the model through `Engine`: every read gives the same answer from all three.
pub fn engines_differential(data: &[u8]) {
    let open = |sim: &SimBackend| Storage::new(Arc::new(sim.clone()));
    let (lsm_sim, bt_sim, model_sim) = (SimBackend::new(1), SimBackend::new(2), SimBackend::new(3));
    let engines: Vec<Box<dyn Engine>> = match (
        LsmEngine::open_with(open(&lsm_sim), LsmOptions::tiny()),
        BTreeEngine::open_with(open(&bt_sim), BTreeOptions::tiny()),
        ModelEngine::open_with(open(&model_sim), Default::default()),
    ) {
        (Ok(a), Ok(b), Ok(c)) => vec![Box::new(a), Box::new(b), Box::new(c)],
        _ => finding("an engine failed to open on an empty simulated disk".into()),
    };
    let mut input = data;
    while let Some((&op, rest)) = input.split_first() {
        input = rest;
        let key = [b'k', op >> 4];
        let answers: Vec<Result<Option<Vec<u8>>, String>> = match op & 0x7 {
            0..=3 => {
                let mut batch = WriteBatch::new();
                let len = usize::from(op & 0x3) * 60;
                batch.put(&key, &vec![op; len]);
                engines
                    .iter()
                    .map(|e| {
                        e.write(&batch, WriteOptions::new(Durability::Buffered))
                            .map(|()| None)
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
            4 => engines
                .iter()
                .map(|e| e.delete(&key).map(|()| None).map_err(|e| e.to_string()))
                .collect(),
            5 => engines
                .iter()
                .map(|e| e.flush().map(|()| None).map_err(|e| e.to_string()))
                .collect(),
            6 => engines
                .iter()
                .map(|e| e.get(&key).map_err(|e| e.to_string()))
                .collect(),
            _ => engines
                .iter()
                .map(|e| {
                    e.scan(Bound::Included(&key[..]), Bound::Unbounded)
                        .and_then(|it| it.collect::<Result<Vec<_>, Error>>())
                        .map(|all| {
                            Some(
                                all.into_iter()
                                    .flat_map(|(k, v)| k.into_iter().chain(v))
                                    .collect(),
                            )
                        })
                        .map_err(|e| e.to_string())
                })
                .collect(),
        };
        if answers.windows(2).any(|w| matches!(w, [a, b] if a != b)) {
            finding(format!("engines disagree on op {op:#04x}: {answers:?}"));
        }
    }
}

/// Small valid inputs for every target (the seed corpus): files the engines really write.
pub fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut batch = WriteBatch::new();
    batch.put(b"key", b"value").delete(b"gone").put(b"", b"");
    seeds.push(("batch_decode", batch.encode(7)));
    seeds.push(("identity_decode", identity_file(EngineKind::Lsm, 0)));
    let edit = VersionEdit {
        log_number: Some(3),
        next_file: Some(9),
        last_sequence: Some(100),
        deleted: vec![(1, 4)],
        ..VersionEdit::default()
    };
    seeds.push(("edit_decode", edit.encode()));
    let mut block = crate::lsm::sstable::block::BlockBuilder::new(4);
    for i in 0..10u64 {
        block.add(
            &key::encode(format!("key{i}").as_bytes(), i, key::ValueKind::Put),
            b"v",
        );
    }
    seeds.push(("block_decode", block.finish().to_vec()));
    // Seeded histories for the operation-sequence targets (the crash tests' generator), crashing
    // inside the run under a torn power loss, after the end under a kill, and late under garbage.
    for (seed, mode, at) in [(1u64, 2u8, 9u16), (2, 0, 0), (3, 3, 40)] {
        let mut input = vec![mode, at.to_le_bytes()[0], at.to_le_bytes()[1], seed as u8];
        input.extend(steps_to_bytes(&engine_history::generate(seed, 40)));
        seeds.push(("lsm_ops_crash", input.clone()));
        seeds.push(("btree_ops_crash", input));
    }
    seeds.push((
        "engines_differential",
        vec![0x10, 0x21, 0x16, 0x37, 0x14, 0x25, 0x16, 0x17],
    ));

    // A WAL segment with a record spanning blocks.
    let (sim, storage) = storage_with(&[]);
    if let Ok(w) = wal::WalWriter::create(&storage, 1) {
        let _ = w.append(&batch.encode(1), Durability::Sync);
        let _ = w.append(&[7u8; 40_000], Durability::Flush);
        let _ = w.append(b"tail", Durability::Buffered);
        let _ = w.close();
    }
    if let Ok(bytes) = sim.read_file(&wal::segment_name(1)) {
        seeds.push(("wal_decode", bytes));
    }

    // An LSM database: a table, its manifest, a filter and a block from it.
    let (sim, storage) = storage_with(&[]);
    if let Ok(db) = LsmEngine::open_with(storage, LsmOptions::tiny()) {
        for i in 0..40u32 {
            let _ = db.put(format!("key{i:03}").as_bytes(), &[i as u8; 20]);
        }
        let _ = db.delete(b"key005");
        let _ = db.flush();
        let _ = db.close();
    }
    for name in sim.file_names() {
        let Ok(bytes) = sim.read_file(&name) else {
            continue;
        };
        if name.ends_with(".sst") && !seeds.iter().any(|(t, _)| *t == "sst_open") {
            seeds.push(("sst_open", bytes));
        } else if name.starts_with("MANIFEST-") {
            seeds.push(("manifest_replay", bytes));
        }
    }
    let hashes: Vec<u64> = (0..50u64)
        .map(|i| crate::lsm::sstable::filter::key_hash(&i.to_le_bytes()))
        .collect();
    if let Some(filter) = crate::lsm::sstable::filter::build(&hashes, 10, 1) {
        seeds.push(("bloom_decode", filter));
    }

    // A small B-tree data file with an overflow value.
    let (sim, storage) = storage_with(&[]);
    if let Ok(db) = BTreeEngine::open_with(storage, BTreeOptions::tiny()) {
        for i in 0..60u32 {
            let _ = db.put(format!("key{i:03}").as_bytes(), &[i as u8; 30]);
        }
        let _ = db.put(b"big", &[9u8; 1500]);
        let _ = db.close();
    }
    if let Ok(bytes) = sim.read_file("data") {
        // Header slot 0 and 1 as the header target sees them; pages 2 and 3 (a leaf or an internal
        // page, and an overflow page) with their page numbers for the page target.
        let slots: Vec<u8> = [bytes.get(..64), bytes.get(512..576)]
            .into_iter()
            .flatten()
            .flatten()
            .copied()
            .collect();
        seeds.push(("btree_header_decode", slots));
        for pgno in 2u8..6 {
            let start = usize::from(pgno) * 512;
            if let Some(page) = bytes.get(start..start + 512) {
                let ctl = (pgno - 2) << 1;
                seeds.push((
                    "btree_page_decode",
                    [ctl].iter().chain(page).copied().collect(),
                ));
            }
        }
        seeds.push(("btree_file_open", bytes));
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    #[test]
    fn every_target_has_a_seed_and_seeds_pass() {
        let seeds = seed_corpus();
        for name in TARGETS {
            assert!(seeds.iter().any(|(t, _)| t == name), "no seed for {name}");
        }
        for (name, data) in &seeds {
            run(name, data);
        }
    }

    /// The operation-sequence seeds decode to real histories: several steps of every kind, and enough
    /// storage calls that their crash points fall inside the run.
    #[test]
    fn ops_seeds_decode_to_histories_that_reach_their_crash_points() {
        let mut kinds = std::collections::HashSet::new();
        for (name, data) in seed_corpus()
            .into_iter()
            .filter(|(t, _)| *t == "lsm_ops_crash")
        {
            let steps = steps_from(&data[4..]);
            assert!(steps.len() >= 20, "{name}: {} steps", steps.len());
            kinds.extend(steps.iter().map(std::mem::discriminant));
            let at = u64::from(u16::from_le_bytes([data[1], data[2]]));
            let lsm = engine_history::check_crash(&LsmTiny, 7, &steps, None, ENGINE_CRASH_MODES[0])
                .unwrap();
            let btree =
                engine_history::check_crash(&BTreeTiny, 7, &steps, None, ENGINE_CRASH_MODES[0])
                    .unwrap();
            assert!(
                lsm > at && btree > at,
                "crash point {at}: lsm {lsm}, btree {btree} calls"
            );
        }
        assert_eq!(kinds.len(), 5, "the seeds hold every kind of step");
    }

    /// Every target on random and on truncated inputs: no panic.
    #[test]
    fn random_inputs_do_not_panic() {
        let mut rng = Rng::new(5);
        for name in TARGETS {
            for len in [0usize, 1, 7, 19, 64, 300, 2000] {
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                run(name, &data);
            }
        }
    }
}
