//! HTTP/2 floods written frame by frame over TLS: rapid reset (CVE-2023-44487, HEADERS then
//! RST_STREAM, thousands of times) and a CONTINUATION flood (CVE-2024-27316 class, a header
//! block that never ends). Each must end with a GOAWAY or a close, leave no request in flight,
//! and cost a client beside it nothing.

mod common;
mod common_tls;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use baton_frontdoor::http::serve::MAX_STREAMS;
use common::*;
use common_tls::h2raw::{self, Event};
use common_tls::steady::Steady;
use common_tls::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What the slow upstream saw: request heads arrived, and connections the front door closed
/// after sending one.
#[derive(Default)]
struct Slow {
    arrived: AtomicU32,
    released: AtomicU32,
}

/// An upstream that reads a request head on each connection, never answers, and counts the
/// connection released when the front door closes it.
async fn slow_upstream() -> (std::net::SocketAddr, Arc<Slow>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let slow = Arc::new(Slow::default());
    let counts = Arc::clone(&slow);
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let counts = Arc::clone(&counts);
            conns.spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let mut head_done = false;
                // Reads until the peer closes; the head is small, the rest is discarded.
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if !head_done {
                        seen.extend_from_slice(&buf[..n]);
                        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            head_done = true;
                            counts.arrived.fetch_add(1, Ordering::SeqCst);
                        }
                        assert!(seen.len() < 64 * 1024, "a request head of 64 KiB");
                    }
                }
                if head_done {
                    counts.released.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, slow, task)
}

/// A front door with `web.lan` (an echo) and `slow.lan` (the slow upstream).
async fn door(pki: &Pki) -> (TlsDoor, Arc<Slow>, Vec<tokio::task::JoinHandle<()>>) {
    let cert = pki.issue(&["web.lan", "slow.lan"], false);
    let (web, web_task) = echo("web").await;
    let (slow_addr, slow, slow_task) = slow_upstream().await;
    let routes = vec![
        route("web", Some("web.lan"), "/"),
        route("slow", Some("slow.lan"), "/"),
    ];
    let door = TlsDoor::start(with_certs(snapshot(routes, None), vec![cert.cert])).await;
    door.instances("web", &[("web", web, true)]);
    door.instances("slow", &[("slow", slow_addr, true)]);
    (door, slow, vec![web_task, slow_task])
}

/// Waits until every upstream connection that carried a request was closed by the front door:
/// a reset stream leaves no connection behind.
async fn upstream_released(slow: &Slow) {
    until("upstream connections of reset streams closed", || {
        slow.released.load(Ordering::SeqCst) == slow.arrived.load(Ordering::SeqCst)
    })
    .await;
}

/// An HTTP/2 connection written by hand: its write half and what the server sends.
async fn raw_h2(
    pki: &Pki,
    door: &TlsDoor,
) -> (
    WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>,
    mpsc::UnboundedReceiver<Event>,
) {
    let hello = Hello {
        sni: Some("slow.lan"),
        verify_as: "slow.lan",
        alpn: &[b"h2"],
    };
    let tls = connect(pki, door.addr, hello).await.expect("handshake");
    assert_eq!(alpn(&tls).as_deref(), Some(&b"h2"[..]));
    let (reader, mut writer) = tokio::io::split(tls);
    let (events, seen) = mpsc::unbounded_channel();
    tokio::spawn(h2raw::read_frames(reader, events));
    writer.write_all(&h2raw::start()).await.expect("preface");
    (writer, seen)
}

/// After the flood: a PING, then the events until a GOAWAY, the end of the connection or the
/// PING's answer (which says the server took everything and carried on).
async fn outcome(
    writer: &mut WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>,
    seen: &mut mpsc::UnboundedReceiver<Event>,
) -> (Vec<Event>, Event) {
    let mut ping = Vec::new();
    h2raw::frame(&mut ping, h2raw::PING, 0, 0, b"floodend");
    // Fails when the server has closed already; the reader says so.
    let _ = writer.write_all(&ping).await;
    let _ = writer.flush().await;
    let mut before = Vec::new();
    loop {
        let event = tokio::time::timeout(PATIENCE, seen.recv())
            .await
            .expect("the server neither answered nor closed")
            .unwrap_or_else(|| Event::Closed("reader gone".into()));
        match event {
            Event::GoAway { .. } | Event::Closed(_) | Event::Pong(_) => return (before, event),
            other => before.push(other),
        }
    }
}

