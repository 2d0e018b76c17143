//! The report's driver, shared by the example (`main.rs`) and `rumdb bench` (the `rumdb-cli` crate
//! includes these modules with `#[path]`): prints the setup, runs each engine in a child process (the
//! running binary re-executed with `child_args` and `--child ENGINE`), and prints the tables.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use super::{child, cli, report, svg};

fn print_setup(cfg: &cli::Config, features: &[&str]) {
    let lsm = child::lsm_options(cfg);
    let bt = child::btree_options(cfg);
    println!("# rumdb amplification report\n");
    println!(
        "build: profile {} (debug_assertions {}), features [{}]{}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if cfg!(debug_assertions) { "on" } else { "off" },
        features.join(", "),
        if cfg!(debug_assertions) {
            " -- figures from a debug build are meaningless; use --release"
        } else {
            ""
        }
    );
    println!(
        "machine: {} cores available; databases in {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cfg.dir
            .as_ref()
            .map_or_else(std::env::temp_dir, |d| d.clone())
            .display()
    );
    println!(
        "data: {} keys of {} B (decimal id zero-padded; present = even ids, missing = odd), values of {} B \
         ({:.0}% repeating its random part); {} reads per read workload; {} Sync puts in sync1 and sync8",
        cfg.keys,
        cfg.key_size,
        cfg.value_size,
        cfg.compressible * 100.0,
        cfg.reads,
        cfg.sync_puts
    );
    println!(
        "durability: {:?} for fills, updates, deletes and appends (fills in batches of 1,000); Sync in sync1/sync8",
        cfg.durability
    );
    let compression: Vec<String> = lsm
        .level_compression
        .iter()
        .enumerate()
        .map(|(level, c)| match c {
            rumdb::Compression::Zstd { level: z } => format!("L{level} zstd-{z}"),
            _ => format!("L{level} raw"),
        })
        .collect();
    println!(
        "LSM: memtable {} MiB, block cache {} MiB, compression {} ({}), block {} B, bloom {} bits/key, \
         L0 trigger {}, L1 target {} MiB, ratio {}, background threads",
        lsm.memtable_bytes >> 20,
        lsm.block_cache_bytes >> 20,
        cfg.compression.name(),
        compression.join(" "),
        lsm.table.block_size,
        lsm.table.bloom_bits_per_key,
        lsm.l0_compaction_trigger,
        lsm.base_level_bytes >> 20,
        lsm.level_size_ratio
    );
    println!(
        "B-tree: buffer pool {} MiB, page {} B, copy-on-write checkpoint every {} MiB of WAL or {} s, \
         dirty pages written back on eviction, pages stored raw (no compression option)",
        bt.pool_bytes >> 20,
        bt.page_size,
        bt.checkpoint_wal_bytes >> 20,
        bt.checkpoint_interval.as_secs()
    );
}

fn run_child(engine: &str, child_args: &[&str], args: &[String]) -> child::Res<Vec<Value>> {
    let exe = std::env::current_exe()?;
    let mut proc = Command::new(exe)
        .args(child_args)
        .arg("--child")
        .arg(engine)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = Vec::new();
    if let Some(out) = proc.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            lines.push(serde_json::from_str(&line?)?);
        }
    }
    let status = proc.wait()?;
    if !status.success() {
        return Err(format!("the {engine} child failed ({status})").into());
    }
    Ok(lines)
}

/// The 1-minute load average (/proc/loadavg), recorded in the JSON: how busy the machine was.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs the report: `args` are the report's flags (parsed into `cfg`), handed on to each child, which is
/// the running binary re-executed with `child_args`, `--child ENGINE` and `args`; `features` are the
/// library features the header lists.
pub fn parent(
    cfg: &cli::Config,
    args: &[String],
    child_args: &[&str],
    features: &[&str],
) -> child::Res<()> {
    let start = Instant::now();
    let load_start = load_average();
    print_setup(cfg, features);
    let mut results = Vec::new();
    for engine in &cfg.engines {
        eprintln!("{engine}:");
        results.extend(run_child(engine, child_args, args)?);
    }
    let ordered = report::ordered(&results, &cfg.engines);
    report::print_tables(&ordered);
    let verdicts = report::print_textbook(&ordered);
    println!("\n(wall time {:.0} s)", start.elapsed().as_secs_f64());
    if let Some(path) = &cfg.json {
        let all = json!({
            "config": {
                "keys": cfg.keys, "reads": cfg.reads, "key_size": cfg.key_size,
                "value_size": cfg.value_size, "compressible": cfg.compressible,
                "durability": format!("{:?}", cfg.durability), "cache_mib": cfg.cache_mib,
                "memtable_mib": cfg.memtable_mib, "bloom_bits": cfg.bloom_bits,
                "level_ratio": cfg.level_ratio, "l1_mib": cfg.l1_mib, "page_size": cfg.page_size, "compression": cfg.compression.name(),
                "sync_puts": cfg.sync_puts, "engines": cfg.engines, "workloads": cfg.workloads,
                "wall_secs": start.elapsed().as_secs_f64(), "args": args,
                "load_average_start": load_start, "load_average_end": load_average(),
                "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            },
            "results": ordered,
            "verdicts": verdicts.iter().map(|(p, v)| json!({"property": p, "verdict": v})).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &cfg.svg {
        svg::write(dir, &ordered, &cfg.engines, &cfg.workloads)?;
        eprintln!("wrote {}/throughput.svg and rum.svg", dir.display());
    }
    Ok(())
}
