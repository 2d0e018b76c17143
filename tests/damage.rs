//! The damage matrix: one test per (engine, file kind, damage kind).
//!
//! Each test builds a database with known content (tiny options, Manual background), closes it or takes a
//! process-kill image of it, damages one file, reopens and classifies the outcome:
//! - `Ok`: every key's `get`, a forward and a reverse scan give the full acknowledged state (or, for damage
//!   to an unsynced WAL tail, an allowed prefix of the history), and `verify()` runs;
//! - `Err`: a `Corruption` naming the damaged file.
//!
//! Open, reads and verify run under `catch_unwind`: a panic fails the test naming the case. No read may
//! return a value that no allowed state holds. Each test prints a one-line outcome (`--nocapture`).
//!
//! Most cases run on real files (OS backend in a tempdir, damaged with `std::fs`); the cases marked `sim`
//! use the simulated backend's damage helpers, and the sealed-WAL and mid-checkpoint cases need its
//! `crash_at_op` to stop a flush or a checkpoint half way.
//!
//! Covered elsewhere (not repeated here): tests/lsm.rs (missing table, table one byte short, CURRENT
//! garbage/empty/dangling/missing, every table byte flipped, every manifest and WAL byte flipped),
//! tests/btree_crash.rs (torn pages of an unfinished checkpoint, failed fsync, ENOSPC), the unit
//! tests of src/btree (every bit of a small data file flipped and truncations, header slot fallback,
//! forged pages, cycles), src/wal (framing cases), tests/contract.rs (foreign files, wrong engine),
//! tests/lock.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use rumdb::LsmEngine;
use rumdb::testing::Storage;
use rumdb::testing::engines::{BTreeTiny, LsmTiny};
use rumdb::testing::{CrashMode, FaultPlan, SimBackend};
use rumdb::{BTreeEngine, BTreeOptions};
use rumdb::{Durability, Engine, EngineExt, Error, LsmOptions, WriteBatch, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PAGE: usize = 512;
const WAL_BLOCK: usize = 32 * 1024;
const WAL_HEADER: usize = 19;
/// A WAL segment's LINK record (header and 16 bytes) at offset 0: its first record starts after it.
const WAL_LINK: usize = WAL_HEADER + 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Eng {
    Lsm,
    BTree,
}

fn lsm_options() -> LsmOptions {
    LsmTiny::options()
}

/// Checkpoints only on `flush` and close: the WAL holds every batch after the last one.
fn btree_options() -> BTreeOptions {
    BTreeTiny::checkpoint_on_flush_options()
}

// ---------------------------------------------------------------------------------------------------
// Disks: a real directory or the simulated backend, with the same damage operations.

enum Disk {
    Os(tempfile::TempDir),
    Sim(SimBackend),
}

impl Disk {
    fn os() -> Disk {
        Disk::Os(tempfile::tempdir().unwrap())
    }

    fn storage(&self) -> rumdb::Result<Storage> {
        match self {
            Disk::Os(d) => Storage::os(d.path(), false),
            Disk::Sim(s) => Ok(Storage::new(Arc::new(s.clone()))),
        }
    }

    fn open(&self, eng: Eng) -> rumdb::Result<Box<dyn Engine>> {
        let storage = self.storage()?;
        Ok(match eng {
            Eng::Lsm => Box::new(LsmEngine::open_with(storage, lsm_options())?),
            Eng::BTree => Box::new(BTreeEngine::open_with(storage, btree_options())?),
        })
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        match self {
            Disk::Os(d) => d.path().join(name),
            Disk::Sim(_) => unreachable!("not a real directory"),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match self {
            Disk::Os(d) => std::fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Disk::Sim(s) => s.file_names(),
        };
        names.sort();
        names
    }

    fn read(&self, name: &str) -> Vec<u8> {
        match self {
            Disk::Os(_) => std::fs::read(self.path(name)).unwrap(),
            Disk::Sim(s) => s.read_file(name).unwrap(),
        }
    }

    fn len(&self, name: &str) -> u64 {
        self.read(name).len() as u64
    }

    fn write_at(&self, name: &str, offset: u64, bytes: &[u8]) {
        match self {
            Disk::Os(_) => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(self.path(name))
                    .unwrap();
                f.seek(SeekFrom::Start(offset)).unwrap();
                f.write_all(bytes).unwrap();
            }
            Disk::Sim(s) => s.corrupt(name, offset, bytes).unwrap(),
        }
    }

    fn flip_bit(&self, name: &str, byte: u64, bit: u8) {
        match self {
            Disk::Os(_) => {
                let b = self.read(name)[byte as usize] ^ (1 << bit);
                self.write_at(name, byte, &[b]);
            }
            Disk::Sim(s) => s.flip_bit(name, byte * 8 + u64::from(bit)).unwrap(),
        }
    }

    fn truncate(&self, name: &str, len: u64) {
        match self {
            Disk::Os(_) => std::fs::OpenOptions::new()
                .write(true)
                .open(self.path(name))
                .unwrap()
                .set_len(len)
                .unwrap(),
            Disk::Sim(s) => s.truncate(name, len).unwrap(),
        }
    }

    fn zero(&self, name: &str, offset: u64, len: u64) {
        match self {
            Disk::Os(_) => {
                let end = (offset + len).min(self.len(name));
                self.write_at(name, offset, &vec![0; (end - offset) as usize]);
            }
            Disk::Sim(s) => s.zero_range(name, offset, len).unwrap(),
        }
    }

    fn garbage(&self, name: &str, offset: u64, len: usize) {
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ offset;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        self.write_at(name, offset, &bytes);
    }

    fn delete(&self, name: &str) {
        match self {
            Disk::Os(_) => std::fs::remove_file(self.path(name)).unwrap(),
            Disk::Sim(s) => s.delete(name).unwrap(),
        }
    }

    fn create_empty(&self, name: &str) {
        match self {
            Disk::Os(_) => drop(std::fs::File::create_new(self.path(name)).unwrap()),
            Disk::Sim(s) => s.corrupt(name, 0, &[]).unwrap_or_else(|_| {
                // The simulated backend damages existing files only: copy one and empty it.
                let any = s.file_names().into_iter().next().unwrap();
                s.copy_file(&any, name).unwrap();
                s.truncate(name, 0).unwrap();
            }),
        }
    }

    fn first(&self, pred: impl Fn(&str) -> bool) -> String {
        self.names()
            .into_iter()
            .find(|n| pred(n))
            .unwrap_or_else(|| panic!("no such file in {:?}", self.names()))
    }
}

/// Copies every file but `LOCK` of `from` into a fresh directory: what a killed process leaves (every
/// write handed to the OS is there), taken while the handle is still open.
fn kill_image(from: &Path) -> Disk {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    Disk::Os(to)
}

// ---------------------------------------------------------------------------------------------------
// Fixtures: a database with a known history.

fn key(i: u32) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    vec![(i * 7 + round) as u8; 24 + (i as usize * 13) % 40]
}

