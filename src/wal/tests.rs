//! WAL unit tests on real files. The seeded crash tests over the simulated backend are in
//! `tests/wal_crash.rs`.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::format::{BLOCK_SIZE, HEADER_LEN, MARKER_LEN};
use super::reader::ReplayOutcome;
use super::*;
use crate::engine::Durability;
use crate::error::Error;
use crate::storage::{Backend, BackendFile, OsBackend, ReadPurpose, WritePurpose};

fn os_storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::os(dir.path(), false).unwrap();
    (dir, s)
}

/// A segment's first record starts after its LINK.
const L: u64 = MARKER_LEN as u64;

fn read_all(
    s: &Storage,
    segments: &[u64],
    mode: RecoveryMode,
) -> crate::Result<(Vec<Vec<u8>>, ReplayOutcome)> {
    read_from(s, segments, None, mode)
}

fn read_from(
    s: &Storage,
    segments: &[u64],
    first: Option<u64>,
    mode: RecoveryMode,
) -> crate::Result<(Vec<Vec<u8>>, ReplayOutcome)> {
    let mut out = Vec::new();
    let outcome = replay(s, segments, first, mode, |r| {
        out.push(r.payload.to_vec());
        Ok(())
    })?;
    Ok((out, outcome))
}

fn record(i: usize) -> Vec<u8> {
    // Sizes from 0 to ~100 KiB so records span blocks.
    let len = (i * 7919) % 100_000 * usize::from(i.is_multiple_of(5)) + i % 300;
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn segment_names_round_trip() {
    assert_eq!(segment_name(7), "000007.log");
    assert_eq!(parse_segment_name("000007.log"), Some(7));
    assert_eq!(parse_segment_name("1234567.log"), Some(1_234_567));
    assert_eq!(parse_segment_name("7.log"), None);
    assert_eq!(parse_segment_name("00000x.log"), None);
    assert_eq!(parse_segment_name("000007.sst"), None);
}

#[test]
fn records_come_back_in_order_across_blocks_and_segments() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    let mut expected = Vec::new();
    for i in 0..200 {
        let r = record(i);
        let durability = [Durability::Buffered, Durability::Flush, Durability::Sync][i % 3];
        w.append(&r, durability).unwrap();
        expected.push(r);
        if i == 120 {
            assert_eq!(w.rotate(2).unwrap(), 1);
        }
    }
    w.close().unwrap();
    assert!(matches!(
        w.append(b"x", Durability::Flush),
        Err(Error::Closed)
    ));
    // Close sealed segment 2 and started an empty segment 3.
    let segs = list_segments(&s).unwrap();
    assert_eq!(segs, vec![1, 2, 3]);
    let (got, outcome) = read_from(&s, &segs, Some(1), RecoveryMode::default()).unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected);
    assert_eq!(outcome.truncated_bytes, 0);
    assert_eq!(outcome.segments, 3);
    assert_eq!(
        outcome.next_link,
        Link {
            prev: 3,
            prev_len: L
        }
    );
    assert_eq!(outcome.records, 200);
}

#[test]
fn buffered_records_stay_in_the_process_until_flushed() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"buffered", Durability::Buffered).unwrap();
    assert_eq!(s.open("000001.log", false).unwrap().len().unwrap(), L);
    w.append(b"flushed", Durability::Flush).unwrap();
    let (got, _) = read_all(&s, &[1], RecoveryMode::default()).unwrap();
    assert_eq!(got, vec![b"buffered".to_vec(), b"flushed".to_vec()]);
}

#[test]
fn torn_tail_is_dropped_and_counted() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 3, Link::default()).unwrap();
    w.append(b"one", Durability::Sync).unwrap();
    w.append(&[9u8; 500], Durability::Flush).unwrap();
    drop(w);
    let f = s.open("000003.log", true).unwrap();
    let len = f.len().unwrap();
    f.set_len(len - 100).unwrap();
    let (got, outcome) = read_all(&s, &[3], RecoveryMode::default()).unwrap();
    assert_eq!(got, vec![b"one".to_vec()]);
    assert_eq!(
        outcome.truncated_bytes,
        len - 100 - (L + HEADER_LEN as u64 + 3)
    );
    assert_eq!(
        outcome.truncated_at,
        Some(("000003.log".into(), L + HEADER_LEN as u64 + 3))
    );
}

