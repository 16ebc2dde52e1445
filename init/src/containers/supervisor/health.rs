//! Health probes: an HTTP `GET` that must answer 2xx or 3xx, or a TCP connection that must be
//! accepted, each within the check's timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use baton_spec::service::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs `probe` against the instance at `ip`; `port` is the service's port (for HTTP).
pub async fn check(ip: IpAddr, port: Option<u16>, probe: &Probe, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, attempt(ip, port, probe))
        .await
        .unwrap_or(false)
}

async fn attempt(ip: IpAddr, port: Option<u16>, probe: &Probe) -> bool {
    match probe {
        Probe::Tcp { port } => TcpStream::connect(SocketAddr::new(ip, *port)).await.is_ok(),
        Probe::Http { path } => {
            let Some(port) = port else { return false };
            let Ok(mut s) = TcpStream::connect(SocketAddr::new(ip, port)).await else {
                return false;
            };
            let request =
                format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\nUser-Agent: baton-health\r\n\r\n");
            if s.write_all(request.as_bytes()).await.is_err() {
                return false;
            }
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).await.is_err() {
                return false;
            }
            // "HTTP/1.x 200": the status code's first digit is byte 9.
            head.starts_with(b"HTTP/1.") && matches!(head[9], b'2' | b'3')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tokio::net::TcpListener;

    async fn server(reply: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_and_tcp_probes() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let t = Duration::from_secs(2);
        let http = |path: &str| Probe::Http {
            path: path.to_string(),
        };
        let ok = server("HTTP/1.1 200 OK\r\n\r\nok").await;
        let moved = server("HTTP/1.0 302 Found\r\n\r\n").await;
        let broken = server("HTTP/1.1 500 Oops\r\n\r\n").await;
        let garbage = server("hello").await;
        assert!(check(ip, Some(ok), &http("/healthz"), t).await);
        assert!(check(ip, Some(moved), &http("/"), t).await);
        assert!(!check(ip, Some(broken), &http("/"), t).await);
        assert!(!check(ip, Some(garbage), &http("/"), t).await);
        assert!(check(ip, None, &Probe::Tcp { port: ok }, t).await);
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        assert!(!check(ip, None, &Probe::Tcp { port: closed }, t).await);
        assert!(
            !check(ip, None, &http("/"), t).await,
            "HTTP needs the service port"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let probe = Probe::Http {
            path: "/".to_string(),
        };
        assert!(
            !check(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(port),
                &probe,
                Duration::from_millis(200)
            )
            .await
        );
    }
}
