//! Exclusive open across processes: a second process opening the same directory
//! gets `Locked` at once and touches nothing; after the holder is killed with SIGKILL (its lock dies with
//! it), the open succeeds and every acknowledged write is there.
//!
//! The test re-executes its own binary as the holder, selected by the `RUMDB_LOCK_HOLDER` variable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use rumdb::{
    Durability, Engine, EngineExt, Error, LsmEngine, LsmOptions, WriteBatch, WriteOptions,
};

const HOLDER: &str = "RUMDB_LOCK_HOLDER";

/// In the child: open, write and sync a key, say so, then wait to be killed.
fn hold(dir: &str) {
    let db = LsmEngine::open(std::path::Path::new(dir), LsmOptions::default()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"acknowledged", b"yes");
    db.write(&batch, WriteOptions::new(Durability::Sync))
        .unwrap();
    println!("holding");
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn a_second_process_is_locked_out_until_the_holder_dies() {
    if let Ok(dir) = std::env::var(HOLDER) {
        hold(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_second_process_is_locked_out_until_the_holder_dies",
            "--nocapture",
        ])
        .env(HOLDER, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("holding"));
    assert!(holding, "the holder never reported holding the lock");
    let files_before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    match LsmEngine::open(dir.path(), LsmOptions::default()) {
        Err(Error::Locked(_)) => {}
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second process opened a locked directory"),
    }
    let files_after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files_before.len(),
        files_after.len(),
        "the refused open touched the directory"
    );
    child.kill().unwrap(); // SIGKILL: no destructor runs, the lock dies with the process
    child.wait().unwrap();
    let db = LsmEngine::open(dir.path(), LsmOptions::default()).unwrap();
    assert_eq!(
        db.get(b"acknowledged").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
}