/// How the fixture ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Closed cleanly.
    Closed,
    /// Eight more batches written with `Sync`, then a process-kill image: the live WAL holds synced data.
    SyncedTail,
    /// Eight more batches written with `Flush`, then a process-kill image: the WAL tail was never synced.
    UnsyncedTail,
    /// Eight more batches written with `Sync`, then closed cleanly.
    ClosedAfterTail,
}

struct Fixture {
    disk: Disk,
    eng: Eng,
    /// The state after each batch of the history (index 0: empty).
    states: Vec<Model>,
    /// The earliest state an `Ok` open may show: the last synced batch.
    floor: usize,
}

/// Applies `batch` with `durability`, recording the new state.
fn write(
    db: &dyn Engine,
    states: &mut Vec<Model>,
    ops: &[(u32, Option<u32>)],
    durability: Durability,
) {
    let mut batch = WriteBatch::new();
    let mut model = states.last().unwrap().clone();
    for &(i, round) in ops {
        match round {
            Some(r) => {
                batch.put(key(i), value(i, r));
                model.insert(key(i), value(i, r));
            }
            None => {
                batch.delete(key(i));
                model.remove(&key(i));
            }
        }
    }
    db.write(&batch, WriteOptions::new(durability)).unwrap();
    states.push(model);
}

/// 240 keys in 24 synced batches, 40 overwritten, 60 deleted (B-tree: free pages), then `flush` (LSM:
/// several tables over levels; B-tree: a checkpoint of many pages).
fn load(db: &dyn Engine, states: &mut Vec<Model>) {
    for b in 0..24 {
        let ops: Vec<_> = (b * 10..b * 10 + 10).map(|i| (i, Some(0))).collect();
        write(db, states, &ops, Durability::Sync);
    }
    for b in 0..4 {
        let ops: Vec<_> = (b * 10..b * 10 + 10).map(|i| (i, Some(1))).collect();
        write(db, states, &ops, Durability::Sync);
    }
    for b in 0..6 {
        let ops: Vec<_> = (100 + b * 10..110 + b * 10).map(|i| (i, None)).collect();
        write(db, states, &ops, Durability::Sync);
    }
    db.flush().unwrap();
}

/// The tail: eight batches of two entries (an overwrite and a new key).
fn tail(db: &dyn Engine, states: &mut Vec<Model>, durability: Durability) {
    for j in 0..8 {
        write(
            db,
            states,
            &[(200 + j, Some(2)), (300 + j, Some(2))],
            durability,
        );
    }
}

fn fixture(eng: Eng, sim: bool, end: End) -> Fixture {
    let live = if sim {
        Disk::Sim(SimBackend::new(42))
    } else {
        Disk::os()
    };
    let db = live.open(eng).unwrap();
    let mut states = vec![Model::new()];
    load(db.as_ref(), &mut states);
    let mut floor = states.len() - 1;
    let disk = match end {
        End::Closed => {
            db.close().unwrap();
            live
        }
        End::ClosedAfterTail => {
            tail(db.as_ref(), &mut states, Durability::Sync);
            floor = states.len() - 1;
            db.close().unwrap();
            live
        }
        End::SyncedTail | End::UnsyncedTail => {
            let durability = if end == End::SyncedTail {
                Durability::Sync
            } else {
                Durability::Flush
            };
            tail(db.as_ref(), &mut states, durability);
            if end == End::SyncedTail {
                floor = states.len() - 1;
            }
            let image = match &live {
                Disk::Os(d) => kill_image(d.path()),
                Disk::Sim(s) => Disk::Sim(s.crash(CrashMode::ProcessKill)),
            };
            drop(db);
            image
        }
    };
    Fixture {
        disk,
        eng,
        states,
        floor,
    }
}

// ---------------------------------------------------------------------------------------------------
// Observing and classifying.

/// What reopening the damaged database showed.
enum Seen {
    /// Open failed.
    Refused(Error),
    /// Open succeeded.
    Opened {
        /// The index of the state a complete forward scan showed, if every read succeeded.
        state: Option<usize>,
        /// Errors returned by gets and scans.
        read_errors: Vec<Error>,
        /// `verify()`'s error, if any.
        verify: Option<Error>,
    },
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Refused(e) => write!(f, "refused at open: {e}"),
            Seen::Opened {
                state,
                read_errors,
                verify,
            } => {
                match state {
                    Some(s) => write!(f, "opened with state {s}")?,
                    None => write!(f, "opened")?,
                }
                if let Some(e) = read_errors.first() {
                    write!(f, "; {} read error(s), first: {e}", read_errors.len())?;
                }
                match verify {
                    Some(e) => write!(f, "; verify: {e}"),
                    None => write!(f, "; verify ok"),
                }
            }
        }
    }
}

