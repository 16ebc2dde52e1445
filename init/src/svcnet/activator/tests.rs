//! The activator's core on loopback, with the original destination injected (the redirect
//! itself is tested in [`super::netns_tests`]).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::svcnet::nft::Ipv4Net;
use crate::svcnet::policy::{Egress, Instance, Proto, Service, ServicePort};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);
const CALLER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
const INSTANCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const LIMIT: Duration = Duration::from_secs(5);

fn service(name: &str, vip: Ipv4Addr, instances: &[(Ipv4Addr, bool)], allow: &[&str]) -> Service {
    Service {
        name: name.to_string(),
        vip,
        ports: vec![ServicePort {
            proto: Proto::Tcp,
            port: 80,
            target: 8080,
        }],
        instances: instances
            .iter()
            .map(|&(addr, healthy)| Instance { addr, healthy })
            .collect(),
        allow: allow.iter().map(|a| a.to_string()).collect(),
        egress: Egress::Internet,
        activate: true,
    }
}

/// `a` (at [`CALLER`]) may call `b` (VIP [`VIP`]:80), whose instance is at `b_instances`
/// listening on `target`.
fn policy(b_instances: &[(Ipv4Addr, bool)], target: u16) -> Option<Arc<Policy>> {
    let mut p = Policy::new(Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8), CALLER, &[]);
    let mut b = service("b", VIP, b_instances, &[]);
    b.ports[0].target = target;
    p.services = vec![
        service("a", Ipv4Addr::new(10, 99, 0, 2), &[(CALLER, true)], &["b"]),
        b,
    ];
    Some(Arc::new(p))
}

struct Rig {
    activator: Activator,
    port: u16,
    policy: watch::Sender<Option<Arc<Policy>>>,
    wakes: mpsc::Receiver<String>,
}

fn rig(limits: Limits, holds: &[(&str, Hold)]) -> Rig {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let port = l.local_addr().expect("addr").port();
    let (policy, rx) = watch::channel(policy(&[(INSTANCE, false)], 1));
    let (tx, wakes) = mpsc::channel(8);
    let origin: Box<Origin> = Box::new(|_| Ok(SocketAddrV4::new(VIP, 80)));
    let activator = Activator::with_origin(l, rx, tx, limits, origin).expect("start");
    let holds: BTreeMap<String, Hold> = holds.iter().map(|(s, h)| (s.to_string(), *h)).collect();
    activator.set_holds(holds);
    Rig {
        activator,
        port,
        policy,
        wakes,
    }
}

async fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind");
    socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .expect("connect")
}

/// What reading `s` ends with: the bytes, or the error (a reset is `ConnectionReset`).
async fn read_all(s: &mut TcpStream) -> Result<Vec<u8>, ErrorKind> {
    let mut out = Vec::new();
    match tokio::time::timeout(LIMIT, s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) => Err(e.kind()),
        Err(_) => Err(ErrorKind::TimedOut),
    }
}

