//! Relaying a query to the board's upstream resolvers.
//!
//! Each attempt uses a fresh UDP socket on an ephemeral port, connected to the upstream so the
//! kernel drops datagrams from anyone else; a reply is accepted only if it is a response with
//! the query's id. The query keeps the client's id, so the reply is relayed byte for byte.
//! When the client asked over TCP and the UDP reply is truncated, the same upstream is asked
//! again over TCP (a UDP client gets the truncated reply and retries over TCP itself).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

/// The largest reply accepted from an upstream.
const MAX_REPLY: usize = 4096;

/// Sends `query` to each upstream in order, giving each `per_upstream` to answer, and returns
/// the first valid reply; `None` when none answers. `tcp`: the client asked over TCP, so a
/// truncated reply is fetched again over TCP.
pub(crate) async fn forward(
    query: &[u8],
    upstreams: &[SocketAddr],
    per_upstream: Duration,
    tcp: bool,
) -> Option<Vec<u8>> {
    if query.len() < 2 {
        return None;
    }
    for upstream in upstreams {
        let Some(reply) = ask(query, *upstream, per_upstream).await else {
            continue;
        };
        // TC is bit 1 of header byte 2.
        if tcp && reply[2] & 0x02 != 0 {
            if let Some(full) = ask_tcp(query, *upstream, per_upstream).await {
                return Some(full);
            }
        }
        return Some(reply);
    }
    None
}

/// Whether `reply` (at least a header long) answers `query`: same id, QR set.
fn answers(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= 12 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

/// One attempt over TCP; `None` on any failure or when `wait` runs out.
async fn ask_tcp(query: &[u8], upstream: SocketAddr, wait: Duration) -> Option<Vec<u8>> {
    let len = u16::try_from(query.len()).ok()?;
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await.ok()?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await.ok()?;
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await.ok()?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut reply).await.ok()?;
        Some(reply)
    };
    let reply = tokio::time::timeout(wait, exchange).await.ok()??;
    answers(query, &reply).then_some(reply)
}

/// One attempt against one upstream; `None` on any failure or on timeout.
async fn ask(query: &[u8], upstream: SocketAddr, wait: Duration) -> Option<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect(upstream).await.ok()?;
    socket.send(query).await.ok()?;
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; MAX_REPLY];
    loop {
        let len = timeout_at(deadline, socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        if answers(query, &buf[..len]) {
            return Some(buf[..len].to_vec());
        }
    }
}