#[test]
fn damage_in_synced_data_before_a_later_record_is_corruption() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"first", Durability::Sync).unwrap();
    w.append(b"second", Durability::Sync).unwrap();
    w.append(b"third", Durability::Flush).unwrap();
    drop(w);
    let f = s.open("000001.log", true).unwrap();
    // Flip a payload byte of "first": "second" was appended after an fsync covering it.
    f.write_at(L + HEADER_LEN as u64 + 1, b"X", WritePurpose::Wal)
        .unwrap();
    let err = read_all(&s, &[1], RecoveryMode::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, offset: Some(L), .. } if file == "000001.log"),
        "{err}"
    );
    // Point-in-time recovery stops before the damage instead.
    let (got, outcome) = read_all(&s, &[1], RecoveryMode::PointInTime).unwrap();
    assert!(got.is_empty());
    assert_eq!(outcome.truncated_at, Some(("000001.log".into(), L)));
}

#[test]
fn damaged_length_field_cannot_hide_a_later_synced_record() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"first", Durability::Sync).unwrap();
    w.append(b"second", Durability::Sync).unwrap();
    drop(w);
    let f = s.open("000001.log", true).unwrap();
    f.write_at(L + 4, &[0xff, 0x7f], WritePurpose::Wal).unwrap();
    assert!(
        read_all(&s, &[1], RecoveryMode::default())
            .unwrap_err()
            .is_corruption()
    );
}

#[test]
fn unsynced_damage_followed_by_unsynced_records_is_a_tolerated_tail() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"synced", Durability::Sync).unwrap();
    w.append(b"unsynced-1", Durability::Flush).unwrap();
    w.append(b"unsynced-2", Durability::Flush).unwrap();
    drop(w);
    let f = s.open("000001.log", true).unwrap();
    let second = L + HEADER_LEN as u64 + 6;
    f.write_at(second + HEADER_LEN as u64, b"?", WritePurpose::Wal)
        .unwrap();
    let (got, outcome) = read_all(&s, &[1], RecoveryMode::default()).unwrap();
    assert_eq!(got, vec![b"synced".to_vec()]);
    assert_eq!(outcome.truncated_at, Some(("000001.log".into(), second)));
}

#[test]
fn damage_in_a_sealed_segment_is_corruption() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"a", Durability::Flush).unwrap();
    w.append(b"b", Durability::Flush).unwrap();
    w.rotate(2).unwrap();
    w.append(b"c", Durability::Flush).unwrap();
    drop(w);
    let f = s.open("000001.log", true).unwrap();
    let len = f.len().unwrap();
    f.set_len(len - 1).unwrap();
    assert!(
        read_all(&s, &[1, 2], RecoveryMode::default())
            .unwrap_err()
            .is_corruption()
    );
    // The cut took the SEAL: point-in-time recovery keeps both records of segment 1 and stops there.
    let (got, _) = read_all(&s, &[1, 2], RecoveryMode::PointInTime).unwrap();
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn zeroed_tail_and_missing_segment() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"kept", Durability::Flush).unwrap();
    drop(w);
    let f = s.open("000001.log", true).unwrap();
    let len = f.len().unwrap();
    f.set_len(len + 5000).unwrap();
    let (got, outcome) = read_all(&s, &[1], RecoveryMode::default()).unwrap();
    assert_eq!(got, vec![b"kept".to_vec()]);
    assert_eq!(outcome.truncated_bytes, 5000);
    let err = read_all(&s, &[9], RecoveryMode::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if file == "000009.log"),
        "{err}"
    );
}

fn cut(s: &Storage, name: &str, len: u64) {
    s.open(name, true).unwrap().set_len(len).unwrap();
}

fn file_len(s: &Storage, name: &str) -> u64 {
    s.open(name, false).unwrap().len().unwrap()
}

fn corruption_names(r: crate::Result<(Vec<Vec<u8>>, ReplayOutcome)>, name: &str) {
    match r {
        Err(Error::Corruption { file, .. }) if file == name => {}
        Err(e) => panic!("expected Corruption naming {name}, got {e}"),
        Ok((got, _)) => panic!(
            "expected Corruption naming {name}, got {} records",
            got.len()
        ),
    }
}

