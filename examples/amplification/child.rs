//! The child process: runs every selected workload on one engine and prints one JSON line per workload.
//!
//! Every workload draws its keys and values from its own seeded generator, so both engines get exactly the
//! same operations. The measured interval is the workload's loop; the bytes written are counted over the
//! loop, the settle (`wait_idle`) and the close that follow it (a checkpoint or flush at close is part of
//! the workload's cost); the database is reopened before the next workload.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::rng::Rng;
use rumdb::{
    BTreeEngine, BTreeOptions, Durability, Engine, EngineExt, LsmEngine, LsmOptions, Stats,
    WriteBatch, WriteOptions,
};
use serde_json::{Value, json};

use super::cli::Config;
use super::measure::{self, Latency, OsIo, Progress};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The LSM options of the report: defaults except the memtable and cache sizes, the bloom bits, L1 size and
/// level ratio flags and, unless `--compression default`, the block compression of every level.
pub fn lsm_options(cfg: &Config) -> LsmOptions {
    let mut o = LsmOptions {
        memtable_bytes: (cfg.memtable_mib as u64) << 20,
        block_cache_bytes: cfg.cache_mib << 20,
        level_size_ratio: cfg.level_ratio,
        base_level_bytes: cfg.l1_mib << 20,
        ..Default::default()
    };
    o.table.bloom_bits_per_key = cfg.bloom_bits;
    let every_level = match cfg.compression {
        super::cli::Compression::Default => None,
        super::cli::Compression::Off => Some(rumdb::Compression::None),
        super::cli::Compression::On => Some(rumdb::Compression::Zstd { level: 1 }),
    };
    if let Some(every) = every_level {
        for c in o.level_compression.iter_mut() {
            *c = every;
        }
    }
    o
}

/// The B-tree options of the report: defaults except the pool and page sizes.
pub fn btree_options(cfg: &Config) -> BTreeOptions {
    BTreeOptions {
        pool_bytes: cfg.cache_mib << 20,
        page_size: cfg.page_size,
        ..Default::default()
    }
}

/// Workloads that run on the main database, loaded by fillrandom.
const ON_MAIN: [&str; 10] = [
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "scan",
    "ycsb-a",
    "ycsb-b",
    "sync1",
    "sync8",
    "deleterandom",
];

struct Db {
    engine: Box<dyn Engine>,
    dir: PathBuf,
    /// Key + value bytes of the live keys.
    live_bytes: u64,
}

struct Frame {
    stats: Stats,
    os: Option<OsIo>,
    start: Instant,
    /// Bytes written by background work left over from earlier workloads (or the open), drained by the
    /// settle before the frame started: not this workload's.
    carried_over: u64,
    rss: measure::RssSampler,
}

/// What a workload did, besides what the frame measures.
struct Done {
    ops: u64,
    latency: Latency,
    /// Range reads (scans) made, for read amplification per scan; point workloads use `Stats::reads.gets`.
    scans: u64,
    durability: Durability,
}

struct Child<'a> {
    cfg: &'a Config,
    engine: &'a str,
    entry_bytes: u64,
}

pub fn run(cfg: &Config, engine: &str) -> Res<()> {
    let root = match &cfg.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let c = Child {
        cfg,
        engine,
        entry_bytes: (cfg.key_size + cfg.value_size) as u64,
    };
    if cfg.wants("fillseq") {
        let mut db = c.open_fresh(&root.path().join("fillseq"))?;
        let ids: Vec<u64> = (0..cfg.keys).map(|i| i * 2).collect();
        let f = begin(&db);
        let done = c.fill(&db, "fillseq", &ids, 1)?;
        db.live_bytes = cfg.keys * c.entry_bytes;
        c.finish(db, f, "fillseq", done, false)?;
        std::fs::remove_dir_all(root.path().join("fillseq"))?;
    }
    if ON_MAIN.iter().any(|w| cfg.wants(w)) {
        c.main_workloads(&root.path().join("main"))?;
        std::fs::remove_dir_all(root.path().join("main"))?;
    }
    if cfg.wants("timeseries") {
        let mut db = c.open_fresh(&root.path().join("timeseries"))?;
        let f = begin(&db);
        let done = c.timeseries(&db)?;
        db.live_bytes = cfg.keys * c.entry_bytes;
        c.finish(db, f, "timeseries", done, false)?;
        std::fs::remove_dir_all(root.path().join("timeseries"))?;
    }
    if cfg.wants("deleterange") {
        // Loaded in key order outside the frame; the frame measures the range delete and the scans.
        let mut db = c.open_fresh(&root.path().join("deleterange"))?;
        let ids: Vec<u64> = (0..cfg.keys).collect();
        c.fill(&db, "deleterange load", &ids, 12)?;
        db.engine.flush()?;
        let f = begin(&db);
        let done = c.delete_range_then_scan(&db)?;
        db.live_bytes = (cfg.keys - cfg.keys * 9 / 10) * c.entry_bytes;
        c.finish(db, f, "deleterange", done, false)?;
    }
    Ok(())
}

