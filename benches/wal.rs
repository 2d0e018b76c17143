//! Component micro-benchmarks of the foundation: batch encoding and WAL appends.
//!
//! `cargo bench --bench wal` (quick mode: `cargo bench --bench wal -- --quick`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rumdb::RecoveryMode;
use rumdb::testing::Storage;
use rumdb::testing::wal::{self, WalWriter};
use rumdb::{Durability, WriteBatch};

/// The workload's record: 1,000 entries of a 16-byte key and a 100-byte value.
fn batch() -> WriteBatch {
    let mut b = WriteBatch::new();
    for i in 0..1000u64 {
        let key = format!("{i:016}");
        let mut value = [0u8; 100];
        value[..8].copy_from_slice(&i.to_le_bytes());
        b.put(key.as_bytes(), value);
    }
    b
}

fn batch_codec(c: &mut Criterion) {
    let b = batch();
    let encoded = b.encode(1);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode_1000x116B", |bench| {
        bench.iter(|| black_box(b.encode(black_box(7))))
    });
    g.bench_function("decode_1000x116B", |bench| {
        bench.iter(|| WriteBatch::decode(black_box(&encoded), "bench", 0).map(|(s, _)| s))
    });
    g.finish();
}

fn wal_append(c: &mut Criterion) {
    let encoded = batch().encode(1);
    let mut g = c.benchmark_group("wal_append");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    for durability in [Durability::Buffered, Durability::Flush] {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::os(dir.path(), false).unwrap();
        let w = WalWriter::create(&storage, 1, wal::Link::default()).unwrap();
        let mut next = 1;
        let mut appended = 0u64;
        g.bench_function(format!("{durability:?}_116KB_batch"), |bench| {
            bench.iter(|| {
                w.append(black_box(&encoded), durability).unwrap();
                appended += 1;
                // Keep segments near the default memtable size, as an engine would.
                if appended.is_multiple_of(500) {
                    next += 1;
                    w.rotate(next).unwrap();
                }
            })
        });
    }
    g.finish();
}

fn wal_replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::os(dir.path(), false).unwrap();
    let w = WalWriter::create(&storage, 1, wal::Link::default()).unwrap();
    let encoded = batch().encode(1);
    for _ in 0..100 {
        w.append(&encoded, Durability::Flush).unwrap();
    }
    w.close().unwrap();
    let mut g = c.benchmark_group("wal_replay");
    g.throughput(Throughput::Bytes(encoded.len() as u64 * 100));
    g.bench_function("100x116KB", |bench| {
        bench.iter(|| {
            let mut n = 0u64;
            // Close sealed segment 1 and started an empty segment 2.
            wal::replay(&storage, &[1, 2], Some(1), RecoveryMode::default(), |r| {
                n += r.payload.len() as u64;
                Ok(())
            })
            .unwrap();
            n
        })
    });
    g.finish();
}

criterion_group!(benches, batch_codec, wal_append, wal_replay);
criterion_main!(benches);
