//! openraft's network over plain tokio TCP: length-prefixed JSON frames, one request and one reply at a
//! time on a connection. The same port serves the Raft RPCs and the key-value client.
//!
//! A frame is a 4-byte big-endian length and that many bytes of JSON (at most [`MAX_FRAME`]).

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, InitializeError, InstallSnapshotError, NetworkError,
    RPCError, RaftError, RemoteError,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, InstallSnapshotRequest,
    InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftMetrics};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{NodeId, Request, TypeConfig};

/// The largest frame accepted: larger than any snapshot chunk or append batch openraft sends with the
/// node's configuration, small enough that a bad length cannot exhaust memory.
pub const MAX_FRAME: usize = 64 << 20;

/// A request on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    /// Raft: append entries (and heartbeats).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: a chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Client: propose a command (the leader only).
    Write(Request),
    /// Client: a linearizable read through the leader.
    Read {
        /// The key.
        key: String,
    },
    /// Client: the values as this node has applied them (no leadership check: for verification).
    ReadLocal {
        /// The keys.
        keys: Vec<String>,
    },
    /// Admin: initialize the cluster with these voters (node id to address).
    Init {
        /// The voters.
        members: BTreeMap<NodeId, String>,
    },
    /// Admin: the node's Raft metrics.
    Metrics,
}

/// A reply on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// To [`Rpc::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Rpc::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Rpc::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// To [`Rpc::Write`].
    Write(
        Result<
            ClientWriteResponse<TypeConfig>,
            RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
        >,
    ),
    /// To [`Rpc::Read`].
    Read(Result<Option<String>, RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>>),
    /// To [`Rpc::ReadLocal`], in the order of the keys.
    ReadLocal(Vec<Option<String>>),
    /// To [`Rpc::Init`].
    Init(Result<(), RaftError<NodeId, InitializeError<NodeId, BasicNode>>>),
    /// To [`Rpc::Metrics`].
    Metrics(Box<RaftMetrics<NodeId, BasicNode>>),
    /// A request the node refused or a storage error, as text.
    Error(String),
}

/// Writes one frame.
///
/// # Errors
/// I/O errors; a message larger than [`MAX_FRAME`] is `InvalidInput`.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame larger than MAX_FRAME",
        ));
    }
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
///
/// # Errors
/// I/O errors, a length over [`MAX_FRAME`] or JSON that does not decode (`InvalidData`).
pub async fn read_frame<R, T>(r: &mut R) -> io::Result<Option<T>>
where
    R: tokio::io::AsyncRead + Unpin,
    T: serde::de::DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// One connection to one address, reconnecting after any failure.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: Option<TcpStream>,
}

impl Connection {
    /// A connection to `addr`, opened at the first call.
    pub fn new(addr: impl Into<String>) -> Self {
        Connection {
            addr: addr.into(),
            stream: None,
        }
    }

    /// The address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `rpc` and waits for its reply, all within `timeout`. Any failure drops the connection, so
    /// the next call starts on a fresh one (a late reply is never taken for the next request's). A
    /// connection kept from an earlier call may have been closed by a peer that restarted since: a
    /// failure on one is retried once on a fresh connection, so a request can reach the node twice.
    ///
    /// # Errors
    /// Connection, I/O and frame errors; `TimedOut`.
    pub async fn call(&mut self, rpc: &Rpc, timeout: Duration) -> io::Result<Reply> {
        let reused = self.stream.is_some();
        match self.call_once(rpc, timeout).await {
            Err(e) if reused && e.kind() != io::ErrorKind::TimedOut => {
                self.call_once(rpc, timeout).await
            }
            result => result,
        }
    }

    async fn call_once(&mut self, rpc: &Rpc, timeout: Duration) -> io::Result<Reply> {
        let result = tokio::time::timeout(timeout, async {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                self.stream = Some(stream);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(io::Error::from(io::ErrorKind::NotConnected));
            };
            write_frame(stream, rpc).await?;
            read_frame(stream)
                .await?
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut)));
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

/// The `RaftNetworkFactory`: one [`Peer`] per target node.
#[derive(Clone, Debug, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            conn: Connection::new(node.addr.clone()),
        }
    }
}

/// The `RaftNetwork` to one peer.
#[derive(Debug)]
pub struct Peer {
    target: NodeId,
    conn: Connection,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl Peer {
    async fn call(&mut self, rpc: Rpc, option: &RPCOption) -> Result<Reply, NetworkError> {
        self.conn
            .call(&rpc, option.hard_ttl())
            .await
            .map_err(|e| NetworkError::new(&e))
    }

    fn unexpected<T, E: std::error::Error>(reply: Reply) -> RpcResult<T, E> {
        let e = io::Error::other(format!("unexpected reply {reply:?}"));
        Err(RPCError::Network(NetworkError::new(&e)))
    }

    fn remote<T, E: std::error::Error>(
        &self,
        r: Result<T, RaftError<NodeId, E>>,
    ) -> RpcResult<T, E> {
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(Rpc::AppendEntries(rpc), &option).await? {
            Reply::AppendEntries(r) => self.remote(r),
            other => Self::unexpected(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(Rpc::InstallSnapshot(rpc), &option).await? {
            Reply::InstallSnapshot(r) => self.remote(r),
            other => Self::unexpected(other),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Rpc::Vote(rpc), &option).await? {
            Reply::Vote(r) => self.remote(r),
            other => Self::unexpected(other),
        }
    }
}
