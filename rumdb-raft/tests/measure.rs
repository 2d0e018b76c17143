//! Measurements, not checks of behaviour (ignored by default; the crate's README gives the figures):
//!
//! ```sh
//! cargo test --release -p rumdb-raft --test measure -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Both run a single-node cluster in this process, so the figures are the storage's (a `Sync` append per
//! batch of entries openraft hands the log, the state machine's apply) without the network.
//! `RUMDB_RAFT_ENGINE=lsm|btree` picks the engine (default: both in turn).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openraft::BasicNode;
use rumdb_raft::node::{Node, NodeConfig};
use rumdb_raft::{AppendMode, EngineChoice, Request};

fn engines() -> Vec<EngineChoice> {
    match std::env::var("RUMDB_RAFT_ENGINE")
        .ok()
        .and_then(|e| EngineChoice::parse(&e))
    {
        Some(e) => vec![e],
        None => vec![EngineChoice::Lsm, EngineChoice::BTree],
    }
}

async fn start(dir: &std::path::Path, engine: EngineChoice, append_mode: AppendMode) -> Node {
    let config = NodeConfig {
        id: 1,
        addr: "127.0.0.1:0".into(),
        dir: dir.to_path_buf(),
        engine,
        snapshot_every: 5000,
        append_mode,
    };
    Node::start(config).await.expect("start the node")
}

async fn init_single(node: &Node) {
    let members = BTreeMap::from([(
        1,
        BasicNode {
            addr: node.addr.to_string(),
        },
    )]);
    node.raft.initialize(members).await.expect("initialize");
    node.raft
        .wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "leader")
        .await
        .expect("become leader");
}

/// `proposers` tasks each write `per_proposer` entries with `client_write` (acknowledged once durable
/// in the log and applied); returns every write's latency.
async fn load(node: &Node, proposers: usize, per_proposer: usize, tag: &str) -> Vec<Duration> {
    let tasks: Vec<_> = (0..proposers)
        .map(|p| {
            let raft = node.raft.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_proposer);
                for i in 0..per_proposer {
                    let request = Request::Set {
                        key: format!("{tag}-{p}-{i:07}"),
                        value: "x".repeat(100),
                    };
                    let start = Instant::now();
                    raft.client_write(request).await.expect("client_write");
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("proposer"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn append_throughput_and_p99_with_1_and_8_proposers() {
    for (engine, mode) in engines()
        .into_iter()
        .flat_map(|e| [(e, AppendMode::GroupSync), (e, AppendMode::InlineSync)])
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(dir.path(), engine, mode).await;
        init_single(&node).await;
        for (proposers, per) in [(1, 2000), (8, 1000)] {
            let before = node.log_store.engine().stats();
            let start = Instant::now();
            let mut latencies = load(&node, proposers, per, &format!("p{proposers}")).await;
            let elapsed = start.elapsed();
            let after = node.log_store.engine().stats();
            latencies.sort();
            let n = latencies.len();
            let p = |q: f64| {
                latencies
                    .get(((n as f64 * q) as usize).min(n - 1))
                    .copied()
                    .unwrap_or_default()
            };
            let fsyncs = after.io.fsyncs - before.io.fsyncs;
            let batches = after.batches - before.batches;
            eprintln!(
                "{engine:?} {mode:?} {proposers} proposer(s): {n} entries in {elapsed:.2?} = {:.0} entries/s, p50 {:?}, \
                 p99 {:?}; log: {batches} batches, {fsyncs} fsyncs ({:.2} entries per fsync)",
                n as f64 / elapsed.as_secs_f64(),
                p(0.50),
                p(0.99),
                n as f64 / fsyncs.max(1) as f64,
            );
            assert_eq!(n, proposers * per);
        }
        node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn restart_time_with_100k_applied_entries() {
    let entries: u64 = std::env::var("RUMDB_RAFT_RESTART_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for engine in engines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(dir.path(), engine, AppendMode::default()).await;
        init_single(&node).await;
        let proposers = 32;
        let fill = Instant::now();
        load(
            &node,
            proposers,
            (entries as usize).div_ceil(proposers),
            "fill",
        )
        .await;
        let fill = fill.elapsed();
        let applied = node
            .raft
            .metrics()
            .borrow()
            .last_applied
            .expect("applied")
            .index;
        assert!(applied >= entries);
        node.shutdown().await.expect("shutdown");

        let restart = Instant::now();
        let node = start(dir.path(), engine, AppendMode::default()).await;
        let open = restart.elapsed();
        let metrics = node
            .raft
            .wait(Some(Duration::from_secs(60)))
            .applied_index_at_least(Some(applied), "applied")
            .await
            .expect("re-applied");
        let ready = restart.elapsed();
        let (log, sm) = (
            node.log_store.engine().stats(),
            node.state_machine.engine().stats(),
        );
        eprintln!(
            "{engine:?}: recovery replayed {} WAL records of the log and {} of the state machine, read \
             {} + {} bytes",
            log.recovery.records_replayed,
            sm.recovery.records_replayed,
            log.io.read.recovery,
            sm.io.read.recovery,
        );
        eprintln!(
            "{engine:?}: filled {applied} entries in {fill:.2?}; restart: stores open and Raft started in \
             {open:.2?}, applied {} (resumed at {:?}) and serving in {ready:.2?}",
            metrics.last_applied.map_or(0, |l| l.index),
            node.resumed_at.map(|l| l.index),
        );
        assert!(
            node.resumed_at.is_some_and(|l| l.index >= applied),
            "resumed at {:?}",
            node.resumed_at
        );
        node.shutdown().await.expect("shutdown");
    }
}
