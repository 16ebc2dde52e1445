//! The bridge for real, in namespaces the test creates: a "board" namespace with `baton0`, a
//! container namespace attached to it, and an "uplink" namespace behind the board. Checks
//! addresses and routes, TCP across the bridge both ways, and that masquerading makes the
//! container's connection to the uplink come from the board's uplink address. Needs root.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{nat_table, Bridge, Config, Netns as Target};
use crate::svcnet::nft::{self, Ipv4Net, Ruleset};
use baton_testnet::{require_root, wait_for, Killed, Netns};

/// Accepts one connection on `addr` inside `ns` (on a background thread) and answers with
/// the peer's address; returns once the listener is bound.
fn serve_once(ns: &Netns, addr: SocketAddr) -> std::thread::JoinHandle<SocketAddr> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = ns.spawn(move || {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        ready_tx.send(()).expect("signal readiness");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    stream.set_nonblocking(false).expect("blocking stream");
                    let _ = stream.write_all(peer.ip().to_string().as_bytes());
                    return peer;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "no connection to {addr} within 10 s"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept on {addr}: {e}"),
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("listener bound");
    server
}

/// Connects to `addr` from inside `ns` and returns what the server said (our address as it saw it).
fn connect_from(ns: &Netns, addr: SocketAddr) -> String {
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut seen = String::new();
        s.read_to_string(&mut seen).expect("reading the answer");
        seen
    })
}

