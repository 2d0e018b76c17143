//! The amplification report: both engines on the same workloads, with throughput, latency percentiles,
//! write amplification by purpose beside the OS's count, read and space amplification and peak memory,
//! ending with the textbook B-tree vs LSM-tree table filled with measured values and a verdict per row.
//!
//! ```sh
//! cargo run --release --example amplification                    # about a minute at 200,000 keys
//! cargo run --release --example amplification -- --keys 1000000 --json out.json --svg plots/
//! cargo run --release --example amplification -- --help
//! ```
//!
//! Each engine runs in its own child process (this binary re-executed with a hidden `--child ENGINE`), so
//! its peak memory (VmHWM) and its OS I/O counters (/proc/self/io) are its own. A child prints one JSON
//! line per workload on stdout; progress goes to stderr.
//!
//! `rumdb bench` (the `rumdb-cli` crate) runs the same report: it includes these modules with `#[path]`,
//! so they name each other as `super::` (this file is their parent here, `rumdb-cli/src/bench.rs`
//! there) and use no test machinery of the library.

mod child;
mod cli;
mod measure;
mod report;
mod rng;
mod run;
mod svg;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match cli::parse(&args) {
        Ok(c) => c,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}\n");
            }
            eprint!("{}", cli::USAGE);
            std::process::exit(if msg.is_empty() { 0 } else { 2 });
        }
    };
    let result = match &cfg.child {
        Some(engine) => child::run(&cfg, engine),
        None => {
            let features: &[&str] = if cfg!(feature = "testing") {
                &["testing"]
            } else {
                &[]
            };
            run::parent(&cfg, &args, &[], features)
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