/// Waits for the server to close the connection after its GOAWAY.
async fn closed_after_goaway(seen: &mut mpsc::UnboundedReceiver<Event>) {
    loop {
        match tokio::time::timeout(PATIENCE, seen.recv()).await {
            Err(_) => panic!("still open after the GOAWAY"),
            Ok(None | Some(Event::Closed(_))) => return,
            Ok(Some(_)) => {}
        }
    }
}

/// Samples the front door's requests in flight until stopped; the highest seen.
fn sample_inflight(door: &TlsDoor) -> (Arc<AtomicU32>, tokio::sync::oneshot::Sender<()>) {
    let max = Arc::new(AtomicU32::new(0));
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let state = Arc::clone(&door.state);
    let seen = Arc::clone(&max);
    tokio::spawn(async move {
        loop {
            seen.fetch_max(state.balancer.inflight(), Ordering::SeqCst);
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::task::yield_now() => {}
            }
        }
    });
    (max, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_gets_a_goaway_and_leaves_nothing_in_flight() {
    let pki = Arc::new(Pki::new());
    let (door, slow, _tasks) = door(&pki).await;
    let steady = Steady::start(&pki, door.addr, "web.lan");
    steady.still_served(10).await;
    let (max_inflight, stop_sampling) = sample_inflight(&door);

    let (mut writer, mut seen) = raw_h2(&pki, &door).await;
    let block = h2raw::get_block("slow.lan");
    const PAIRS: u32 = 10_000;
    const BATCH: u32 = 100;
    let mut sent = 0;
    'flood: for batch in 0..PAIRS / BATCH {
        let mut out = Vec::new();
        for i in 0..BATCH {
            let stream = 1 + 2 * (batch * BATCH + i);
            let flags = h2raw::END_STREAM | h2raw::END_HEADERS;
            h2raw::frame(&mut out, h2raw::HEADERS, flags, stream, &block);
            h2raw::frame(
                &mut out,
                h2raw::RST_STREAM,
                0,
                stream,
                &h2raw::CANCEL.to_be_bytes(),
            );
        }
        if writer.write_all(&out).await.is_err() {
            break 'flood;
        }
        sent += BATCH;
    }
    let (before, end) = outcome(&mut writer, &mut seen).await;
    eprintln!(
        "rapid reset: {sent} pairs written, {} upstream arrivals, ended by {end:?}, {} events before",
        slow.arrived.load(Ordering::SeqCst),
        before.len()
    );
    // h2 counts streams reset before they were accepted and goes away past 20 of them
    // (`max_pending_accept_reset_streams`); a batch arrives in one TLS record, decoded whole
    // before hyper accepts, so the GOAWAY comes within the first batch. (The writes all
    // succeed: the socket buffers hold the rest.)
    match &end {
        Event::GoAway { code, debug, last } => {
            assert_eq!(*code, h2raw::ENHANCE_YOUR_CALM, "{end:?}");
            assert_eq!(debug, b"too_many_resets");
            assert!(*last < 2 * BATCH, "{end:?}");
        }
        other => panic!("the flood was taken whole: {other:?} after {sent} pairs"),
    }
    closed_after_goaway(&mut seen).await;

    steady.still_served(20).await;
    drop(steady);
    let _ = stop_sampling.send(());
    until("no request in flight", || {
        door.state.balancer.inflight() == 0
    })
    .await;
    let max = max_inflight.load(Ordering::SeqCst);
    assert!(max <= MAX_STREAMS + 1, "{max} requests in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_reset_after_they_reached_the_upstream_are_bounded_and_released() {
    // The slow form of the attack: HEADERS for as many streams as allowed, wait until each
    // request is at the upstream, reset them all, again. h2 does not count these resets (the
    // streams were accepted), so the bound is the stream limit per round trip, and each reset
    // must release its upstream request.
    let pki = Arc::new(Pki::new());
    let (door, slow, _tasks) = door(&pki).await;
    let steady = Steady::start(&pki, door.addr, "web.lan");
    steady.still_served(10).await;
    let (max_inflight, stop_sampling) = sample_inflight(&door);

    let (mut writer, mut seen) = raw_h2(&pki, &door).await;
    let block = h2raw::get_block("slow.lan");
    const ROUNDS: u32 = 5;
    // Streams past the limit each round: refused by the server, never at the upstream.
    const EXTRA: u32 = 10;
    let mut next = 1;
    for round in 1..=ROUNDS {
        let streams: Vec<u32> = (0..MAX_STREAMS + EXTRA).map(|i| next + 2 * i).collect();
        next += 2 * (MAX_STREAMS + EXTRA);
        let mut out = Vec::new();
        for &stream in &streams {
            let flags = h2raw::END_STREAM | h2raw::END_HEADERS;
            h2raw::frame(&mut out, h2raw::HEADERS, flags, stream, &block);
        }
        writer.write_all(&out).await.expect("headers");
        let mut refused = 0;
        while refused < EXTRA {
            let event = tokio::time::timeout(PATIENCE, seen.recv())
                .await
                .expect("refusals of the streams past the limit")
                .expect("open");
            match event {
                Event::Reset(stream, h2raw::REFUSED_STREAM) => {
                    assert!(
                        streams[MAX_STREAMS as usize..].contains(&stream),
                        "{stream}"
                    );
                    refused += 1;
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
        until("the round's requests at the upstream", || {
            slow.arrived.load(Ordering::SeqCst) >= round * MAX_STREAMS
        })
        .await;
        assert_eq!(slow.arrived.load(Ordering::SeqCst), round * MAX_STREAMS);
        out.clear();
        for &stream in &streams[..MAX_STREAMS as usize] {
            h2raw::frame(
                &mut out,
                h2raw::RST_STREAM,
                0,
                stream,
                &h2raw::CANCEL.to_be_bytes(),
            );
        }
        writer.write_all(&out).await.expect("resets");
        until("the round's requests released", || {
            door.state.balancer.inflight() <= 1
        })
        .await;
        // Nor do upstream connections pile up.
        upstream_released(&slow).await;
    }
    let (_, end) = outcome(&mut writer, &mut seen).await;
    eprintln!(
        "accepted-then-reset: {ROUNDS} rounds, {} upstream arrivals, ended by {end:?}",
        slow.arrived.load(Ordering::SeqCst)
    );
    // This is allowed HTTP/2: the connection carries on.
    assert_eq!(end, Event::Pong(*b"floodend"));
    assert_eq!(slow.arrived.load(Ordering::SeqCst), ROUNDS * MAX_STREAMS);
    steady.still_served(20).await;
    drop(steady);
    let _ = stop_sampling.send(());
    until("no request in flight", || {
        door.state.balancer.inflight() == 0
    })
    .await;
    let max = max_inflight.load(Ordering::SeqCst);
    assert!(max <= MAX_STREAMS + 1, "{max} requests in flight at once");
}

/// A HEADERS frame on stream 1 without END_HEADERS, then CONTINUATION frames each carrying
/// one literal header of `value_len` bytes, up to `total` bytes of header block.
async fn continuation_flood(value_len: usize, total: usize) {
    let pki = Arc::new(Pki::new());
    let (door, slow, _tasks) = door(&pki).await;
    let steady = Steady::start(&pki, door.addr, "web.lan");
    steady.still_served(10).await;

    let (mut writer, mut seen) = raw_h2(&pki, &door).await;
    let mut out = Vec::new();
    let block = h2raw::get_block("slow.lan");
    h2raw::frame(&mut out, h2raw::HEADERS, h2raw::END_STREAM, 1, &block);
    let value = vec![b'a'; value_len];
    let mut sent = 0;
    let mut frames = 0;
    while sent < total {
        let field = h2raw::literal(&format!("x-flood-{frames}"), &value);
        h2raw::frame(&mut out, h2raw::CONTINUATION, 0, 1, &field);
        sent += field.len();
        frames += 1;
        if out.len() >= 64 * 1024 {
            if writer.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
    }
    let _ = writer.write_all(&out).await;
    let (_, end) = outcome(&mut writer, &mut seen).await;
    eprintln!(
        "CONTINUATION flood of {value_len}-byte fields: {frames} frames, {sent} bytes of header \
         block built, ended by {end:?}"
    );
    match &end {
        Event::GoAway { code, debug, .. } => {
            assert_eq!(*code, h2raw::ENHANCE_YOUR_CALM, "{end:?}");
            assert_eq!(debug, b"too_many_continuations");
        }
        other => panic!("the flood was taken whole: {other:?}"),
    }
    closed_after_goaway(&mut seen).await;
    // The request never became one.
    assert_eq!(slow.arrived.load(Ordering::SeqCst), 0);
    steady.still_served(20).await;
    drop(steady);
    until("no request in flight", || {
        door.state.balancer.inflight() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_of_small_frames_gets_a_goaway() {
    continuation_flood(100, 1 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_of_full_frames_gets_a_goaway() {
    // Each frame just under the 16 KiB frame size, the list past 16 KiB at the second.
    continuation_flood(16 * 1024 - 64, 4 << 20).await;
}
