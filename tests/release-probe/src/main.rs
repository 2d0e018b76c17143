//! Crash points are compiled out of release builds: run without arguments, the probe re-executes itself
//! once per crash point with `RUMDB_CRASH_AT=<point>:1` set and requires every run to exit 0 with its writes
//! intact. With the `testing` feature on (or the gating in `src/crash_point.rs` broken) the first run that
//! reaches its point dies by `abort` (exit 134) and the probe fails.
//!
//! `rumdb-release-probe workload DIR` runs one workload in the new directory `DIR` under whatever
//! environment it was given.

use std::path::Path;
use std::process::{Command, ExitCode};

use rumdb::CRASH_POINTS;
use rumdb::{
    BTreeEngine, BTreeOptions, Durability, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch,
    WriteOptions,
};

const KEYS: u32 = 400;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    vec![b'a' + (i % 26) as u8; 40 + (i as usize * 13) % 90]
}

/// Puts, every fourth `Sync` (WAL appends, fsyncs and rotations), flushes, compactions and checkpoints: the workload
/// passes most crash points of both engines, `wal.append.before_sync` first.
fn write_all(db: &dyn Engine) -> rumdb::Result<()> {
    for i in 0..KEYS {
        let mut batch = WriteBatch::new();
        batch.put(&key(i), &value(i));
        let durability = if i % 4 == 0 {
            Durability::Sync
        } else {
            Durability::Flush
        };
        db.write(&batch, WriteOptions::new(durability))?;
        if i % 100 == 99 {
            db.flush()?;
        }
    }
    db.flush()
}

fn check_all(db: &dyn Engine, what: &str) -> Result<(), String> {
    for i in 0..KEYS {
        let got = db.get(&key(i)).map_err(|e| format!("{what}: get: {e}"))?;
        if got.as_deref() != Some(&value(i)[..]) {
            return Err(format!("{what}: key {i} lost or wrong after reopen"));
        }
    }
    Ok(())
}

fn lsm_options() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 2 << 10,
        l0_compaction_trigger: 3,
        base_level_bytes: 2 << 10,
        target_file_bytes: 2 << 10,
        ..LsmOptions::tiny()
    }
}

fn btree_options() -> BTreeOptions {
    BTreeOptions {
        checkpoint_wal_bytes: 1024,
        ..BTreeOptions::tiny()
    }
}

fn workload(dir: &Path) -> Result<(), String> {
    let err = |what: &'static str| move |e: rumdb::Error| format!("{what}: {e}");
    let lsm = dir.join("lsm");
    let db = LsmEngine::open(&lsm, lsm_options()).map_err(err("lsm open"))?;
    write_all(&db).map_err(err("lsm writes"))?;
    db.compact().map_err(err("lsm compact"))?;
    db.close().map_err(err("lsm close"))?;
    let db = LsmEngine::open(&lsm, lsm_options()).map_err(err("lsm reopen"))?;
    check_all(&db, "lsm")?;
    db.close().map_err(err("lsm close"))?;

    let btree = dir.join("btree");
    let db = BTreeEngine::open(&btree, btree_options()).map_err(err("btree open"))?;
    write_all(&db).map_err(err("btree writes"))?;
    db.close().map_err(err("btree close"))?;
    let db = BTreeEngine::open(&btree, btree_options()).map_err(err("btree reopen"))?;
    check_all(&db, "btree")?;
    db.close().map_err(err("btree close"))
}

fn run_workload(dir: &Path) -> ExitCode {
    match workload(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("release probe workload failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, dir] = &args[..]
        && mode == "workload"
    {
        return run_workload(Path::new(dir));
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("release probe: current_exe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scratch = std::env::temp_dir().join(format!("rumdb-release-probe-{}", std::process::id()));
    let mut failed = 0;
    for (i, point) in CRASH_POINTS.iter().enumerate() {
        let spec = format!("{point}:1");
        let dir = scratch.join(i.to_string());
        let status = Command::new(&exe)
            .arg("workload")
            .arg(&dir)
            .env("RUMDB_CRASH_AT", &spec)
            .status();
        let _ = std::fs::remove_dir_all(&dir);
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                failed += 1;
                eprintln!("RUMDB_CRASH_AT={spec}: the workload ended with {status}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("RUMDB_CRASH_AT={spec}: could not run the workload: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if failed > 0 {
        eprintln!(
            "FAILED: {failed} of {} crash points stopped a release build without feature `testing`",
            CRASH_POINTS.len()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "ok: {} crash points armed in turn, none fired; every write survived",
        CRASH_POINTS.len()
    );
    ExitCode::SUCCESS
}
