//! The front door's process side, in process: a fake init on the other end of the control
//! channel hands over a loopback listener, sends snapshots and instances, and reads `Ready`,
//! `Load` and `Wake`; real hyper upstreams answer behind it.

mod common;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use baton_frontdoor::child;
use baton_frontdoor::config::{Hold, Service, Snapshot};
use baton_frontdoor::control::channel::Channel;
use baton_frontdoor::control::frame;
use baton_frontdoor::control::protocol::{Instance, Listener, ToFrontDoor, ToInit, PROTOCOL};
use baton_frontdoor::control::snapshot;
use common::{echo, get, instance, route, text, upstream, Got};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// Longest wait for anything the front door should do.
const DEADLINE: Duration = Duration::from_secs(20);

/// The init's end.
struct Init {
    channel: Channel,
    door: JoinHandle<i32>,
    addr: SocketAddr,
}

/// A front door started on a socket pair, sent `Hello` with one HTTP listener; `Ready` read.
async fn start() -> Init {
    let (ours, theirs) = frame::pair().expect("socket pair");
    let door = tokio::spawn(child::run(theirs));
    let channel = Channel::new(ours).expect("channel");
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hello = ToFrontDoor::Hello {
        protocol: PROTOCOL,
        build: "test".into(),
        listeners: vec![Listener::Http],
    };
    channel
        .send(&hello, &[listener.as_fd()])
        .await
        .expect("send Hello");
    let init = Init {
        channel,
        door,
        addr,
    };
    match init.recv().await {
        ToInit::Ready { protocol, .. } => assert_eq!(protocol, PROTOCOL),
        other => panic!("expected Ready, got {other:?}"),
    }
    init
}

impl Init {
    async fn recv(&self) -> ToInit {
        let received = timeout(DEADLINE, self.channel.recv::<ToInit>())
            .await
            .expect("a message from the front door in time");
        received.expect("a message from the front door").0
    }

