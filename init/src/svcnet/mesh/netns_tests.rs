//! The kernel side, as far as the host goes: its kernel has no WireGuard, so `Mesh::up` must
//! say so; the routes half of `Mesh::set_peers` runs for real against a veth in a namespace
//! the test creates and removes. Needs root.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::tests::{hex32, ALICE_PRIVATE};
use super::*;
use baton_testnet::{require_root, Netns};

/// Whether the running kernel has the wireguard driver loaded.
fn kernel_has_wireguard() -> bool {
    std::path::Path::new("/sys/module/wireguard").exists()
}

#[test]
fn up_without_wireguard_in_the_kernel_says_so() {
    require_root();
    if kernel_has_wireguard() {
        eprintln!("this kernel has wireguard: the error path cannot be tested here");
        return;
    }
    let ns = Netns::new("mesh-nowg");
    let (up, create) = ns.block_on(|| {
        Box::pin(async {
            let pair = Keypair::from_private(hex32(ALICE_PRIVATE));
            let up = Mesh::up(&pair, PORT, Ipv4Addr::new(10, 88, 1, 1))
                .await
                .map(|m| m.index());
            // The link creation alone (what a kernel with the family but without the link
            // type would reach) fails the same way.
            let create = match link::connect() {
                Ok(handle) => link::ensure(&handle).await,
                Err(e) => Err(e),
            };
            (up, create)
        })
    });
    for got in [up, create] {
        let e = got.expect_err("no wireguard here");
        assert!(matches!(e, Error::NoWireguard), "{e:?}");
        assert!(e.to_string().contains("no wireguard support"), "{e}");
    }
    let links = ns.ip(&["-o", "link", "show"]);
    assert!(!links.contains(LINK), "nothing was created: {links}");
}

fn peer(b: u8) -> Peer {
    Peer {
        key: PublicKey([b; 32]),
        endpoint: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, b), PORT),
        allowed: vec![Ipv4Net::new(Ipv4Addr::new(10, 88, b, 0), 24)],
    }
}

/// `ip route show dev <dev>`, one line per route, sorted.
fn routes_on(ns: &Netns, dev: &str) -> Vec<String> {
    let mut lines: Vec<String> = ns
        .ip(&["-4", "route", "show", "dev", dev])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

#[test]
fn routes_follow_the_peers_on_a_real_link() {
    require_root();
    let ns = Netns::new("mesh-routes");
    // A veth stands in for the WireGuard link; another link holds the board's bridge address.
    ns.ip(&["link", "add", "m0", "type", "veth", "peer", "name", "m1"]);
    ns.ip(&["link", "add", "br0", "type", "veth", "peer", "name", "br1"]);
    for dev in ["m0", "m1", "br0", "br1"] {
        ns.ip(&["link", "set", dev, "up"]);
    }
    ns.ip(&["addr", "add", "10.88.1.1/24", "dev", "br0"]);
    // A stale route from an earlier run, without the source.
    ns.ip(&["route", "add", "10.88.9.0/24", "dev", "m0"]);
    let json: serde_json::Value =
        serde_json::from_str(&ns.ip(&["-j", "link", "show", "m0"])).expect("ip -j is JSON");
    let index = u32::try_from(json[0]["ifindex"].as_u64().expect("ifindex")).expect("u32");
    let source = Ipv4Addr::new(10, 88, 1, 1);
    let sync = |peers: Vec<Peer>| {
        ns.block_on(move || {
            Box::pin(async move {
                let handle = link::connect()?;
                link::sync_routes(&handle, index, &peers, source).await
            })
        })
    };
    sync(vec![peer(2), peer(3)]).expect("first sync");
    assert_eq!(
        routes_on(&ns, "m0"),
        vec![
            "10.88.2.0/24 proto static scope link src 10.88.1.1",
            "10.88.3.0/24 proto static scope link src 10.88.1.1",
        ]
    );
    // Again: nothing changes; then a peer goes and another comes.
    sync(vec![peer(2), peer(3)]).expect("same again");
    sync(vec![peer(3), peer(4)]).expect("changed peers");
    assert_eq!(
        routes_on(&ns, "m0"),
        vec![
            "10.88.3.0/24 proto static scope link src 10.88.1.1",
            "10.88.4.0/24 proto static scope link src 10.88.1.1",
        ]
    );
    // Routes on other links are not touched; no peers, no routes.
    sync(Vec::new()).expect("no peers");
    assert!(routes_on(&ns, "m0").is_empty());
    assert_eq!(
        routes_on(&ns, "br0"),
        vec!["10.88.1.0/24 proto kernel scope link src 10.88.1.1"]
    );
    // A source that is not the board's is refused, and the error says which route.
    let bad = ns.block_on(move || {
        Box::pin(async move {
            let handle = link::connect()?;
            link::sync_routes(&handle, index, &[peer(5)], Ipv4Addr::new(10, 99, 0, 1)).await
        })
    });
    let e = bad.expect_err("not a local address");
    assert!(
        e.to_string()
            .contains("adding route 10.88.5.0/24 src 10.99.0.1 on baton-wg"),
        "{e}"
    );
}
