//! kill -9 and whitebox crash points on real files, both engines.
//!
//! Each test re-executes its own binary as a writer, selected by the `RUMDB_KILL_CHILD` variable (the
//! directory). The writer writes batches `n = start, start + 1, …` (each a few keys holding `n`, every
//! value derived from its key), and prints `ack n` after each write returned (`Sync` or `Flush`
//! durability: a killed process loses neither, the page cache keeps what reached the OS).
//!
//! - **Kill rounds:** the parent SIGKILLs the writer after a seeded number of acks, reopens the
//!   directory in-process and checks that every acknowledged batch is there whole, that the one batch in
//!   flight is whole or absent, and that no other key exists; then a new writer continues over the same
//!   directory. `RUMDB_KILL_ROUNDS=<n>` sets the rounds per engine and durability (default 6),
//!   `RUMDB_SEED=<n>` the seed.
//! - **Crash points:** for every name in [`rumdb::testing::CRASH_POINTS`], a writer armed with
//!   `RUMDB_CRASH_AT=<name>:<nth>` must die by `abort` (SIGABRT) — never exit cleanly, which would mean
//!   the point is not reached — and the reopened directory must hold every acknowledged batch and pass
//!   `verify()`. The writer uses `Sync` durability for the points only a synced write reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use rumdb::BTreeEngine;
use rumdb::testing::CRASH_POINTS;
use rumdb::testing::Rng;
use rumdb::testing::engines::{BTreeTiny, LsmTiny};
use rumdb::{Durability, Engine, EngineExt, LsmEngine, WriteBatch, WriteOptions};

const CHILD: &str = "RUMDB_KILL_CHILD";
const ENGINE: &str = "RUMDB_KILL_ENGINE";
const DURABILITY: &str = "RUMDB_KILL_DURABILITY";
const START: &str = "RUMDB_KILL_START";
const LIMIT: &str = "RUMDB_KILL_LIMIT";
const KEYS: &str = "RUMDB_KILL_KEYS";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Lsm,
    BTree,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lsm => "lsm",
            Kind::BTree => "btree",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "lsm" => Kind::Lsm,
            _ => Kind::BTree,
        }
    }

    /// Small options (the crash tests' `rumdb::testing::engines`): flushes, compactions, manifest edits,
    /// checkpoints and WAL rotations every few dozen writes (Manual background: they run inline, in the
    /// writer).
    fn open(self, dir: &Path) -> rumdb::Result<Box<dyn Engine>> {
        Ok(match self {
            Kind::Lsm => Box::new(LsmEngine::open(dir, LsmTiny::options())?),
            Kind::BTree => Box::new(BTreeEngine::open(dir, BTreeTiny::options())?),
        })
    }
}

/// Key order of a writer: hashed (batches land all over the key space, so compactions rewrite) or
/// sequential (disjoint tables, so compactions move them down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keys {
    Hashed,
    Sequential,
}

fn batch_len(n: u64) -> u64 {
    1 + n % 3
}

fn key(keys: Keys, n: u64, j: u64) -> Vec<u8> {
    match keys {
        Keys::Hashed => {
            let h = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j.wrapping_mul(0xBF58_476D_1CE4_E5B9))
                >> 48;
            format!("{h:04x}:{n:08}:{j}").into_bytes()
        }
        Keys::Sequential => format!("seq:{n:08}:{j}").into_bytes(),
    }
}

/// The batch number a key belongs to.
fn batch_of(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key)
        .ok()?
        .split(':')
        .nth(1)?
        .parse()
        .ok()
}

/// The value of a key: the key repeated to 60–100 bytes.
fn value(key: &[u8]) -> Vec<u8> {
    let n = batch_of(key).unwrap_or(0);
    key.iter()
        .copied()
        .cycle()
        .take(60 + (n % 5) as usize * 10)
        .collect()
}