    /// Reads messages until `done` says so, all within the deadline.
    async fn recv_until(&self, what: &str, mut done: impl FnMut(ToInit) -> bool) {
        let reading = async { while !done(self.recv().await) {} };
        timeout(DEADLINE, reading)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    async fn snapshot(&self, generation: u64, snapshot: &Snapshot) {
        let memfd = snapshot::write_json(snapshot).expect("memfd");
        self.send_snapshot(generation, memfd).await;
    }

    async fn send_snapshot(&self, generation: u64, memfd: OwnedFd) {
        self.channel
            .send(&ToFrontDoor::Snapshot { generation }, &[memfd.as_fd()])
            .await
            .expect("send Snapshot");
    }

    async fn instances(&self, generation: u64, service: &str, instances: Vec<Instance>) {
        let message = ToFrontDoor::Instances {
            generation,
            service: service.into(),
            instances,
        };
        self.channel
            .send(&message, &[])
            .await
            .expect("send Instances");
    }

    /// GETs `/` until the answer's body starts with `prefix`.
    async fn until_body(&self, prefix: &str) -> Got {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = get(self.addr, "example.test", "/").await;
            if got.body.starts_with(prefix) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {prefix:?}, last: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn exit_code(self) -> i32 {
        timeout(DEADLINE, self.door)
            .await
            .expect("the front door ends in time")
            .expect("run does not panic")
    }
}

fn svc_snapshot(hold: Option<Hold>) -> Snapshot {
    common::snapshot(vec![route("svc", None, "/")], hold)
}

/// Sends raw bytes as a frame, as a broken or foreign peer would.
fn send_raw(channel: &Channel, bytes: &[u8]) {
    let limits = baton_seqpacket::Limits {
        max_frame: frame::MAX_FRAME,
        max_fds: frame::MAX_FDS,
    };
    baton_seqpacket::send(channel.as_fd(), bytes, &[], limits).expect("send raw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_routes_and_reports_load() {
    let (up, _up) = echo("up").await;
    let init = start().await;
    init.snapshot(1, &svc_snapshot(None)).await;
    init.instances(1, "svc", vec![instance("i1", up, true)])
        .await;
    let got = init.until_body("up GET /").await;
    assert_eq!(got.status, 200);
    // Every Load since Ready, summed: exactly the one request answered by i1.
    let mut completed = 0;
    init.recv_until("a Load counting the request", |message| {
        if let ToInit::Load { instances, .. } = message {
            completed += instances
                .iter()
                .filter(|l| l.id == "i1")
                .map(|l| l.completed)
                .sum::<u64>();
        }
        completed > 0
    })
    .await;
    assert_eq!(completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_service_is_woken() {
    let (up, _up) = echo("up").await;
    let init = start().await;
    let hold = Hold {
        queue: 8,
        timeout_ms: 20_000,
    };
    init.snapshot(1, &svc_snapshot(Some(hold))).await;
    init.instances(1, "svc", vec![instance("i1", up, false)])
        .await;
    let addr = init.addr;
    let request = tokio::spawn(async move { get(addr, "example.test", "/").await });
    let (mut woken, mut reported) = (false, false);
    init.recv_until("a Wake and a Load with the held request", |message| {
        match message {
            ToInit::Wake { service } => {
                assert_eq!(service, "svc");
                woken = true;
            }
            ToInit::Load { held, .. } => {
                reported |= held.iter().any(|h| h.service == "svc" && h.count == 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        woken && reported
    })
    .await;
    init.instances(1, "svc", vec![instance("i1", up, true)])
        .await;
    let got = timeout(DEADLINE, request)
        .await
        .expect("released in time")
        .expect("request task");
    assert_eq!(got.status, 200);
    assert!(got.body.starts_with("up GET /"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_snapshot_leaves_the_routes_in_force() {
    let (one, _one) = echo("one").await;
    let (two, _two) = echo("two").await;
    let init = start().await;
    init.snapshot(1, &svc_snapshot(None)).await;
    init.instances(1, "svc", vec![instance("i1", one, true)])
        .await;
    init.until_body("one GET /").await;
    // Not JSON; then a snapshot the state refuses (a service without a name), which would
    // have removed the route.
    init.send_snapshot(2, snapshot::write(b"not json").expect("memfd"))
        .await;
    let mut refused = common::snapshot(Vec::new(), None);
    refused
        .services
        .insert(String::new(), Service { hold: None });
    init.snapshot(3, &refused).await;
    // Frames are handled in order: once `two` answers, both snapshots were dealt with.
    init.instances(1, "svc", vec![instance("i2", two, true)])
        .await;
    let got = init.until_body("two GET /").await;
    assert_eq!(got.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_ends_the_front_door() {
    let init = start().await;
    send_raw(&init.channel, br#"{"Nonsense":{}}"#);
    assert_eq!(init.exit_code().await, child::EXIT_CHANNEL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_channel_ends_the_front_door() {
    let Init { channel, door, .. } = start().await;
    drop(channel);
    let code = timeout(DEADLINE, door)
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(code, child::EXIT_CHANNEL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_protocol_ends_it_before_ready() {
    let (ours, theirs) = frame::pair().expect("socket pair");
    let door = tokio::spawn(child::run(theirs));
    let channel = Channel::new(ours).expect("channel");
    let other = PROTOCOL + 1;
    let hello = format!(r#"{{"Hello":{{"protocol":{other},"build":"x","listeners":[]}}}}"#);
    send_raw(&channel, hello.as_bytes());
    let code = timeout(DEADLINE, door)
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(code, child::EXIT_PROTOCOL);
    // Nothing was sent back: the next read sees the closed socket.
    let next = timeout(DEADLINE, channel.recv::<ToInit>())
        .await
        .expect("in time");
    assert!(
        matches!(next, Err(frame::Error::Closed)),
        "expected the socket closed, got {next:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_the_request_in_flight() {
    let (started_tx, mut started) = mpsc::channel::<()>(1);
    let (release_tx, release) = tokio::sync::watch::channel(false);
    let (up, _up) = upstream(move |_req: Request<Incoming>| {
        let started_tx = started_tx.clone();
        let mut release = release.clone();
        async move {
            let _ = started_tx.send(()).await;
            let _ = release.wait_for(|r| *r).await;
            Response::new(text("slow"))
        }
    })
    .await;
    let init = start().await;
    init.snapshot(1, &svc_snapshot(None)).await;
    init.instances(1, "svc", vec![instance("i1", up, true)])
        .await;
    let addr = init.addr;
    // The first GETs may come before the snapshot is in force (404): try until one is slow.
    let request = tokio::spawn(async move {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = get(addr, "example.test", "/").await;
            if got.status != 404 || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    timeout(DEADLINE, started.recv())
        .await
        .expect("the request reaches the upstream in time");
    // Read what was sent so far, so that the Loads below come after the Drain.
    while timeout(Duration::from_millis(200), init.channel.recv::<ToInit>())
        .await
        .is_ok()
    {}
    init.channel
        .send(&ToFrontDoor::Drain { within_ms: 60_000 }, &[])
        .await
        .expect("send Drain");
    // The heartbeat goes on while draining (two Loads: the first may have crossed the
    // Drain), and the front door waits for the request.
    let mut loads = 0;
    init.recv_until("two Loads while draining", |message| {
        loads += usize::from(matches!(message, ToInit::Load { .. }));
        loads == 2
    })
    .await;
    assert!(!init.door.is_finished(), "drain did not wait");
    release_tx.send_replace(true);
    let got = timeout(DEADLINE, request)
        .await
        .expect("answered in time")
        .expect("request task");
    assert_eq!((got.status, got.body.as_str()), (200, "slow"));
    assert_eq!(init.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshots_connection_limits_take_effect() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (up, _up) = echo("up").await;
    let init = start().await;
    let mut one_each = svc_snapshot(None);
    one_each.settings.per_client_connections = 1;
    init.snapshot(1, &one_each).await;
    init.instances(1, "svc", vec![instance("i1", up, true)])
        .await;
    // The accept loop starts again with the new limits: a connection kept open, then a second
    // one from the same address is closed unanswered. Before that, both are served.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut kept = common::Client::connect(init.addr).await;
        let first = kept.get("example.test", "/").await;
        let mut second = tokio::net::TcpStream::connect(init.addr)
            .await
            .expect("connect");
        second
            .write_all(b"GET / HTTP/1.1\r\nhost: example.test\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let _ = second.read_to_end(&mut answer).await;
        if first.body.starts_with("up GET /") && answer.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the limit never took effect");
        drop(kept);
        // Slower than the default connection rate (100 a second) refills, so that only the
        // per-client limit can close the second connection.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