/// Reopens the fixture and reads everything, checking that no read returns a value no allowed state
/// (`states[floor..]`) holds.
fn observe(case: &str, fix: &Fixture) -> Seen {
    let db = match fix.disk.open(fix.eng) {
        Ok(db) => db,
        Err(e) => return Seen::Refused(e),
    };
    let allowed = &fix.states[fix.floor..];
    let mut keys: BTreeSet<Vec<u8>> = allowed.iter().flat_map(|s| s.keys().cloned()).collect();
    keys.extend([key(9999), b"a".to_vec(), b"zzz".to_vec()]);
    let mut read_errors = Vec::new();
    for k in &keys {
        match db.get(k) {
            Ok(got) => assert!(
                allowed
                    .iter()
                    .any(|s| s.get(k).map(Vec::as_slice) == got.as_deref()),
                "{case}: get({}) returned {got:?}, which no allowed state holds",
                String::from_utf8_lossy(k)
            ),
            Err(e) => read_errors.push(e),
        }
    }
    let mut scans = Vec::new();
    for reverse in [false, true] {
        let iter = match db.scan(Bound::Unbounded, Bound::Unbounded) {
            Ok(it) => it,
            Err(e) => {
                read_errors.push(e);
                continue;
            }
        };
        let items: Box<dyn Iterator<Item = rumdb::Result<rumdb::KvPair>>> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        let mut got = Model::new();
        let mut complete = true;
        let mut last: Option<Vec<u8>> = None;
        for item in items {
            match item {
                Ok((k, v)) => {
                    assert!(
                        allowed
                            .iter()
                            .any(|s| s.get(&k[..]).map(Vec::as_slice) == Some(&v[..])),
                        "{case}: scan returned {} = {v:?}, which no allowed state holds",
                        String::from_utf8_lossy(&k)
                    );
                    if let Some(prev) = &last {
                        assert!(
                            (k > *prev) != reverse,
                            "{case}: scan out of order at {}",
                            String::from_utf8_lossy(&k)
                        );
                    }
                    last = Some(k.to_vec());
                    got.insert(k.to_vec(), v.to_vec());
                }
                Err(e) => {
                    read_errors.push(e);
                    complete = false;
                    break;
                }
            }
        }
        if complete {
            scans.push(got);
        }
    }
    let state = match (scans.first(), scans.get(1)) {
        (Some(fwd), Some(rev)) if read_errors.is_empty() => {
            assert!(fwd == rev, "{case}: forward and reverse scans differ");
            let at = allowed.iter().rposition(|s| s == fwd);
            let at = at.unwrap_or_else(|| panic!("{case}: the scan is not an allowed state"));
            Some(fix.floor + at)
        }
        _ => None,
    };
    let verify = db.verify().err();
    Seen::Opened {
        state,
        read_errors,
        verify,
    }
}

/// The outcome a case demands.
#[derive(Clone, Debug)]
enum Expect {
    /// Opens with the full acknowledged state; `verify()` passes.
    Intact,
    /// Opens with a state in `states[floor..]`; `verify()` passes.
    Prefix,
    /// Open fails with `Corruption` naming the file.
    Refused(String),
    /// The damage surfaces as `Corruption` naming the file: at open, on a read or in `verify()`; reads
    /// that succeed return only acknowledged data.
    Detected(String),
    /// `Intact` or `Detected`.
    IntactOrDetected(String),
}

fn names_file(e: &Error, file: &str) -> bool {
    matches!(e, Error::Corruption { file: f, .. } if f == file)
}

fn check(seen: &Seen, expect: &Expect, fix: &Fixture) -> Result<(), String> {
    let last = fix.states.len() - 1;
    let all_name = |errs: &[&Error], file: &str| {
        errs.iter()
            .find(|e| !names_file(e, file))
            .map_or(Ok(()), |e| {
                Err(format!("an error does not name {file} as Corruption: {e}"))
            })
    };
    match (expect, seen) {
        (
            Expect::Intact,
            Seen::Opened {
                state,
                read_errors,
                verify,
            },
        ) => {
            if read_errors.is_empty() && verify.is_none() && *state == Some(last) {
                Ok(())
            } else {
                Err(format!("expected the full state {last}"))
            }
        }
        (
            Expect::Prefix,
            Seen::Opened {
                state,
                read_errors,
                verify,
            },
        ) => {
            if read_errors.is_empty() && verify.is_none() && state.is_some() {
                Ok(())
            } else {
                Err("expected an allowed prefix".into())
            }
        }
        (Expect::Refused(file), Seen::Refused(e))
        | (Expect::Detected(file), Seen::Refused(e))
        | (Expect::IntactOrDetected(file), Seen::Refused(e)) => all_name(&[e], file),
        (
            Expect::Detected(file),
            Seen::Opened {
                read_errors,
                verify,
                ..
            },
        )
        | (
            Expect::IntactOrDetected(file),
            Seen::Opened {
                read_errors,
                verify,
                ..
            },
        ) => {
            let errs: Vec<&Error> = read_errors.iter().chain(verify).collect();
            if errs.is_empty() {
                return match expect {
                    Expect::IntactOrDetected(_) => check(seen, &Expect::Intact, fix),
                    _ => Err("the damage went unnoticed".into()),
                };
            }
            all_name(&errs, file)
        }
        _ => Err("unexpected outcome".into()),
    }
}

/// Reopens the damaged fixture under `catch_unwind`, prints the outcome and checks it against `expect`.
fn run(case: &str, fix: &Fixture, expect: Expect) -> Seen {
    let seen = catch_unwind(AssertUnwindSafe(|| observe(case, fix)))
        .unwrap_or_else(|_| panic!("{case}: panicked (open, a read or verify)"));
    println!("{case}: {seen}");
    if let Err(why) = check(&seen, &expect, fix) {
        panic!("{case}: {why}; expected {expect:?}, got: {seen}");
    }
    seen
}

// ---------------------------------------------------------------------------------------------------
// Locating what to damage.

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// CRC-32 (IEEE), as crc32fast computes it: to forge structures whose checksum must still pass.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn first_sst(f: &Fixture) -> String {
    f.disk.first(|n| n.ends_with(".sst"))
}

/// (index offset, properties offset, filter offset, filter size) from a table's footer.
fn sst_regions(f: &Fixture, sst: &str) -> (u64, u64, u64, u64) {
    let b = f.disk.read(sst);
    let foot = &b[b.len() - 64..];
    (
        u64_at(foot, 0),
        u64_at(foot, 16),
        u64_at(foot, 32),
        u64_at(foot, 40),
    )
}

fn manifest(f: &Fixture) -> String {
    f.disk.first(|n| n.starts_with("MANIFEST-"))
}

fn wal(f: &Fixture) -> String {
    f.disk.first(|n| n.ends_with(".log"))
}

/// The newest WAL segment.
fn last_wal(f: &Fixture) -> String {
    f.disk
        .names()
        .into_iter()
        .rfind(|n| n.ends_with(".log"))
        .unwrap()
}