/// Segments 1 (sealed, records a, b), 2 (sealed, record c), 3 (live, record d, synced).
fn three_segments(s: &Storage) {
    let w = WalWriter::create(s, 1, Link::default()).unwrap();
    w.append(b"a", Durability::Sync).unwrap();
    w.append(b"b", Durability::Sync).unwrap();
    w.rotate(2).unwrap();
    w.append(b"c", Durability::Sync).unwrap();
    w.rotate(3).unwrap();
    w.append(b"d", Durability::Sync).unwrap();
    drop(w);
}

#[test]
fn rotation_writes_link_and_seal() {
    let (_d, s) = os_storage();
    three_segments(&s);
    let one = s
        .read_file("000001.log", u64::MAX, ReadPurpose::Recovery)
        .unwrap();
    let data_len = L + 2 * (HEADER_LEN as u64 + 1);
    assert_eq!(one.len() as u64, data_len + L, "LINK, a, b, SEAL");
    let seal = format::parse_fragment(&one[data_len as usize..], 1).unwrap();
    assert_eq!(seal.kind, format::FragmentType::Seal);
    assert_eq!(
        format::parse_marker_payload(seal.payload),
        Some((2, data_len))
    );
    let two = s
        .read_file("000002.log", u64::MAX, ReadPurpose::Recovery)
        .unwrap();
    let link = format::parse_fragment(&two, 2).unwrap();
    assert_eq!(link.kind, format::FragmentType::Link);
    assert_eq!(
        format::parse_marker_payload(link.payload),
        Some((1, data_len))
    );
    let (got, outcome) = read_from(&s, &[1, 2, 3], Some(1), RecoveryMode::default()).unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(outcome.next_link.prev, 3);
}

#[test]
fn a_missing_first_live_segment_is_corruption() {
    let (_d, s) = os_storage();
    three_segments(&s);
    s.remove("000001.log").unwrap();
    corruption_names(
        read_from(&s, &[2, 3], Some(1), RecoveryMode::default()),
        "000001.log",
    );
    // Not recorded: the chain from segment 2 on is fine.
    assert_eq!(
        read_all(&s, &[2, 3], RecoveryMode::default())
            .unwrap()
            .0
            .len(),
        2
    );
    let (got, outcome) = read_from(&s, &[2, 3], Some(1), RecoveryMode::PointInTime).unwrap();
    assert!(got.is_empty());
    assert_eq!(outcome.truncated_at, Some(("000001.log".into(), 0)));
}

#[test]
fn a_deleted_segment_is_named_by_its_predecessors_seal() {
    for victim in [2u64, 3] {
        let (_d, s) = os_storage();
        three_segments(&s);
        let name = segment_name(victim);
        s.remove(&name).unwrap();
        let left: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != victim).collect();
        corruption_names(
            read_from(&s, &left, Some(1), RecoveryMode::default()),
            &name,
        );
    }
}

#[test]
fn a_sealed_segment_emptied_or_cut_at_a_record_boundary_is_corruption() {
    let data_len = L + 2 * (HEADER_LEN as u64 + 1);
    for len in [0, L, L + HEADER_LEN as u64 + 1, data_len] {
        let (_d, s) = os_storage();
        three_segments(&s);
        cut(&s, "000001.log", len);
        corruption_names(
            read_from(&s, &[1, 2, 3], Some(1), RecoveryMode::default()),
            "000001.log",
        );
    }
}

#[test]
fn bytes_after_a_seal_are_corruption() {
    let (_d, s) = os_storage();
    three_segments(&s);
    let f = s.open("000001.log", true).unwrap();
    f.append(&[0u8; 40], WritePurpose::Wal).unwrap();
    corruption_names(
        read_from(&s, &[1, 2, 3], Some(1), RecoveryMode::default()),
        "000001.log",
    );
}

