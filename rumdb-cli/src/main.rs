//! `rumdb`: the command-line tool of the rumdb storage library.
//!
//! Every command takes a database directory (`inspect sst` and `inspect wal` a file in one; `bench`
//! none); the engine (LSM or B-tree) is found from the directory itself. Commands that only read
//! (`stats`, `info`, `verify`, `get`, `scan`, `dump`) open the database read-only and never change the
//! directory; `inspect` opens no database, it decodes files through `rumdb::inspect`. Failures print
//! `rumdb: <command> <dir>: <error>` on stderr and exit with 2 for a usage error, 1 for anything else.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bench;
mod codec;
mod db;
mod dump;
mod inspect;
mod kv;
mod report;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use codec::Encoding;
use db::{Db, EngineChoice, Fail};

/// Inspect, verify, query, dump and load rumdb databases (LSM or B-tree; the engine is read from the
/// directory).
#[derive(Parser, Debug)]
#[command(name = "rumdb", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How keys and values are given and printed.
#[derive(Args, Debug, Clone, Copy)]
struct EncodingArgs {
    /// Keys and values are hex, on input and output.
    #[arg(long, conflicts_with = "base64")]
    hex: bool,
    /// Keys and values are standard base64, on input and output.
    #[arg(long)]
    base64: bool,
}