/// Offsets of the fragments of a WAL segment (LevelDB framing: 32 KiB blocks, zero-padded ends).
fn fragments(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + WAL_HEADER <= bytes.len() {
        if WAL_BLOCK - at % WAL_BLOCK < WAL_HEADER {
            at += WAL_BLOCK - at % WAL_BLOCK;
            continue;
        }
        out.push(at);
        at += WAL_HEADER + usize::from(u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]));
    }
    out
}

/// Appends a record with a valid fragment checksum whose write batch claims `count` entries and a put
/// with a value length of `value_len`, past what the payload holds: the checksum passes, the decoder must still refuse it.
fn append_forged_batch(f: &Fixture, count: u32, value_len: u32) -> String {
    let name = wal(f);
    let segment = rumdb::testing::wal::parse_segment_name(&name).unwrap();
    let len = f.disk.len(&name);
    let mut payload = Vec::new();
    payload.extend_from_slice(&1_000_000u64.to_le_bytes());
    payload.extend_from_slice(&count.to_le_bytes());
    payload.extend_from_slice(&[1, 3, b'a', b'b', b'c']);
    let mut v = value_len;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            payload.push(byte);
            break;
        }
        payload.push(byte | 0x80);
    }
    payload.extend_from_slice(b"short");
    let mut out = Vec::new();
    rumdb::testing::wal::encode_record(&mut out, len as usize % WAL_BLOCK, segment, len, &payload);
    f.disk.write_at(&name, len, &out);
    name
}

/// The B-tree data file's pages by type: (leaves, internals, free pages), and the newest header slot.
struct Pages {
    /// Reachable from the newest header's root (the root excluded).
    leaves: Vec<u64>,
    internals: Vec<u64>,
    /// The pages of the newest header's free list.
    free_list: Vec<u64>,
    /// Pages neither reachable nor holding the free list: free (stale copies copy-on-write left).
    unused: Vec<u64>,
    root: u64,
    newest_slot: u64,
}

/// The pages of the newest header's tree, walked from its root (a leaf or internal page's type byte alone
/// does not say it is live: copy-on-write leaves stale copies in free pages).
fn pages(f: &Fixture) -> Pages {
    let b = f.disk.read("data");
    let counter = |slot: usize| {
        let s = &b[slot * PAGE..slot * PAGE + 64];
        (s[..8] == *b"RUMDB-BT").then(|| u64_at(s, 16))
    };
    let newest_slot = if counter(1) > counter(0) { 1 } else { 0 };
    let h = newest_slot as usize * PAGE;
    let root = u64::from(u32_at(&b, h + 32));
    let height = u32_at(&b, h + 36);
    let page = |n: u64| &b[n as usize * PAGE..(n as usize + 1) * PAGE];
    let mut p = Pages {
        leaves: vec![],
        internals: vec![],
        free_list: vec![],
        unused: vec![],
        root,
        newest_slot,
    };
    let mut level = vec![root];
    for depth in (0..=height).rev() {
        let mut next = vec![];
        for &n in &level {
            if n != root {
                if depth == 0 {
                    &mut p.leaves
                } else {
                    &mut p.internals
                }
                .push(n);
            }
            if depth > 0 {
                let pg = page(n);
                next.push(u64::from(u32_at(pg, 16)));
                for i in 0..u16::from_le_bytes([pg[2], pg[3]]) as usize {
                    let off = u16::from_le_bytes([pg[32 + 2 * i], pg[33 + 2 * i]]) as usize;
                    next.push(u64::from(u32_at(pg, off + 3)));
                }
            }
        }
        level = next;
    }
    let mut n = u64::from(u32_at(&b, h + 40));
    while n != 0 {
        p.free_list.push(n);
        n = u64::from(u32_at(page(n), 16));
    }
    let live: std::collections::HashSet<u64> = p
        .leaves
        .iter()
        .chain(&p.internals)
        .chain(&p.free_list)
        .copied()
        .chain([root])
        .collect();
    // Overflow pages are live too, but not walked: leave every overflow page out of `unused`.
    p.unused = (2..(b.len() / PAGE) as u64)
        .filter(|n| !live.contains(n) && page(*n)[0] != 3)
        .collect();
    p
}

fn page_at(n: u64) -> u64 {
    n * PAGE as u64
}

// ---------------------------------------------------------------------------------------------------
// Fixtures that need the simulated backend's crash_at_op.

/// An LSM image with two WAL segments: a crash inside the inline flush that follows a memtable switch,
/// after the new segment was created. Every acknowledged write was `Sync`.
fn lsm_with_sealed_segment() -> Fixture {
    for c in 1..400 {
        let sim = SimBackend::new(3);
        let disk = Disk::Sim(sim.clone());
        let db = disk.open(Eng::Lsm).unwrap();
        let mut states = vec![Model::new()];
        for b in 0..6 {
            let ops: Vec<_> = (b * 10..b * 10 + 10).map(|i| (i, Some(0))).collect();
            write(db.as_ref(), &mut states, &ops, Durability::Sync);
        }
        sim.set_fault_plan(FaultPlan {
            crash_at_op: Some(sim.mutating_ops() + c),
            ..Default::default()
        });
        for b in 6..40 {
            let ops: Vec<_> = (b * 10..b * 10 + 10).map(|i| (i, Some(0))).collect();
            let mut batch = WriteBatch::new();
            for &(i, _) in &ops {
                batch.put(key(i), value(i, 0));
            }
            if db
                .write(&batch, WriteOptions::new(Durability::Sync))
                .is_err()
            {
                break;
            }
            let mut model = states.last().unwrap().clone();
            model.extend(ops.iter().map(|&(i, _)| (key(i), value(i, 0))));
            states.push(model);
        }
        let image = sim.crash(CrashMode::ProcessKill);
        drop(db);
        let logs = image
            .file_names()
            .into_iter()
            .filter(|n| n.ends_with(".log") && image.read_file(n).unwrap().len() > WAL_LINK)
            .count();
        if logs >= 2 {
            let floor = states.len() - 1;
            return Fixture {
                disk: Disk::Sim(image),
                eng: Eng::Lsm,
                states,
                floor,
            };
        }
    }
    panic!("no crash point left two WAL segments");
}

