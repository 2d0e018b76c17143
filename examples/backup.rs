//! What a backup (`Engine::backup`) costs on one engine at default options, and what it costs a writer
//! that goes on meanwhile.
//!
//! ```sh
//! cargo run --release --example backup -- lsm|btree [KEYS]
//! ```
//!
//! Loads KEYS keys (the speed workload: 16-byte keys, 100-byte values, random order, batches of 1,000
//! with `Flush`; 1,000,000 by default), then runs a writer thread (batches of 100 new keys, `Flush`) for
//! two seconds alone, then through a backup into a sibling directory, then two seconds alone again. It
//! prints the backup's time, sequence and bytes copied vs hard-linked, the writer's throughput before,
//! during and after, and checks the copy: it opens, passes `verify()`, and holds exactly `sequence` keys
//! (every key is written once, and each put takes one sequence).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumdb::testing::Rng;
use rumdb::testing::workload::{self, key, open_default as open, value};
use rumdb::{Durability, Engine, WriteBatch, WriteOptions};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn main() -> rumdb::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let engine = args.first().map_or("lsm", String::as_str);
    let keys: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir()?;
    let (src, dst) = (tmp.path().join("db"), tmp.path().join("copy"));
    let db: Arc<dyn Engine> = Arc::from(open(engine, &src)?);

    let mut ids: Vec<u64> = (0..keys).collect();
    workload::shuffle(&mut ids, 1);
    let mut rng = Rng::new(2);
    let start = Instant::now();
    let mut batch = WriteBatch::new();
    for chunk in ids.chunks(1000) {
        batch.clear();
        for &id in chunk {
            batch.put(key(id), value(&mut rng));
        }
        db.write(&batch, WriteOptions::new(Durability::Flush))?;
    }
    println!(
        "{engine}: loaded {keys} keys in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let written = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (info, phases) = std::thread::scope(|s| -> rumdb::Result<_> {
        let writer = s.spawn(|| -> rumdb::Result<()> {
            let mut rng = Rng::new(3);
            let mut batch = WriteBatch::new();
            let mut next = keys;
            while !stop.load(Ordering::Acquire) {
                batch.clear();
                for id in next..next + 100 {
                    batch.put(key(id), value(&mut rng));
                }
                next += 100;
                db.write(&batch, WriteOptions::new(Durability::Flush))?;
                written.fetch_add(100, Ordering::Release);
            }
            Ok(())
        });
        let rate = |f: &mut dyn FnMut() -> rumdb::Result<()>| -> rumdb::Result<(f64, f64)> {
            let (n0, t0) = (written.load(Ordering::Acquire), Instant::now());
            f()?;
            let secs = t0.elapsed().as_secs_f64();
            Ok((secs, (written.load(Ordering::Acquire) - n0) as f64 / secs))
        };
        let pause = &mut || {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        };
        let before = rate(pause)?;
        let mut info = None;
        let during = rate(&mut || {
            info = Some(db.backup(&dst)?);
            Ok(())
        })?;
        let after = rate(pause)?;
        stop.store(true, Ordering::Release);
        writer.join().map_err(|_| rumdb::Error::Closed)??;
        let info = info.ok_or(rumdb::Error::Closed)?;
        Ok((info, [before, during, after]))
    })?;
    let [before, during, after] = phases;
    println!(
        "backup: {:.2} s, sequence {}; {} files copied ({:.1} MiB), {} hard-linked ({:.1} MiB)",
        during.0,
        info.sequence,
        info.files_copied,
        mib(info.bytes_copied),
        info.files_linked,
        mib(info.bytes_linked)
    );
    println!(
        "writer (batches of 100, Flush): {:.0} keys/s before, {:.0} during the backup, {:.0} after",
        before.1, during.1, after.1
    );
    db.close()?;
    let files: u64 = std::fs::read_dir(&dst)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "copy directory: {:.1} MiB of files (their lengths; the B-tree's free pages are holes)",
        mib(files)
    );

    let t = Instant::now();
    let copy = open(engine, &dst)?;
    let opened = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = copy.verify()?;
    let verified = t.elapsed().as_secs_f64();
    let held = copy
        .scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)?
        .count() as u64;
    println!(
        "copy: opened in {opened:.2} s, verify {verified:.2} s ({} files, {:.1} MiB), {held} keys",
        report.files,
        mib(report.bytes)
    );
    if held != info.sequence {
        return Err(rumdb::Error::Corruption {
            file: dst.display().to_string(),
            offset: None,
            what: format!(
                "the copy holds {held} keys, not the {} its sequence says",
                info.sequence
            ),
        });
    }
    copy.close()
}
