//! A key-value client of the cluster: writes and linearizable reads go to the leader, found by following
//! `ForwardToLeader` answers and trying the other nodes when one does not answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, RaftMetrics};

use crate::network::{Connection, Reply, Rpc};
use crate::{NodeId, Request};

/// A client over every node's address.
#[derive(Debug)]
pub struct Client {
    conns: Vec<Connection>,
    leader: usize,
    /// How long one request may take before the client tries again.
    pub request_timeout: Duration,
    /// How long an operation may keep retrying before it fails.
    pub deadline: Duration,
}

/// What a failed operation ran into.
pub type ClientError = String;

impl Client {
    /// A client of the nodes at `addrs` (any order; the leader is found on the first call).
    pub fn new<S: Into<String>>(addrs: impl IntoIterator<Item = S>) -> Self {
        Client {
            conns: addrs.into_iter().map(Connection::new).collect(),
            leader: 0,
            request_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(20),
        }
    }

    /// Sends `rpc` to the node at index `i` (in the order given to [`Client::new`]), once.
    ///
    /// # Errors
    /// A connection or I/O error, as text.
    pub async fn call(&mut self, i: usize, rpc: &Rpc) -> Result<Reply, ClientError> {
        let timeout = self.request_timeout;
        let conn = self
            .conns
            .get_mut(i)
            .ok_or_else(|| format!("no node {i}"))?;
        conn.call(rpc, timeout)
            .await
            .map_err(|e| format!("{}: {e}", conn.addr()))
    }

    /// Retries `rpc` on the leader until `accept` takes the reply or the deadline passes. `accept`
    /// returns `Ok(Some(value))` to finish, `Ok(None)` to try again, `Err(leader)` to try again at the
    /// leader named (its address).
    async fn on_leader<T>(
        &mut self,
        rpc: Rpc,
        mut accept: impl FnMut(Reply) -> Result<Option<T>, Option<String>>,
    ) -> Result<T, ClientError> {
        let start = Instant::now();
        let mut last_error = String::from("no attempt");
        while start.elapsed() < self.deadline {
            match self.call(self.leader, &rpc).await {
                Ok(reply) => match accept(reply) {
                    Ok(Some(value)) => return Ok(value),
                    Ok(None) => last_error = "retry".into(),
                    Err(Some(addr)) => {
                        match self.conns.iter().position(|c| c.addr() == addr) {
                            Some(i) if i != self.leader => {
                                self.leader = i;
                                continue;
                            }
                            _ => self.leader = (self.leader + 1) % self.conns.len().max(1),
                        }
                        last_error = format!("forwarded to {addr}");
                    }
                    Err(None) => {
                        self.leader = (self.leader + 1) % self.conns.len().max(1);
                        last_error = "no leader known".into();
                    }
                },
                Err(e) => {
                    self.leader = (self.leader + 1) % self.conns.len().max(1);
                    last_error = e;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("gave up after {:?}: {last_error}", self.deadline))
    }

    /// Proposes `request` through the leader and returns the log index it was applied at once the
    /// leader has applied it (an acknowledged write). A request retried after a lost reply may be
    /// applied twice, which `Set` and `Delete` tolerate.
    ///
    /// # Errors
    /// A refused request, or no leader answering within [`Client::deadline`].
    pub async fn write(&mut self, request: Request) -> Result<u64, ClientError> {
        let mut refused = None;
        let result = self
            .on_leader(Rpc::Write(request), |reply| match reply {
                Reply::Write(Ok(r)) => Ok(Some(r.data.index)),
                Reply::Write(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    Err(f.leader_node.map(|n| n.addr))
                }
                Reply::Error(e) => {
                    refused = Some(e);
                    Ok(Some(0))
                }
                _ => Ok(None),
            })
            .await?;
        match refused {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// Sets `key` to `value`; see [`Client::write`].
    ///
    /// # Errors
    /// As [`Client::write`].
    pub async fn set(&mut self, key: &str, value: &str) -> Result<u64, ClientError> {
        self.write(Request::Set {
            key: key.into(),
            value: value.into(),
        })
        .await
    }

    /// A linearizable read: the leader confirms its leadership with a quorum and waits until it has
    /// applied everything committed before the read.
    ///
    /// # Errors
    /// No leader answering within [`Client::deadline`], or a storage error on the leader.
    pub async fn read(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        let mut failed = None;
        let value = self
            .on_leader(Rpc::Read { key: key.into() }, |reply| match reply {
                Reply::Read(Ok(v)) => Ok(Some(v)),
                Reply::Read(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    Err(f.leader_node.map(|n| n.addr))
                }
                Reply::Error(e) => {
                    failed = Some(e);
                    Ok(Some(None))
                }
                _ => Ok(None),
            })
            .await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }

    /// The values of `keys` as node `i` has applied them (no leadership check).
    ///
    /// # Errors
    /// The node not answering, or a storage error on it.
    pub async fn read_local(
        &mut self,
        i: usize,
        keys: Vec<String>,
    ) -> Result<Vec<Option<String>>, ClientError> {
        match self.call(i, &Rpc::ReadLocal { keys }).await? {
            Reply::ReadLocal(values) => Ok(values),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Node `i`'s Raft metrics.
    ///
    /// # Errors
    /// The node not answering.
    pub async fn metrics(
        &mut self,
        i: usize,
    ) -> Result<RaftMetrics<NodeId, BasicNode>, ClientError> {
        match self.call(i, &Rpc::Metrics).await? {
            Reply::Metrics(m) => Ok(*m),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Initializes the cluster through node `i` with `members` (node id to address) as voters.
    ///
    /// # Errors
    /// The node not answering, or openraft refusing (for one, a cluster already initialized).
    pub async fn init(
        &mut self,
        i: usize,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), ClientError> {
        match self.call(i, &Rpc::Init { members }).await? {
            Reply::Init(r) => r.map_err(|e| e.to_string()),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}