/// A B-tree image crashed inside a checkpoint after some of its pages were written and before its header
/// slot was: with `tear`, every page that changed since the checkpoint began (the pages the checkpoint and
/// the pool's evictions wrote, none of them part of the durable header's state) gets garbage in its
/// second half.
fn btree_mid_checkpoint(tear: bool) -> Fixture {
    for c in 1..200 {
        let sim = SimBackend::new(5);
        let disk = Disk::Sim(sim.clone());
        let db = disk.open(Eng::BTree).unwrap();
        let mut states = vec![Model::new()];
        load(db.as_ref(), &mut states);
        tail(db.as_ref(), &mut states, Durability::Flush);
        let before = sim.read_file("data").unwrap();
        sim.set_fault_plan(FaultPlan {
            crash_at_op: Some(sim.mutating_ops() + c),
            ..Default::default()
        });
        let finished = db.flush().is_ok();
        let image = sim.crash(CrashMode::ProcessKill);
        drop(db);
        assert!(
            !finished,
            "the checkpoint finished before a usable crash point"
        );
        let data = image.read_file("data").unwrap();
        if data[..2 * PAGE] != before[..2 * PAGE] {
            continue; // the header was written
        }
        let changed: Vec<usize> = (2..data.len() / PAGE)
            .filter(|&n| before.get(n * PAGE..(n + 1) * PAGE) != data.get(n * PAGE..(n + 1) * PAGE))
            .collect();
        if changed.len() < 2 {
            continue; // not yet into the pages
        }
        if tear {
            for n in changed {
                image
                    .corrupt("data", (n * PAGE + PAGE / 2) as u64, &[0xA5; PAGE / 2])
                    .unwrap();
            }
        }
        let floor = states.len() - 1;
        return Fixture {
            disk: Disk::Sim(image),
            eng: Eng::BTree,
            states,
            floor,
        };
    }
    panic!("no crash point left checkpoint pages written without their header");
}

// ---------------------------------------------------------------------------------------------------
// The cases.

/// One test: builds the fixture, runs `$body` (which damages it and returns the expected outcome),
/// reopens and classifies.
macro_rules! case {
    ($(#[$attr:meta])* $name:ident, $fixture:expr, |$f:ident| $body:expr) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            #[allow(unused_mut)]
            let mut $f = $fixture;
            let expect = $body;
            run(stringify!($name), &$f, expect);
        }
    };
}

/// The same case on both engines' fixtures (`lsm(end)` and `bt(end)`), as two named tests.
macro_rules! case_both {
    ($lsm:ident, $btree:ident, $end:expr, |$f:ident| $body:expr) => {
        case!($lsm, lsm($end), |$f| $body);
        case!($btree, bt($end), |$f| $body);
    };
}

fn lsm(end: End) -> Fixture {
    fixture(Eng::Lsm, false, end)
}

fn lsm_sim(end: End) -> Fixture {
    fixture(Eng::Lsm, true, end)
}

fn bt(end: End) -> Fixture {
    fixture(Eng::BTree, false, end)
}

fn bt_sim(end: End) -> Fixture {
    fixture(Eng::BTree, true, end)
}

use End::{Closed, ClosedAfterTail, SyncedTail, UnsyncedTail};

// LSM tables.

case!(
    lsm_sst_data_block_bit_flip_is_corruption_on_read,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.flip_bit(&sst, 20, 3);
        Expect::Detected(sst)
    }
);

case!(
    lsm_sst_data_block_bit_flip_sim_is_corruption_on_read,
    lsm_sim(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.flip_bit(&sst, 300, 0);
        Expect::Detected(sst)
    }
);

case!(
    lsm_sst_filter_bit_flip_is_ignored_and_verify_reports_it,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        let (_, _, filter, size) = sst_regions(&f, &sst);
        assert!(size > 60, "the table has a filter");
        f.disk.flip_bit(&sst, filter + 60, 1);
        Expect::Detected(sst)
    }
);

case!(
    lsm_sst_index_block_bit_flip_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        let (index, ..) = sst_regions(&f, &sst);
        f.disk.flip_bit(&sst, index + 2, 4);
        Expect::Refused(sst)
    }
);

case!(
    lsm_sst_properties_bit_flip_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        let (_, props, ..) = sst_regions(&f, &sst);
        f.disk.flip_bit(&sst, props + 5, 2);
        Expect::Refused(sst)
    }
);

case!(
    lsm_sst_footer_magic_bit_flip_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.flip_bit(&sst, f.disk.len(&sst) - 3, 6);
        Expect::Refused(sst)
    }
);

case!(
    lsm_sst_footer_offsets_past_eof_with_valid_crc_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        let len = f.disk.len(&sst);
        let mut foot = f.disk.read(&sst)[len as usize - 64..].to_vec();
        foot[0..8].copy_from_slice(&(len + 4096).to_le_bytes());
        foot[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let crc = crc32(&foot[..52]);
        foot[52..56].copy_from_slice(&crc.to_le_bytes());
        f.disk.write_at(&sst, len - 64, &foot);
        Expect::Refused(sst)
    }
);

case!(
    lsm_sst_truncated_to_zero_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.truncate(&sst, 0);
        Expect::Refused(sst)
    }
);

case!(
    lsm_sst_truncated_to_half_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.truncate(&sst, f.disk.len(&sst) / 2);
        Expect::Refused(sst)
    }
);

case!(
    lsm_sst_grown_by_garbage_is_corruption_at_open,
    lsm(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.garbage(&sst, f.disk.len(&sst), 100);
        Expect::Refused(sst)
    }
);

case!(lsm_sst_zeroed_range_is_corruption, lsm(Closed), |f| {
    let sst = first_sst(&f);
    f.disk.zero(&sst, 0, 64);
    Expect::Detected(sst)
});

case!(lsm_sst_garbage_overwrite_is_corruption, lsm(Closed), |f| {
    let sst = first_sst(&f);
    f.disk.garbage(&sst, 100, 200);
    Expect::Detected(sst)
});

case!(
    lsm_sst_zeroed_range_sim_is_corruption,
    lsm_sim(Closed),
    |f| {
        let sst = first_sst(&f);
        f.disk.zero(&sst, 200, 64);
        Expect::Detected(sst)
    }
);

// LSM manifest.

