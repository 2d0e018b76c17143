//! One measurement of the B-tree engine at default options: fillrandom, then (after close and reopen, so
//! the buffer pool starts cold) readrandom and 100-entry scans.
//!
//! ```sh
//! cargo run --release --example btree_bench -- [KEYS] [READS] [SCANS]
//! ```
//!
//! Keys are 16-byte zero-padded decimals, values 100 bytes, written in random order in batches of 1,000.
//! Defaults: 1,000,000 keys, 1,000,000 reads, 10,000 scans. The database lives in a temporary directory
//! (the OS page cache may hold the data file: the fetches counted are buffer-pool misses, not disk reads).

use std::time::Instant;

use rumdb::testing::Rng;
use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt, WriteBatch, WriteOptions};

fn key(i: u64) -> Vec<u8> {
    format!("{i:016}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; 100];
    let mut rng = Rng::new(i);
    rng.fill(&mut v);
    v
}

fn rate(n: u64, secs: f64) -> String {
    format!("{:>10.0} ops/s ({n} in {secs:.2} s)", n as f64 / secs)
}

fn main() -> rumdb::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let reads: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let scans: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let opts = BTreeOptions::default();

    // fillrandom
    let mut order: Vec<u64> = (0..n).collect();
    let mut rng = Rng::new(42);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let db = BTreeEngine::open(dir.path(), opts)?;
    let start = Instant::now();
    for chunk in order.chunks(1000) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            batch.put(&key(i), &value(i));
        }
        db.write(&batch, WriteOptions::default())?;
    }
    let fill = start.elapsed().as_secs_f64();
    let close_start = Instant::now();
    db.close()?;
    let close = close_start.elapsed().as_secs_f64();
    let fill_stats = db.stats();
    let file_bytes = std::fs::metadata(dir.path().join("data"))?.len();
    println!("fillrandom  {}", rate(n, fill));
    println!(
        "            close (final checkpoint) {close:.2} s; {} checkpoints; write amplification {:.1} \
         (page write-back {} MiB, header {} KiB, user {} MiB); data file {} MiB",
        fill_stats.checkpoints,
        fill_stats.write_amplification().unwrap_or(0.0),
        fill_stats.io.written.page_writeback >> 20,
        fill_stats.io.written.header >> 10,
        fill_stats.user_bytes >> 20,
        file_bytes >> 20
    );

    // readrandom, cold pool
    let db = BTreeEngine::open(dir.path(), opts)?;
    let s0 = db.stats();
    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..reads {
        let i = rng.below(n);
        if db.get(&key(i))?.is_some() {
            found += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let d = db.stats().since(&s0);
    assert_eq!(found, reads, "every key is found");
    println!("readrandom  {}", rate(reads, secs));
    println!(
        "            per get: {:.2} pages touched ({:.2} internal, {:.2} leaf), {:.3} pool misses \
         ({:.3} internal, {:.3} leaf); pool {} MiB",
        d.touches_per_get().unwrap_or(0.0),
        d.reads.index_touches as f64 / reads as f64,
        d.reads.data_touches as f64 / reads as f64,
        d.read_amplification().unwrap_or(0.0),
        d.reads.index_fetches as f64 / reads as f64,
        d.reads.data_fetches as f64 / reads as f64,
        d.memory.buffer_pool >> 20
    );

    // 100-entry scans
    let start = Instant::now();
    let mut entries = 0u64;
    for _ in 0..scans {
        let from = key(rng.below(n));
        for kv in db.range(from.as_slice()..)?.take(100) {
            kv?;
            entries += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "scan100     {} ({entries} entries, {:.0} entries/s)",
        rate(scans, secs),
        entries as f64 / secs
    );
    db.close()?;
    Ok(())
}