#[test]
fn a_closed_segment_emptied_cut_or_deleted_is_corruption() {
    // After close: 1 (sealed: a, b), 2 (empty successor, LINK only).
    let build = |s: &Storage| {
        let w = WalWriter::create(s, 1, Link::default()).unwrap();
        w.append(b"a", Durability::Sync).unwrap();
        w.append(b"b", Durability::Flush).unwrap();
        w.close().unwrap();
    };
    let data_len = L + 2 * (HEADER_LEN as u64 + 1);
    for len in [0, L, L + HEADER_LEN as u64 + 1] {
        let (_d, s) = os_storage();
        build(&s);
        cut(&s, "000001.log", len);
        corruption_names(
            read_from(&s, &[1, 2], Some(1), RecoveryMode::default()),
            "000001.log",
        );
    }
    // Cut inside the SEAL (or exactly at it): what a crash between a rotation's LINK and SEAL leaves,
    // with every record there.
    for len in [data_len, data_len + 10] {
        let (_d, s) = os_storage();
        build(&s);
        cut(&s, "000001.log", len);
        let (got, _) = read_from(&s, &[1, 2], Some(1), RecoveryMode::default()).unwrap();
        assert_eq!(got.len(), 2, "cut at {len}");
    }
    let (_d, s) = os_storage();
    build(&s);
    s.remove("000002.log").unwrap();
    corruption_names(
        read_from(&s, &[1], Some(1), RecoveryMode::default()),
        "000002.log",
    );
}

#[test]
fn a_crash_inside_a_rotation_or_recovery_replays() {
    // Between LINK and SEAL: segment 1 unsealed, segment 2 holding its LINK, or nothing at all.
    for two in [Some(L), Some(0), None] {
        let (_d, s) = os_storage();
        let w = WalWriter::create(&s, 1, Link::default()).unwrap();
        w.append(b"a", Durability::Sync).unwrap();
        w.append(b"b", Durability::Flush).unwrap();
        w.rotate(2).unwrap();
        drop(w);
        let f1 = file_len(&s, "000001.log");
        cut(&s, "000001.log", f1 - L);
        let segs: Vec<u64> = match two {
            Some(len) => {
                cut(&s, "000002.log", len);
                vec![1, 2]
            }
            None => {
                s.remove("000002.log").unwrap();
                vec![1]
            }
        };
        let (got, outcome) = read_from(&s, &segs, Some(1), RecoveryMode::default()).unwrap();
        assert_eq!(got.len(), 2, "{two:?}");
        // Recovery starts segment 3 linked to the last one; a crash before the metadata names it
        // leaves one more empty trailing segment, which replays too.
        let next = segs.last().unwrap() + 1;
        let w = WalWriter::create(&s, next, outcome.next_link).unwrap();
        drop(w);
        let mut again = segs.clone();
        again.push(next);
        let (got, _) = read_from(&s, &again, Some(1), RecoveryMode::default()).unwrap();
        assert_eq!(got.len(), 2, "{two:?} then a crash in recovery");
        // But records in a later segment prove segment 1 was sealed.
        let w = WalWriter::create(&s, next + 1, Link::default()).unwrap();
        w.append(b"c", Durability::Sync).unwrap();
        drop(w);
        again.push(next + 1);
        corruption_names(
            read_from(&s, &again, Some(1), RecoveryMode::default()),
            "000001.log",
        );
    }
}

#[test]
fn an_empty_extra_segment_after_the_live_one_is_fine() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    w.append(b"a", Durability::Sync).unwrap();
    drop(w);
    s.create_new("000009.log").unwrap();
    let (got, outcome) = read_from(&s, &[1, 9], Some(1), RecoveryMode::default()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        outcome.next_link,
        Link {
            prev: 9,
            prev_len: 0
        }
    );
}

/// The manifest shares the framing but has no LINK or SEAL: one there is damage.
#[test]
fn manifest_logs_have_no_ledger_records() {
    let (_d, s) = os_storage();
    let w = WalWriter::create_log(&s, 4, |n| format!("M-{n}"), LogKind::Manifest).unwrap();
    w.append(b"edit", Durability::Sync).unwrap();
    w.close().unwrap();
    assert_eq!(list_segments(&s).unwrap(), Vec::<u64>::new());
    let bytes = s.read_file("M-4", u64::MAX, ReadPurpose::Recovery).unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + 4);
    let outcome = replay_file(&s, "M-4", 4, RecoveryMode::default(), |_| Ok(())).unwrap();
    assert_eq!(outcome.records, 1);
    assert!(WalWriter::create_log(&s, 5, segment_name, LogKind::Wal).is_err());
}