impl EncodingArgs {
    fn encoding(self) -> Encoding {
        if self.hex {
            Encoding::Hex
        } else if self.base64 {
            Encoding::Base64
        } else {
            Encoding::Text
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The engine's statistics after a read-only open: bytes written and read by purpose, fsyncs, memory,
    /// what recovery replayed.
    Stats {
        /// The database directory.
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Engine, format, files with their sizes, WAL segments, estimated entries, what recovery replays,
    /// and the LSM's levels.
    Info {
        /// The database directory.
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Read every stored byte and check every checksum and structural invariant; exit 1 on the first
    /// problem, naming the file and offset.
    Verify {
        /// The database directory.
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the value of a key (exit 1 if it has none).
    Get {
        /// The database directory.
        dir: PathBuf,
        /// The key.
        key: OsString,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print entries in key order, one per line: key, a tab, the value.
    Scan {
        /// The database directory.
        dir: PathBuf,
        /// Only keys that start with this.
        #[arg(long)]
        prefix: Option<OsString>,
        /// Only keys at or after this.
        #[arg(long)]
        from: Option<OsString>,
        /// Only keys before this (exclusive).
        #[arg(long)]
        to: Option<OsString>,
        /// Largest key first.
        #[arg(long)]
        reverse: bool,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        /// Print keys only (values are not read where the engine can skip them).
        #[arg(long)]
        keys_only: bool,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Set a key to a value (made durable before the command returns).
    Put {
        /// The database directory.
        dir: PathBuf,
        /// The key.
        key: OsString,
        /// The value.
        value: OsString,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Create the database with this engine if the directory holds none (without it, a missing
        /// database is an error).
        #[arg(long, value_enum)]
        engine: Option<EngineChoice>,
    },
    /// Remove a key (removing a missing key is not an error).
    Delete {
        /// The database directory.
        dir: PathBuf,
        /// The key.
        key: OsString,
        #[command(flatten)]
        encoding: EncodingArgs,
    },
    /// Write every entry to stdout in the dump format (see `rumdb load --help`).
    Dump {
        /// The database directory.
        dir: PathBuf,
    },
    /// Read a dump from stdin into a database, creating it if missing.
    ///
    /// The dump format is line-oriented and engine-neutral: the first line is `rumdb-dump 1`; then one
    /// line per entry, in strictly ascending key order, holding the key in base64, a tab and the value in
    /// base64 (standard alphabet, padded); the last line is `end N` with N the number of entries. A dump
    /// without its `end` line, or whose count differs, is refused as truncated (the entries before the
    /// cut are already written).
    Load {
        /// The database directory.
        dir: PathBuf,
        /// The engine of a new database (default lsm); with an existing one it must match.
        #[arg(long, value_enum)]
        engine: Option<EngineChoice>,
        /// Load into a database that already holds entries (they are kept, or overwritten by the dump's).
        #[arg(long)]
        into_existing: bool,
    },
    /// LSM: compact everything into the last level. B-tree: nothing to do.
    Compact {
        /// The database directory.
        dir: PathBuf,
    },
    /// LSM: write the memtable to a table. B-tree: checkpoint.
    Flush {
        /// The database directory.
        dir: PathBuf,
    },
    /// Copy the database (opened read-only, so it changes nothing in it) into DEST, a missing or empty
    /// directory: a database of its own, complete or refused by every open if the copy is cut short.
    Backup {
        /// The database directory.
        dir: PathBuf,
        /// Where the copy goes (created).
        dest: PathBuf,
    },
    /// The amplification report's workloads on fresh databases in the temp directory (or `-- --dir
    /// PATH`): throughput, latency, write/read/space amplification, memory, and the textbook B-tree vs
    /// LSM-tree table with measured values. Build with `--release`: debug figures mean nothing.
    Bench {
        /// The engines to run.
        #[arg(long, value_enum)]
        engine: Option<bench::Engines>,
        /// Comma-separated workloads: fillseq, fillrandom, overwrite, readrandom, readmissing, scan,
        /// ycsb-a, ycsb-b, sync1, sync8, deleterandom, timeseries (default all).
        #[arg(long)]
        workload: Option<String>,
        /// Keys loaded (default 200000).
        #[arg(long)]
        keys: Option<u64>,
        /// The report's other flags, after `--` (`rumdb bench -- --help` lists them).
        #[arg(last = true)]
        report_flags: Vec<String>,
    },
    /// Decode one raw file without opening the database (nothing is locked or written); exit 1 on
    /// damage, naming the file and offset.
    Inspect {
        #[command(subcommand)]
        what: Inspect,
    },
}

#[derive(Subcommand, Debug)]
enum Inspect {
    /// An LSM table: footer, properties, filter, index and data blocks, then every entry (key,
    /// sequence, kind, value length).
    Sst {
        /// The table file (`NNNNNN.sst`).
        file: PathBuf,
        /// Leave out the entries.
        #[arg(long)]
        no_entries: bool,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// A WAL segment: its records (sequence numbers and batch contents), and where replay stops and
    /// why. Exit 1 if it stops before the end of the file (a torn tail or damage).
    Wal {
        /// The segment file (`NNNNNN.log`).
        file: PathBuf,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// A B-tree page decoded: header fields, cells, checksum (pages 0 and 1 are the header slots).
    Page {
        /// The database directory.
        dir: PathBuf,
        /// The page number.
        number: u32,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The LSM manifest: every version edit (tables added and removed per level with key ranges and
    /// sizes, log numbers, counters) and the live tables.
    Manifest {
        /// The database directory.
        dir: PathBuf,
        #[command(flatten)]
        encoding: EncodingArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// The command's name and the directory or file it works on, for error messages.
    fn name_and_target(&self) -> (&'static str, Option<&PathBuf>) {
        match self {
            Command::Stats { dir, .. } => ("stats", Some(dir)),
            Command::Info { dir, .. } => ("info", Some(dir)),
            Command::Verify { dir, .. } => ("verify", Some(dir)),
            Command::Get { dir, .. } => ("get", Some(dir)),
            Command::Scan { dir, .. } => ("scan", Some(dir)),
            Command::Put { dir, .. } => ("put", Some(dir)),
            Command::Delete { dir, .. } => ("delete", Some(dir)),
            Command::Dump { dir } => ("dump", Some(dir)),
            Command::Load { dir, .. } => ("load", Some(dir)),
            Command::Compact { dir } => ("compact", Some(dir)),
            Command::Flush { dir } => ("flush", Some(dir)),
            Command::Backup { dir, .. } => ("backup", Some(dir)),
            Command::Bench { .. } => ("bench", None),
            Command::Inspect { what } => match what {
                Inspect::Sst { file, .. } => ("inspect sst", Some(file)),
                Inspect::Wal { file, .. } => ("inspect wal", Some(file)),
                Inspect::Page { dir, .. } => ("inspect page", Some(dir)),
                Inspect::Manifest { dir, .. } => ("inspect manifest", Some(dir)),
            },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, target) = cli.command.name_and_target();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            let target = target.map_or_else(String::new, |t| format!(" {}", t.display()));
            // Not eprintln!, which panics if stderr is closed.
            let _ = writeln!(std::io::stderr(), "rumdb: {name}{target}: {fail}");
            ExitCode::from(u8::try_from(fail.exit_code()).unwrap_or(1))
        }
    }
}

fn decode(encoding: Encoding, what: &str, arg: &OsString) -> Result<Vec<u8>, Fail> {
    encoding
        .decode(arg)
        .map_err(|e| Fail::Usage(format!("bad {what}: {e}")))
}

fn run(command: &Command) -> Result<(), Fail> {
    match command {
        Command::Stats { dir, json } => report::stats(dir, *json),
        Command::Info { dir, json } => report::info(dir, *json),
        Command::Verify { dir, json } => report::verify(dir, *json),
        Command::Get {
            dir,
            key,
            encoding,
            json,
        } => {
            let enc = encoding.encoding();
            kv::get(dir, &decode(enc, "key", key)?, enc, *json)
        }
        Command::Scan {
            dir,
            prefix,
            from,
            to,
            reverse,
            limit,
            keys_only,
            encoding,
            json,
        } => {
            let enc = encoding.encoding();
            let opt = |what: &str, arg: &Option<OsString>| {
                arg.as_ref().map(|a| decode(enc, what, a)).transpose()
            };
            let scan = kv::ScanArgs {
                prefix: opt("prefix", prefix)?,
                from: opt("--from key", from)?,
                to: opt("--to key", to)?,
                reverse: *reverse,
                limit: *limit,
                keys_only: *keys_only,
                encoding: enc,
                json: *json,
            };
            kv::scan(dir, &scan)
        }
        Command::Put {
            dir,
            key,
            value,
            encoding,
            engine,
        } => {
            let enc = encoding.encoding();
            let (key, value) = (decode(enc, "key", key)?, decode(enc, "value", value)?);
            kv::put(dir, &key, &value, *engine)
        }
        Command::Delete { dir, key, encoding } => {
            let enc = encoding.encoding();
            kv::delete(dir, &decode(enc, "key", key)?)
        }
        Command::Dump { dir } => dump::dump(dir),
        Command::Load {
            dir,
            engine,
            into_existing,
        } => dump::load(dir, *engine, *into_existing),
        Command::Compact { dir } => maintain(dir, "compact"),
        Command::Flush { dir } => maintain(dir, "flush"),
        Command::Backup { dir, dest } => {
            let db = Db::open_read_only(dir)?;
            let info = db.engine().backup(dest)?;
            db::print(&format!(
                "backup: {} holds sequence {}; {} files copied ({} bytes), {} linked ({} bytes)",
                dest.display(),
                info.sequence,
                info.files_copied,
                info.bytes_copied,
                info.files_linked,
                info.bytes_linked
            ))
        }
        Command::Bench {
            engine,
            workload,
            keys,
            report_flags,
        } => bench::bench(&bench::BenchArgs {
            engine: *engine,
            workload: workload.clone(),
            keys: *keys,
            report_flags: report_flags.clone(),
        }),
        Command::Inspect { what } => match what {
            Inspect::Sst {
                file,
                no_entries,
                encoding,
                json,
            } => inspect::sst(file, encoding.encoding(), !no_entries, *json),
            Inspect::Wal {
                file,
                encoding,
                json,
            } => inspect::wal(file, encoding.encoding(), *json),
            Inspect::Page {
                dir,
                number,
                encoding,
                json,
            } => inspect::page(dir, *number, encoding.encoding(), *json),
            Inspect::Manifest {
                dir,
                encoding,
                json,
            } => inspect::manifest(dir, encoding.encoding(), *json),
        },
    }
}

/// `compact` and `flush`: open for writing, run the call with a spinner, close.
fn maintain(dir: &std::path::Path, what: &str) -> Result<(), Fail> {
    let db = Db::open_existing(dir)?;
    let spinner = report::spinner(format!("{what} {}", dir.display()));
    let result = match what {
        "compact" => db.engine().compact(),
        _ => db.engine().flush(),
    };
    spinner.finish_and_clear();
    result?;
    let note = match (&db, what) {
        (Db::BTree(_), "compact") => {
            " (the B-tree reuses freed pages in place: nothing to compact)"
        }
        _ => "",
    };
    db.close()?;
    db::print(&format!("{what}: done{note}"))
}
