//! The API's connection limits against clients that hold connections or send slowly.

use super::super::{router, Handles};
use super::*;
use crate::board::status::BoardStatus;
use baton_testnet::eventually;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

const TOKEN: &str = "serve-test-token-0123456789";

/// Serves a fresh API with `settings` on 127.0.0.1; returns its address and counters.
async fn start(settings: Settings) -> (SocketAddr, Arc<Stats>) {
    let state = Arc::new(BoardStatus::default());
    state.set_token(Some(TOKEN.to_string()));
    let console = Arc::new(Console::quiet(100));
    let handles = Handles::alone(
        state,
        Arc::clone(&console),
        mpsc::channel(1).0,
        PathBuf::from("/nonexistent/services"),
        None,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(Stats::default());
    tokio::spawn(run(
        listener,
        router(handles),
        None,
        settings,
        Arc::clone(&stats),
        console,
    ));
    (addr, stats)
}

/// One request on a fresh connection from 127.0.0.1; the status code, within `limit`.
async fn call(addr: SocketAddr, path: &str, token: Option<&str>, limit: Duration) -> u16 {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!("GET {path} HTTP/1.1\r\nHost: b\r\n{auth}Connection: close\r\n\r\n");
        s.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        String::from_utf8_lossy(&raw)
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} did not answer within {limit:?}"))
}

/// Connects to `to` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind");
    socket.connect(to).await.expect("connect")
}

/// Reads until the server closes `s` (EOF or reset); false if it is still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let until_closed = async { while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {} };
    tokio::time::timeout(limit, until_closed).await.is_ok()
}

#[tokio::test]
async fn a_real_call_answers_beside_2000_idle_connections() {
    const IDLE: usize = 2000;
    // Both ends of every connection live in this process.
    crate::boot::limits::raise_open_files(crate::boot::limits::OPEN_FILES).expect("file limit");
    let settings = Settings {
        header_timeout: Duration::from_secs(120),
        ..Settings::default()
    };
    let (addr, stats) = start(settings).await;
    // 100 sources with 20 connections each: under the per-source share, over 2,000 in all.
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let source = Ipv4Addr::new(127, 0, 1, u8::try_from(1 + i / 20).expect("<= 100"));
        idle.push(connect_from(source, addr).await);
    }
    eventually("2,000 connections held", Duration::from_secs(20), || {
        stats.open.load(Ordering::Relaxed) >= IDLE as u64
    })
    .await;
    let deadline = Duration::from_secs(2);
    let t = Instant::now();
    assert_eq!(call(addr, "/v1/health", None, deadline).await, 200);
    let health = t.elapsed();
    let t = Instant::now();
    assert_eq!(call(addr, "/v1/status", Some(TOKEN), deadline).await, 200);
    let status = t.elapsed();
    println!("with {IDLE} idle connections: GET /v1/health {health:?}, GET /v1/status {status:?}");
    assert_eq!(
        stats.open.load(Ordering::Relaxed),
        IDLE as u64,
        "the idle ones are still held"
    );
}

#[tokio::test]
async fn a_head_sent_slowly_is_cut_off_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let (addr, _) = start(Settings {
        header_timeout: timeout,
        ..Settings::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: b\r\n")
        .await
        .expect("write");
    // One header byte every 20 ms: the connection is never idle, but the head never ends.
    let (mut reader, mut writer) = s.into_split();
    let trickle = tokio::spawn(async move {
        loop {
            if writer.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    trickle.abort();
    assert!(read.is_ok(), "the slow client was not cut off within 5 s");
    assert!(
        started.elapsed() >= timeout,
        "cut off before the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_and_a_silent_one_are_closed() {
    let (addr, _) = start(Settings {
        header_timeout: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(b"GET /v1/health HTTP/1.1\r\nHost: b\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"}") {
        let n = kept.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(5)).await,
        "kept-alive connection still open"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "silent connection still open"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_cut_off_and_answered() {
    let (addr, _) = start(Settings {
        body_idle: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "PUT /v1/services/web HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 1000\r\nConnection: close\r\n\r\nname = \"web\"\n"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    // The other 986 bytes never come: the handler's read fails and it answers at once.
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("no answer to a stalled body")
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let (addr, _) = start(Settings::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let big = "a".repeat(32 << 10);
    let head = format!("GET /v1/health HTTP/1.1\r\nHost: b\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(head.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await;
    assert!(
        raw.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn one_source_opening_2000_connections_holds_only_its_share() {
    const FLOOD: u64 = 2000;
    crate::boot::limits::raise_open_files(crate::boot::limits::OPEN_FILES).expect("file limit");
    let settings = Settings {
        header_timeout: Duration::from_secs(120),
        ..Settings::default()
    };
    let share = settings.limits.per_source as u64;
    let (addr, stats) = start(settings).await;
    let flooder = Ipv4Addr::new(127, 0, 2, 1);
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        flood.push(connect_from(flooder, addr).await);
    }
    let refused = |s: &Stats| {
        s.refused_per_source.load(Ordering::Relaxed) + s.refused_rate.load(Ordering::Relaxed)
    };
    eventually(
        "every flood connection held or refused",
        Duration::from_secs(20),
        || stats.open.load(Ordering::Relaxed) + refused(&stats) >= FLOOD,
    )
    .await;
    assert_eq!(
        stats.open.load(Ordering::Relaxed),
        share,
        "the source holds its share"
    );
    assert_eq!(
        call(addr, "/v1/health", None, Duration::from_secs(2)).await,
        200
    );
    assert_eq!(
        call(addr, "/v1/status", Some(TOKEN), Duration::from_secs(2)).await,
        200
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_a_streamed_reply_is_cut_off() {
    // A reply that never ends (as a followed log may not), to a client that reads nothing.
    let endless = axum::Router::new().route(
        "/endless",
        axum::routing::get(|| async {
            let chunks = futures_util::stream::repeat_with(|| {
                Ok::<_, std::convert::Infallible>(vec![b'x'; 16 << 10])
            });
            axum::body::Body::from_stream(chunks)
        }),
    );
    let (ours, mut theirs) = tokio::io::duplex(64 << 10);
    let settings = Settings {
        write_stall: Duration::from_secs(30),
        ..Settings::default()
    };
    let served = tokio::spawn(connection(ours, endless, settings));
    theirs
        .write_all(b"GET /endless HTTP/1.1\r\nHost: b\r\n\r\n")
        .await
        .expect("request");
    // The connection ends by itself once the reply has waited 30 s (twice that at most, as the
    // stall is checked every 30 s).
    tokio::time::timeout(Duration::from_secs(61), served)
        .await
        .expect("cut off")
        .expect("the connection task");
}