case!(
    lsm_manifest_bit_flip_in_first_record_is_corruption,
    lsm(Closed),
    |f| {
        let m = manifest(&f);
        f.disk.flip_bit(&m, 30, 5);
        Expect::Refused(m)
    }
);

case!(
    lsm_manifest_truncated_to_zero_is_corruption,
    lsm(Closed),
    |f| {
        let m = manifest(&f);
        f.disk.truncate(&m, 0);
        Expect::Refused(m)
    }
);

case!(
    lsm_manifest_truncated_after_its_first_record_is_corruption,
    lsm(Closed),
    |f| {
        // Never reopened, the manifest's first record is the empty snapshot written at creation.
        let m = manifest(&f);
        let second = fragments(&f.disk.read(&m))[1] as u64;
        f.disk.truncate(&m, second);
        Expect::Refused(m)
    }
);

case!(
    lsm_manifest_truncated_to_half_is_corruption,
    lsm(Closed),
    |f| {
        // The surviving edits name a table compacted away since: refused, naming that table.
        let m = manifest(&f);
        f.disk.truncate(&m, f.disk.len(&m) / 2);
        Expect::Refused("000006.sst".into())
    }
);

case!(lsm_manifest_zeroed_range_is_corruption, lsm(Closed), |f| {
    let m = manifest(&f);
    f.disk.zero(&m, 40, 100);
    Expect::Refused(m)
});

case!(
    lsm_manifest_garbage_overwrite_is_corruption,
    lsm(Closed),
    |f| {
        let m = manifest(&f);
        f.disk.garbage(&m, 10, 200);
        Expect::Refused(m)
    }
);

case!(lsm_manifest_deleted_is_corruption, lsm(Closed), |f| {
    let m = manifest(&f);
    f.disk.delete(&m);
    Expect::Refused(m)
});

case!(
    lsm_manifest_truncated_mid_first_record_sim_is_corruption,
    lsm_sim(Closed),
    |f| {
        let m = manifest(&f);
        f.disk.truncate(&m, 10);
        Expect::Refused(m)
    }
);

// IDENTITY and LOCK.

case!(lsm_identity_deleted_is_corruption, lsm(Closed), |f| {
    f.disk.delete("IDENTITY");
    Expect::Refused("IDENTITY".into())
});

case!(lsm_identity_bit_flip_is_corruption, lsm(Closed), |f| {
    f.disk.flip_bit("IDENTITY", 9, 0);
    Expect::Refused("IDENTITY".into())
});

case!(lsm_identity_zero_length_is_corruption, lsm(Closed), |f| {
    f.disk.truncate("IDENTITY", 0);
    Expect::Refused("IDENTITY".into())
});

case!(
    lsm_identity_deleted_sim_is_corruption,
    lsm_sim(Closed),
    |f| {
        f.disk.delete("IDENTITY");
        Expect::Refused("IDENTITY".into())
    }
);

case!(lsm_lock_deleted_when_closed_is_fine, lsm(Closed), |f| {
    f.disk.delete("LOCK");
    Expect::Intact
});

case!(lsm_lock_garbage_is_fine, lsm(Closed), |f| {
    f.disk.garbage("LOCK", 0, 64);
    Expect::Intact
});

// LSM WAL, live segment.

case!(
    lsm_wal_unsynced_tail_truncated_to_zero_is_a_prefix,
    lsm(UnsyncedTail),
    |f| {
        let w = wal(&f);
        f.disk.truncate(&w, 0);
        Expect::Prefix
    }
);

case_both!(
    lsm_wal_unsynced_tail_truncated_mid_record_is_a_prefix,
    btree_wal_unsynced_tail_truncated_mid_record_is_a_prefix,
    UnsyncedTail,
    |f| {
        let w = wal(&f);
        f.disk.truncate(&w, f.disk.len(&w) - 10);
        Expect::Prefix
    }
);

case!(
    lsm_wal_synced_last_record_one_byte_short_drops_only_it,
    lsm(SyncedTail),
    |f| {
        // The inherent exception: damage to the log's last record looks like a torn tail.
        let w = wal(&f);
        f.disk.truncate(&w, f.disk.len(&w) - 1);
        f.floor = f.states.len() - 2;
        Expect::Prefix
    }
);

case_both!(
    lsm_wal_unsynced_tail_zeroed_is_a_prefix,
    btree_wal_unsynced_tail_zeroed_is_a_prefix,
    UnsyncedTail,
    |f| {
        let w = wal(&f);
        let len = f.disk.len(&w);
        f.disk.zero(&w, len / 2, len);
        Expect::Prefix
    }
);

case!(
    lsm_wal_unsynced_tail_zeroed_sim_is_a_prefix,
    lsm_sim(UnsyncedTail),
    |f| {
        let w = wal(&f);
        let len = f.disk.len(&w);
        f.disk.zero(&w, len / 2, len);
        Expect::Prefix
    }
);

case_both!(
    lsm_wal_unsynced_tail_garbage_is_a_prefix,
    btree_wal_unsynced_tail_garbage_is_a_prefix,
    UnsyncedTail,
    |f| {
        let w = wal(&f);
        let len = f.disk.len(&w);
        f.disk.garbage(&w, len - 300, 300);
        Expect::Prefix
    }
);

case_both!(
    lsm_wal_synced_record_bit_flip_is_corruption,
    btree_wal_synced_record_bit_flip_is_corruption,
    SyncedTail,
    |f| {
        let w = wal(&f);
        f.disk.flip_bit(&w, 25, 2);
        Expect::Refused(w)
    }
);

case!(
    lsm_wal_synced_record_bit_flip_sim_is_corruption,
    lsm_sim(SyncedTail),
    |f| {
        let w = wal(&f);
        f.disk.flip_bit(&w, 200, 7);
        Expect::Refused(w)
    }
);

case_both!(
    lsm_wal_fragment_length_ffff_at_unsynced_tail_is_a_prefix,
    btree_wal_fragment_length_ffff_at_unsynced_tail_is_a_prefix,
    UnsyncedTail,
    |f| {
        let w = wal(&f);
        let last = *fragments(&f.disk.read(&w)).last().unwrap() as u64;
        f.disk.write_at(&w, last + 4, &[0xFF, 0xFF]);
        Expect::Prefix
    }
);

