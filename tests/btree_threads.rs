//! The B-tree with background checkpoints (`Background::Threads`) on the OS backend: two writers and two
//! readers run while the checkpoint thread writes frozen checkpoints and the pool writes dirty pages back on eviction beside them. Counters only (no
//! timings): every acknowledged write is read back with its value during and after the run, the final
//! scan is exact, checkpoints ran, `verify` passes; then the same after close and reopen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use rumdb::testing::Rng;
use rumdb::{
    BTreeEngine, BTreeOptions, Background, Durability, Engine, EngineExt, WriteBatch, WriteOptions,
};

const WRITERS: u64 = 2;
const KEYS: u64 = 2000;
const BATCH: u64 = 10;

fn key(w: u64, i: u64) -> Vec<u8> {
    format!("w{w}-{i:06}").into_bytes()
}

fn value(w: u64, i: u64, round: u64) -> Vec<u8> {
    let len = 20 + ((i * 7 + w) % 100) as usize;
    let mut v = format!("{w}:{i}:{round}:").into_bytes();
    v.resize(len, b'a' + (round as u8));
    v
}

fn options() -> BTreeOptions {
    BTreeOptions {
        background: Background::Threads,
        pool_bytes: 64 * 512,
        checkpoint_wal_bytes: 16 << 10,
        ..BTreeOptions::tiny()
    }
}

/// Every key holds its round-1 value, the scan is exactly the model, and `verify` passes.
fn check_final(db: &BTreeEngine) {
    for w in 0..WRITERS {
        for i in 0..KEYS {
            assert_eq!(
                db.get(key(w, i)).unwrap(),
                Some(value(w, i, 1).into()),
                "{w}/{i}"
            );
        }
    }
    let scanned: Vec<_> = db.range(..).unwrap().map(|r| r.unwrap()).collect();
    let mut expected: Vec<_> = (0..WRITERS)
        .flat_map(|w| (0..KEYS).map(move |i| (key(w, i).into(), value(w, i, 1).into())))
        .collect();
    expected.sort();
    assert_eq!(scanned.len(), expected.len());
    assert!(scanned == expected, "the final scan differs from the model");
    let report = db.verify().unwrap();
    assert!(report.blocks > 0);
}

#[test]
fn writers_and_readers_beside_background_checkpoints_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(BTreeEngine::open(dir.path(), options()).unwrap());
    // acked[w][round]: keys 0..n of writer w are acknowledged in that round.
    let acked: Arc<Vec<[AtomicU64; 2]>> = Arc::new(
        (0..WRITERS)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (db, acked) = (Arc::clone(&db), Arc::clone(&acked));
        writers.push(thread::spawn(move || {
            for round in 0..2u64 {
                for start in (0..KEYS).step_by(BATCH as usize) {
                    let mut b = WriteBatch::new();
                    for i in start..start + BATCH {
                        b.put(key(w, i), value(w, i, round));
                    }
                    db.write(&b, WriteOptions::new(Durability::Flush)).unwrap();
                    acked[w as usize][round as usize].store(start + BATCH, Ordering::Release);
                }
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (db, acked, done, reads) = (
            Arc::clone(&db),
            Arc::clone(&acked),
            Arc::clone(&done),
            Arc::clone(&reads),
        );
        readers.push(thread::spawn(move || {
            let mut rng = Rng::new(r + 1);
            while !done.load(Ordering::Acquire) {
                let w = rng.below(WRITERS);
                let [a0, a1] = &acked[w as usize];
                let (n1, n0) = (a1.load(Ordering::Acquire), a0.load(Ordering::Acquire));
                if n0 == 0 {
                    continue;
                }
                let i = rng.below(n0);
                let got = db.get(key(w, i)).unwrap();
                if i < n1 {
                    assert_eq!(got, Some(value(w, i, 1).into()), "{w}/{i} after round 1");
                } else {
                    assert!(
                        got == Some(value(w, i, 0).into()) || got == Some(value(w, i, 1).into()),
                        "{w}/{i} acknowledged in round 0, read {got:?}"
                    );
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in writers {
        h.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for h in readers {
        h.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    db.wait_idle().unwrap();
    let stats = db.stats();
    assert!(stats.checkpoints >= 2, "checkpoints: {}", stats.checkpoints);
    check_final(&db);
    db.close().unwrap();
    drop(db);

    let db = BTreeEngine::open(dir.path(), options()).unwrap();
    assert_eq!(
        db.stats().recovery.records_replayed,
        0,
        "close checkpointed"
    );
    check_final(&db);
    db.close().unwrap();
}

/// A failed fsync in the background checkpoint poisons the handle: `wait_idle` and later writes return
/// `Poisoned` with the cause, reads still see every acknowledged write (the pages stay dirty in the pool), and a
/// reopen after a process kill recovers them all from the WAL.
#[test]
fn a_failed_background_checkpoint_poisons_and_reopen_recovers() {
    use rumdb::testing::Storage;
    use rumdb::testing::{CrashMode, Fault, FaultPlan, OpKind, SimBackend};
    let sim = SimBackend::new(3);
    let opts = BTreeOptions {
        background: Background::Threads,
        pool_bytes: 16 * 512,
        ..BTreeOptions::tiny()
    };
    let db = BTreeEngine::open_with(Storage::new(Arc::new(sim.clone())), opts).unwrap();
    // The freeze's WAL rotation fsyncs the sealed segment twice (its records, then its SEAL) in the
    // writer; the thread then fsyncs the data file (the checkpoint's pages): fail that one.
    sim.set_fault_plan(FaultPlan {
        fail: vec![Fault {
            op: OpKind::SyncData,
            nth: sim.op_count(OpKind::SyncData) + 3,
            kind: std::io::ErrorKind::Other,
        }],
        ..Default::default()
    });
    // 4 KiB of WAL (the tiny options) starts the checkpoint.
    let mut acked = 0u64;
    for i in 0..200u64 {
        let r = db.write(
            WriteBatch::new().put(key(0, i), value(0, i, 1)),
            WriteOptions::new(Durability::Flush),
        );
        match r {
            Ok(()) => acked = i + 1,
            Err(e) => {
                assert!(matches!(e, rumdb::Error::Poisoned { .. }), "{e:?}");
                break;
            }
        }
    }
    let idle = db.wait_idle();
    assert!(
        matches!(&idle, Err(rumdb::Error::Poisoned { cause }) if cause.contains("SyncData")),
        "{idle:?}"
    );
    assert!(matches!(
        db.put(b"later", b"refused"),
        Err(rumdb::Error::Poisoned { .. })
    ));
    assert!(acked > 8, "the checkpoint started after {acked} writes");
    for i in 0..acked {
        assert_eq!(
            db.get(key(0, i)).unwrap(),
            Some(value(0, i, 1).into()),
            "{i}"
        );
    }
    drop(db);
    sim.set_fault_plan(FaultPlan::default());
    let image = sim.crash(CrashMode::ProcessKill);
    let db = BTreeEngine::open_with(Storage::new(Arc::new(image)), BTreeOptions::tiny()).unwrap();
    for i in 0..acked {
        assert_eq!(
            db.get(key(0, i)).unwrap(),
            Some(value(0, i, 1).into()),
            "{i}"
        );
    }
    db.verify().unwrap();
}
