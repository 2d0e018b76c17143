//! Deleting most of a database by range versus key by key, on both engines.
//!
//! ```sh
//! cargo run --release --example range_delete            # 1,000,000 keys (about a minute a run on 2 cores)
//! cargo run --release --example range_delete -- 200000  # another key count
//! ```
//!
//! For each engine and each way of deleting, on a fresh database with default options: loads `N` keys
//! (16-byte decimal ids in order, 100-byte values) in batches of 1,000, flushes, then deletes the first
//! 90% of them — with one `WriteBatch::delete_range`, or with one `delete` per key in batches of 1,000 —
//! and measures how long that took, the latency of a scan of 100 entries from the first deleted key
//! (which has to get past the whole deleted region to reach the first live key; median of 5), the space
//! the files take (allocated bytes), then the same after `compact()` and the time `compact()` took.
//! Nothing runs beside it but what the machine already runs: report `uptime` with the figures.

use std::path::Path;
use std::time::{Duration, Instant};

use rumdb::{
    BTreeEngine, BTreeOptions, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch, WriteOptions,
};

fn key(id: u64) -> Vec<u8> {
    format!("{id:016}").into_bytes()
}

/// Allocated bytes of the files in `dir` (what `du` counts).
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.blocks() * 512;
    }
    Ok(total)
}

/// The median time of 5 scans of 100 entries from `from`; checks the first key is `first_live`.
fn scan_latency(db: &dyn Engine, from: &[u8], first_live: &[u8]) -> rumdb::Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut first = None;
        for entry in db.range(from..)?.take(100) {
            first.get_or_insert(entry?.0);
        }
        times.push(t.elapsed());
        assert_eq!(
            first.as_deref(),
            Some(first_live),
            "the scan starts at the first live key"
        );
    }
    times.sort();
    Ok(times[2])
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn run(engine: &str, by_range: bool, n: u64) -> rumdb::Result<()> {
    let dir = tempfile::tempdir()?;
    let db: Box<dyn Engine> = match engine {
        "lsm" => Box::new(LsmEngine::open(dir.path(), LsmOptions::default())?),
        _ => Box::new(BTreeEngine::open(dir.path(), BTreeOptions::default())?),
    };
    let mut batch = WriteBatch::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        batch.clear();
        for &id in chunk {
            let mut value = [0u8; 100];
            for b in value.iter_mut().take(50) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            batch.put(key(id), value);
        }
        db.write(&batch, WriteOptions::default())?;
    }
    db.flush()?;
    db.wait_idle()?;
    let loaded = dir_bytes(dir.path())?;
    let cut = n * 9 / 10;
    let t = Instant::now();
    if by_range {
        batch.clear();
        batch.delete_range(key(0), key(cut));
        db.write(&batch, WriteOptions::default())?;
    } else {
        for chunk in (0..cut).collect::<Vec<_>>().chunks(1000) {
            batch.clear();
            for &id in chunk {
                batch.delete(key(id));
            }
            db.write(&batch, WriteOptions::default())?;
        }
    }
    let delete = t.elapsed();
    let (from, first_live) = (key(0), key(cut));
    let scan_before = scan_latency(&*db, &from, &first_live)?;
    db.flush()?;
    db.wait_idle()?;
    let space_before = dir_bytes(dir.path())?;
    let scan_flushed = scan_latency(&*db, &from, &first_live)?;
    let t = Instant::now();
    let compacted = match db.compact() {
        Ok(()) => true,
        Err(rumdb::Error::Unsupported { .. }) => false,
        Err(e) => return Err(e),
    };
    let compact = t.elapsed();
    db.wait_idle()?;
    let space_after = dir_bytes(dir.path())?;
    let scan_after = scan_latency(&*db, &from, &first_live)?;
    db.close()?;
    let space_closed = dir_bytes(dir.path())?;
    println!(
        "| {engine} | {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {} | {:.1} | {:.1} |",
        if by_range { "one range" } else { "key by key" },
        delete.as_secs_f64() * 1e3,
        scan_before.as_secs_f64() * 1e3,
        scan_flushed.as_secs_f64() * 1e3,
        scan_after.as_secs_f64() * 1e3,
        mib(loaded),
        mib(space_before),
        if compacted {
            format!("{:.0}", compact.as_secs_f64() * 1e3)
        } else {
            "unsupported".into()
        },
        mib(space_after),
        mib(space_closed),
    );
    Ok(())
}

fn main() -> rumdb::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "{n} keys (16 B ids in order, 100 B values), the first 90% deleted; scans: median of 5 scans of 100 entries from the first deleted key"
    );
    println!();
    println!(
        "| engine | deleted with | delete ms | scan ms right after | scan ms after flush | scan ms after compact | MiB loaded | MiB after delete + flush | compact ms | MiB after compact | MiB after close |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for engine in ["lsm", "btree"] {
        for by_range in [true, false] {
            run(engine, by_range, n)?;
        }
    }
    Ok(())
}