case!(
    lsm_wal_fragment_length_ffff_in_synced_record_is_corruption,
    lsm(SyncedTail),
    |f| {
        let w = wal(&f);
        f.disk.write_at(&w, 4, &[0xFF, 0xFF]);
        Expect::Refused(w)
    }
);

case_both!(
    lsm_wal_batch_value_length_ffffffff_is_corruption,
    btree_wal_batch_value_length_ffffffff_is_corruption,
    SyncedTail,
    |f| { Expect::Refused(append_forged_batch(&f, 1, u32::MAX)) }
);

case!(
    lsm_wal_batch_count_ffffffff_is_corruption,
    lsm(SyncedTail),
    |f| { Expect::Refused(append_forged_batch(&f, u32::MAX, 5)) }
);

// The segment held no synced batch, but the engine's metadata names it as the first live segment (it
// was created and synced before that): its deletion is detected.
case_both!(
    lsm_wal_unsynced_segment_deleted_is_corruption,
    btree_wal_unsynced_segment_deleted_is_corruption,
    UnsyncedTail,
    |f| {
        let w = wal(&f);
        f.disk.delete(&w);
        Expect::Refused(w)
    }
);

// After a clean close: the closed segment is sealed and a new empty one follows it.

case_both!(
    lsm_wal_closed_segment_deleted_is_corruption,
    btree_wal_closed_segment_deleted_is_corruption,
    ClosedAfterTail,
    |f| {
        let w = wal(&f);
        f.disk.delete(&w);
        Expect::Refused(w)
    }
);

case_both!(
    lsm_wal_closed_segment_zero_length_is_corruption,
    btree_wal_closed_segment_zero_length_is_corruption,
    ClosedAfterTail,
    |f| {
        let w = wal(&f);
        f.disk.truncate(&w, 0);
        Expect::Refused(w)
    }
);

// Close makes every batch durable outside the WAL first, so the closed segment holds only its LINK and
// SEAL: cutting the SEAL off is exactly what a crash between a rotation's LINK and SEAL leaves (the
// successor's LINK records the same length), and nothing is lost.
case_both!(
    lsm_wal_closed_segment_cut_at_its_seal_is_intact,
    btree_wal_closed_segment_cut_at_its_seal_is_intact,
    ClosedAfterTail,
    |f| {
        let w = wal(&f);
        assert_eq!(f.disk.len(&w), 2 * WAL_LINK as u64, "LINK and SEAL");
        f.disk.truncate(&w, WAL_LINK as u64);
        Expect::Intact
    }
);

case_both!(
    lsm_wal_closed_newest_empty_segment_deleted_is_corruption,
    btree_wal_closed_newest_empty_segment_deleted_is_corruption,
    ClosedAfterTail,
    |f| {
        let w = last_wal(&f);
        assert_ne!(w, wal(&f), "close leaves two segments");
        f.disk.delete(&w);
        Expect::Refused(w)
    }
);

case_both!(
    lsm_wal_live_segment_deleted_after_a_crash_is_corruption,
    btree_wal_live_segment_deleted_after_a_crash_is_corruption,
    SyncedTail,
    |f| {
        let w = last_wal(&f);
        f.disk.delete(&w);
        Expect::Refused(w)
    }
);

case_both!(
    lsm_wal_synced_segment_deleted_is_corruption,
    btree_wal_synced_segment_deleted_is_corruption,
    SyncedTail,
    |f| {
        let w = wal(&f);
        f.disk.delete(&w);
        Expect::Refused(w)
    }
);

case!(lsm_wal_empty_extra_segment_is_fine, lsm(Closed), |f| {
    f.disk.create_empty("000999.log");
    Expect::Intact
});

// LSM WAL, sealed segment (sim: a crash inside the flush after a memtable switch).

case!(
    lsm_wal_sealed_segment_bit_flip_is_corruption,
    lsm_with_sealed_segment(),
    |f| {
        let w = wal(&f);
        f.disk.flip_bit(&w, 30, 1);
        Expect::Refused(w)
    }
);

case!(
    lsm_wal_sealed_segment_truncated_mid_record_is_corruption,
    lsm_with_sealed_segment(),
    |f| {
        let w = wal(&f);
        f.disk.truncate(&w, f.disk.len(&w) - 5);
        Expect::Refused(w)
    }
);

case!(
    lsm_wal_sealed_segment_cut_at_its_seal_is_corruption,
    lsm_with_sealed_segment(),
    |f| {
        let w = wal(&f);
        let seal = *fragments(&f.disk.read(&w)).last().unwrap() as u64;
        f.disk.truncate(&w, seal);
        Expect::Refused(w)
    }
);

case!(
    lsm_wal_sealed_segment_cut_at_its_last_record_is_corruption,
    lsm_with_sealed_segment(),
    |f| {
        let w = wal(&f);
        let frags = fragments(&f.disk.read(&w));
        f.disk.truncate(&w, frags[frags.len() - 2] as u64);
        Expect::Refused(w)
    }
);

case!(
    lsm_wal_sealed_segment_zero_length_is_corruption,
    lsm_with_sealed_segment(),
    |f| {
        let w = wal(&f);
        f.disk.truncate(&w, 0);
        Expect::Refused(w)
    }
);

// B-tree header slots.

fn slot_case(f: &Fixture, slot: u64) -> Expect {
    if pages(f).newest_slot == slot {
        // Falls back to the older slot: the pages the newest checkpoint wrote are newer than it.
        Expect::IntactOrDetected("data".into())
    } else {
        Expect::Intact
    }
}

case!(
    btree_header_slot0_bit_flip_uses_the_other_slot_or_is_corruption,
    bt(Closed),
    |f| {
        f.disk.flip_bit("data", 20, 3);
        slot_case(&f, 0)
    }
);

case!(
    btree_header_slot1_bit_flip_uses_the_other_slot_or_is_corruption,
    bt(Closed),
    |f| {
        f.disk.flip_bit("data", page_at(1) + 20, 3);
        slot_case(&f, 1)
    }
);

case!(btree_header_slot_torn_uses_older_slot, bt(Closed), |f| {
    let newest = pages(&f).newest_slot;
    f.disk.zero("data", page_at(newest) + 32, 32);
    slot_case(&f, newest)
});

case!(
    btree_header_older_slot_garbage_is_ignored,
    bt(Closed),
    |f| {
        let older = 1 - pages(&f).newest_slot;
        f.disk.garbage("data", page_at(older), 64);
        Expect::Intact
    }
);

