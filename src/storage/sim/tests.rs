//! Tests of the simulated backend.

use std::collections::HashSet;

use super::*;
use crate::Error;
use crate::storage::{ReadPurpose, Storage, WritePurpose};

fn storage(sim: &SimBackend) -> Storage {
    Storage::new(Arc::new(sim.clone()))
}

/// A durable file `name` holding `data` (created, written, synced, directory synced).
fn durable_file(sim: &SimBackend, name: &str, data: &[u8]) {
    let f = sim.create_new(name).unwrap();
    assert_eq!(f.append(data).unwrap(), data.len());
    f.sync_data().unwrap();
    sim.sync_dir().unwrap();
}

#[test]
fn reads_see_writes_and_storage_works() {
    let sim = SimBackend::new(1);
    let s = storage(&sim);
    let f = s.create_new("a").unwrap();
    f.append(b"hello ", WritePurpose::Wal).unwrap();
    f.append(b"world", WritePurpose::Wal).unwrap();
    f.write_at(0, b"H", WritePurpose::Header).unwrap();
    f.set_len(13).unwrap();
    let mut buf = [0u8; 13];
    f.read_exact_at(0, &mut buf, ReadPurpose::Get).unwrap();
    assert_eq!(&buf, b"Hello world\0\0");
    assert!(s.create_new("a").is_err(), "create_new must not replace");
    s.write_file_atomic("CURRENT", b"x", WritePurpose::Manifest)
        .unwrap();
    assert_eq!(
        s.list().unwrap(),
        vec!["CURRENT".to_string(), "a".to_string()]
    );
    assert_eq!(sim.read_file("CURRENT").unwrap(), b"x");
    assert!(s.create_new("").is_err());
    assert!(s.create_new("a/b").is_err());
    assert_eq!(
        sim.create_new("..").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn handles_follow_the_inode() {
    let sim = SimBackend::new(2);
    let f = sim.create_new("a").unwrap();
    f.append(b"abc").unwrap();
    sim.rename("a", "b").unwrap();
    f.append(b"def").unwrap();
    assert_eq!(sim.read_file("b").unwrap(), b"abcdef");
    let g = sim.open("b", false).unwrap();
    sim.remove("b").unwrap();
    assert!(sim.file_names().is_empty());
    let mut buf = [0u8; 6];
    assert_eq!(g.read_at(0, &mut buf).unwrap(), 6);
    assert_eq!(&buf, b"abcdef");
    assert_eq!(g.read_at(4, &mut buf).unwrap(), 2);
    assert_eq!(g.read_at(100, &mut buf).unwrap(), 0);
}

#[test]
fn read_only_handles_refuse_writes() {
    let sim = SimBackend::new(3);
    durable_file(&sim, "a", b"data");
    let f = sim.open("a", false).unwrap();
    assert_eq!(
        f.append(b"x").unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    assert_eq!(
        f.write_at(0, b"x").unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    assert_eq!(
        f.set_len(0).unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    assert_eq!(sim.read_file("a").unwrap(), b"data");
    assert_eq!(
        sim.open("missing", true).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn drop_all_keeps_only_synced_data_and_synced_names() {
    let sim = SimBackend::new(4);
    durable_file(&sim, "a", b"synced");
    // A synced removal of a synced file.
    durable_file(&sim, "c", b"c");
    sim.remove("c").unwrap();
    sim.sync_dir().unwrap();
    durable_file(&sim, "d", b"d");
    let a = sim.open("a", true).unwrap();
    a.append(b" unsynced").unwrap();
    // Data synced but the name never was.
    let b = sim.create_new("b").unwrap();
    b.append(b"b data").unwrap();
    b.sync_data().unwrap();
    // An unsynced removal is undone.
    sim.remove("d").unwrap();
    assert_eq!(sim.file_names(), vec!["a".to_string(), "b".to_string()]);

    let after = sim.crash(CrashMode::PowerLossDropAll);
    assert_eq!(after.file_names(), vec!["a".to_string(), "d".to_string()]);
    assert_eq!(after.read_file("d").unwrap(), b"d");
    assert_eq!(after.read_file("a").unwrap(), b"synced");
}

#[test]
fn process_kill_keeps_everything() {
    let sim = SimBackend::new(5);
    durable_file(&sim, "a", b"synced");
    let a = sim.open("a", true).unwrap();
    a.append(b" unsynced").unwrap();
    let b = sim.create_new("b").unwrap();
    b.append(b"b data").unwrap();
    sim.rename("a", "z").unwrap();

    let after = sim.crash(CrashMode::ProcessKill);
    assert_eq!(after.file_names(), vec!["b".to_string(), "z".to_string()]);
    assert_eq!(after.read_file("z").unwrap(), b"synced unsynced");
    assert_eq!(after.read_file("b").unwrap(), b"b data");
}

#[test]
fn dir_only_reverts_unsynced_links_but_keeps_data() {
    let sim = SimBackend::new(6);
    durable_file(&sim, "old", b"old target");
    durable_file(&sim, "src", b"source");
    durable_file(&sim, "gone", b"removed");
    // Unsynced data on a durable file is kept.
    sim.open("src", true).unwrap().append(b"+more").unwrap();
    // Unsynced create, rename over a target, remove.
    let n = sim.create_new("new").unwrap();
    n.append(b"new data").unwrap();
    n.sync_data().unwrap();
    sim.rename("src", "old").unwrap();
    sim.remove("gone").unwrap();
    assert_eq!(sim.file_names(), vec!["new".to_string(), "old".to_string()]);

    let after = sim.crash(CrashMode::DirOnly);
    assert_eq!(
        after.file_names(),
        vec!["gone".to_string(), "old".to_string(), "src".to_string()]
    );
    assert_eq!(after.read_file("old").unwrap(), b"old target");
    assert_eq!(after.read_file("src").unwrap(), b"source+more");
    assert_eq!(after.read_file("gone").unwrap(), b"removed");
}

#[test]
fn prefix_keeps_a_prefix() {
    let chunks: Vec<Vec<u8>> = (0u8..10).map(|i| vec![i; 7]).collect();
    let mut lengths = HashSet::new();
    for seed in 0..64 {
        let sim = SimBackend::new(seed);
        durable_file(&sim, "log", b"");
        let f = sim.open("log", true).unwrap();
        for c in &chunks {
            f.append(c).unwrap();
        }
        let after = sim.crash(CrashMode::PowerLossPrefix { torn: false });
        let got = after.read_file("log").unwrap();
        assert!(
            got.len().is_multiple_of(7),
            "untorn prefix ends at a write boundary"
        );
        assert_eq!(got, chunks.concat().get(..got.len()).unwrap());
        lengths.insert(got.len());
    }
    assert!(lengths.len() > 3, "prefix length should vary: {lengths:?}");
}

#[test]
fn prefix_respects_dir_order() {
    // A create issued after a write to another file survives only if that write does.
    for seed in 0..64 {
        let sim = SimBackend::new(seed);
        durable_file(&sim, "a", b"");
        sim.open("a", true).unwrap().append(b"first").unwrap();
        sim.create_new("b").unwrap();
        let after = sim.crash(CrashMode::PowerLossPrefix { torn: false });
        if after.file_names().contains(&"b".to_string()) {
            assert_eq!(after.read_file("a").unwrap(), b"first");
        }
    }
}

#[test]
fn torn_write_is_cut_at_a_sector_boundary() {
    let head = vec![0x11u8; 100];
    let body: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8 + 1).collect();
    let full = [head.clone(), body.clone()].concat();
    let mut torn_seen = false;
    for seed in 0..64 {
        let sim = SimBackend::new(seed);
        durable_file(&sim, "f", &head);
        let f = sim.open("f", true).unwrap();
        f.append(&body).unwrap();
        let after = sim.crash(CrashMode::PowerLossPrefix { torn: true });
        let got = after.read_file("f").unwrap();
        assert!(
            got.len() == 100 || got.len().is_multiple_of(512),
            "cut at {} is neither the write's start nor a sector boundary",
            got.len()
        );
        assert!(
            got.len() < full.len(),
            "a torn last write never lands whole"
        );
        assert_eq!(got, full.get(..got.len()).unwrap());
        torn_seen |= got.len() > 100;
    }
    assert!(torn_seen, "some seed should keep part of the write");
}

#[test]
fn any_with_zeros_damages_only_the_write_range() {
    let mut seen = HashSet::new();
    for seed in 0..64 {
        let sim = SimBackend::new(seed);
        durable_file(&sim, "f", &[0xAA; 1000]);
        let f = sim.open("f", true).unwrap();
        f.write_at(200, &[0xBB; 300]).unwrap();
        f.append(&[0xCC; 50]).unwrap();
        let after = sim.crash(CrashMode::PowerLossAny {
            garbage: false,
            zeros: true,
        });
        let got = after.read_file("f").unwrap();
        assert!(got.len() == 1000 || got.len() == 1050, "len {}", got.len());
        assert!(got[..200].iter().all(|&b| b == 0xAA));
        assert!(got[500..1000].iter().all(|&b| b == 0xAA));
        let mid = &got[200..500];
        let fate = if mid.iter().all(|&b| b == 0xBB) {
            "kept"
        } else if mid.iter().all(|&b| b == 0xAA) {
            "dropped"
        } else if mid.iter().all(|&b| b == 0) {
            "zeros"
        } else {
            panic!("mixed range {mid:?}")
        };
        seen.insert(fate);
        if got.len() == 1050 {
            let tail = &got[1000..];
            assert!(tail.iter().all(|&b| b == 0xCC) || tail.iter().all(|&b| b == 0));
        }
    }
    assert_eq!(seen.len(), 3, "every fate should occur: {seen:?}");
}

#[test]
fn any_with_garbage_writes_noise_over_the_range_only() {
    let mut noisy = false;
    for seed in 0..64 {
        let sim = SimBackend::new(seed);
        durable_file(&sim, "f", &[0xAA; 100]);
        sim.open("f", true)
            .unwrap()
            .write_at(10, &[0xBB; 64])
            .unwrap();
        let after = sim.crash(CrashMode::PowerLossAny {
            garbage: true,
            zeros: false,
        });
        let got = after.read_file("f").unwrap();
        assert_eq!(got.len(), 100);
        assert!(got[..10].iter().all(|&b| b == 0xAA));
        assert!(got[74..].iter().all(|&b| b == 0xAA));
        let mid = &got[10..74];
        noisy |= !mid.iter().all(|&b| b == 0xAA) && !mid.iter().all(|&b| b == 0xBB);
    }
    assert!(noisy, "some seed should leave garbage");
}

#[test]
fn any_never_resurrects_a_dropped_create_and_renames_are_atomic() {
    let mut outcomes = HashSet::new();
    for seed in 0..128 {
        let sim = SimBackend::new(seed);
        durable_file(&sim, "CURRENT", b"old");
        let tmp = sim.create_new("CURRENT.tmp").unwrap();
        tmp.append(b"new!").unwrap();
        tmp.sync_data().unwrap();
        sim.rename("CURRENT.tmp", "CURRENT").unwrap();
        let after = sim.crash(CrashMode::PowerLossAny {
            garbage: true,
            zeros: true,
        });
        let names = after.file_names();
        assert!(names.contains(&"CURRENT".to_string()), "{names:?}");
        let cur = after.read_file("CURRENT").unwrap();
        assert!(cur == b"old" || cur == b"new!", "{cur:?}");
        if let Ok(t) = after.read_file("CURRENT.tmp") {
            assert_eq!(t, b"new!");
        }
        outcomes.insert((cur, names.len()));
    }
    // old (tmp dropped), old + tmp (rename dropped), new (all kept).
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
}

#[test]
fn crash_at_op_fails_that_op_and_all_later_ones() {
    let sim = SimBackend::new(7);
    let f = sim.create_new("a").unwrap();
    f.append(b"one").unwrap();
    assert_eq!(sim.mutating_ops(), 2);
    sim.set_fault_plan(FaultPlan {
        crash_at_op: Some(4),
        ..FaultPlan::default()
    });
    f.append(b"two").unwrap(); // op 3
    let err = f.append(b"three").unwrap_err(); // op 4
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(err.to_string().contains("simulated crash point"), "{err}");
    assert!(f.sync_data().is_err());
    assert!(sim.sync_dir().is_err());
    assert!(sim.create_new("b").is_err());
    assert_eq!(sim.mutating_ops(), 7);
    // Failed ops had no effect; reads still work.
    let mut buf = [0u8; 16];
    assert_eq!(f.read_at(0, &mut buf).unwrap(), 6);
    assert_eq!(sim.file_names(), vec!["a".to_string()]);
    let after = sim.crash(CrashMode::ProcessKill);
    assert_eq!(after.read_file("a").unwrap(), b"onetwo");
}

#[test]
fn fail_nth_returns_the_planned_error() {
    let sim = SimBackend::new(8);
    let s = storage(&sim);
    sim.set_fault_plan(FaultPlan {
        fail: vec![
            Fault {
                op: OpKind::Append,
                nth: 2,
                kind: io::ErrorKind::StorageFull,
            },
            Fault {
                op: OpKind::Rename,
                nth: 1,
                kind: io::ErrorKind::Other,
            },
        ],
        ..FaultPlan::default()
    });
    let f = s.create_new("a").unwrap();
    f.append(b"1", WritePurpose::Wal).unwrap();
    match f.append(b"2", WritePurpose::Wal).unwrap_err() {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::StorageFull),
        other => panic!("{other}"),
    }
    f.append(b"3", WritePurpose::Wal).unwrap();
    assert!(s.rename("a", "b").is_err());
    s.rename("a", "b").unwrap();
    assert_eq!(sim.read_file("b").unwrap(), b"13");
    assert_eq!(sim.op_count(OpKind::Append), 3);
    assert_eq!(sim.op_count(OpKind::Rename), 2);
}

#[test]
fn short_write_returns_a_partial_count_and_storage_finishes_it() {
    let sim = SimBackend::new(9);
    let f = sim.create_new("raw").unwrap();
    sim.set_fault_plan(FaultPlan {
        short_write_at: Some(1),
        ..FaultPlan::default()
    });
    assert_eq!(f.append(b"0123456789").unwrap(), 5);
    assert_eq!(sim.read_file("raw").unwrap(), b"01234");

    sim.set_fault_plan(FaultPlan {
        short_write_at: Some(3),
        ..FaultPlan::default()
    });
    let s = storage(&sim);
    let g = s.create_new("wal").unwrap();
    g.append(b"abc", WritePurpose::Wal).unwrap(); // write 2
    g.append(b"0123456789", WritePurpose::Wal).unwrap(); // write 3 is short, 4 finishes
    assert_eq!(sim.read_file("wal").unwrap(), b"abc0123456789");
    assert_eq!(s.io_stats().written.wal, 13);
    assert_eq!(sim.op_count(OpKind::Append), 4);
}

fn failed_fsync_then_retry(drops: bool) -> Vec<u8> {
    let sim = SimBackend::new(10);
    durable_file(&sim, "a", b"base");
    let f = sim.open("a", true).unwrap();
    f.append(b"+tail").unwrap();
    sim.set_fault_plan(FaultPlan {
        fail: vec![Fault {
            op: OpKind::SyncData,
            nth: 2,
            kind: io::ErrorKind::Other,
        }],
        fsync_drops_data_on_error: drops,
        ..FaultPlan::default()
    });
    assert!(f.sync_data().is_err());
    f.sync_data().unwrap();
    sim.crash(CrashMode::PowerLossDropAll)
        .read_file("a")
        .unwrap()
}

#[test]
fn fsync_drops_data_on_error() {
    assert_eq!(failed_fsync_then_retry(false), b"base+tail");
    assert_eq!(failed_fsync_then_retry(true), b"base");
}

#[test]
fn flip_bit_on_read_flips_exactly_one_bit_of_that_read() {
    let sim = SimBackend::new(11);
    let data: Vec<u8> = (0..64).collect();
    durable_file(&sim, "a", &data);
    sim.set_fault_plan(FaultPlan {
        flip_bit_on_read: Some(2),
        ..FaultPlan::default()
    });
    let f = sim.open("a", false).unwrap();
    let mut buf = [0u8; 64];
    f.read_at(0, &mut buf).unwrap();
    assert_eq!(buf.as_slice(), data.as_slice());
    f.read_at(0, &mut buf).unwrap();
    let diff: u32 = buf
        .iter()
        .zip(&data)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(diff, 1);
    f.read_at(0, &mut buf).unwrap();
    assert_eq!(buf.as_slice(), data.as_slice());
    assert_eq!(
        sim.read_file("a").unwrap(),
        data,
        "the stored bytes are intact"
    );
}

#[test]
fn a_crashed_backend_is_dead() {
    let sim = SimBackend::new(12);
    durable_file(&sim, "a", b"data");
    let f = sim.open("a", true).unwrap();
    let lock = sim.try_lock("LOCK").unwrap();
    let after = sim.crash(CrashMode::ProcessKill);
    assert!(sim.is_crashed() && !after.is_crashed());
    let is_dead = |e: io::Error| assert!(e.to_string().contains("backend is dead"), "{e}");
    is_dead(f.append(b"x").unwrap_err());
    is_dead(f.write_at(0, b"x").unwrap_err());
    is_dead(f.read_at(0, &mut [0u8; 4]).unwrap_err());
    is_dead(f.size().unwrap_err());
    is_dead(f.set_len(0).unwrap_err());
    is_dead(f.sync_data().unwrap_err());
    is_dead(sim.create_new("b").unwrap_err());
    is_dead(sim.open("a", false).unwrap_err());
    is_dead(sim.rename("a", "b").unwrap_err());
    is_dead(sim.remove("a").unwrap_err());
    is_dead(sim.list().unwrap_err());
    is_dead(sim.sync_dir().unwrap_err());
    is_dead(sim.try_lock("OTHER").unwrap_err());
    is_dead(sim.corrupt("a", 0, b"x").unwrap_err());
    // The lock does not carry over; the new disk works.
    let _new_lock = after.try_lock("LOCK").unwrap();
    drop(lock);
    after.open("a", true).unwrap().append(b"!").unwrap();
    assert_eq!(after.read_file("a").unwrap(), b"data!");
    // The dead disk's frozen state can be imaged again.
    let again = sim.crash(CrashMode::PowerLossDropAll);
    assert_eq!(again.read_file("a").unwrap(), b"data");
    assert_ne!(again.seed(), after.seed());
}

#[test]
fn the_lock_is_exclusive() {
    let sim = SimBackend::new(13);
    let s = storage(&sim);
    let guard = s.try_lock("LOCK").unwrap();
    assert!(matches!(
        storage(&sim).try_lock("LOCK"),
        Err(Error::Locked(_))
    ));
    assert_eq!(
        sim.try_lock("LOCK").unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    drop(guard);
    let _again = s.try_lock("LOCK").unwrap();
    assert_eq!(sim.mutating_ops(), 0, "try_lock is not counted");
    // The lock file is durable at once.
    let after = sim.crash(CrashMode::PowerLossDropAll);
    assert_eq!(after.file_names(), vec!["LOCK".to_string()]);
}

fn script(sim: &SimBackend) {
    durable_file(sim, "base", &[7u8; 3000]);
    let f = sim.create_new("log").unwrap();
    for i in 0..20u8 {
        f.append(&vec![i; 100 + usize::from(i) * 37]).unwrap();
        if i % 7 == 3 {
            f.sync_data().unwrap();
        }
    }
    let b = sim.open("base", true).unwrap();
    b.write_at(700, &[9u8; 1500]).unwrap();
    sim.rename("log", "log2").unwrap();
    sim.create_new("extra").unwrap().append(b"extra").unwrap();
}

fn image(sim: &SimBackend) -> Vec<(String, Vec<u8>)> {
    sim.file_names()
        .into_iter()
        .map(|n| {
            let d = sim.read_file(&n).unwrap();
            (n, d)
        })
        .collect()
}

#[test]
fn crashes_are_deterministic() {
    let mode = CrashMode::PowerLossAny {
        garbage: true,
        zeros: true,
    };
    let mut distinct = HashSet::new();
    for seed in 0..16 {
        let (x, y) = (SimBackend::new(seed), SimBackend::new(seed));
        script(&x);
        script(&y);
        let (ix, iy) = (image(&x.crash(mode)), image(&y.crash(mode)));
        assert_eq!(ix, iy, "seed {seed}");
        distinct.insert(ix);
        // A second crash of the same disk is deterministic too.
        assert_eq!(image(&x.crash(mode)), image(&y.crash(mode)));
    }
    assert!(distinct.len() > 8, "seeds should give different images");
}

#[test]
fn damage_helpers() {
    let sim = SimBackend::new(14);
    durable_file(&sim, "a", b"abcdefgh");
    sim.corrupt("a", 6, b"XYZ").unwrap();
    assert_eq!(sim.read_file("a").unwrap(), b"abcdefXYZ");
    sim.flip_bit("a", 8).unwrap();
    assert_eq!(sim.read_file("a").unwrap(), b"accdefXYZ");
    assert_eq!(
        sim.flip_bit("a", 72).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    sim.zero_range("a", 7, 100).unwrap();
    assert_eq!(sim.read_file("a").unwrap(), b"accdefX\0\0");
    sim.truncate("a", 3).unwrap();
    sim.truncate("a", 100).unwrap();
    assert_eq!(sim.read_file("a").unwrap(), b"acc");
    sim.copy_file("a", "b").unwrap();
    sim.delete("a").unwrap();
    assert_eq!(sim.file_names(), vec!["b".to_string()]);
    for e in [
        sim.delete("a"),
        sim.corrupt("a", 0, b"x"),
        sim.truncate("a", 0),
        sim.copy_file("a", "c"),
    ] {
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
    assert_eq!(
        sim.corrupt("b", u64::MAX, b"x").unwrap_err().kind(),
        io::ErrorKind::FileTooLarge
    );
    // Damage is durable: it survives a power loss.
    let after = sim.crash(CrashMode::PowerLossDropAll);
    assert_eq!(image(&after), vec![("b".to_string(), b"acc".to_vec())]);
}

#[test]
fn damage_with_pending_data_stays_consistent_after_sync() {
    let sim = SimBackend::new(15);
    durable_file(&sim, "a", b"0000");
    let f = sim.open("a", true).unwrap();
    f.write_at(0, b"11").unwrap();
    sim.corrupt("a", 0, b"X").unwrap();
    f.sync_data().unwrap();
    let after = sim.crash(CrashMode::PowerLossDropAll);
    assert_eq!(after.read_file("a").unwrap(), b"X100");
}

#[test]
fn removed_files_are_forgotten_after_sync_dir() {
    let sim = SimBackend::new(16);
    durable_file(&sim, "a", &[1u8; 100]);
    let f = sim.open("a", false).unwrap();
    sim.remove("a").unwrap();
    sim.sync_dir().unwrap();
    assert_eq!(
        sim.shared.state.lock().inodes.len(),
        1,
        "an open handle keeps it"
    );
    drop(f);
    assert!(sim.shared.state.lock().inodes.is_empty());
}

#[test]
fn huge_offsets_are_refused() {
    let sim = SimBackend::new(17);
    let f = sim.create_new("a").unwrap();
    assert_eq!(
        f.write_at(u64::MAX - 1, b"xy").unwrap_err().kind(),
        io::ErrorKind::FileTooLarge
    );
    assert_eq!(
        f.set_len(1 << 40).unwrap_err().kind(),
        io::ErrorKind::FileTooLarge
    );
    assert_eq!(f.size().unwrap(), 0);
}
