//! Hand-parsed flags (no argument-parsing crate: compile time matters on 2 cores).

use std::path::PathBuf;

use rumdb::Durability;

/// Every workload, in the order the child runs them.
pub const WORKLOADS: [&str; 13] = [
    "fillseq",
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
    "timeseries",
    "deleterange",
];

pub const USAGE: &str = "\
usage: cargo run --release --example amplification -- [FLAGS]

  --keys N            keys loaded (default 200000)
  --reads N           gets / YCSB operations per read workload (default min(keys, 100000))
  --key-size B        key bytes: the decimal id zero-padded (default 16)
  --value-size B      value bytes (default 100)
  --compressible F    fraction of each value that repeats its random part (default 0.5)
  --durability D      sync | flush | buffered, for fills, updates and deletes (default flush)
  --sync-puts N       Sync puts of sync1 and sync8 (default 2000)
  --engines LIST      lsm,btree (default both)
  --workloads LIST    comma-separated subset of:
                      fillseq,fillrandom,overwrite,readrandom,readmissing,scan,ycsb-a,ycsb-b,
                      sync1,sync8,deleterandom,timeseries,deleterange (default all)
  --cache-mib N       LSM block cache and B-tree buffer pool (default 8)
  --memtable-mib N    LSM memtable (default 4)
  --compression C     LSM block compression: default (the engine's: raw on L0-L1, zstd level 1 below),
                      off (raw on every level: the textbook setting) or on (zstd level 1 on every
                      level); the B-tree has no compression (default: default)
  --bloom-bits N      LSM bloom filter bits per key (default 10; 0: no filters)
  --level-ratio N     LSM level size ratio (default 10)
  --l1-mib N          LSM target size of L1 (default 256, the engine's default)
  --page-size B       B-tree page size, a power of two 512..16384 (default 4096)
  --dir PATH          where the databases are created (default the system temp dir)
  --json PATH         write every result as JSON
  --svg DIR           write throughput.svg and rum.svg
";

/// LSM block compression of a run (the B-tree stores pages raw whatever this says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// The engine's default: raw on L0-L1, zstd level 1 below.
    Default,
    /// Raw blocks on every level.
    Off,
    /// zstd level 1 on every level.
    On,
}

impl Compression {
    /// The flag's spelling, as printed in the header and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Default => "default",
            Compression::Off => "off",
            Compression::On => "on",
        }
    }
}

/// The run's configuration: what the parent parsed, passed unchanged to each child.
#[derive(Clone, Debug)]
pub struct Config {
    pub keys: u64,
    pub reads: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub compressible: f64,
    pub durability: Durability,
    pub sync_puts: u64,
    pub engines: Vec<String>,
    pub workloads: Vec<String>,
    pub cache_mib: usize,
    pub memtable_mib: usize,
    pub compression: Compression,
    pub bloom_bits: u32,
    pub level_ratio: u64,
    pub l1_mib: u64,
    pub page_size: usize,
    pub dir: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    /// Set in a child process: the engine it runs.
    pub child: Option<String>,
}

impl Config {
    pub fn wants(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn list(flag: &str, v: &str, allowed: &[&str]) -> Result<Vec<String>, String> {
    let items: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
    for item in &items {
        if !allowed.contains(&item.as_str()) {
            return Err(format!(
                "{flag}: unknown {item:?} (one of {})",
                allowed.join(",")
            ));
        }
    }
    Ok(items)
}

/// Parses the flags (without the program name). `Err` carries the message to print.
pub fn parse(args: &[String]) -> Result<Config, String> {
    let mut c = Config {
        keys: 200_000,
        reads: 0,
        key_size: 16,
        value_size: 100,
        compressible: 0.5,
        durability: Durability::Flush,
        sync_puts: 2000,
        engines: vec!["lsm".into(), "btree".into()],
        workloads: WORKLOADS.iter().map(|w| w.to_string()).collect(),
        cache_mib: 8,
        memtable_mib: 4,
        compression: Compression::Default,
        bloom_bits: 10,
        level_ratio: 10,
        l1_mib: 256,
        page_size: 4096,
        dir: None,
        json: None,
        svg: None,
        child: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value (or unknown flag)"))?;
        match flag.as_str() {
            "--keys" => c.keys = number(flag, v)?,
            "--reads" => c.reads = number(flag, v)?,
            "--key-size" => c.key_size = number(flag, v)?,
            "--value-size" => c.value_size = number(flag, v)?,
            "--compressible" => c.compressible = number(flag, v)?,
            "--sync-puts" => c.sync_puts = number(flag, v)?,
            "--durability" => {
                c.durability = match v.as_str() {
                    "sync" => Durability::Sync,
                    "flush" => Durability::Flush,
                    "buffered" => Durability::Buffered,
                    _ => {
                        return Err(format!(
                            "--durability: {v:?} is not sync, flush or buffered"
                        ));
                    }
                }
            }
            "--engines" => c.engines = list(flag, v, &["lsm", "btree"])?,
            "--workloads" => c.workloads = list(flag, v, &WORKLOADS)?,
            "--cache-mib" => c.cache_mib = number(flag, v)?,
            "--memtable-mib" => c.memtable_mib = number(flag, v)?,
            "--compression" => {
                c.compression = match v.as_str() {
                    "default" => Compression::Default,
                    "off" => Compression::Off,
                    "on" => Compression::On,
                    _ => return Err(format!("--compression: {v:?} is not default, off or on")),
                }
            }
            "--bloom-bits" => c.bloom_bits = number(flag, v)?,
            "--level-ratio" => c.level_ratio = number(flag, v)?,
            "--l1-mib" => c.l1_mib = number(flag, v)?,
            "--page-size" => c.page_size = number(flag, v)?,
            "--dir" => c.dir = Some(PathBuf::from(v)),
            "--json" => c.json = Some(PathBuf::from(v)),
            "--svg" => c.svg = Some(PathBuf::from(v)),
            "--child" => c.child = Some(list(flag, v, &["lsm", "btree"])?.concat()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if c.reads == 0 {
        c.reads = c.keys.min(100_000);
    }
    if c.keys < 100 {
        return Err("--keys must be at least 100".into());
    }
    if !(0.0..=1.0).contains(&c.compressible) {
        return Err("--compressible must be within 0..1".into());
    }
    if !c.page_size.is_power_of_two() || !(512..=16384).contains(&c.page_size) {
        return Err("--page-size must be a power of two from 512 to 16384".into());
    }
    let digits = (2 * c.keys + 1).to_string().len();
    let max_key = c.page_size / 8 - 16;
    if c.key_size < digits || c.key_size > max_key {
        return Err(format!(
            "--key-size must be {digits}..{max_key} (the B-tree limit) to hold the ids of {} keys",
            c.keys
        ));
    }
    if c.value_size == 0 || c.cache_mib == 0 || c.memtable_mib == 0 || c.l1_mib == 0 {
        return Err(
            "--value-size, --cache-mib, --memtable-mib and --l1-mib must be positive".into(),
        );
    }
    Ok(c)
}
