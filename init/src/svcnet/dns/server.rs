//! The UDP and TCP listeners and their per-query tasks. TCP connections are accepted through the
//! board's limited loop ([`listen`]: a cap, a share and a rate per source, a back-off on accept
//! errors); each read and write on them has [`Limits::tcp_idle`] to finish.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::answer::{decide, servfail, Decision, Reach};
use super::forward::forward;
use super::{Error, Limits, Reaching, Upstreams, VipTable};
use baton_listen::{self as listen, Rate, Stats};

/// The largest datagram read from a client (EDNS clients rarely send more than a few hundred).
const MAX_QUERY: usize = 4096;

/// A running server; dropping it stops both listeners and their tasks.
#[derive(Debug)]
pub struct DnsServer {
    /// The address actually bound (the port is filled in when 0 was asked for).
    addr: SocketAddr,
    /// The UDP and TCP accept loops.
    tasks: Vec<JoinHandle<()>>,
    /// The TCP listener's counters.
    tcp: Arc<Stats>,
}

impl DnsServer {
    /// The address served, on both UDP and TCP.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TCP listener's connection counters.
    pub fn tcp_stats(&self) -> &Stats {
        &self.tcp
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What every query handler resolves with: the VIP table, the upstreams, the limits and the permits for forwarded queries.
struct Resolver {
    table: VipTable,
    upstreams: Upstreams,
    reaching: Reaching,
    limits: Limits,
    forwards: Arc<Semaphore>,
}

impl Resolver {
    /// The decision for `packet` from `client` against the table as it is now.
    fn decide(&self, packet: &[u8], client: std::net::IpAddr) -> Decision {
        let reaching = self.reaching.read().unwrap_or_else(|e| e.into_inner());
        let reach = if reaching.contains(&client) {
            Reach::Forward
        } else {
            Reach::ServicesOnly
        };
        drop(reaching);
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        decide(packet, &table, reach)
    }

    /// The upstream list as it is now.
    fn upstreams(&self) -> Vec<std::net::SocketAddr> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The reply to a forwarded query: the upstream's, or SERVFAIL.
    async fn forwarded(
        &self,
        packet: &[u8],
        query: &hickory_proto::op::Message,
        tcp: bool,
    ) -> Option<Vec<u8>> {
        let upstreams = self.upstreams();
        match forward(packet, &upstreams, self.limits.upstream_timeout, tcp).await {
            Some(reply) => Some(reply),
            None => servfail(query),
        }
    }
}

/// Serves DNS on `listen` (UDP and TCP) with the default [`Limits`]. Must be called inside a
/// tokio runtime; the server runs on it until the returned handle is dropped.
pub async fn start(
    listen: SocketAddr,
    table: VipTable,
    upstreams: Upstreams,
    reaching: Reaching,
) -> Result<DnsServer, Error> {
    start_with(listen, table, upstreams, reaching, Limits::default()).await
}

/// The UDP socket and the TCP listener on `listen`. With port 0, UDP picks a port and TCP binds
/// the same one; a port TCP finds taken (UDP and TCP ports are apart) is given up for another,
/// a few times.
async fn bind_pair(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    const TRIES: usize = 16;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(listen)
            .await
            .map_err(|source| Error::BindUdp {
                addr: listen,
                source,
            })?;
        let addr = udp.local_addr().map_err(|source| Error::BindUdp {
            addr: listen,
            source,
        })?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e)
                if listen.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < TRIES => {}
            Err(source) => return Err(Error::BindTcp { addr, source }),
        }
    }
}

/// [`start`] with explicit limits. With port 0, UDP picks a port and TCP binds the same one.
pub async fn start_with(
    listen: SocketAddr,
    table: VipTable,
    upstreams: Upstreams,
    reaching: Reaching,
    limits: Limits,
) -> Result<DnsServer, Error> {
    let (udp, tcp) = bind_pair(listen).await?;
    let addr = udp.local_addr().map_err(|source| Error::BindUdp {
        addr: listen,
        source,
    })?;
    let shared = Arc::new(Resolver {
        table,
        upstreams,
        reaching,
        limits,
        forwards: Arc::new(Semaphore::new(limits.max_forwards.max(1))),
    });
    let stats = Arc::new(Stats::default());
    let tasks = vec![
        tokio::spawn(serve_udp(Arc::new(udp), Arc::clone(&shared))),
        tokio::spawn(serve_tcp(tcp, shared, Arc::clone(&stats))),
    ];
    Ok(DnsServer {
        addr,
        tasks,
        tcp: stats,
    })
}

/// Sources whose UDP query rate is tracked at once (the least recently seen are forgotten).
const UDP_SOURCES: usize = 4096;

/// The UDP loop: local answers inline, forwards in bounded background tasks; each source
/// within its query rate.
async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Resolver>) {
    let mut buf = vec![0u8; MAX_QUERY];
    let mut sources = listen::sources::Sources::new(UDP_SOURCES, 1, shared.limits.udp_rate);
    loop {
        // Errors here are per-datagram (e.g. ICMP errors reported late): keep serving.
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let source = listen::sources::key(peer.ip());
        if sources.admit(source, tokio::time::Instant::now()).is_err() {
            continue;
        }
        sources.release(source);
        let packet = &buf[..len];
        match shared.decide(packet, peer.ip()) {
            Decision::Drop => {}
            Decision::Reply(bytes) => {
                let _ = socket.send_to(&bytes, peer).await;
            }
            Decision::Forward(query) => {
                let Ok(permit) = Arc::clone(&shared.forwards).try_acquire_owned() else {
                    continue;
                };
                let packet = packet.to_vec();
                let socket = Arc::clone(&socket);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Some(reply) = shared.forwarded(&packet, &query, false).await {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                    drop(permit);
                });
            }
        }
    }
}

