//! A 3-node cluster of `rumdb-raft-kv` processes on 127.0.0.1 (node 2 on the B-tree, the others on the
//! LSM): writers load it through the leader, the leader is killed with SIGKILL mid-load and restarted
//! from its directory, and afterwards every acknowledged write must be present on all three nodes and
//! read back through the leader.
//!
//! `RUMDB_RAFT_KEYS` sets the number of keys (default 1,200); the whole test is bounded by a timeout
//! and the child processes are killed when the test ends, however it ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rumdb_raft::client::Client;

const WRITERS: usize = 4;

/// A node process, killed (SIGKILL) and reaped when dropped.
struct NodeProcess {
    id: u64,
    addr: String,
    dir: PathBuf,
    engine: &'static str,
    child: Option<Child>,
    /// The first line the node printed: its address and the applied index it resumed at.
    banner: Option<std::sync::mpsc::Receiver<String>>,
}

impl NodeProcess {
    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.with_extension(format!("{}.log", self.id)))
            .expect("node log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rumdb-raft-kv"))
            .args(["serve", "--id", &self.id.to_string(), "--addr", &self.addr])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--engine", self.engine, "--snapshot-every", "200"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn rumdb-raft-kv");
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ =
                    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
                let _ = tx.send(line);
            });
        }
        self.banner = Some(rx);
        self.child = Some(child);
    }

    /// The applied index the node reported resuming at, read from its state machine before it took
    /// part in the cluster.
    fn resumed_at(&mut self) -> u64 {
        let line = self
            .banner
            .take()
            .expect("started")
            .recv_timeout(Duration::from_secs(30));
        let line = line.expect("the node's first line");
        let index = line.trim().rsplit(' ').next().and_then(|n| n.parse().ok());
        index.unwrap_or_else(|| panic!("unexpected first line from node {}: {line:?}", self.id))
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leader_index(addrs: &[String]) -> Option<usize> {
    let mut client = Client::new(addrs.to_vec());
    client.request_timeout = Duration::from_millis(500);
    for i in 0..addrs.len() {
        if let Ok(m) = client.metrics(i).await
            && let Some(leader) = m.current_leader
            && leader == m.id
        {
            return Some(i);
        }
    }
    None
}

/// What the writers learned: the value of every key whose last write was acknowledged.
#[derive(Default)]
struct Outcome {
    acked: BTreeMap<String, String>,
    failed: usize,
    read_checks: usize,
}

/// Writes keys `w{writer}-{i}`; every fifth key twice (so a read must see the second value); after every
/// tenth acknowledged write, a linearizable read of it through the leader must return it.
async fn writer(t: usize, keys: usize, addrs: Vec<String>, acked: Arc<AtomicUsize>) -> Outcome {
    let mut client = Client::new(addrs);
    client.deadline = Duration::from_secs(30);
    let mut out = Outcome::default();
    for i in 0..keys {
        let key = format!("w{t}-{i:05}");
        let mut values = vec![format!("v{t}-{i}")];
        if i % 5 == 0 {
            values.push(format!("v{t}-{i}-second"));
        }
        let mut last_acked = None;
        for value in &values {
            match client.set(&key, value).await {
                Ok(_) => {
                    last_acked = Some(value.clone());
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    last_acked = None;
                    out.failed += 1;
                    break;
                }
            }
        }
        let Some(value) = last_acked else { continue };
        if i % 10 == 0 {
            let read = client.read(&key).await;
            assert_eq!(
                read.as_ref().ok().and_then(|v| v.as_deref()),
                Some(value.as_str()),
                "{key}: {read:?}"
            );
            out.read_checks += 1;
        }
        out.acked.insert(key, value);
    }
    out
}

async fn run(root: &Path, keys: usize) {
    let engines = ["lsm", "btree", "lsm"];
    let mut nodes: Vec<NodeProcess> = (0..3)
        .map(|i| NodeProcess {
            id: i as u64 + 1,
            addr: format!("127.0.0.1:{}", free_port()),
            dir: root.join(format!("node{}", i + 1)),
            engine: engines[i],
            child: None,
            banner: None,
        })
        .collect();
    for node in &mut nodes {
        node.start();
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let mut client = Client::new(addrs.clone());
    for addr in &addrs {
        wait_for("a node to answer", Duration::from_secs(20), || {
            let mut c = Client::new([addr.clone()]);
            async move { c.metrics(0).await.ok() }
        })
        .await;
    }
    let members = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
    client
        .init(0, members)
        .await
        .expect("initialize the cluster");
    wait_for("a leader", Duration::from_secs(20), || leader_index(&addrs)).await;

    // The load, and the kill of the leader once a third of it is acknowledged.
    let started = Instant::now();
    let acked = Arc::new(AtomicUsize::new(0));
    let per_writer = keys / WRITERS;
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| tokio::spawn(writer(t, per_writer, addrs.clone(), acked.clone())))
        .collect();
    let total_writes = WRITERS * (per_writer + per_writer.div_ceil(5));
    wait_for("a third of the load", Duration::from_secs(120), || {
        let n = acked.load(Ordering::Relaxed);
        async move { (n >= total_writes / 3).then_some(()) }
    })
    .await;
    let victim = wait_for("a leader to kill", Duration::from_secs(20), || {
        leader_index(&addrs)
    })
    .await;
    nodes[victim].kill();
    let at_kill = acked.load(Ordering::Relaxed);
    // Down while the other two elect a leader and take a few hundred more writes (past a snapshot).
    wait_for(
        "writes without the killed node",
        Duration::from_secs(60),
        || {
            let n = acked.load(Ordering::Relaxed);
            async move { (n >= at_kill + 300 || n >= total_writes * 9 / 10).then_some(()) }
        },
    )
    .await;
    nodes[victim].start();
    let restarted = Instant::now();
    let resumed = wait_for("the restarted node", Duration::from_secs(30), || {
        let mut c = Client::new([addrs[victim].clone()]);
        async move { c.metrics(0).await.ok() }
    })
    .await;
    let restart_time = restarted.elapsed();
    let resumed_at = nodes[victim].resumed_at();
    assert!(
        resumed_at > 0,
        "the restarted node did not resume from its directory"
    );

    let mut outcome = Outcome::default();
    for w in writers {
        let o = w.await.expect("writer task");
        outcome.acked.extend(o.acked);
        outcome.failed += o.failed;
        outcome.read_checks += o.read_checks;
    }
    let load_time = started.elapsed();
    assert!(
        outcome.failed <= keys / 20,
        "{} writes failed: the cluster did not recover",
        outcome.failed
    );

    // Every node catches up with the leader.
    let target = wait_for("a leader after the load", Duration::from_secs(20), || {
        leader_index(&addrs)
    })
    .await;
    let leader_applied = client
        .metrics(target)
        .await
        .expect("leader metrics")
        .last_applied;
    for addr in &addrs {
        wait_for(
            "every node to apply what the leader applied",
            Duration::from_secs(60),
            || {
                let mut c = Client::new([addr.clone()]);
                async move {
                    c.metrics(0)
                        .await
                        .ok()
                        .filter(|m| m.last_applied >= leader_applied)
                }
            },
        )
        .await;
    }

    // Every acknowledged write on all three nodes.
    let keys: Vec<String> = outcome.acked.keys().cloned().collect();
    for i in 0..3 {
        for chunk in keys.chunks(500) {
            let values = client
                .read_local(i, chunk.to_vec())
                .await
                .expect("read_local");
            for (key, value) in chunk.iter().zip(values) {
                assert_eq!(
                    value.as_ref(),
                    outcome.acked.get(key),
                    "node {} key {key}",
                    i + 1
                );
            }
        }
    }
    // And through the leader, linearizably, for every seventh key.
    for key in keys.iter().step_by(7) {
        let value = client.read(key).await.expect("linearizable read");
        assert_eq!(
            value.as_ref(),
            outcome.acked.get(key),
            "leader read of {key}"
        );
        outcome.read_checks += 1;
    }
    let victim_metrics = client
        .metrics(victim)
        .await
        .expect("metrics of the restarted node");
    eprintln!(
        "restarted node after the load: applied {:?}, last snapshot {:?}, purged {:?}",
        victim_metrics.last_applied.map(|l| l.index),
        victim_metrics.snapshot.map(|l| l.index),
        victim_metrics.purged.map(|l| l.index)
    );
    eprintln!(
        "cluster: {} keys acknowledged ({} writes failed), node {} killed after {at_kill} acks, \
         restarted (answering) in {restart_time:?}, resumed at applied index {resumed_at} (now {:?}), load {load_time:?}, {} linearizable reads checked",
        outcome.acked.len(),
        outcome.failed,
        victim + 1,
        resumed.last_applied.map(|l| l.index),
        outcome.read_checks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_restarts_from_its_directory_and_no_acknowledged_write_is_lost() {
    let keys = std::env::var("RUMDB_RAFT_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1200);
    let root = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(240), run(root.path(), keys))
        .await
        .expect("the cluster test took longer than 240 s");
    eprintln!("cluster test took {:?}", started.elapsed());
}