#[test]
fn containers_reach_the_board_and_the_uplink_through_nat() {
    require_root();
    let board = Netns::new("br-board");
    let ctr = Netns::new("br-ctr");
    let ctr2 = Netns::new("br-ctr2");
    let uplink = Netns::new("br-uplink");
    board.ip(&[
        "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", &uplink.0,
    ]);
    board.ip(&["addr", "add", "192.0.2.1/24", "dev", "up0"]);
    board.ip(&["link", "set", "up0", "up"]);
    uplink.ip(&["addr", "add", "192.0.2.2/24", "dev", "up1"]);
    uplink.ip(&["link", "set", "up1", "up"]);
    // The second container is named by the PID of a process inside its namespace.
    let holder = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ctr2.0, "sleep", "60"])
            .spawn()
            .expect("starting a process in the second container namespace"),
    );
    let holder_pid = holder.0.id();
    let host_ns = std::fs::read_link("/proc/self/ns/net").expect("our namespace");
    wait_for(
        "the holder process to enter its namespace",
        Duration::from_secs(10),
        || {
            let ns = std::fs::read_link(format!("/proc/{holder_pid}/ns/net")).ok()?;
            (ns != host_ns).then_some(())
        },
    );

    let ctr_file = std::fs::File::open(ctr.path()).expect("container namespace file");
    let subnet = Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24);
    let (first, second) = board.block_on(move || {
        Box::pin(async move {
            let bridge = Bridge::ensure(Config::default()).await.expect("bridge up");
            let mut pool = bridge.pool().await.expect("pool");
            let a = pool.allocate().expect("an address");
            let att = bridge
                .attach(a, Target::Fd(ctr_file.as_fd()))
                .await
                .expect("attach by fd");
            assert_eq!(att.host_veth, "bv0a580002");
            let b = pool.allocate().expect("a second address");
            bridge
                .attach(b, Target::Pid(holder_pid))
                .await
                .expect("attach by pid");
            nft::apply(&Ruleset::new(vec![nat_table(subnet, "baton0")])).expect("NAT rules");
            (a, b)
        })
    });
    assert_eq!(
        (first, second),
        (Ipv4Addr::new(10, 88, 0, 2), Ipv4Addr::new(10, 88, 0, 3))
    );

    assert_eq!(board.addresses("baton0"), vec!["10.88.0.1/24".to_string()]);
    assert_eq!(ctr.addresses("eth0"), vec!["10.88.0.2/24".to_string()]);
    assert_eq!(ctr2.addresses("eth0"), vec!["10.88.0.3/24".to_string()]);
    let route: serde_json::Value =
        serde_json::from_str(&ctr.ip(&["-j", "route", "show", "default"])).expect("ip -j route");
    assert_eq!(route[0]["gateway"], "10.88.0.1", "{route}");
    assert_eq!(route[0]["dev"], "eth0", "{route}");
    let lo: serde_json::Value =
        serde_json::from_str(&ctr.ip(&["-j", "link", "show", "lo"])).expect("ip -j link");
    assert!(
        lo[0]["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP")),
        "{lo}"
    );
    let ports: serde_json::Value =
        serde_json::from_str(&board.ip(&["-j", "link", "show", "master", "baton0"]))
            .expect("ip -j link");
    let names: Vec<&str> = ports
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, vec!["bv0a580002", "bv0a580003"]);
    let forwarding = board.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]).1;
    assert_eq!(forwarding.trim(), "1");

    // Board to container, container to board, container to container across the bridge.
    let server = serve_once(&ctr, "10.88.0.2:7000".parse().expect("addr"));
    assert_eq!(
        connect_from(&board, "10.88.0.2:7000".parse().expect("addr")),
        "10.88.0.1"
    );
    server.join().expect("server thread");
    let server = serve_once(&board, "10.88.0.1:7001".parse().expect("addr"));
    assert_eq!(
        connect_from(&ctr, "10.88.0.1:7001".parse().expect("addr")),
        "10.88.0.2"
    );
    server.join().expect("server thread");
    let server = serve_once(&ctr2, "10.88.0.3:7002".parse().expect("addr"));
    assert_eq!(
        connect_from(&ctr, "10.88.0.3:7002".parse().expect("addr")),
        "10.88.0.2"
    );
    server.join().expect("server thread");

    // Container to the uplink: masqueraded to the board's uplink address.
    let server = serve_once(&uplink, "192.0.2.2:7003".parse().expect("addr"));
    assert_eq!(
        connect_from(&ctr, "192.0.2.2:7003".parse().expect("addr")),
        "192.0.2.1"
    );
    let peer = server.join().expect("server thread");
    assert_eq!(peer.ip().to_string(), "192.0.2.1");

    // A restart: the bridge is found again, the pool rebuilt from the veths, leftovers removed.
    let (in_use, next, removed) = board.block_on(|| {
        Box::pin(async {
            let bridge = Bridge::ensure(Config::default())
                .await
                .expect("bridge again");
            let in_use = bridge.addresses_in_use().await.expect("addresses in use");
            let next = bridge
                .pool()
                .await
                .expect("pool")
                .allocate()
                .expect("an address");
            let removed = bridge
                .remove_leftovers(&[Ipv4Addr::new(10, 88, 0, 3)])
                .await
                .expect("removing leftovers");
            bridge
                .detach(Ipv4Addr::new(10, 88, 0, 9))
                .await
                .expect("detaching nothing is fine");
            (in_use, next, removed)
        })
    });
    assert_eq!(
        in_use,
        vec![Ipv4Addr::new(10, 88, 0, 2), Ipv4Addr::new(10, 88, 0, 3)]
    );
    assert_eq!(next, Ipv4Addr::new(10, 88, 0, 4));
    assert_eq!(removed, vec!["bv0a580002".to_string()]);
    assert!(
        !ctr.exec("ip", &["link", "show", "eth0"]).0,
        "the container end went with the host end"
    );
    assert_eq!(
        ctr2.addresses("eth0"),
        vec!["10.88.0.3/24".to_string()],
        "kept"
    );
    assert_eq!(
        board.addresses("baton0"),
        vec!["10.88.0.1/24".to_string()],
        "address not duplicated"
    );
}

/// `nf_call_iptables` of `name` in `ns`, as `ip -d` reports it.
fn nf_call_iptables(ns: &Netns, name: &str) -> serde_json::Value {
    let link: serde_json::Value =
        serde_json::from_str(&ns.ip(&["-d", "-j", "link", "show", name])).expect("ip -d -j link");
    link[0]["linkinfo"]["info_data"]["nf_call_iptables"].clone()
}

#[test]
fn the_bridge_hands_bridged_ipv4_to_netfilter_new_or_found() {
    require_root();
    let fresh = Netns::new("br-nf-new");
    fresh.block_on(|| {
        Box::pin(async {
            Bridge::ensure(Config::default()).await.expect("bridge up");
        })
    });
    assert_eq!(nf_call_iptables(&fresh, "baton0"), 1, "created by ensure");

    // A bridge left from before (or made by someone else) without the option gets it.
    let found = Netns::new("br-nf-old");
    found.ip(&[
        "link",
        "add",
        "baton0",
        "type",
        "bridge",
        "nf_call_iptables",
        "0",
    ]);
    assert_eq!(nf_call_iptables(&found, "baton0"), 0, "precondition");
    found.block_on(|| {
        Box::pin(async {
            Bridge::ensure(Config::default()).await.expect("bridge up");
        })
    });
    assert_eq!(nf_call_iptables(&found, "baton0"), 1, "found by ensure");
}
