//! Another board's front door reaching a routed instance here, with the policy applied for
//! real: the other board sends from its bridge address over the mesh link.

use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

use super::netns_tests::{apply_in, at, join_mesh, lab_policy, refused, reset, setup, Listener};
use super::tests::ip;
use super::*;
use baton_testnet::{require_root, Netns};

/// Connects from `from` inside `ns` to `to` and reads the server's name; a dropped connection
/// times out.
fn call_from(ns: &Netns, from: Ipv4Addr, to: SocketAddrV4) -> Result<String, ErrorKind> {
    use socket2::{Domain, Protocol, Socket, Type};
    ns.run(move || {
        let s =
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(|e| e.kind())?;
        s.bind(&SocketAddrV4::new(from, 0).into())
            .map_err(|e| e.kind())?;
        s.connect_timeout(&to.into(), Duration::from_millis(700))
            .map_err(|e| e.kind())?;
        let mut s = TcpStream::from(s);
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.kind())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.kind())?;
        Ok(out)
    })
}

#[test]
fn another_board_s_bridge_reaches_routed_ports_only() {
    require_root();
    let lab = setup("polfd");
    let remote = Netns::new("polfd-r");
    // The other board's bridge address and one of its containers.
    let bridge = Ipv4Addr::new(10, 88, 7, 1);
    let container = Ipv4Addr::new(10, 88, 7, 2);
    join_mesh(&lab, &remote, &[container, bridge]);
    let [_, b, c] = &lab.containers[..] else {
        panic!("three containers")
    };
    let any = Ipv4Addr::UNSPECIFIED;
    let _servers = [
        Listener::start(b, at(any, 8080), "b"),
        Listener::start(b, at(any, 9090), "b admin"),
        Listener::start(c, at(ip(4), 8080), "c"),
    ];
    assert_eq!(
        call_from(&remote, bridge, at(ip(3), 9090)),
        Ok("b admin".into()),
        "open before the policy"
    );
    let mut p = lab_policy();
    p.mesh = Some("baton-wg".into());
    p.cluster = vec![Ipv4Net::new(Ipv4Addr::new(10, 88, 7, 0), 24)];
    p.front_door_peers = vec![bridge];
    p.routed = vec![(ip(3), 8080)];
    apply_in(&lab.board, &p);

    assert_eq!(
        call_from(&remote, bridge, at(ip(3), 8080)),
        Ok("b".into()),
        "the other board's bridge → b's routed port"
    );
    reset(
        call_from(&remote, bridge, at(ip(3), 9090)),
        "the other board's bridge → a port of b that is not routed",
    );
    refused(
        call_from(&remote, bridge, at(ip(4), 8080)),
        "the other board's bridge → c, not routed",
    );
    reset(
        call_from(&remote, container, at(ip(3), 8080)),
        "the other board's container → b's routed port (b allows no one)",
    );
    let listing = lab.board.nft(&["list", "table", "inet", FILTER_TABLE]);
    let rule =
        "iifname \"baton-wg\" ip saddr @front_door_peers ip daddr . tcp dport @routed accept";
    assert!(listing.contains(rule), "{rule:?} missing from:\n{listing}");

    // Without the peer in the set, its call is refused like any other from the mesh.
    p.generation = 2;
    p.front_door_peers.clear();
    apply_in(&lab.board, &p);
    reset(
        call_from(&remote, bridge, at(ip(3), 8080)),
        "a bridge address not among the peers",
    );
}
