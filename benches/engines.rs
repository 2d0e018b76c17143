//! Both engines side by side, per operation, on a preloaded database; then component micro-benchmarks
//! reachable through the public API.
//!
//! ```sh
//! cargo bench --bench engines                               # a few minutes: 200,000 preloaded keys
//! RUMDB_BENCH_KEYS=20000 cargo bench --bench engines -- --quick   # quick mode: well under a minute
//! cargo bench --bench engines -- get_                       # only the groups whose name matches
//! ```
//!
//! Each engine's database is loaded once (`RUMDB_BENCH_KEYS` keys, default 200,000, in random order, in
//! batches of 1,000; keys and values as in examples/speed.rs: 16-byte zero-padded decimal ids, present =
//! even, 100-byte values half random) with options small enough that the LSM has several levels (1 MiB
//! memtable, 2 MiB tables, 4 MiB L1) and the B-tree's data (about 3× its 8 MiB pool at 200,000 keys) does not
//! fit its pool (the B-tree is loaded with a large pool, for speed; the pool size is not persistent). Every
//! group copies that database to a fresh temporary directory and opens it, so each group starts from the
//! same state; writes use the default `Flush` durability. Criterion settings are reduced (10 samples, 2 s
//! of measurement, 1 s warm-up) so the whole run takes a few minutes.
//!
//! Components: the memtable insert/get and the bloom filter build/probe are public; the block builder, the
//! B-tree's pages, splits and buffer pool are not reachable from outside the crate and are not benchmarked
//! here. Batch encode/decode and WAL appends are in benches/wal.rs.

use std::hint::black_box;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rumdb::testing::Memtable;
use rumdb::testing::Rng;
use rumdb::testing::filter::{self, Filter};
use rumdb::testing::workload::{key, value};
use rumdb::{
    BTreeEngine, BTreeOptions, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch, WriteOptions,
};
use tempfile::TempDir;

const ENGINES: [&str; 2] = ["lsm", "btree"];

fn keys() -> u64 {
    std::env::var("RUMDB_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn lsm_options() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 1 << 20,
        block_cache_bytes: 8 << 20,
        target_file_bytes: 2 << 20,
        base_level_bytes: 4 << 20,
        ..Default::default()
    }
}

fn btree_options(pool_bytes: usize) -> BTreeOptions {
    BTreeOptions {
        pool_bytes,
        ..Default::default()
    }
}

fn open(engine: &str, dir: &Path) -> Box<dyn Engine> {
    match engine {
        "lsm" => Box::new(LsmEngine::open(dir, lsm_options()).unwrap()),
        _ => Box::new(BTreeEngine::open(dir, btree_options(8 << 20)).unwrap()),
    }
}

/// The preloaded databases, one per engine, built on first use.
fn templates() -> &'static [(String, TempDir); 2] {
    static T: OnceLock<[(String, TempDir); 2]> = OnceLock::new();
    T.get_or_init(|| {
        ENGINES.map(|engine| {
            let n = keys();
            let dir = tempfile::tempdir().unwrap();
            let db: Box<dyn Engine> = match engine {
                "lsm" => Box::new(LsmEngine::open(dir.path(), lsm_options()).unwrap()),
                _ => Box::new(BTreeEngine::open(dir.path(), btree_options(256 << 20)).unwrap()),
            };
            let mut ids: Vec<u64> = (0..n).map(|i| i * 2).collect();
            let mut rng = Rng::new(1);
            for i in (1..ids.len()).rev() {
                ids.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut batch = WriteBatch::new();
            for chunk in ids.chunks(1000) {
                batch.clear();
                for &id in chunk {
                    batch.put(key(id), value(&mut rng));
                }
                db.write(&batch, WriteOptions::default()).unwrap();
            }
            db.wait_idle().unwrap();
            db.close().unwrap();
            eprintln!("preloaded {engine}: {n} keys");
            (engine.to_string(), dir)
        })
    })
}

