//! `rumdb bench`: the amplification report (the README's first command, `cargo run --release --example
//! amplification`) as a subcommand. Its modules are the example's own files, included with `#[path]`
//! rather than copied, so the two cannot drift: the same workloads, the same child processes (here
//! `rumdb bench -- --child ENGINE ...`), the same tables and progress lines on stderr.

#[path = "../../examples/amplification/child.rs"]
mod child;
#[path = "../../examples/amplification/cli.rs"]
mod cli;
#[path = "../../examples/amplification/measure.rs"]
mod measure;
#[path = "../../examples/amplification/report.rs"]
mod report;
#[path = "../../examples/amplification/rng.rs"]
mod rng;
#[path = "../../examples/amplification/run.rs"]
mod run;
#[path = "../../examples/amplification/svg.rs"]
mod svg;

use crate::db::{Fail, print};

/// Which engines `rumdb bench` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engines {
    /// The LSM-tree only.
    Lsm,
    /// The B-tree only.
    Btree,
    /// Both, side by side.
    Both,
}

/// What `rumdb bench` was given: its own flags, then the report's (after `--`).
#[derive(Debug, Default)]
pub struct BenchArgs {
    /// `--engine`.
    pub engine: Option<Engines>,
    /// `--workload`: comma-separated workload names.
    pub workload: Option<String>,
    /// `--keys`.
    pub keys: Option<u64>,
    /// Everything after `--`: the report's flags.
    pub report_flags: Vec<String>,
}

impl BenchArgs {
    /// The report's flags this stands for.
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(e) = self.engine {
            let list = match e {
                Engines::Lsm => "lsm",
                Engines::Btree => "btree",
                Engines::Both => "lsm,btree",
            };
            flags.extend(["--engines".to_string(), list.to_string()]);
        }
        if let Some(w) = &self.workload {
            flags.extend(["--workloads".to_string(), w.clone()]);
        }
        if let Some(k) = self.keys {
            flags.extend(["--keys".to_string(), k.to_string()]);
        }
        flags.extend(self.report_flags.iter().cloned());
        flags
    }
}

/// `rumdb bench`: runs the report in this process (the parent) or, given `--child`, one engine's
/// workloads (a child the parent started).
pub fn bench(args: &BenchArgs) -> Result<(), Fail> {
    let flags = args.flags();
    let cfg = match cli::parse(&flags) {
        Ok(cfg) => cfg,
        // `-- --help`: the report's flags.
        Err(msg) if msg.is_empty() => return print(cli::USAGE.trim_end()),
        Err(msg) => return Err(Fail::Usage(msg)),
    };
    quiet_on_closed_stdout();
    let result = match &cfg.child {
        Some(engine) => child::run(&cfg, engine),
        None => run::parent(&cfg, &flags, &["bench", "--"], &[]),
    };
    result.map_err(|e| Fail::Other(e.to_string()))
}

/// The report prints with `println!`, which panics when stdout is a closed pipe (`rumdb bench | head`):
/// that one panic ends the process quietly instead, as the other commands end on a closed pipe; any
/// other panic still reports as usual.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") {
            std::process::exit(0);
        }
        default(info);
    }));
}
