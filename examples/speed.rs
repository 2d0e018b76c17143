//! The speed workload the engine issues compare against peers (fjall, RocksDB, redb, LMDB) on this
//! machine class: keys are the decimal id zero-padded to 16 bytes; values are 100 bytes, 50 random bytes
//! followed by a copy of them; present keys have even ids, absent-key lookups use odd ids; writes go in
//! batches of 1,000 with `Flush` durability (or `buffered` / `sync` when named); reads run after close
//! and reopen; default options.
//!
//! ```sh
//! cargo run --release --example speed -- lsm|btree [KEYS] [READS] [buffered|flush|sync]
//! ```
//!
//! Prints ops/s for fillseq, fillrandom, overwrite, readrandom, readmissing and 100-entry scans.

use std::time::Instant;

use rumdb::testing::Rng;
use rumdb::testing::workload::{self, key, open_default as open, value};
use rumdb::{Durability, Engine, EngineExt, WriteBatch, WriteOptions};

fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..n).map(|i| i * 2).collect();
    workload::shuffle(&mut ids, seed);
    ids
}

fn fill(db: &dyn Engine, ids: &[u64], rng: &mut Rng, durability: Durability) -> rumdb::Result<f64> {
    let start = Instant::now();
    let mut batch = WriteBatch::new();
    for chunk in ids.chunks(1000) {
        batch.clear();
        for &id in chunk {
            batch.put(key(id), value(rng));
        }
        db.write(&batch, WriteOptions::new(durability))?;
    }
    Ok(ids.len() as f64 / start.elapsed().as_secs_f64())
}

fn report(name: &str, ops_per_sec: f64) {
    println!("{name:<12} {ops_per_sec:>12.0} ops/s");
}

fn main() -> rumdb::Result<()> {
    let mut args = std::env::args().skip(1);
    let engine = args.next().unwrap_or_else(|| "lsm".into());
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let reads: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(n.min(200_000));
    let durability = match args.next().as_deref() {
        None | Some("flush") => Durability::Flush,
        Some("buffered") => Durability::Buffered,
        Some("sync") => Durability::Sync,
        Some(other) => {
            return Err(rumdb::Error::invalid(format!(
                "unknown durability {other:?} (buffered, flush or sync)"
            )));
        }
    };
    println!("engine {engine}, {n} keys, {reads} reads, {durability:?} writes, default options");
    let mut rng = Rng::new(42);

    let seq_dir = tempfile::tempdir()?;
    let db = open(&engine, seq_dir.path())?;
    let ids: Vec<u64> = (0..n).map(|i| i * 2).collect();
    report("fillseq", fill(db.as_ref(), &ids, &mut rng, durability)?);
    db.close()?;
    drop(db);
    drop(seq_dir);

    let dir = tempfile::tempdir()?;
    let db = open(&engine, dir.path())?;
    report(
        "fillrandom",
        fill(db.as_ref(), &shuffled(n, 1), &mut rng, durability)?,
    );
    report(
        "overwrite",
        fill(db.as_ref(), &shuffled(n, 2), &mut rng, durability)?,
    );
    db.close()?;
    let stats = db.stats();
    let by_purpose: Vec<String> = stats
        .io
        .written
        .by_purpose()
        .iter()
        .filter(|(_, b)| *b > 0)
        .map(|(name, b)| format!("{name} {:.2}", *b as f64 / stats.user_bytes.max(1) as f64))
        .collect();
    println!(
        "write amplification over fillrandom + overwrite + close: {:.2} ({}), {} fsyncs",
        stats.write_amplification().unwrap_or(0.0),
        by_purpose.join(", "),
        stats.io.fsyncs
    );
    drop(db);

    let db = open(&engine, dir.path())?;
    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..reads {
        found += u64::from(db.get(key(rng.below(n) * 2))?.is_some());
    }
    report("readrandom", reads as f64 / start.elapsed().as_secs_f64());
    assert_eq!(found, reads, "every present key is found");
    let start = Instant::now();
    for _ in 0..reads {
        found += u64::from(db.get(key(rng.below(n) * 2 + 1))?.is_some());
    }
    report("readmissing", reads as f64 / start.elapsed().as_secs_f64());
    assert_eq!(found, reads, "no absent key is found");
    let scans = (reads / 10).max(1);
    let start = Instant::now();
    let mut entries = 0u64;
    for _ in 0..scans {
        let from = key(rng.below(n) * 2);
        entries += db.range(&from[..]..)?.take(100).count() as u64;
    }
    report("scan100", scans as f64 / start.elapsed().as_secs_f64());
    println!("({entries} entries scanned)");
    let stats = db.stats();
    println!(
        "reads after reopen: {:.2} cache-missing fetches/get, {:.2} touches/get, bloom negatives {}/{}",
        stats.read_amplification().unwrap_or(0.0),
        stats.touches_per_get().unwrap_or(0.0),
        stats.reads.bloom_negatives,
        stats.reads.bloom_probes
    );
    db.close()
}
