//! Group commit in the write-ahead log both engines share: many threads make `Sync` writes, and one fsync
//! releases every writer whose record it covers.
//!
//! ```sh
//! cargo run --release --example group_commit -- [THREADS] [WRITES_PER_THREAD]
//! ```
//!
//! It prints how many fsyncs the writes needed, the WAL's write amplification (framing overhead) and the
//! records recovered by replaying the log afterwards.

use std::time::Instant;

use rumdb::RecoveryMode;
use rumdb::testing::Storage;
use rumdb::testing::wal::{self, WalWriter};
use rumdb::{Durability, WriteBatch};

fn main() -> rumdb::Result<()> {
    let mut args = std::env::args().skip(1);
    let threads: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let per_thread: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);

    let dir = tempfile::tempdir()?;
    let storage = Storage::os(dir.path(), false)?;
    let log = WalWriter::create(&storage, 1, wal::Link::default())?;
    let start = Instant::now();
    let mut user_bytes = 0;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = &log;
                s.spawn(move || -> rumdb::Result<u64> {
                    let mut bytes = 0;
                    for i in 0..per_thread {
                        let mut batch = WriteBatch::new();
                        batch.put(format!("{t:04}-{i:012}").as_bytes(), [b'v'; 100]);
                        bytes += batch.user_bytes();
                        log.append(&batch.encode(t << 32 | i), Durability::Sync)?;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok(b)) => user_bytes += b,
                Ok(Err(e)) => eprintln!("writer failed: {e}"),
                Err(_) => eprintln!("writer panicked"),
            }
        }
    });
    let elapsed = start.elapsed();
    log.close()?;
    let io = storage.io_stats();
    let writes = threads * per_thread;
    println!("{threads} threads x {per_thread} Sync writes of 116 user bytes in {elapsed:.2?}");
    println!(
        "  writes/s:              {:.0}",
        writes as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  fsyncs:                {} ({:.2} writes per fsync)",
        io.fsyncs,
        writes as f64 / io.fsyncs.max(1) as f64
    );
    println!(
        "  WAL bytes / user bytes: {:.3}",
        io.written.wal as f64 / user_bytes.max(1) as f64
    );

    let mut recovered = 0u64;
    wal::replay(
        &storage,
        &wal::list_segments(&storage)?,
        Some(1),
        RecoveryMode::default(),
        |_| {
            recovered += 1;
            Ok(())
        },
    )?;
    println!("  records replayed:      {recovered} of {writes}");
    Ok(())
}