/// Polls `check` until it holds, for at most [`LIMIT`].
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An instance at [`INSTANCE`] that echoes what it reads, until the caller closes.
async fn echo_instance() -> u16 {
    let l = TcpListener::bind((INSTANCE, 0))
        .await
        .expect("bind instance");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_call_is_held_woken_and_handed_over() {
    let mut r = rig(Limits::default(), &[]);
    let mut client = connect_from(CALLER, r.port).await;
    client.write_all(b"hello").await.expect("write");
    let woken = tokio::time::timeout(LIMIT, r.wakes.recv()).await;
    assert_eq!(woken, Ok(Some("b".to_string())));
    until("one held", || {
        r.activator.held() == BTreeMap::from([("b".into(), 1)])
    })
    .await;
    let port = echo_instance().await;
    r.policy.send_replace(policy(&[(INSTANCE, true)], port));
    let mut back = [0u8; 5];
    tokio::time::timeout(LIMIT, client.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(&back, b"hello");
    let proxied = Counts {
        held: 0,
        proxied: 1,
    };
    assert_eq!(
        r.activator.counts(),
        BTreeMap::from([("b".into(), proxied)])
    );
    drop(client);
    until("nothing open", || r.activator.counts().is_empty()).await;
}

#[tokio::test]
async fn a_caller_outside_the_allow_list_is_reset_and_wakes_nothing() {
    let mut r = rig(Limits::default(), &[]);
    let mut client = connect_from(STRANGER, r.port).await;
    assert_eq!(read_all(&mut client).await, Err(ErrorKind::ConnectionReset));
    assert_eq!(r.wakes.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    assert!(r.activator.counts().is_empty());
}

#[tokio::test]
async fn a_full_queue_resets_at_once() {
    let hold = Hold {
        queue: 1,
        timeout: Duration::from_secs(30),
    };
    let r = rig(Limits::default(), &[("b", hold)]);
    let _first = connect_from(CALLER, r.port).await;
    until("one held", || {
        r.activator.held() == BTreeMap::from([("b".into(), 1)])
    })
    .await;
    let mut second = connect_from(CALLER, r.port).await;
    assert_eq!(read_all(&mut second).await, Err(ErrorKind::ConnectionReset));
    assert_eq!(
        r.activator.held(),
        BTreeMap::from([("b".into(), 1)]),
        "the first is still held"
    );
}

#[tokio::test]
async fn a_call_held_past_its_timeout_is_reset() {
    let hold = Hold {
        queue: 10,
        timeout: Duration::from_millis(200),
    };
    let mut r = rig(Limits::default(), &[("b", hold)]);
    let mut client = connect_from(CALLER, r.port).await;
    let woken = tokio::time::timeout(LIMIT, r.wakes.recv()).await;
    assert_eq!(woken, Ok(Some("b".to_string())), "held, then woken");
    assert_eq!(read_all(&mut client).await, Err(ErrorKind::ConnectionReset));
    until("nothing held", || r.activator.counts().is_empty()).await;
}

#[tokio::test]
async fn the_total_cap_holds_over_all_services() {
    let limits = Limits {
        max_held: 1,
        ..Limits::default()
    };
    let r = rig(limits, &[]);
    let _first = connect_from(CALLER, r.port).await;
    until("one held", || {
        r.activator.held() == BTreeMap::from([("b".into(), 1)])
    })
    .await;
    let mut second = connect_from(CALLER, r.port).await;
    assert_eq!(read_all(&mut second).await, Err(ErrorKind::ConnectionReset));
}

#[test]
fn backends_are_healthy_ones_local_first() {
    let remote = Ipv4Addr::new(10, 88, 1, 5);
    let mut p = Policy::new(Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24), CALLER, &[]);
    let local = Ipv4Addr::new(10, 88, 0, 7);
    let sick = Ipv4Addr::new(10, 88, 0, 6);
    p.services = vec![service(
        "b",
        VIP,
        &[(remote, true), (sick, false), (local, true)],
        &[],
    )];
    let at = |a| SocketAddr::from((a, 8080));
    assert_eq!(route::backends(&p, "b", 80), vec![at(local), at(remote)]);
    assert!(route::backends(&p, "b", 81).is_empty(), "no such port");
    assert!(route::backends(&p, "c", 80).is_empty(), "no such service");
}

#[test]
fn the_allow_check_mirrors_the_allow_set() {
    let p = policy(&[(INSTANCE, false)], 1).expect("policy");
    let mut p = (*p).clone();
    assert!(route::allowed(&p, CALLER, "b"));
    assert!(
        !route::allowed(&p, STRANGER, "b"),
        "no service at that address"
    );
    assert!(!route::allowed(&p, INSTANCE, "a"), "b does not list a");
    // An unhealthy instance of the caller still calls, as in the allow set.
    p.services[0].instances[0].healthy = false;
    assert!(route::allowed(&p, CALLER, "b"));
    p.services[0].allow.push("ghost".into());
    assert!(
        !route::allowed(&p, CALLER, "ghost"),
        "a name without a service"
    );
    let dst = |port| SocketAddrV4::new(VIP, port);
    assert_eq!(
        route::service_at(&p, dst(80)).map(|(s, _)| s.name.as_str()),
        Some("b")
    );
    assert!(route::service_at(&p, dst(81)).is_none());
}

#[test]
fn one_wake_per_service_per_second() {
    let q = queue::Queue::new(4);
    let t0 = Instant::now();
    assert!(q.wake_due("b", t0));
    assert!(!q.wake_due("b", t0 + Duration::from_millis(999)));
    assert!(
        q.wake_due("c", t0 + Duration::from_millis(10)),
        "another service"
    );
    assert!(q.wake_due("b", t0 + Duration::from_secs(1)));
}