case!(
    btree_header_both_slots_bit_flip_is_corruption,
    bt(Closed),
    |f| {
        f.disk.flip_bit("data", 20, 3);
        f.disk.flip_bit("data", page_at(1) + 20, 3);
        Expect::Refused("data".into())
    }
);

case!(
    btree_header_both_slots_zeroed_sim_is_corruption,
    bt_sim(Closed),
    |f| {
        f.disk.zero("data", 0, 2 * PAGE as u64);
        Expect::Refused("data".into())
    }
);

// B-tree pages.

case!(
    btree_leaf_page_bit_flip_is_corruption_on_read,
    bt(Closed),
    |f| {
        let leaf = pages(&f).leaves[3];
        f.disk.flip_bit("data", page_at(leaf) + 200, 5);
        Expect::Detected("data".into())
    }
);

case!(
    btree_leaf_page_bit_flip_sim_is_corruption_on_read,
    bt_sim(Closed),
    |f| {
        let leaf = pages(&f).leaves[1];
        f.disk.flip_bit("data", page_at(leaf) + 100, 0);
        Expect::Detected("data".into())
    }
);

case!(btree_leaf_page_zeroed_is_corruption, bt(Closed), |f| {
    let leaf = pages(&f).leaves[2];
    f.disk.zero("data", page_at(leaf), PAGE as u64);
    Expect::Detected("data".into())
});

case!(btree_leaf_page_garbage_is_corruption, bt(Closed), |f| {
    let leaf = pages(&f).leaves[0];
    f.disk.garbage("data", page_at(leaf) + 40, 300);
    Expect::Detected("data".into())
});

case!(
    btree_internal_page_bit_flip_is_corruption,
    bt(Closed),
    |f| {
        let p = pages(&f);
        let page = *p.internals.first().unwrap_or(&p.root);
        f.disk.flip_bit("data", page_at(page) + 40, 2);
        Expect::Detected("data".into())
    }
);

case!(btree_root_page_bit_flip_is_corruption, bt(Closed), |f| {
    let root = pages(&f).root;
    f.disk.flip_bit("data", page_at(root) + 10, 6);
    Expect::Detected("data".into())
});

case!(
    btree_free_list_page_bit_flip_is_corruption,
    bt(Closed),
    |f| {
        let list = pages(&f).free_list;
        assert!(!list.is_empty(), "the fixture has a free list");
        f.disk.flip_bit("data", page_at(list[0]) + 100, 1);
        Expect::Detected("data".into())
    }
);

case!(btree_unused_page_garbage_is_harmless, bt(Closed), |f| {
    let unused = pages(&f).unused;
    assert!(!unused.is_empty(), "the fixture has free pages");
    for n in unused {
        f.disk.garbage("data", page_at(n), PAGE);
    }
    Expect::Intact
});

// B-tree data file length.

case!(
    btree_data_trailing_partial_page_is_ignored,
    bt(Closed),
    |f| {
        f.disk.garbage("data", f.disk.len("data"), 100);
        Expect::Intact
    }
);

case!(
    btree_data_grown_by_zero_pages_beyond_the_header_is_ignored,
    bt(Closed),
    |f| {
        f.disk.write_at("data", f.disk.len("data"), &[0; 2 * PAGE]);
        Expect::Intact
    }
);

case!(
    btree_data_shorter_than_header_page_count_is_corruption,
    bt(Closed),
    |f| {
        f.disk.truncate("data", f.disk.len("data") - PAGE as u64);
        Expect::Refused("data".into())
    }
);

case!(
    btree_data_truncated_one_byte_short_is_corruption,
    bt(Closed),
    |f| {
        f.disk.truncate("data", f.disk.len("data") - 1);
        Expect::Refused("data".into())
    }
);

case!(btree_data_zero_length_is_corruption, bt(Closed), |f| {
    f.disk.truncate("data", 0);
    Expect::Refused("data".into())
});

case!(btree_data_deleted_is_corruption, bt(Closed), |f| {
    f.disk.delete("data");
    Expect::Refused("data".into())
});

case!(btree_data_deleted_sim_is_corruption, bt_sim(Closed), |f| {
    f.disk.delete("data");
    Expect::Refused("data".into())
});

// B-tree IDENTITY and LOCK.

case!(btree_identity_deleted_is_corruption, bt(Closed), |f| {
    f.disk.delete("IDENTITY");
    Expect::Refused("IDENTITY".into())
});

case!(btree_identity_garbage_is_corruption, bt(Closed), |f| {
    f.disk.garbage("IDENTITY", 0, 28);
    Expect::Refused("IDENTITY".into())
});

case!(btree_lock_deleted_when_closed_is_fine, bt(Closed), |f| {
    f.disk.delete("LOCK");
    Expect::Intact
});

// B-tree WAL.

case!(
    btree_wal_unsynced_tail_truncated_to_zero_is_a_prefix,
    bt(UnsyncedTail),
    |f| {
        let w = wal(&f);
        f.disk.truncate(&w, 0);
        Expect::Prefix
    }
);

case!(
    btree_wal_unsynced_tail_garbage_sim_is_a_prefix,
    bt_sim(UnsyncedTail),
    |f| {
        let w = wal(&f);
        let len = f.disk.len(&w);
        f.disk.garbage(&w, len - 200, 200);
        Expect::Prefix
    }
);

case!(
    btree_wal_synced_record_bit_flip_sim_is_corruption,
    bt_sim(SyncedTail),
    |f| {
        let w = wal(&f);
        f.disk.flip_bit(&w, 150, 4);
        Expect::Refused(w)
    }
);

// After a clean close: the closed segment is sealed and a new empty one follows it.

case!(btree_wal_empty_extra_segment_is_fine, bt(Closed), |f| {
    f.disk.create_empty("000999.log");
    Expect::Intact
});

// B-tree copy-on-write checkpoint (sim: a crash inside one).

case!(
    btree_mid_checkpoint_is_intact,
    btree_mid_checkpoint(false),
    |f| { Expect::Intact }
);

case!(
    btree_mid_checkpoint_torn_pages_are_intact,
    btree_mid_checkpoint(true),
    |f| Expect::Intact
);
