//! `rumdb-raft-kv`: a node of the replicated key-value cluster, and its client commands.
//!
//! ```text
//! rumdb-raft-kv serve --id N --addr HOST:PORT --dir DIR [--engine lsm|btree] [--snapshot-every N]
//! rumdb-raft-kv init --nodes 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT
//! rumdb-raft-kv put --nodes HOST:PORT,... KEY VALUE
//! rumdb-raft-kv get --nodes HOST:PORT,... KEY
//! rumdb-raft-kv metrics --nodes HOST:PORT
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use rumdb_raft::client::Client;
use rumdb_raft::node::{Node, NodeConfig};
use rumdb_raft::{AppendMode, EngineChoice};

const USAGE: &str = "usage:
  rumdb-raft-kv serve --id N --addr HOST:PORT --dir DIR [--engine lsm|btree] [--snapshot-every N]
  rumdb-raft-kv init --nodes 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT
  rumdb-raft-kv put --nodes HOST:PORT,... KEY VALUE
  rumdb-raft-kv get --nodes HOST:PORT,... KEY
  rumdb-raft-kv metrics --nodes HOST:PORT";

/// `--name value` options and the positional arguments.
struct Args {
    options: BTreeMap<String, String>,
    positional: Vec<String>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut options = BTreeMap::new();
    let mut positional = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if let Some(name) = arg.strip_prefix("--") {
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            options.insert(name.to_string(), value);
        } else {
            positional.push(arg);
        }
    }
    Ok(Args {
        options,
        positional,
    })
}

impl Args {
    fn required(&self, name: &str) -> Result<&str, String> {
        self.options
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.options.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: not a number: {v}")),
        }
    }

    fn nodes(&self) -> Result<Vec<String>, String> {
        Ok(self
            .required("nodes")?
            .split(',')
            .map(String::from)
            .collect())
    }
}

async fn run(command: &str, args: Args) -> Result<(), String> {
    match command {
        "serve" => {
            let engine = match args.options.get("engine") {
                None => EngineChoice::Lsm,
                Some(e) => {
                    EngineChoice::parse(e).ok_or_else(|| format!("--engine: {e}: lsm or btree"))?
                }
            };
            let config = NodeConfig {
                id: args.number("id", 0)?,
                addr: args.required("addr")?.to_string(),
                dir: PathBuf::from(args.required("dir")?),
                engine,
                snapshot_every: args.number("snapshot-every", 5000)?.max(2),
                append_mode: AppendMode::default(),
            };
            let config_id = config.id;
            let node = Node::start(config).await.map_err(|e| e.to_string())?;
            let resumed = node.resumed_at.map_or(0, |id| id.index);
            // One line, which the cluster test reads: nothing else goes to stdout.
            println!(
                "node {config_id} listening on {}, resumed at applied index {resumed}",
                node.addr
            );
            // Runs until killed: every acknowledged write is already durable, so there is nothing to
            // flush on the way out.
            std::future::pending::<()>().await;
            Ok(())
        }
        "init" => {
            let mut members = BTreeMap::new();
            for member in args.required("nodes")?.split(',') {
                let (id, addr) = member
                    .split_once('=')
                    .ok_or_else(|| format!("{member}: not ID=ADDR"))?;
                let id = id.parse().map_err(|_| format!("{id}: not a node id"))?;
                members.insert(id, addr.to_string());
            }
            let first = members.values().next().cloned().ok_or("--nodes is empty")?;
            Client::new([first]).init(0, members).await
        }
        "put" => {
            let [key, value] = args.positional.as_slice() else {
                return Err(USAGE.into());
            };
            let index = Client::new(args.nodes()?).set(key, value).await?;
            println!("applied at log index {index}");
            Ok(())
        }
        "get" => {
            let [key] = args.positional.as_slice() else {
                return Err(USAGE.into());
            };
            match Client::new(args.nodes()?).read(key).await? {
                Some(value) => println!("{value}"),
                None => return Err(format!("key not found: {key}")),
            }
            Ok(())
        }
        "metrics" => {
            let m = Client::new(args.nodes()?).metrics(0).await?;
            println!("{m}");
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let result = parse(argv).and_then(|args| {
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        runtime.block_on(run(&command, args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rumdb-raft-kv {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
