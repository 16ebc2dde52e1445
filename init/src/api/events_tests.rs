//! `GET /v1/events`: the token, the last N as JSON, and the server-sent stream (the past, then
//! new events, resumed after a `Last-Event-ID`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_api::events::{EventList, What};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::{serve, Handles};
use crate::board::console::Console;
use crate::board::status::BoardStatus;
use crate::events::Bus;

const TOKEN: &str = "events-test-token-0123456789";

async fn start() -> (std::net::SocketAddr, Arc<Bus>) {
    let state = Arc::new(BoardStatus::default());
    state.set_token(Some(TOKEN.into()));
    let mut handles = Handles::alone(
        state,
        Arc::new(Console::quiet(10)),
        mpsc::channel(1).0,
        PathBuf::from("/nonexistent/services"),
        None,
    );
    let bus = Arc::new(Bus::new(1_000));
    bus.set_board("pi-a");
    handles.bus = Arc::clone(&bus);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, handles));
    (addr, bus)
}

fn applied(name: &str) -> What {
    What::SpecApplied {
        service: name.into(),
    }
}

/// Sends a GET with the token and `extra` headers; returns the open stream.
async fn get(addr: std::net::SocketAddr, path: &str, extra: &str) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n{extra}Connection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s
}

/// Reads from `s` until `text` has arrived; everything read so far.
async fn read_until(s: &mut tokio::net::TcpStream, text: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let reading = async {
        while !String::from_utf8_lossy(&got).contains(text) {
            let n = s.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed before {text:?}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .unwrap_or_else(|_| panic!("no {text:?} in {}", String::from_utf8_lossy(&got)));
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn the_recent_events_need_the_token_and_come_as_json() {
    let (addr, bus) = start().await;
    for name in ["a", "b", "c"] {
        bus.raise(applied(name));
    }
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");

    let mut s = get(addr, "/v1/events?tail=2", "").await;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    let body = raw.split("\r\n\r\n").nth(1).expect("a body");
    let list: EventList = serde_json::from_str(body).expect("an event list");
    let seqs: Vec<u64> = list.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(list.events[0].board, "pi-a");

    let mut s = get(addr, "/v1/events?tail=lots", "").await;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
}

#[tokio::test]
async fn a_follower_gets_the_past_then_new_events_and_resumes_after_its_last_id() {
    let (addr, bus) = start().await;
    bus.raise(applied("a"));
    bus.raise(applied("b"));
    let mut s = get(addr, "/v1/events?follow=1&tail=10", "").await;
    let head = read_until(&mut s, "\"service\":\"b\"").await;
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(
        head.contains("id: pi-a:1000.1\nevent: spec-applied\ndata: {"),
        "{head}"
    );
    bus.raise(What::SpecDeleted {
        service: "a".into(),
    });
    let more = read_until(&mut s, "spec-deleted").await;
    assert!(
        more.contains("id: pi-a:1000.3\nevent: spec-deleted\n"),
        "{more}"
    );

    // A browser that reconnects names the last id it saw: only what came after is sent.
    let mut again = get(
        addr,
        "/v1/events",
        "Accept: text/event-stream\r\nLast-Event-ID: pi-a:1000.2\r\n",
    )
    .await;
    let resumed = read_until(&mut again, "id: pi-a:1000.3").await;
    assert!(!resumed.contains("id: pi-a:1000.2\n"), "{resumed}");
    assert!(!resumed.contains("id: pi-a:1000.1\n"), "{resumed}");
}

#[tokio::test]
async fn a_follower_that_missed_events_is_told_how_many() {
    let (addr, bus) = start().await;
    for i in 0..baton_api::events::RING + 20 {
        bus.raise(applied(&format!("s{i}")));
    }
    // Its last id is older than the ring: 20 after it are gone.
    let mut s = get(
        addr,
        "/v1/events?follow=1&tail=1",
        "Last-Event-ID: pi-a:1000.1\r\n",
    )
    .await;
    let head = read_until(&mut s, "event: spec-applied").await;
    assert!(
        head.contains("event: lagged\ndata: ") && head.contains("\"missed\":19"),
        "{head}"
    );
}

/// Not a test: how many events a second one follower gets through `GET /v1/events` on this
/// host (`scripts/bench metrics` runs it). Events are raised in bursts of 256, each burst
/// after the follower has read the one before, so that none is lost to lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench metrics"]
async fn events_per_second() {
    const EVENTS: usize = 100_000;
    const BURST: usize = 256;
    let (addr, bus) = start().await;
    let mut s = get(addr, "/v1/events?follow=1&tail=0", "").await;
    // The answer's head comes once the follower is subscribed: events raised before would
    // only be in the past it did not ask for.
    read_until(&mut s, "\r\n\r\n").await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0usize;
    let mut bytes = 0usize;
    let mut tail = String::new();
    let start = std::time::Instant::now();
    for burst in 0..EVENTS / BURST {
        for i in 0..BURST {
            bus.raise(applied(&format!("s{}", burst * BURST + i)));
        }
        let want = (burst + 1) * BURST;
        while seen < want {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("an event within 10 s")
                .expect("read");
            assert!(n > 0, "the stream ended");
            bytes += n;
            tail.push_str(&String::from_utf8_lossy(&buf[..n]));
            // Whole frames are counted; a frame cut in two waits for its end.
            let cut = tail.rfind("\n\n").map_or(0, |i| i + 2);
            let whole: String = tail.drain(..cut).collect();
            seen += whole.matches("event: spec-applied\n").count();
            assert!(!whole.contains("event: lagged"), "lagged");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "== GET /v1/events, one follower on this host: {EVENTS} events in {secs:.2} s: \
         {:.0} events/s, {:.1} MB/s",
        EVENTS as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
