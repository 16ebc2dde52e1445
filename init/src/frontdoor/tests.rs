//! The manager against a real front door run in this process (the same code the process runs,
//! without its sandbox), with a plain TCP upstream on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use baton_frontdoor::control::frame;
use baton_frontdoor::control::protocol::Listener;
use baton_spec::service::{Auth, Route};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};

use super::run::{talk, Listeners};
use super::*;
use crate::board::console::Console;
use crate::containers::supervisor::routed::{RoutedInstance, RoutedService};

/// An upstream that answers every request with `hello`.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

fn routed_to(upstream: SocketAddr) -> Routed {
    let mut routed = Routed::default();
    routed.services.insert(
        "web".into(),
        RoutedService {
            route: Route {
                host: None,
                path: "/".into(),
                auth: Auth::None,
                timeout: Duration::from_secs(5),
                require: Default::default(),
                forward: None,
            },
            port: upstream.port(),
            instances: vec![RoutedInstance {
                id: "web-1#1".into(),
                addr: Ipv4Addr::LOCALHOST,
                board: None,
                ready: true,
            }],
            hold_queue: 100,
            hold_timeout: Duration::from_secs(30),
        },
    );
    routed
}

/// `GET /` through the front door: the status code and the body.
async fn get(addr: SocketAddr) -> (u16, String) {
    get_path(addr, "/").await
}

/// `GET path` through the front door: the status code and the body.
async fn get_path(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: web.lan\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("read");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

struct Rig {
    addr: SocketAddr,
    routed: watch::Sender<Routed>,
    restart: mpsc::Sender<()>,
    shared: Arc<Shared>,
    talking: tokio::task::JoinHandle<String>,
    front_door: tokio::task::JoinHandle<i32>,
}

async fn rig(routed: Routed) -> Rig {
    rig_with(routed, None).await
}

/// [`rig`] with the identity assertion key `assertion`.
async fn rig_with(
    routed: Routed,
    assertion: Option<baton_frontdoor::config::model::AssertionKey>,
) -> Rig {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listeners = Listeners {
        kinds: vec![Listener::Http],
        fds: vec![OwnedFd::from(listener)],
    };
    let card = tempfile::tempdir().expect("card").keep();
    let data = card.join("data");
    let settings = Settings {
        front_door: baton_spec::FrontDoor::default(),
        exe: "/nonexistent".into(),
        root: card.clone(),
        card,
        board: "b1".into(),
        ca: None,
        data,
        assertion,
        session_key: None,
        scaler: None,
    };
    let (routed_tx, routed_rx) = watch::channel(routed);
    let (restart_tx, restart_rx) = mpsc::channel(1);
    let console = Arc::new(Console::quiet(64));
    let shared = Arc::new(Shared::new(State::Starting, None, console, (80, 0)));
    let (ours, theirs) = frame::pair().expect("pair");
    let front_door = tokio::spawn(baton_frontdoor::child::run(theirs));
    let s = Arc::clone(&shared);
    let talking = tokio::spawn(async move {
        let (mut routed, mut restart) = (routed_rx, restart_rx);
        let mut certs = certs::Certs::default();
        talk(
            &settings,
            &listeners,
            7,
            ours,
            &mut routed,
            &mut restart,
            &mut certs,
            &s,
        )
        .await
    });
    Rig {
        addr,
        routed: routed_tx,
        restart: restart_tx,
        shared,
        talking,
        front_door,
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_serves_what_the_manager_feeds_it_and_reports_its_load() {
    let up = upstream().await;
    let rig = rig(routed_to(up)).await;
    until("serving", || rig.shared.status().state == "serving").await;
    assert_eq!(rig.shared.status().pid, Some(7));
    // The front door accepts only once its first snapshot (routes and instances) is in force:
    // the first request, made as soon as it is Ready, is served.
    let (status, body) = get(rig.addr).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    // The Load reports reach the manager's totals.
    until("a Load counting the request", || {
        rig.shared
            .totals()
            .get("web-1#1")
            .is_some_and(|t| t.completed >= 1)
    })
    .await;
    // And its request totals, by service and status, for the metrics.
    until("the request totals counting it", || {
        rig.shared
            .tallies
            .totals()
            .iter()
            .any(|t| t.service == "web" && t.codes[1] >= 1 && t.count() == t.codes[1])
    })
    .await;
    // The route goes away: a 404 naming the host.
    rig.routed.send_replace(Routed::default());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(rig.addr).await;
        if status == 404 {
            assert!(body.contains("web.lan"), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the route stayed");
    }
    rig.restart.send(()).await.expect("restart");
    let why = rig.talking.await.expect("talk");
    assert_eq!(why, "restarted on request");
    rig.front_door.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_serves_the_public_half_of_the_key_derived_here() {
    let key = identity::assertion_key("lab", "a cluster key of at least thirty-two characters")
        .expect("key");
    let kid = baton_frontdoor::identity::assertion::Signer::new(&key)
        .expect("signer")
        .kid()
        .to_string();
    let up = upstream().await;
    let rig = rig_with(routed_to(up), Some(key.clone())).await;
    until("serving", || rig.shared.status().state == "serving").await;
    let (status, body) = get_path(rig.addr, "/.well-known/baton/jwks.json").await;
    assert_eq!(status, 200, "{body}");
    let jwks: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str(), "{body}");
    assert!(!body.contains(&key.d), "the private key is served: {body}");
    rig.front_door.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_door_that_dies_ends_the_talk_with_why() {
    let up = upstream().await;
    let rig = rig(routed_to(up)).await;
    until("serving", || rig.shared.status().state == "serving").await;
    rig.front_door.abort();
    let why = tokio::time::timeout(Duration::from_secs(20), rig.talking)
        .await
        .expect("the talk ends")
        .expect("talk");
    assert!(!why.is_empty());
    assert_ne!(why, "restarted on request");
}

#[test]
fn a_listener_is_bound_on_every_address_with_a_long_backlog() {
    let fd = super::bind(0).expect("bind");
    let listener = std::net::TcpListener::from(fd);
    let addr = listener.local_addr().expect("addr");
    assert!(addr.ip().is_unspecified(), "{addr}");
    // It accepts (it listens), from loopback as from anywhere.
    let _client = std::net::TcpStream::connect(("127.0.0.1", addr.port())).expect("connect");
    listener.accept().expect("accept");
}
