//! `publish`: a board TCP port forwarded to a service's instances. A small user-space proxy
//! (like Docker's userland proxy): each connection goes to the next ready instance, round
//! robin; with none ready, the connection is closed at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A published port; dropping it closes the port.
#[derive(Debug)]
pub struct Published {
    backends: Arc<Mutex<Vec<SocketAddr>>>,
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
        let listener = TcpListener::from_std(listener)?;
        let port = listener.local_addr()?.port();
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let task = tokio::spawn(serve(listener, Arc::clone(&backends)));
        Ok(Published {
            backends,
            task,
            port,
        })
    }

    /// Replaces the set of instances connections go to.
    pub fn set_backends(&self, mut backends: Vec<SocketAddr>) {
        backends.sort();
        *self.backends.lock().unwrap_or_else(|p| p.into_inner()) = backends;
    }
}

async fn serve(listener: TcpListener, backends: Arc<Mutex<Vec<SocketAddr>>>) {
    let next = AtomicUsize::new(0);
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let target = {
            let list = backends.lock().unwrap_or_else(|p| p.into_inner());
            (!list.is_empty()).then(|| list[next.fetch_add(1, Ordering::Relaxed) % list.len()])
        };
        let Some(target) = target else {
            continue; // dropping `client` closes it: nothing is ready to answer
        };
        tokio::spawn(async move {
            if let Ok(mut upstream) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
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
}