/// In the child: write batches `start..start + limit`, printing `ack n` after each.
fn writer(dir: &str) {
    let env = |k: &str| std::env::var(k).unwrap();
    let kind = Kind::parse(&env(ENGINE));
    let durability = if env(DURABILITY) == "sync" {
        Durability::Sync
    } else {
        Durability::Flush
    };
    let start: u64 = env(START).parse().unwrap();
    let limit: u64 = env(LIMIT).parse().unwrap();
    let keys = if env(KEYS) == "seq" {
        Keys::Sequential
    } else {
        Keys::Hashed
    };
    let db = kind.open(Path::new(dir)).unwrap();
    let mut out = std::io::stdout().lock();
    for n in start..start + limit {
        let mut batch = WriteBatch::new();
        for j in 0..batch_len(n) {
            let k = key(keys, n, j);
            batch.put(&k, value(&k));
        }
        db.write(&batch, WriteOptions::new(durability)).unwrap();
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

struct Spec<'a> {
    test: &'a str,
    kind: Kind,
    durability: &'a str,
    start: u64,
    limit: u64,
    keys: Keys,
    crash_at: Option<String>,
}

fn spawn(dir: &Path, spec: &Spec) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", spec.test, "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .env(ENGINE, spec.kind.name())
        .env(DURABILITY, spec.durability)
        .env(START, spec.start.to_string())
        .env(LIMIT, spec.limit.to_string())
        .env(
            KEYS,
            if spec.keys == Keys::Sequential {
                "seq"
            } else {
                "hashed"
            },
        )
        .stdout(Stdio::piped());
    match &spec.crash_at {
        Some(at) => cmd.env("RUMDB_CRASH_AT", at),
        None => cmd.env_remove("RUMDB_CRASH_AT"),
    };
    let mut child = cmd.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Reads lines until `stop` acks were seen (or the end); returns the last ack and whether `done` came.
fn read_acks(stdout: &mut BufReader<ChildStdout>, stop: u64, last: &mut Option<u64>) -> bool {
    let mut seen = 0;
    let mut line = String::new();
    while seen < stop {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if let Some(n) = line.trim().strip_prefix("ack ") {
            *last = Some(n.parse().unwrap());
            seen += 1;
        } else if line.trim() == "done" {
            return true;
        }
    }
    false
}

/// What the directory must hold: batches acknowledged (whole), and batches in flight at a kill (whole
/// or absent). Nothing else.
#[derive(Default)]
struct Expect {
    must: BTreeSet<u64>,
    maybe: BTreeSet<u64>,
}

impl Expect {
    /// Records a writer that ran `start..` and acknowledged up to `last`; `end` is one past its last batch.
    fn record(&mut self, start: u64, last: Option<u64>, end: u64) -> u64 {
        let next = match last {
            Some(a) => {
                self.must.extend(start..=a);
                a + 1
            }
            None => start,
        };
        if next < end {
            self.maybe.insert(next);
        }
        next + 1
    }

    /// Checks the reopened directory; in-flight batches found become acknowledged ones.
    fn check(&mut self, db: &dyn Engine, ctx: &str) {
        let mut per_batch = BTreeMap::<u64, u64>::new();
        for item in db.scan(Bound::Unbounded, Bound::Unbounded).unwrap() {
            let (k, v) = item.unwrap_or_else(|e| panic!("{ctx}: scan: {e}"));
            let n = batch_of(&k).unwrap_or_else(|| panic!("{ctx}: foreign key {k:?}"));
            assert!(
                self.must.contains(&n) || self.maybe.contains(&n),
                "{ctx}: key {} of batch {n}, which was never written",
                String::from_utf8_lossy(&k)
            );
            assert_eq!(v, value(&k), "{ctx}: wrong value");
            *per_batch.entry(n).or_default() += 1;
        }
        for n in &self.must {
            assert_eq!(
                per_batch.get(n).copied().unwrap_or(0),
                batch_len(*n),
                "{ctx}: acknowledged batch {n} lost or partial"
            );
        }
        for n in std::mem::take(&mut self.maybe) {
            match per_batch.get(&n).copied().unwrap_or(0) {
                0 => {}
                c if c == batch_len(n) => {
                    self.must.insert(n);
                }
                c => panic!("{ctx}: in-flight batch {n} is partial ({c} keys)"),
            }
        }
        // Point reads agree with the scan on a sample of acknowledged batches.
        for n in self.must.iter().step_by(17) {
            let found = (0..batch_len(*n)).any(|j| {
                [Keys::Hashed, Keys::Sequential]
                    .iter()
                    .any(|&keys| db.get(key(keys, *n, j)).unwrap().is_some())
            });
            assert!(found, "{ctx}: get misses batch {n}");
        }
        db.verify().unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
    }
}

fn seed() -> u64 {
    rumdb::testing::seed(8)
}

/// Kill rounds for one engine and durability; returns the rounds run.
fn kill_rounds(test: &str, kind: Kind, durability: &str) -> u64 {
    let rounds = rumdb::testing::env_u64("RUMDB_KILL_ROUNDS", 6);
    let seed = seed();
    let mut rng = Rng::new(seed ^ kind as u64 ^ u64::from(durability == "sync") << 8);
    let dir = tempfile::tempdir().unwrap();
    let mut expect = Expect::default();
    let mut start = 0;
    let limit = 1_000_000;
    for round in 0..rounds {
        let ctx = format!(
            "{} {durability} round {round} (RUMDB_SEED={seed} cargo test --test kill {test})",
            kind.name()
        );
        let stop = 1 + rng.below(120);
        let spec = Spec {
            test,
            kind,
            durability,
            start,
            limit,
            keys: if rng.chance(1, 4) {
                Keys::Sequential
            } else {
                Keys::Hashed
            },
            crash_at: None,
        };
        let (mut child, mut stdout) = spawn(dir.path(), &spec);
        let mut last = None;
        let done = read_acks(&mut stdout, stop, &mut last);
        assert!(!done, "{ctx}: the writer finished before the kill");
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        // Acks already in the pipe count too.
        read_acks(&mut stdout, u64::MAX, &mut last);
        assert_eq!(status.signal(), Some(9), "{ctx}: {status:?}");
        assert!(last.is_some(), "{ctx}: the writer acknowledged nothing");
        start = expect.record(start, last, start + limit);
        let db = kind
            .open(dir.path())
            .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        expect.check(db.as_ref(), &ctx);
        db.close().unwrap();
    }
    assert!(expect.must.len() as u64 >= rounds);
    println!(
        "{} {durability}: {rounds} kill rounds, {} batches acknowledged",
        kind.name(),
        expect.must.len()
    );
    rounds
}

/// The parents run one at a time. A `LOCK` file descriptor is close-on-exec, but a child spawned by one
/// test thread holds a copy of every descriptor of the process from its fork until its exec: had another
/// test just closed a database, its flock would outlive the close for that moment and the next open
/// would be `Locked`.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// In a child: runs the writer and returns None. In the parent: waits for its [`SERIAL`] turn.
fn child_mode() -> Option<std::sync::MutexGuard<'static, ()>> {
    match std::env::var(CHILD) {
        Ok(dir) => {
            writer(&dir);
            None
        }
        Err(_) => Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

#[test]
fn kill_lsm_sync_acks() {
    if let Some(_serial) = child_mode() {
        kill_rounds("kill_lsm_sync_acks", Kind::Lsm, "sync");
    }
}

#[test]
fn kill_lsm_flush_acks() {
    if let Some(_serial) = child_mode() {
        kill_rounds("kill_lsm_flush_acks", Kind::Lsm, "flush");
    }
}

#[test]
fn kill_btree_sync_acks() {
    if let Some(_serial) = child_mode() {
        kill_rounds("kill_btree_sync_acks", Kind::BTree, "sync");
    }
}

#[test]
fn kill_btree_flush_acks() {
    if let Some(_serial) = child_mode() {
        kill_rounds("kill_btree_flush_acks", Kind::BTree, "flush");
    }
}

/// The engines that reach a crash point.
fn engines_of(point: &str) -> Vec<Kind> {
    if point.starts_with("btree.") {
        vec![Kind::BTree]
    } else if point.starts_with("wal.") || point.starts_with("commit.") {
        vec![Kind::Lsm, Kind::BTree]
    } else {
        vec![Kind::Lsm]
    }
}

/// The durability the writer uses for a crash point: `Sync` for the points only a synced write reaches
/// (the WAL's fsync, a synced commit), `Flush` otherwise (cheaper: no fsync per write).
fn durability_for(point: &str) -> &'static str {
    if point.starts_with("wal.append.") || point == "commit.wal_synced" {
        "sync"
    } else {
        "flush"
    }
}

/// Arms each crash point of `kind` at its first hit and at a later one (rollover and the new segment of
/// an open run once per open: first hit only), runs a writer until it aborts, and checks the reopened directory. Returns the runs.
fn crash_points(test: &str, kind: Kind) -> u64 {
    let mut runs = 0;
    for &point in CRASH_POINTS {
        if !engines_of(point).contains(&kind) {
            continue;
        }
        let nths: &[u64] = if point.starts_with("manifest.roll.") || point.starts_with("wal.open.")
        {
            &[1]
        } else {
            &[1, 3]
        };
        for &nth in nths {
            let ctx = format!(
                "{} RUMDB_CRASH_AT={point}:{nth} (cargo test --test kill {test})",
                kind.name()
            );
            let dir = tempfile::tempdir().unwrap();
            // Creation completes first: the armed writer's open is a reopen (and rolls the manifest).
            kind.open(dir.path()).unwrap().close().unwrap();
            let limit = 3000;
            let spec = Spec {
                test,
                kind,
                durability: durability_for(point),
                start: 0,
                limit,
                keys: if point == "compact.move.synced" {
                    Keys::Sequential
                } else {
                    Keys::Hashed
                },
                crash_at: Some(format!("{point}:{nth}")),
            };
            let (mut child, mut stdout) = spawn(dir.path(), &spec);
            let mut last = None;
            let done = read_acks(&mut stdout, u64::MAX, &mut last);
            let status = child.wait().unwrap();
            assert!(
                !done && status.signal() == Some(6),
                "{ctx}: the crash point was never reached (writer: {status:?}, {} acks)",
                last.map_or(0, |a| a + 1)
            );
            let mut expect = Expect::default();
            expect.record(0, last, limit);
            let db = kind
                .open(dir.path())
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
            expect.check(db.as_ref(), &ctx);
            db.close().unwrap();
            // The directory goes on: a new writer appends over the recovered state.
            let db = kind.open(dir.path()).unwrap();
            let k = key(Keys::Hashed, limit, 0);
            db.write(
                WriteBatch::new().put(&k, value(&k)),
                WriteOptions::new(Durability::Sync),
            )
            .unwrap();
            assert_eq!(db.get(&k).unwrap(), Some(value(&k).into()), "{ctx}");
            runs += 1;
        }
    }
    println!("{}: {runs} crash point runs", kind.name());
    runs
}

#[test]
fn crash_points_lsm() {
    if let Some(_serial) = child_mode() {
        assert!(crash_points("crash_points_lsm", Kind::Lsm) > 0);
    }
}

#[test]
fn crash_points_btree() {
    if let Some(_serial) = child_mode() {
        assert!(crash_points("crash_points_btree", Kind::BTree) > 0);
    }
}

/// Every listed crash point is reached by at least one engine's run above.
#[test]
fn every_crash_point_belongs_to_an_engine() {
    for point in CRASH_POINTS {
        assert!(
            [
                "wal.",
                "commit.",
                "flush.",
                "compact.",
                "manifest.",
                "btree."
            ]
            .iter()
            .any(|p| point.starts_with(p)),
            "{point}"
        );
    }
}