/// A fresh copy of `engine`'s preloaded database, opened with the benchmark options.
fn fresh(engine: &str) -> (TempDir, Box<dyn Engine>) {
    let (_, template) = templates().iter().find(|(e, _)| e == engine).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(template.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() && entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let db = open(engine, dir.path());
    (dir, db)
}

/// Runs `op` (given the database, a generator and the key count) as one benchmark per engine in `group`.
fn side_by_side(
    c: &mut Criterion,
    group: &str,
    elements: u64,
    op: impl Fn(&dyn Engine, &mut Rng, u64) + Copy,
) {
    let n = keys();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(elements));
    for engine in ENGINES {
        let (_dir, db) = fresh(engine);
        let mut rng = Rng::new(7);
        g.bench_function(engine, |b| b.iter(|| op(db.as_ref(), &mut rng, n)));
        db.close().unwrap();
    }
    g.finish();
}

fn engines(c: &mut Criterion) {
    // Appends past the loaded keys, in key order.
    side_by_side(c, "put_seq", 1, |db, rng, n| {
        db.put(key(2 * n + counter()), value(rng)).unwrap()
    });
    side_by_side(c, "put_random", 1, |db, rng, n| {
        db.put(key(rng.below(n) * 2), value(rng)).unwrap()
    });
    side_by_side(c, "put_random_batch100", 100, |db, rng, n| {
        let mut batch = WriteBatch::new();
        for _ in 0..100 {
            batch.put(key(rng.below(n) * 2), value(rng));
        }
        db.write(&batch, WriteOptions::default()).unwrap()
    });
    side_by_side(c, "get_hit", 1, |db, rng, n| {
        assert!(db.get(key(rng.below(n) * 2)).unwrap().is_some())
    });
    side_by_side(c, "get_miss", 1, |db, rng, n| {
        assert!(db.get(key(rng.below(n) * 2 + 1)).unwrap().is_none())
    });
    side_by_side(c, "scan100", 100, |db, rng, n| {
        let from = key(rng.below(n) * 2);
        let got = db.range(&from[..]..).unwrap().take(100).count();
        black_box(got);
    });
    side_by_side(c, "ycsb_a_50read_50update", 1, |db, rng, n| {
        ycsb(db, rng, n, 50)
    });
    side_by_side(c, "ycsb_b_95read_5update", 1, |db, rng, n| {
        ycsb(db, rng, n, 5)
    });
}

fn ycsb(db: &dyn Engine, rng: &mut Rng, n: u64, update_pct: u64) {
    let k = key(rng.below(n) * 2);
    if rng.chance(update_pct, 100) {
        db.put(k, value(rng)).unwrap();
    } else {
        black_box(db.get(k).unwrap());
    }
}

/// Ascending even ids shared by every `put_seq` run: each engine appends past everything loaded.
fn counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(2, Ordering::Relaxed)
}

fn components(c: &mut Criterion) {
    let mut rng = Rng::new(3);
    let mut batch = WriteBatch::new();
    for i in 0..1000u64 {
        batch.put(key(i * 7919 % 1_000_003), value(&mut rng));
    }
    let mut g = c.benchmark_group("components");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("memtable_insert_batch_1000", |b| {
        b.iter_batched(
            || Memtable::new(1),
            |m| {
                m.insert_batch(1, &batch);
                m
            },
            BatchSize::SmallInput,
        )
    });
    let big = Memtable::new(1);
    let mut loaded = WriteBatch::new();
    for i in 0..100_000u64 {
        loaded.put(key(i * 2), value(&mut rng));
    }
    big.insert_batch(1, &loaded);
    g.throughput(Throughput::Elements(1));
    g.bench_function("memtable_get_of_100k", |b| {
        b.iter(|| big.get(&key(rng.below(100_000) * 2), u64::MAX >> 8))
    });
    let hashes: Vec<u64> = (0..10_000u64).map(|i| filter::key_hash(&key(i))).collect();
    g.throughput(Throughput::Elements(hashes.len() as u64));
    g.bench_function("bloom_build_10k_keys_10_bits", |b| {
        b.iter(|| filter::build(black_box(&hashes), 10, 1))
    });
    let built = filter::build(&hashes, 10, 1).unwrap();
    let f = Filter::decode(&built, 1).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("bloom_probe", |b| {
        b.iter(|| f.may_contain(&key(rng.below(20_000))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1));
    targets = engines, components
}
criterion_main!(benches);
