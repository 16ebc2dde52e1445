//! Connections to instances, kept open between requests: per instance address at most
//! [`MAX_IDLE`] idle HTTP/1.1 connections, each closed after [`IDLE_FOR`] unused. A connection
//! goes back to the pool only when its response ended cleanly (see [`super::body`]); one an
//! instance closed meanwhile is noticed when taken ([`Pool::take`] skips closed ones) or when a
//! request sent on it comes back unsent, which the proxy retries on a fresh connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::http::Body;

/// Idle connections kept per instance.
pub const MAX_IDLE: usize = 64;
/// How long an idle connection is kept.
pub const IDLE_FOR: Duration = Duration::from_secs(30);
/// Instance addresses with idle connections (a bound on the map; the instance lists are
/// bounded far below it in practice).
pub const MAX_ADDRS: usize = 16 * 1024;
/// How long a connection to an instance may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest response head taken from an instance.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// A connection to an instance, ready for one request.
pub type Sender = SendRequest<Body>;

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed.
    #[error("connecting to {addr}: {source}")]
    Tcp {
        /// The instance.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The TCP connection took too long.
    #[error("connecting to {0}: no answer within {CONNECT_TIMEOUT:?}")]
    Timeout(SocketAddr),
    /// The HTTP handshake failed.
    #[error("connecting to {addr}: {source}")]
    Http {
        /// The instance.
        addr: SocketAddr,
        /// Why.
        source: hyper::Error,
    },
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The idle connections of every instance.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addrs", &self.lock().len())
            .finish()
    }
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        Pool::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection to `addr` that is still open, the most recently used first.
    pub fn take(&self, addr: SocketAddr) -> Option<Sender> {
        let mut idle = self.lock();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        let mut found = None;
        while let Some(conn) = list.pop() {
            if !conn.sender.is_closed() && now.duration_since(conn.since) < IDLE_FOR {
                found = Some(conn.sender);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(&addr);
        }
        found
    }

    /// Gives back a connection whose response ended; dropped (closed) when the instance has
    /// its share of idle connections or the map is full.
    pub fn give_back(&self, addr: SocketAddr, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if !idle.contains_key(&addr) && idle.len() >= MAX_ADDRS {
            return;
        }
        let list = idle.entry(addr).or_default();
        if list.len() < MAX_IDLE {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Closes connections idle for longer than [`IDLE_FOR`] or closed by their instance; run
    /// every few seconds.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.lock().retain(|_, list| {
            list.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < IDLE_FOR);
            !list.is_empty()
        });
    }

    /// Idle connections kept now (for tests and stats).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

/// A new connection to `addr`, its HTTP/1.1 side run by a task of its own (with upgrades, so a
/// WebSocket handshake can take the connection over).
pub async fn connect(addr: SocketAddr) -> Result<Sender, ConnectError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(ConnectError::Tcp { addr, source }),
        Err(_) => return Err(ConnectError::Timeout(addr)),
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::Builder::new()
        .max_buf_size(MAX_RESPONSE_HEAD.max(8192))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ConnectError::Http { addr, source })?;
    tokio::spawn(async move {
        // Errors show in the request that was on the connection.
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}