/// Replays `img` as segment 1 of a scratch directory: the records, or the error.
fn replay_image(s: &Storage, img: &[u8]) -> crate::Result<Vec<Vec<u8>>> {
    let _ = s.remove("000001.log");
    s.create_new("000001.log")
        .unwrap()
        .append(img, WritePurpose::Wal)
        .unwrap();
    read_all(s, &[1], RecoveryMode::default()).map(|(got, _)| got)
}

/// Truncations of a WAL whose records span blocks are tolerated tails that yield a prefix: every length
/// around the headers and block boundaries, every 61st elsewhere (the small WAL below gets every length).
#[test]
fn every_truncation_yields_a_prefix() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    let records: Vec<Vec<u8>> = vec![
        b"alpha".to_vec(),
        vec![7u8; BLOCK_SIZE + 100],
        b"omega".to_vec(),
    ];
    for r in &records {
        w.append(r, Durability::Sync).unwrap();
    }
    drop(w);
    let original = s
        .read_file("000001.log", u64::MAX, ReadPurpose::Recovery)
        .unwrap();
    let (_d2, scratch) = os_storage();
    let near = |c: usize| c < 200 || c.abs_diff(BLOCK_SIZE) < 300 || original.len() - c < 200;
    for cut in (0..=original.len()).filter(|&c| near(c) || c % 61 == 0) {
        let got = replay_image(&scratch, &original[..cut]).unwrap();
        assert_eq!(got[..], records[..got.len()], "cut at {cut}: not a prefix");
        if cut == original.len() {
            assert_eq!(got.len(), 3);
        }
    }
}

/// A small WAL with every bit flipped in turn: replay never panics; damage to a record that a later record
/// proves synced is Corruption; damage to the unsynced last record drops just that record.
#[test]
fn every_bit_flip_is_corruption_or_a_prefix() {
    let (_d, s) = os_storage();
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    let records: Vec<Vec<u8>> = vec![b"alpha".to_vec(), vec![7u8; 300], b"omega".to_vec()];
    w.append(&records[0], Durability::Sync).unwrap();
    w.append(&records[1], Durability::Sync).unwrap();
    w.append(&records[2], Durability::Flush).unwrap();
    drop(w);
    let original = s
        .read_file("000001.log", u64::MAX, ReadPurpose::Recovery)
        .unwrap();
    let synced_end = MARKER_LEN + HEADER_LEN * 2 + 5 + 300; // the LINK and the first two records
    let (_d2, scratch) = os_storage();
    for cut in 0..original.len() {
        let got = replay_image(&scratch, &original[..cut]).unwrap();
        assert_eq!(got[..], records[..got.len()], "cut at {cut}: not a prefix");
    }
    for bit in 0..original.len() * 8 {
        let mut img = original.clone();
        img[bit / 8] ^= 1 << (bit % 8);
        let result = replay_image(&scratch, &img);
        if bit / 8 < synced_end {
            let err = result.unwrap_err();
            assert!(err.is_corruption(), "bit {bit}: {err}");
        } else {
            assert_eq!(result.unwrap()[..], records[..2], "bit {bit}");
        }
    }
}

/// A backend whose fsyncs block until released, to observe group commit deterministically.
#[derive(Debug)]
struct GatedBackend {
    inner: OsBackend,
    gate: Arc<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    closed: AtomicBool,
    in_sync: AtomicU64,
    syncs: AtomicU64,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn BackendFile>,
    gate: Arc<Gate>,
}

