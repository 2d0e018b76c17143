//! An append-heavy time-series event log on the LSM engine: sensors append readings keyed by
//! `sensor/timestamp`, then a dashboard reads one sensor's time range back, newest first.
//!
//! ```sh
//! cargo run --release --example event_log -- [EVENTS]
//! ```

use std::time::Instant;

use rumdb::{Durability, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch, WriteOptions};

/// Keys sort by sensor, then by big-endian timestamp, so a time range is a key range.
fn event_key(sensor: u32, micros: u64) -> Vec<u8> {
    let mut k = format!("sensor-{sensor:04}/").into_bytes();
    k.extend_from_slice(&micros.to_be_bytes());
    k
}

fn main() -> rumdb::Result<()> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let db = LsmEngine::open(dir.path(), LsmOptions::default())?;

    // Ingest: 16 sensors, one reading per sensor per tick, 1,000 readings per batch.
    let start = Instant::now();
    let mut batch = WriteBatch::new();
    for i in 0..events {
        let sensor = (i % 16) as u32;
        let micros = 1_700_000_000_000_000 + (i / 16) * 1_000;
        let reading = format!("{{\"celsius\":{:.2}}}", 20.0 + (i % 97) as f64 / 10.0);
        batch.put(event_key(sensor, micros), reading.as_bytes());
        if batch.len() == 1000 {
            db.write(&batch, WriteOptions::new(Durability::Flush))?;
            batch.clear();
        }
    }
    db.write(&batch, WriteOptions::sync())?;
    let ingest = start.elapsed();
    println!(
        "ingested {events} events in {ingest:.2?} ({:.0} events/s)",
        events as f64 / ingest.as_secs_f64()
    );

    // Read back sensor 7's readings over a 100 ms window, newest first.
    let from = event_key(7, 1_700_000_000_000_000 + 5_000_000);
    let to = event_key(7, 1_700_000_000_000_000 + 5_100_000);
    let start = Instant::now();
    let window: Vec<_> = db
        .range(from.as_slice()..to.as_slice())?
        .rev()
        .collect::<rumdb::Result<_>>()?;
    println!(
        "sensor 7, 100 ms window: {} readings in {:.2?}",
        window.len(),
        start.elapsed()
    );
    if let Some((key, value)) = window.first() {
        let ts = u64::from_be_bytes(key[key.len() - 8..].try_into().unwrap_or_default());
        println!("  newest: t={ts} {}", String::from_utf8_lossy(value));
    }

    db.flush()?;
    let stats = db.stats();
    println!(
        "write amplification {:.2} (wal {} B, flush {} B, compaction {} B for {} user bytes), {} L0 tables",
        stats.write_amplification().unwrap_or(0.0),
        stats.io.written.wal,
        stats.io.written.memtable_flush,
        stats.io.written.compaction,
        stats.user_bytes,
        stats.l0_files
    );
    db.close()
}
