//! A replicated key-value node: a Raft instance on a [`LogStore`] and a [`StateMachine`], serving the
//! Raft RPCs and the client requests of [`network`](crate::network) on one TCP port.
//!
//! A node's directory holds `log/` (the log store's rumdb database) and `sm/` (the state machine's
//! database and its snapshot file). Restarted on the same directory, a node resumes from its durable
//! vote, log and last-applied id.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, Config, LogId, Raft, SnapshotPolicy};
use rumdb::Engine;
use tokio::net::{TcpListener, TcpStream};

use crate::network::{Network, Reply, Rpc, read_frame, write_frame};
use crate::{AppendMode, EngineChoice, LogStore, NodeId, Request, StateMachine, TypeConfig};

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's id (stable across restarts).
    pub id: NodeId,
    /// The address to listen on, `host:port`, as the other nodes reach it.
    pub addr: String,
    /// The node's directory.
    pub dir: PathBuf,
    /// The engine of both stores.
    pub engine: EngineChoice,
    /// Build a snapshot (and purge the log before it) every this many applied entries.
    pub snapshot_every: u64,
    /// How the log makes an append durable.
    pub append_mode: AppendMode,
}

/// A running node.
pub struct Node {
    /// The Raft instance.
    pub raft: Raft<TypeConfig>,
    /// The state machine (reads).
    pub state_machine: StateMachine,
    /// The log store (statistics).
    pub log_store: LogStore,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// The last-applied log id the state machine held when the node started: openraft applies from the
    /// entry after it, so nothing applied before a restart is applied again.
    pub resumed_at: Option<LogId<NodeId>>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Opens the stores in `config.dir`, starts Raft and listens on `config.addr`.
    ///
    /// # Errors
    /// Storage errors opening the stores, an invalid Raft configuration, a port that cannot be bound.
    pub async fn start(
        config: NodeConfig,
    ) -> Result<Node, Box<dyn std::error::Error + Send + Sync>> {
        let log_store =
            LogStore::open_with(&config.dir.join("log"), config.engine, config.append_mode)?;
        let mut state_machine = StateMachine::open(&config.dir.join("sm"), config.engine)?;
        let (resumed_at, _) = state_machine.applied_state().await?;
        let raft_config = Config {
            cluster_name: "rumdb-raft-kv".into(),
            // Generous for a shared, loaded 2-core machine where an fsync can take tens of ms.
            heartbeat_interval: 150,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.snapshot_every / 2,
            ..Default::default()
        };
        let raft_config = Arc::new(raft_config.validate()?);
        let raft = Raft::new(
            config.id,
            raft_config,
            Network,
            log_store.clone(),
            state_machine.clone(),
        )
        .await?;
        let listener = TcpListener::bind(&config.addr).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(serve(listener, raft.clone(), state_machine.clone()));
        Ok(Node {
            raft,
            state_machine,
            log_store,
            addr,
            resumed_at,
            server,
        })
    }

    /// Stops serving, shuts Raft down, waits (up to 10 s) until no task holds a store any more and
    /// closes both engines, so the directory can be opened again as soon as this returns.
    ///
    /// # Errors
    /// openraft's shutdown error, a store some task still holds after 10 s, or an engine's close error,
    /// as text.
    pub async fn shutdown(self) -> Result<(), String> {
        let Node {
            raft,
            state_machine,
            log_store,
            server,
            ..
        } = self;
        server.abort();
        let _ = server.await;
        raft.shutdown().await.map_err(|e| e.to_string())?;
        let engines = [
            Arc::clone(log_store.engine()),
            Arc::clone(state_machine.engine()),
        ];
        drop((raft, state_machine, log_store));
        // openraft's state-machine worker (and a snapshot build) end on their own tasks after the core
        // stops. Waiting for the count to reach zero would not do: the last drop closes the engine on
        // whichever thread drops it, after the count is already zero, so it is closed here instead.
        let start = std::time::Instant::now();
        while engines.iter().any(|e| Arc::strong_count(e) > 1) {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("a store is still in use 10 s after the shutdown".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for engine in engines {
            engine.close().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Accepts connections until the task is aborted.
/// The connections' tasks live in a `JoinSet`, so aborting this task aborts them (and drops the store
/// handles they hold).
async fn serve(listener: TcpListener, raft: Raft<TypeConfig>, sm: StateMachine) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(stream, raft.clone(), sm.clone()));
    }
}

/// Serves one connection: a request, its reply, the next request.
async fn connection(mut stream: TcpStream, raft: Raft<TypeConfig>, sm: StateMachine) {
    while let Ok(Some(rpc)) = read_frame::<_, Rpc>(&mut stream).await {
        let reply = handle(rpc, &raft, &sm).await;
        if write_frame(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

async fn handle(rpc: Rpc, raft: &Raft<TypeConfig>, sm: &StateMachine) -> Reply {
    match rpc {
        Rpc::AppendEntries(r) => Reply::AppendEntries(raft.append_entries(r).await),
        Rpc::Vote(r) => Reply::Vote(raft.vote(r).await),
        Rpc::InstallSnapshot(r) => Reply::InstallSnapshot(raft.install_snapshot(r).await),
        Rpc::Write(request) => {
            if let Err(e) = check_request(&request, sm.engine().as_ref()) {
                return Reply::Error(e);
            }
            Reply::Write(raft.client_write(request).await)
        }
        Rpc::Read { key } => match raft.ensure_linearizable().await {
            Err(e) => Reply::Read(Err(e)),
            Ok(_) => match sm.get(&key) {
                Ok(value) => Reply::Read(Ok(value)),
                Err(e) => Reply::Error(e.to_string()),
            },
        },
        Rpc::ReadLocal { keys } => {
            let values: Result<Vec<_>, _> = keys.iter().map(|k| sm.get(k)).collect();
            match values {
                Ok(values) => Reply::ReadLocal(values),
                Err(e) => Reply::Error(e.to_string()),
            }
        }
        Rpc::Init { members } => {
            let members: BTreeMap<NodeId, BasicNode> = members
                .into_iter()
                .map(|(id, addr)| (id, BasicNode { addr }))
                .collect();
            Reply::Init(raft.initialize(members).await)
        }
        Rpc::Metrics => Reply::Metrics(Box::new(raft.metrics().borrow().clone())),
    }
}

/// Refuses, before it reaches the log, a command the state machine's engine would refuse to apply: a
/// command that fails in `apply` would stop the state machine on every node.
fn check_request(request: &Request, engine: &dyn Engine) -> Result<(), String> {
    let limits = engine.limits();
    let (key, value) = match request {
        Request::Set { key, value } => (key, value.len()),
        Request::Delete { key } => (key, 0),
    };
    // The state machine stores `d/` + key.
    if key.len() + 2 > limits.max_key_len {
        return Err(format!(
            "key of {} bytes: the limit is {}",
            key.len(),
            limits.max_key_len - 2
        ));
    }
    if value > limits.max_value_len {
        return Err(format!(
            "value of {value} bytes: the limit is {}",
            limits.max_value_len
        ));
    }
    Ok(())
}
