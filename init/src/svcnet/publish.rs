//! `publish`: a board TCP port forwarded to a service's instances. A small user-space proxy
//! (like Docker's userland proxy): each connection goes to the next ready instance, round
//! robin; with none ready, the connection is closed at once.
//!
//! The port faces the LAN: connections are accepted through the board's limited loop
//! ([`listen`]: a cap, a share and a rate per source, a back-off on accept errors), the instance
//! must accept within [`ProxyLimits::connect_timeout`], and a connection on which no byte moved
//! either way for [`ProxyLimits::idle`] is closed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use baton_listen::{self as listen, idle, Limits, Rate, Stats};

/// The limits of one published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyLimits {
    /// The listener's connection limits.
    pub listen: Limits,
    /// Time for an instance to accept a forwarded connection.
    pub connect_timeout: Duration,
    /// A connection with no byte moving either way for this long is closed.
    pub idle: Duration,
}

impl Default for ProxyLimits {
    /// 1,024 connections, 256 per source, a source opening at most 128 a second after a burst
    /// of 256 (a published port may serve many clients behind one NAT); 5 s to connect to an
    /// instance; 5 minutes idle.
    fn default() -> Self {
        ProxyLimits {
            listen: Limits {
                max_connections: 1024,
                per_source: 256,
                rate: Rate {
                    burst: 256,
                    per_second: 128,
                },
                max_sources: 2048,
            },
            connect_timeout: Duration::from_secs(5),
            idle: Duration::from_secs(300),
        }
    }
}

/// A published port; dropping it closes the port.
#[derive(Debug)]
pub struct Published {
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
    /// The board port.
    pub port: u16,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Published {
    /// Listens on `port` of every board address (`bind` is the address, `0.0.0.0` on boards).
    pub async fn open(bind: Ipv4Addr, port: u16) -> std::io::Result<Published> {
        let listener = std::net::TcpListener::bind((bind, port))?;
        listener.set_nonblocking(true)?;
        Published::from_std(listener)
    }

    /// Serves on an already bound (non-blocking) listener. Must run inside a tokio runtime.
    pub fn from_std(listener: std::net::TcpListener) -> std::io::Result<Published> {
        Published::from_std_with(listener, ProxyLimits::default())
    }

    /// [`Published::from_std`] with explicit limits.
    pub fn from_std_with(
        listener: std::net::TcpListener,
        limits: ProxyLimits,
    ) -> std::io::Result<Published> {
        let listener = TcpListener::from_std(listener)?;
        let port = listener.local_addr()?.port();
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(serve(
            listener,
            port,
            Arc::clone(&backends),
            limits,
            Arc::clone(&stats),
        ));
        Ok(Published {
            backends,
            stats,
            task,
            port,
        })
    }

    /// Replaces the set of instances connections go to.
    pub fn set_backends(&self, mut backends: Vec<SocketAddr>) {
        backends.sort();
        *self.backends.lock().unwrap_or_else(|p| p.into_inner()) = backends;
    }

    /// The port's connection counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

async fn serve(
    listener: TcpListener,
    port: u16,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    limits: ProxyLimits,
    stats: Arc<Stats>,
) {
    let next = AtomicUsize::new(0);
    let handle = move |client: TcpStream, _peer: SocketAddr| {
        let target = {
            let list = backends.lock().unwrap_or_else(|p| p.into_inner());
            (!list.is_empty()).then(|| list[next.fetch_add(1, Ordering::Relaxed) % list.len()])
        };
        async move {
            // No target: dropping `client` closes it, nothing is ready to answer.
            let Some(target) = target else { return };
            let connect = tokio::time::timeout(limits.connect_timeout, TcpStream::connect(target));
            if let Ok(Ok(upstream)) = connect.await {
                idle::copy_until_idle(client, upstream, limits.idle).await;
            }
        }
    };
    let name = format!("published port {port}");
    let log = listen::stderr_log();
    listen::serve(listener, &name, limits.listen, stats, log, handle).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server(tag: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let _ = s.write_all(tag.as_bytes()).await;
            }
        });
        addr
    }

    async fn fetch(port: u16) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn forwards_round_robin_and_closes_without_backends() {
        let p = Published::open(Ipv4Addr::LOCALHOST, 0).await.expect("open");
        assert_eq!(fetch(p.port).await, "", "no backend: closed at once");
        let (a, b) = (echo_server("a").await, echo_server("b").await);
        p.set_backends(vec![a, b]);
        let got = [
            fetch(p.port).await,
            fetch(p.port).await,
            fetch(p.port).await,
            fetch(p.port).await,
        ];
        let a_count = got.iter().filter(|g| *g == "a").count();
        assert_eq!(
            (a_count, got.len() - a_count),
            (2, 2),
            "round robin over both: {got:?}"
        );
        p.set_backends(vec![b]);
        assert_eq!(fetch(p.port).await, "b");
        let port = p.port;
        drop(p);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the port stays open after drop"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A backend that echoes everything back on every connection until it closes.
    async fn echo_forever() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    fn open_with(limits: ProxyLimits) -> Published {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        Published::from_std_with(l, limits).expect("publish")
    }

    async fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::from((from, 0))).expect("bind");
        socket
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .expect("connect")
    }

    /// Sends `word` and reads its echo within 5 s.
    async fn echoes(s: &mut TcpStream, word: &[u8]) -> bool {
        let exchange = async {
            s.write_all(word).await.ok()?;
            let mut back = vec![0u8; word.len()];
            s.read_exact(&mut back).await.ok()?;
            Some(back == word)
        };
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), exchange).await,
            Ok(Some(true))
        )
    }

    /// True once the proxy closed `s` within `limit`.
    async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        let until_closed = async { while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {} };
        tokio::time::timeout(limit, until_closed).await.is_ok()
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_and_a_busy_one_kept() {
        let idle = Duration::from_millis(300);
        let p = open_with(ProxyLimits {
            idle,
            ..ProxyLimits::default()
        });
        p.set_backends(vec![echo_forever().await]);
        let mut quiet = connect_from(Ipv4Addr::LOCALHOST, p.port).await;
        let mut busy = connect_from(Ipv4Addr::LOCALHOST, p.port).await;
        assert!(echoes(&mut quiet, b"hello").await);
        let started = tokio::time::Instant::now();
        // The busy one talks every 50 ms, for twice the idle time.
        while started.elapsed() < idle * 2 {
            assert!(
                echoes(&mut busy, b"ping").await,
                "a busy connection was cut"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            closed_within(&mut quiet, Duration::from_secs(5)).await,
            "the idle connection is still open"
        );
        assert!(echoes(&mut busy, b"still").await, "the busy one is kept");
    }

    #[tokio::test]
    async fn one_source_cannot_take_every_connection() {
        let mut limits = ProxyLimits::default();
        limits.listen.per_source = 2;
        let p = open_with(limits);
        p.set_backends(vec![echo_forever().await]);
        let greedy = Ipv4Addr::new(127, 0, 0, 7);
        let mut held = [
            connect_from(greedy, p.port).await,
            connect_from(greedy, p.port).await,
        ];
        for s in &mut held {
            assert!(echoes(s, b"mine").await);
        }
        let mut third = connect_from(greedy, p.port).await;
        assert!(
            closed_within(&mut third, Duration::from_secs(5)).await,
            "a third connection from one source is served"
        );
        assert_eq!(p.stats().refused_per_source.load(Ordering::Relaxed), 1);
        let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 8), p.port).await;
        assert!(
            echoes(&mut other, b"yours").await,
            "another source is served"
        );
    }
}