/// Starts a workload's frame: first settles (`wait_idle`) so background work an earlier workload left (a
/// compaction the reopen found due, say) is counted as carried over, not as this workload's.
fn begin(db: &Db) -> Frame {
    let before = db.engine.stats();
    // A failed settle shows in the workload itself (its writes return the error).
    let _ = db.engine.wait_idle();
    let stats = db.engine.stats();
    measure::reset_peak_rss();
    Frame {
        carried_over: stats.since(&before).io.written.total(),
        stats,
        os: measure::os_io(),
        start: Instant::now(),
        rss: measure::RssSampler::start(),
    }
}

fn key(id: u64, size: usize) -> Vec<u8> {
    format!("{id:0size$}").into_bytes()
}

fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..n).map(|i| i * 2).collect();
    let mut rng = Rng::new(seed);
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
    ids
}

impl Child<'_> {
    fn open(&self, dir: &Path) -> rumdb::Result<Box<dyn Engine>> {
        Ok(match self.engine {
            "lsm" => Box::new(LsmEngine::open(dir, lsm_options(self.cfg))?),
            _ => Box::new(BTreeEngine::open(dir, btree_options(self.cfg))?),
        })
    }

    fn open_fresh(&self, dir: &Path) -> Res<Db> {
        std::fs::create_dir_all(dir)?;
        Ok(Db {
            engine: self.open(dir)?,
            dir: dir.to_path_buf(),
            live_bytes: 0,
        })
    }

    /// A value: `1 - compressible` of it random, the rest repeats the random part.
    fn value(&self, rng: &mut Rng) -> Vec<u8> {
        let size = self.cfg.value_size;
        let random = ((size as f64) * (1.0 - self.cfg.compressible)).round() as usize;
        let mut v = vec![0u8; size];
        let (head, tail) = v.split_at_mut(random.min(size));
        rng.fill(head);
        if !head.is_empty() {
            for (i, b) in tail.iter_mut().enumerate() {
                *b = head[i % head.len()];
            }
        }
        v
    }

    fn label(&self, workload: &str) -> String {
        format!("{} {workload}", self.engine)
    }

    /// Writes `ids` in batches of 1,000 with the configured durability; latency per batch.
    fn fill(&self, db: &Db, workload: &str, ids: &[u64], seed: u64) -> Res<Done> {
        let mut rng = Rng::new(seed);
        let durability = self.cfg.durability;
        let mut latency = Latency::new("batch of 1000", ids.len() / 1000 + 1);
        let mut progress = Progress::new(self.label(workload), ids.len() as u64);
        let mut batch = WriteBatch::new();
        for (i, chunk) in ids.chunks(1000).enumerate() {
            batch.clear();
            for &id in chunk {
                batch.put(key(id, self.cfg.key_size), self.value(&mut rng));
            }
            let t = Instant::now();
            db.engine.write(&batch, WriteOptions::new(durability))?;
            latency.record(t);
            progress.tick(i as u64 * 1000);
        }
        progress.done("");
        Ok(Done {
            ops: ids.len() as u64,
            latency,
            scans: 0,
            durability,
        })
    }

    /// Closes `db` and returns what the frame measured as one JSON object; reopens if `reopen`.
    fn finish(
        &self,
        db: Db,
        f: Frame,
        workload: &str,
        mut d: Done,
        reopen: bool,
    ) -> Res<Option<Db>> {
        let secs = f.start.elapsed().as_secs_f64();
        let t = Instant::now();
        db.engine.wait_idle()?;
        let settle_secs = t.elapsed().as_secs_f64();
        let settled = db.engine.stats().since(&f.stats);
        let bytes_settle = measure::dir_bytes(&db.dir)?;
        db.engine.close()?;
        let closed = db.engine.stats().since(&f.stats);
        let bytes_close = measure::dir_bytes(&db.dir)?;
        let os = match (f.os, measure::os_io()) {
            (Some(a), Some(b)) => json!({
                "write_bytes": b.write_bytes.saturating_sub(a.write_bytes),
                "read_bytes": b.read_bytes.saturating_sub(a.read_bytes),
            }),
            _ => Value::Null,
        };
        let written: serde_json::Map<String, Value> = closed
            .io
            .written
            .by_purpose()
            .iter()
            .map(|(name, b)| (name.to_string(), json!(b)))
            .collect();
        let r = settled.reads;
        let (peak_anon, peak_file) = f.rss.finish();
        let line = json!({
            "engine": self.engine,
            "workload": workload,
            "ops": d.ops,
            "secs": secs,
            "settle_secs": settle_secs,
            "latency_unit": d.latency.unit,
            "p50_us": d.latency.percentile_us(50.0),
            "p99_us": d.latency.percentile_us(99.0),
            "p999_us": d.latency.percentile_us(99.9),
            "max_us": d.latency.percentile_us(100.0),
            "durability": format!("{:?}", d.durability),
            "carried_over_bytes": f.carried_over,
            "user_bytes": closed.user_bytes,
            "written": written,
            "written_total": closed.io.written.total(),
            "fsyncs": closed.io.fsyncs,
            "dir_syncs": closed.io.dir_syncs,
            "os": os,
            "reads": {
                "gets": r.gets, "scans": d.scans,
                "data_fetches": r.data_fetches, "index_fetches": r.index_fetches,
                "data_touches": r.data_touches, "index_touches": r.index_touches,
                "cache_hits": r.cache_hits,
                "bloom_probes": r.bloom_probes, "bloom_negatives": r.bloom_negatives,
                "get_bytes": settled.io.read.get, "scan_bytes": settled.io.read.scan,
            },
            "live_bytes": db.live_bytes,
            "dir_bytes_settle": bytes_settle,
            "dir_bytes_close": bytes_close,
            "engine_memory": settled.memory.total(),
            "peak_rss": measure::peak_rss(),
            "peak_anon": peak_anon,
            "peak_file": peak_file,
            "compactions": closed.compactions,
            "checkpoints": closed.checkpoints,
            "stalls": closed.stalls,
        });
        if self.cfg.wants(workload) {
            println!("{line}");
        }
        let Db {
            engine,
            dir,
            live_bytes,
        } = db;
        drop(engine);
        if !reopen {
            return Ok(None);
        }
        Ok(Some(Db {
            engine: self.open(&dir)?,
            dir,
            live_bytes,
        }))
    }

    fn main_workloads(&self, dir: &Path) -> Res<()> {
        let n = self.cfg.keys;
        let mut db = self.open_fresh(dir)?;
        let f = begin(&db);
        let done = self.fill(&db, "fillrandom", &shuffled(n, 1), 2)?;
        db.live_bytes = n * self.entry_bytes;
        db = self.reopened(self.finish(db, f, "fillrandom", done, true)?)?;
        type Step<'b> = &'b dyn Fn(&Child<'_>, &Db) -> Res<Done>;
        let steps: [(&str, Step<'_>); 8] = [
            ("overwrite", &|c, db| {
                c.fill(db, "overwrite", &shuffled(c.cfg.keys, 3), 4)
            }),
            ("readrandom", &|c, db| c.gets(db, "readrandom", 0, 5)),
            ("readmissing", &|c, db| c.gets(db, "readmissing", 1, 6)),
            ("scan", &|c, db| c.scans(db)),
            ("ycsb-a", &|c, db| c.ycsb(db, "ycsb-a", 50, 7)),
            ("ycsb-b", &|c, db| c.ycsb(db, "ycsb-b", 5, 8)),
            ("sync1", &|c, db| c.sync_puts(db, "sync1", 1)),
            ("sync8", &|c, db| c.sync_puts(db, "sync8", 8)),
        ];
        for (name, step) in steps {
            if self.cfg.wants(name) {
                let f = begin(&db);
                let done = step(self, &db)?;
                db = self.reopened(self.finish(db, f, name, done, true)?)?;
            }
        }
        if self.cfg.wants("deleterandom") {
            let f = begin(&db);
            let done = self.deletes(&db)?;
            db.live_bytes -= done.ops * self.entry_bytes;
            self.finish(db, f, "deleterandom", done, false)?;
        } else {
            db.engine.close()?;
        }
        Ok(())
    }

    fn reopened(&self, db: Option<Db>) -> Res<Db> {
        db.ok_or_else(|| "internal: the database was not reopened".into())
    }

    /// Point gets of present (`parity` 0: even ids) or absent (1: odd ids) keys; latency per get.
    fn gets(&self, db: &Db, workload: &str, parity: u64, seed: u64) -> Res<Done> {
        let (n, reads) = (self.cfg.keys, self.cfg.reads);
        let mut rng = Rng::new(seed);
        let mut latency = Latency::new("get", reads as usize);
        let mut progress = Progress::new(self.label(workload), reads);
        let mut found = 0u64;
        for i in 0..reads {
            let k = key(rng.below(n) * 2 + parity, self.cfg.key_size);
            let t = Instant::now();
            found += u64::from(db.engine.get(&k)?.is_some());
            latency.record(t);
            progress.tick(i);
        }
        progress.done("");
        let want = if parity == 0 { reads } else { 0 };
        if found != want {
            return Err(format!("{workload}: found {found} keys, expected {want}").into());
        }
        Ok(Done {
            ops: reads,
            latency,
            scans: 0,
            durability: Durability::Flush,
        })
    }

    /// `reads / 10` scans of 100 entries from a random present key; latency per scan.
    fn scans(&self, db: &Db) -> Res<Done> {
        let scans = (self.cfg.reads / 10).max(1);
        let mut rng = Rng::new(9);
        let mut latency = Latency::new("scan of 100", scans as usize);
        let mut progress = Progress::new(self.label("scan"), scans);
        for i in 0..scans {
            let from = key(rng.below(self.cfg.keys) * 2, self.cfg.key_size);
            let t = Instant::now();
            for entry in db.engine.range(&from[..]..)?.take(100) {
                entry?;
            }
            latency.record(t);
            progress.tick(i);
        }
        progress.done("");
        Ok(Done {
            ops: scans,
            latency,
            scans,
            durability: Durability::Flush,
        })
    }

    /// YCSB-like: `reads` operations on uniform random present keys, `update_pct`% single-put updates
    /// with the configured durability, the rest gets; latency per operation.
    fn ycsb(&self, db: &Db, workload: &str, update_pct: u64, seed: u64) -> Res<Done> {
        let reads = self.cfg.reads;
        let mut rng = Rng::new(seed);
        let opts = WriteOptions::new(self.cfg.durability);
        let mut latency = Latency::new("op", reads as usize);
        let mut progress = Progress::new(self.label(workload), reads);
        for i in 0..reads {
            let k = key(rng.below(self.cfg.keys) * 2, self.cfg.key_size);
            if rng.chance(update_pct, 100) {
                let v = self.value(&mut rng);
                let mut batch = WriteBatch::new();
                batch.put(&k, &v);
                let t = Instant::now();
                db.engine.write(&batch, opts)?;
                latency.record(t);
            } else {
                let t = Instant::now();
                if db.engine.get(&k)?.is_none() {
                    return Err(format!("{workload}: present key missing").into());
                }
                latency.record(t);
            }
            progress.tick(i);
        }
        progress.done("");
        Ok(Done {
            ops: reads,
            latency,
            scans: 0,
            durability: self.cfg.durability,
        })
    }

    /// `sync_puts` single `Sync` puts overwriting random present keys, from `threads` threads (group
    /// commit); latency per put.
    fn sync_puts(&self, db: &Db, workload: &str, threads: u64) -> Res<Done> {
        let total = self.cfg.sync_puts;
        let per_thread = total.div_ceil(threads);
        let progress = Progress::new(self.label(workload), total);
        let results: Vec<Res<Latency>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || -> Res<Latency> {
                        let mut rng = Rng::new(100 + t);
                        let mut latency = Latency::new("Sync put", per_thread as usize);
                        for _ in 0..per_thread {
                            let k = key(rng.below(self.cfg.keys) * 2, self.cfg.key_size);
                            let v = self.value(&mut rng);
                            let mut batch = WriteBatch::new();
                            batch.put(&k, &v);
                            let start = Instant::now();
                            db.engine.write(&batch, WriteOptions::sync())?;
                            latency.record(start);
                        }
                        Ok(latency)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a writer thread panicked".into()))
                })
                .collect()
        });
        let mut latency = Latency::new("Sync put", total as usize);
        for r in results {
            latency.extend(r?);
        }
        progress.done(&format!("({threads} threads)"));
        Ok(Done {
            ops: per_thread * threads,
            latency,
            scans: 0,
            durability: Durability::Sync,
        })
    }

    /// Single deletes of a random tenth of the keys (distinct) with the configured durability.
    fn deletes(&self, db: &Db) -> Res<Done> {
        let count = self.cfg.keys / 10;
        let ids = shuffled(self.cfg.keys, 10);
        let opts = WriteOptions::new(self.cfg.durability);
        let mut latency = Latency::new("delete", count as usize);
        let mut progress = Progress::new(self.label("deleterandom"), count);
        let mut batch = WriteBatch::new();
        for (i, &id) in ids.iter().take(count as usize).enumerate() {
            batch.clear();
            batch.delete(key(id, self.cfg.key_size));
            let t = Instant::now();
            db.engine.write(&batch, opts)?;
            latency.record(t);
            progress.tick(i as u64);
        }
        progress.done("");
        Ok(Done {
            ops: count,
            latency,
            scans: 0,
            durability: self.cfg.durability,
        })
    }

    /// "Delete a range, then scan it": one `delete_range` of the first 90% of the keys (loaded in key
    /// order), then `reads / 100` (at least 10) scans of 100 entries from the start of the deleted range,
    /// each of which must pass over the whole deleted region to reach the first live key (an LSM reads the
    /// covered versions until a compaction drops them; the B-tree removed them in place). Ops are the
    /// scans; latency per scan (the range delete's own time is the first line printed).
    fn delete_range_then_scan(&self, db: &Db) -> Res<Done> {
        let n = self.cfg.keys;
        let cut = n * 9 / 10;
        let mut batch = WriteBatch::new();
        batch.delete_range(key(0, self.cfg.key_size), key(cut, self.cfg.key_size));
        let t = Instant::now();
        db.engine
            .write(&batch, WriteOptions::new(self.cfg.durability))?;
        eprintln!(
            "{}: range delete of {cut} keys took {:.1} ms",
            self.label("deleterange"),
            t.elapsed().as_secs_f64() * 1e3
        );
        let scans = (self.cfg.reads / 100).max(10);
        let mut latency = Latency::new("scan of 100 over the deleted range", scans as usize);
        let mut progress = Progress::new(self.label("deleterange"), scans);
        let from = key(0, self.cfg.key_size);
        for i in 0..scans {
            let t = Instant::now();
            let mut first = None;
            for entry in db.engine.range(&from[..]..)?.take(100) {
                first.get_or_insert(entry?.0);
            }
            latency.record(t);
            if first.as_deref() != Some(&key(cut, self.cfg.key_size)[..]) {
                return Err("deleterange: the scan did not start at the first live key".into());
            }
            progress.tick(i);
        }
        progress.done("");
        Ok(Done {
            ops: scans,
            latency,
            scans,
            durability: self.cfg.durability,
        })
    }

    /// A time-series log: `keys` appends with ascending keys in batches of 100 (configured durability),
    /// each batch followed by a read of 100 entries from a random point among the last 10,000 appended.
    /// Ops are appends; latency is per step (batch + range read).
    fn timeseries(&self, db: &Db) -> Res<Done> {
        let n = self.cfg.keys;
        let mut rng = Rng::new(11);
        let opts = WriteOptions::new(self.cfg.durability);
        let steps = n.div_ceil(100);
        let mut latency = Latency::new("batch of 100 + read of 100", steps as usize);
        let mut progress = Progress::new(self.label("timeseries"), n);
        let mut batch = WriteBatch::new();
        let mut appended = 0u64;
        while appended < n {
            batch.clear();
            let end = (appended + 100).min(n);
            for id in appended..end {
                batch.put(key(id, self.cfg.key_size), self.value(&mut rng));
            }
            let t = Instant::now();
            db.engine.write(&batch, opts)?;
            let window = end.min(10_000);
            let from = key(end - 1 - rng.below(window), self.cfg.key_size);
            for entry in db.engine.range(&from[..]..)?.take(100) {
                entry?;
            }
            latency.record(t);
            appended = end;
            progress.tick(appended);
        }
        progress.done("");
        Ok(Done {
            ops: n,
            latency,
            scans: steps,
            durability: self.cfg.durability,
        })
    }
}