impl Backend for GatedBackend {
    fn create_new(&self, name: &str) -> io::Result<Arc<dyn BackendFile>> {
        Ok(Arc::new(GatedFile {
            inner: self.inner.create_new(name)?,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn BackendFile>> {
        self.inner.open(name, writable)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
    fn try_lock(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        self.inner.try_lock(name)
    }
}

impl BackendFile for GatedFile {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.append(buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_at(offset, buf)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.in_sync.fetch_add(1, Ordering::SeqCst);
        while self.gate.closed.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        self.gate.syncs.fetch_add(1, Ordering::SeqCst);
        self.gate.in_sync.fetch_sub(1, Ordering::SeqCst);
        self.inner.sync_data()
    }
}

fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        std::thread::yield_now();
    }
}

#[test]
fn group_commit_appends_during_fsync_and_one_fsync_releases_many() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let s = Storage::new(Arc::new(GatedBackend {
        inner: OsBackend::open(dir.path(), false).unwrap(),
        gate: Arc::clone(&gate),
    }));
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    gate.closed.store(true, Ordering::SeqCst);
    std::thread::scope(|scope| {
        let a = scope.spawn(|| w.append(b"a", Durability::Sync));
        wait_until(|| gate.in_sync.load(Ordering::SeqCst) == 1);
        // The fsync for "a" is blocked; appends go on meanwhile.
        w.append(b"flushed while a syncs", Durability::Flush)
            .unwrap();
        let b = scope.spawn(|| w.append(b"b", Durability::Sync));
        let c = scope.spawn(|| w.append(b"c", Durability::Sync));
        // b and c are both past their appends (the end moved) and waiting behind a's fsync.
        let expected_end = L + (HEADER_LEN * 4 + 1 + 21 + 1 + 1) as u64;
        wait_until(|| w.end().offset == expected_end);
        assert!(w.synced().offset < expected_end);
        gate.closed.store(false, Ordering::SeqCst);
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
        c.join().unwrap().unwrap();
    });
    // One fsync for a, one more that covered both b and c.
    assert_eq!(gate.syncs.load(Ordering::SeqCst), 2);
    assert_eq!(w.synced().offset, w.end().offset);
}

/// A failed fsync poisons the writer, fails its waiter, and is never retried.
#[test]
fn failed_fsync_poisons_and_is_not_retried() {
    use crate::storage::sim::{Fault, FaultPlan, OpKind, SimBackend};
    let sim = SimBackend::new(1);
    let s = Storage::new(Arc::new(sim.clone()));
    let w = WalWriter::create(&s, 1, Link::default()).unwrap();
    sim.set_fault_plan(FaultPlan {
        fail: vec![Fault {
            op: OpKind::SyncData,
            nth: 1,
            kind: io::ErrorKind::Other,
        }],
        ..FaultPlan::default()
    });
    w.append(b"ok", Durability::Flush).unwrap();
    assert!(matches!(
        w.append(b"x", Durability::Sync),
        Err(Error::Io(_))
    ));
    assert!(matches!(
        w.append(b"y", Durability::Buffered),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(w.rotate(2), Err(Error::Poisoned { .. })));
    assert_eq!(
        sim.op_count(OpKind::SyncData),
        1,
        "fsync must never be retried"
    );
    assert!(w.poisoned().is_some());
}

/// A kill leaves segment 1's unsynced tail in the page cache (modelled by recovering on the same
/// simulated disk, without a crash); recovery links a new segment to it (the LINK records that length)
/// and a power loss follows before the engine's metadata names the new segment. `create` fsyncs the
/// predecessor before writing the LINK, so whatever survives of the LINK never records more than
/// survives of segment 1, and replay succeeds with both records.
#[test]
fn a_power_loss_after_recovery_linked_an_unsynced_tail_replays() {
    use crate::storage::sim::{CrashMode, SimBackend};
    for seed in 0..64 {
        let sim = SimBackend::new(seed);
        let s = Storage::new(Arc::new(sim.clone()));
        let w = WalWriter::create(&s, 1, Link::default()).unwrap();
        w.append(b"synced", Durability::Sync).unwrap();
        w.append(b"flushed only", Durability::Flush).unwrap();
        drop(w);
        let (got, outcome) = read_from(&s, &[1], Some(1), RecoveryMode::default()).unwrap();
        assert_eq!(got.len(), 2);
        drop(WalWriter::create(&s, 2, outcome.next_link).unwrap());
        let mode = CrashMode::PowerLossAny {
            garbage: false,
            zeros: false,
        };
        let lost = Storage::new(Arc::new(sim.crash(mode)));
        let (got, _) = read_from(&lost, &[1, 2], Some(1), RecoveryMode::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got.len(), 2, "seed {seed}");
    }
}
