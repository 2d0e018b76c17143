//! Write and space amplification of one engine at default options over a random fill, and what the
//! process paid in memory for it: the figures the engine issues ask for at 1M and 10M keys.
//!
//! ```sh
//! cargo run --release --example space -- lsm|btree [KEYS] [fill|sync]
//! ```
//!
//! `fill` (the default): fillrandom of KEYS keys (the speed workload: 16-byte keys, 100-byte values half
//! random, batches of 1,000 with `Flush`), then an overwrite pass of the same keys in another order. After
//! each pass it prints write amplification by purpose (engine-counted bytes / user bytes, `wa_logical`)
//! beside `wa_os` (bytes the kernel counted as written to storage by this process, from
//! `/proc/self/io`), the fsync count, space amplification (bytes of the directory's files / live user
//! bytes) after the engine settles (`wait_idle`), after close and, after a reopen, after `compact()`; the
//! memory the engine reports by part, and the process's peak RSS.
//!
//! `sync`: KEYS single-key puts with `Sync` durability from one thread (keep KEYS small, e.g. 2,000), and
//! the same figures.

use std::path::Path;
use std::time::Instant;

use rumdb::testing::Rng;
use rumdb::testing::workload::{self, key, open_default as open, value};
use rumdb::{Durability, Stats, WriteBatch, WriteOptions};

const ENTRY_BYTES: u64 = 16 + 100;

fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..n).collect();
    workload::shuffle(&mut ids, seed);
    ids
}

/// A field of `/proc/self/status` or `/proc/self/io`, if the kernel provides it.
fn proc_field(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn print_wa(label: &str, stats: &Stats, os_written: Option<u64>) {
    let user = stats.user_bytes.max(1) as f64;
    let by_purpose: Vec<String> = stats
        .io
        .written
        .by_purpose()
        .iter()
        .filter(|(_, b)| *b > 0)
        .map(|(name, b)| format!("{name} {:.2}", *b as f64 / user))
        .collect();
    let wa_os = os_written.map_or("n/a".to_string(), |b| format!("{:.2}", b as f64 / user));
    println!(
        "{label}: wa_logical {:.2} ({}), wa_os {wa_os}, {} fsyncs, user {:.1} MiB",
        stats.write_amplification().unwrap_or(0.0),
        by_purpose.join(", "),
        stats.io.fsyncs,
        mib(stats.user_bytes)
    );
}

fn print_space(label: &str, dir: &Path, live: u64) {
    let bytes = dir_bytes(dir);
    println!(
        "{label}: space amplification {:.3} ({:.1} MiB on disk / {:.1} MiB live)",
        bytes as f64 / live.max(1) as f64,
        mib(bytes),
        mib(live)
    );
}

fn print_memory(stats: &Stats) {
    let m = &stats.memory;
    let kib = |field| {
        proc_field("status", field)
            .map_or("n/a".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
    };
    println!(
        "process memory now: anonymous {} MiB, file-backed (mmapped tables) {} MiB, peak RSS so far {} MiB",
        kib("RssAnon:"),
        kib("RssFile:"),
        kib("VmHWM:")
    );
    println!(
        "engine memory: total {:.1} MiB (memtables {:.1}, block cache {:.1}, filters {:.1}, indexes {:.1}, \
         pool {:.1}, snapshot overlay {:.1})",
        mib(m.total()),
        mib(m.memtables),
        mib(m.block_cache),
        mib(m.filters),
        mib(m.indexes),
        mib(m.buffer_pool),
        mib(m.snapshot_overlay)
    );
}

fn os_written_since(start: Option<u64>) -> Option<u64> {
    Some(proc_field("io", "write_bytes:")?.saturating_sub(start?))
}

fn main() -> rumdb::Result<()> {
    let mut args = std::env::args().skip(1);
    let engine = args.next().unwrap_or_else(|| "lsm".into());
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mode = args.next().unwrap_or_else(|| "fill".into());
    println!("engine {engine}, {n} keys, mode {mode}, default options");
    let dir = tempfile::tempdir()?;
    let live = n * ENTRY_BYTES;
    let mut rng = Rng::new(42);
    let db = open(&engine, dir.path())?;
    let os_start = proc_field("io", "write_bytes:");
    let mut peak_engine = 0u64;
    let mut peak_anon = 0u64;

    if mode == "sync" {
        let start = Instant::now();
        for id in shuffled(n, 1) {
            let mut batch = WriteBatch::new();
            batch.put(key(id), value(&mut rng));
            db.write(&batch, WriteOptions::sync())?;
        }
        println!(
            "sync puts: {:.0} ops/s",
            n as f64 / start.elapsed().as_secs_f64()
        );
        print_wa("after sync puts", &db.stats(), os_written_since(os_start));
    } else {
        for (pass, seed) in [("fillrandom", 1), ("overwrite", 2)] {
            let start = Instant::now();
            let mut batch = WriteBatch::new();
            for chunk in shuffled(n, seed).chunks(1000) {
                batch.clear();
                for &id in chunk {
                    batch.put(key(id), value(&mut rng));
                }
                db.write(&batch, WriteOptions::new(Durability::Flush))?;
                peak_engine = peak_engine.max(db.stats().memory.total());
                peak_anon = peak_anon.max(proc_field("status", "RssAnon:").unwrap_or(0));
            }
            println!(
                "{pass}: {:.0} ops/s",
                n as f64 / start.elapsed().as_secs_f64()
            );
            db.wait_idle()?;
            let stats = db.stats();
            print_wa(
                &format!("after {pass} (settled)"),
                &stats,
                os_written_since(os_start),
            );
            print_space(&format!("after {pass} (settled)"), dir.path(), live);
            print_memory(&stats);
            println!(
                "peak during {pass} (sampled per batch): engine-reported {:.1} MiB, process anonymous {:.1} MiB",
                mib(peak_engine),
                peak_anon as f64 / 1024.0
            );
        }
    }
    db.close()?;
    print_wa("after close", &db.stats(), os_written_since(os_start));
    print_space("after close", dir.path(), live);
    drop(db);

    let db = open(&engine, dir.path())?;
    db.compact()?;
    db.wait_idle()?;
    print_space("after reopen + compact()", dir.path(), live);
    db.close()?;
    println!(
        "peak RSS {:.1} MiB (VmHWM: includes pages of mmapped tables, which are page cache)",
        proc_field("status", "VmHWM:").unwrap_or(0) as f64 / 1024.0
    );
    Ok(())
}
