//! Bodies and streams pass through as they come: a large upload and download with the front
//! door's memory flat, server-sent events one by one, and a protocol switch joined both ways.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

/// Megabytes moved each way (`BATON_FRONTDOOR_BIG_MB` sets it; 1024 for the full run).
fn big_mb() -> u64 {
    std::env::var("BATON_FRONTDOOR_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A body of `mb` MiB sent in 64 KiB chunks, made as it is read.
fn generated(mb: u64) -> UpBody {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = mb * 16;
    let stream = futures_stream(chunks, chunk);
    StreamBody::new(stream).boxed_unsync()
}

fn futures_stream(
    n: u64,
    chunk: Bytes,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, baton_frontdoor::http::BoxError>> + Send
{
    struct Gen(u64, Bytes);
    impl futures_core::Stream for Gen {
        type Item = Result<Frame<Bytes>, baton_frontdoor::http::BoxError>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(None);
            }
            self.0 -= 1;
            std::task::Poll::Ready(Some(Ok(Frame::data(self.1.clone()))))
        }
    }
    Gen(n, chunk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_and_download_stream_through_without_the_memory_growing() {
    let mb = big_mb();
    // The upstream counts what it receives and sends as much back.
    let (a, _a) = upstream(move |req: Request<Incoming>| async move {
        let mut body = req.into_body();
        let mut got = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("upload").into_data() {
                got += data.len() as u64;
            }
        }
        assert_eq!(got, mb << 20);
        Response::new(generated(mb))
    })
    .await;
    let door = Door::start(snapshot(vec![route("big", None, "/")], None)).await;
    door.instances("big", &[("b1", a, true)]);
    let before = rss_kib();
    let req = Request::post("/upload")
        .header("host", "big.lan")
        .body(generated(mb))
        .expect("request");
    let stream = tokio::net::TcpStream::connect(door.addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut got = 0u64;
    let mut peak = before;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("download").into_data() {
            got += data.len() as u64;
            if got % (16 << 20) < data.len() as u64 {
                peak = peak.max(rss_kib());
            }
        }
    }
    assert_eq!(got, mb << 20);
    let grown = peak.saturating_sub(before);
    println!("moved {mb} MiB each way; RSS {before} KiB before, peak {peak} KiB");
    // Buffers are a few chunks per hop; the body itself is never held.
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB moving {mb} MiB");
}

#[tokio::test]
async fn server_sent_events_arrive_one_by_one() {
    // The upstream sends the next event only once the client has seen the previous one.
    let (seen_tx, seen_rx) = mpsc::channel::<()>(1);
    let seen_rx = std::sync::Arc::new(tokio::sync::Mutex::new(seen_rx));
    let (a, _a) = upstream(move |_req: Request<Incoming>| {
        let seen_rx = std::sync::Arc::clone(&seen_rx);
        async move {
            let (tx, rx) =
                mpsc::channel::<Result<Frame<Bytes>, baton_frontdoor::http::BoxError>>(1);
            tokio::spawn(async move {
                let mut seen = seen_rx.lock().await;
                for i in 0..3 {
                    let event = format!("data: event {i}\n\n");
                    if tx.send(Ok(Frame::data(Bytes::from(event)))).await.is_err() {
                        return;
                    }
                    if seen.recv().await.is_none() {
                        return;
                    }
                }
            });
            let body = StreamBody::new(ReceiverStream(rx)).boxed_unsync();
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .expect("response")
        }
    })
    .await;
    let door = Door::start(snapshot(vec![route("events", None, "/")], None)).await;
    door.instances("events", &[("e1", a, true)]);
    let stream = tokio::net::TcpStream::connect(door.addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/events")
        .header("host", "events.lan")
        .body(text(""))
        .expect("request");
    let mut body = sender
        .send_request(req)
        .await
        .expect("response")
        .into_body();
    for i in 0..3 {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("the event came through before the next was sent")
            .expect("a frame")
            .expect("data");
        let data = frame.into_data().expect("data frame");
        assert_eq!(&data[..], format!("data: event {i}\n\n").as_bytes());
        seen_tx.send(()).await.expect("upstream waits");
    }
}

#[tokio::test]
async fn a_protocol_switch_is_joined_both_ways() {
    let (a, _a) = upstream(|mut req: Request<Incoming>| async move {
        let upgraded = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgraded.await else { return };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            // Echo, upper-cased, until the client closes.
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let up = buf[..n].to_ascii_uppercase();
                        if io.write_all(&up).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(text(""))
            .expect("response")
    })
    .await;
    let door = Door::start(snapshot(vec![route("ws", None, "/")], None)).await;
    door.instances("ws", &[("w1", a, true)]);
    let mut stream = tokio::net::TcpStream::connect(door.addr)
        .await
        .expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: ws.lan\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.expect("head"), 1, "closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for word in ["hello", "front door"] {
        stream.write_all(word.as_bytes()).await.expect("send");
        let mut back = vec![0u8; word.len()];
        stream.read_exact(&mut back).await.expect("echo");
        assert_eq!(back, word.to_ascii_uppercase().as_bytes());
    }
}

/// A stream over an mpsc receiver.
struct ReceiverStream<T>(mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}