/// The TCP listener's limits: `max_tcp` connections, a quarter of them (at least one) per
/// source, and a source opening at most `max_tcp` a second.
fn tcp_limits(limits: &Limits) -> listen::Limits {
    let max = limits.max_tcp.max(1);
    let per_second = u32::try_from(max).unwrap_or(u32::MAX);
    listen::Limits {
        max_connections: max,
        per_source: (max / 4).max(1),
        rate: Rate {
            burst: per_second,
            per_second,
        },
        max_sources: max * 16,
    }
}

/// The TCP accept loop: the board's limited loop, each connection in its own task.
async fn serve_tcp(listener: TcpListener, shared: Arc<Resolver>, stats: Arc<Stats>) {
    let name = match listener.local_addr() {
        Ok(addr) => format!("DNS over TCP on {addr}"),
        Err(_) => "DNS over TCP".to_string(),
    };
    let limits = tcp_limits(&shared.limits);
    let handle = move |stream, _peer| {
        let shared = Arc::clone(&shared);
        async move { serve_connection(stream, &shared).await }
    };
    listen::serve(listener, &name, limits, stats, listen::stderr_log(), handle).await;
}

/// Serves length-prefixed queries on one connection, in order, until EOF, error or idleness.
async fn serve_connection(mut stream: TcpStream, shared: &Resolver) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let idle = shared.limits.tcp_idle;
    loop {
        let mut prefix = [0u8; 2];
        if !matches!(
            timeout(idle, stream.read_exact(&mut prefix)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let len = usize::from(u16::from_be_bytes(prefix));
        let mut packet = vec![0u8; len];
        if !matches!(
            timeout(idle, stream.read_exact(&mut packet)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let reply = match shared.decide(&packet, peer.ip()) {
            Decision::Drop => return,
            Decision::Reply(bytes) => bytes,
            Decision::Forward(query) => {
                let Ok(_permit) = shared.forwards.try_acquire() else {
                    return;
                };
                match shared.forwarded(&packet, &query, true).await {
                    Some(reply) => reply,
                    None => return,
                }
            }
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        // A client that does not read its answers loses the connection like an idle one.
        if !matches!(timeout(idle, stream.write_all(&framed)).await, Ok(Ok(()))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::from((from, 0))).expect("bind");
        socket.connect(to).await.expect("connect")
    }

    /// True once the server closed `s` within `limit`.
    async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        let until_closed = async { while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {} };
        timeout(limit, until_closed).await.is_ok()
    }

    #[tokio::test]
    async fn tcp_clients_get_a_share_each_and_idle_ones_are_closed() {
        let limits = Limits {
            max_tcp: 8, // two per source
            tcp_idle: Duration::from_millis(300),
            ..Limits::default()
        };
        let server = start_with(
            "127.0.0.1:0".parse().expect("addr"),
            VipTable::default(),
            Upstreams::default(),
            Reaching::default(),
            limits,
        )
        .await
        .expect("start");
        let addr = server.local_addr();
        let from = Ipv4Addr::new(127, 0, 0, 9);
        let mut held = [
            connect_from(from, addr).await,
            connect_from(from, addr).await,
        ];
        let mut third = connect_from(from, addr).await;
        assert!(closed_within(&mut third, Duration::from_secs(5)).await);
        assert_eq!(
            server
                .tcp_stats()
                .refused_per_source
                .load(Ordering::Relaxed),
            1
        );
        // Half a length prefix, then nothing: cut off after the idle time.
        held[0].write_all(&[0]).await.expect("write");
        for s in &mut held {
            assert!(
                closed_within(s, Duration::from_secs(5)).await,
                "an idle connection is still open"
            );
        }
    }

    /// A query for `web.baton` A with id `id`.
    fn query(id: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(b"\x03web\x05baton\x00\x00\x01\x00\x01");
        q
    }

    /// How many of `n` queries sent at once from `from` are answered within a short wait.
    async fn answered(from: Ipv4Addr, to: SocketAddr, n: u16) -> u16 {
        let socket = tokio::net::UdpSocket::bind((from, 0)).await.expect("bind");
        for id in 0..n {
            socket.send_to(&query(id), to).await.expect("send");
        }
        let mut got = 0;
        let mut buf = [0u8; 512];
        while timeout(Duration::from_millis(500), socket.recv_from(&mut buf))
            .await
            .is_ok()
        {
            got += 1;
        }
        got
    }

    #[tokio::test]
    async fn a_source_past_its_udp_rate_is_dropped_and_others_still_answered() {
        let limits = Limits {
            udp_rate: Rate {
                burst: 20,
                per_second: 1,
            },
            ..Limits::default()
        };
        let table = VipTable::default();
        table
            .write()
            .expect("table")
            .insert("web".to_string(), Ipv4Addr::new(10, 89, 4, 2));
        let server = start_with(
            "127.0.0.1:0".parse().expect("addr"),
            table,
            Upstreams::default(),
            Reaching::default(),
            limits,
        )
        .await
        .expect("start");
        let addr = server.local_addr();
        let flooder = answered(Ipv4Addr::new(127, 0, 0, 11), addr, 100).await;
        assert!((20..=22).contains(&flooder), "{flooder} of 100 answered");
        assert_eq!(answered(Ipv4Addr::new(127, 0, 0, 12), addr, 10).await, 10);
    }
}
