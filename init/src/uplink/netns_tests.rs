//! The real thing, against real peers: two network namespaces joined by a veth pair, Debian's
//! dnsmasq as the DHCP server in one, our client in the other. Needs root (CI runs as root);
//! fails loudly otherwise. Everything the tests create is removed again, also on failure.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use baton_spec::NetworkConfig;

use super::{linklocal, start, Options};
use crate::board::console::Console;
use crate::board::status::{Address, AddressSource, BoardStatus};
use baton_testnet::{require_root, wait_for, Killed, Netns, TempDir};

/// Two namespaces joined by a veth pair `<tag>s` (server side, up, with `server_addr`) and
/// `<tag>c` (client side, down).
fn pair(tag: &str, server_addr: &str) -> (Netns, Netns, String, String) {
    let pid = std::process::id();
    let srv = Netns::named(format!("baton-{tag}{pid}-srv"));
    let cli = Netns::named(format!("baton-{tag}{pid}-cli"));
    let (vs, vc) = (format!("{tag}{pid}s"), format!("{tag}{pid}c"));
    srv.ip(&[
        "link", "add", &vs, "type", "veth", "peer", "name", &vc, "netns", &cli.0,
    ]);
    srv.ip(&["addr", "add", server_addr, "dev", &vs]);
    srv.ip(&["link", "set", &vs, "up"]);
    (srv, cli, vs, vc)
}

/// Our client with the default config, on a thread inside a namespace: it reports its NTP
/// servers once started and runs until [`Client::stop`].
struct Client {
    thread: std::thread::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    ntp: std::sync::mpsc::Receiver<Vec<Ipv4Addr>>,
}

impl Client {
    fn start(ns: &Netns, state: Arc<BoardStatus>, options: Options) -> Client {
        let (ntp_tx, ntp) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = ns.spawn_async(move || {
            Box::pin(async move {
                let console = Arc::new(Console::quiet(1000));
                let net = start(
                    &NetworkConfig::default(),
                    "baton-test",
                    state,
                    console,
                    options,
                )
                .await
                .expect("network start");
                let _ = ntp_tx.send(net.ntp_servers());
                let _ = stop_rx.await;
                net.stop().await;
            })
        });
        Client { thread, stop, ntp }
    }

    /// Stops the client (it releases its lease and removes its addresses) and waits for it.
    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("client thread");
    }
}

fn count(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

#[test]
fn dhcp_lease_renewal_and_release_against_dnsmasq() {
    require_root();
    let (srv, cli, vs, vc) = pair("d", "10.77.0.1/24");
    let tmp = TempDir::new("net-dhcp");
    let (log, leases, resolv) = (
        tmp.0.join("dnsmasq.log"),
        tmp.0.join("leases"),
        tmp.0.join("resolv.conf"),
    );
    let mut dnsmasq = Command::new("ip");
    dnsmasq.args([
        "netns",
        "exec",
        &srv.0,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
    ]);
    dnsmasq.args([
        "--bind-interfaces",
        "--interface",
        &vs,
        "--user=root",
        "--log-dhcp",
    ]);
    dnsmasq.arg("--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,2m");
    dnsmasq.args([
        "--dhcp-option=option:router,10.77.0.1",
        "--dhcp-option=option:dns-server,10.77.0.1",
    ]);
    dnsmasq.args([
        "--dhcp-option=option:ntp-server,10.77.0.1",
        "--dhcp-option=option:T1,10s",
    ]);
    dnsmasq.arg(format!("--dhcp-leasefile={}", leases.display()));
    dnsmasq.arg(format!("--log-facility={}", log.display()));
    dnsmasq.arg(format!("--pid-file={}", tmp.0.join("pid").display()));
    let _dnsmasq = Killed(
        dnsmasq
            .spawn()
            .expect("starting dnsmasq (package dnsmasq-base)"),
    );
    wait_for("dnsmasq to start", Duration::from_secs(10), || {
        (count(&log, "DHCP, IP range") > 0).then_some(())
    });

    let state = Arc::new(BoardStatus::default());
    let options = Options {
        interfaces: Some(vec![vc.clone()]),
        resolv_conf: resolv.clone(),
        wait: Duration::from_secs(30),
        link_local_after: Duration::from_secs(600),
        ..Options::under(Path::new("/"))
    };
    let client = Client::start(&cli, state.clone(), options);

    let ntp = client
        .ntp
        .recv_timeout(Duration::from_secs(40))
        .expect("start returned");
    assert_eq!(
        ntp,
        vec![Ipv4Addr::new(10, 77, 0, 1)],
        "NTP server from the lease"
    );
    let addrs = state.addresses();
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    let Address {
        interface,
        address,
        source,
    } = &addrs[0];
    assert_eq!(
        (interface.as_str(), *source),
        (vc.as_str(), AddressSource::Dhcp)
    );
    assert!(
        address.starts_with("10.77.0.") && address.ends_with("/24"),
        "{address}"
    );
    assert_eq!(
        cli.addresses(&vc),
        vec![address.clone()],
        "address configured on the interface"
    );
    let route: serde_json::Value =
        serde_json::from_str(&cli.ip(&["-j", "route", "show", "default"]))
            .expect("ip -j route is JSON");
    assert_eq!(route[0]["gateway"], "10.77.0.1", "{route}");
    assert_eq!(route[0]["dev"], vc.as_str(), "{route}");
    assert_eq!(route[0]["protocol"], "dhcp", "{route}");
    let resolv_text = std::fs::read_to_string(&resolv).expect("resolv.conf written");
    assert!(
        resolv_text.contains("nameserver 10.77.0.1\n"),
        "{resolv_text}"
    );
    let ip = address.trim_end_matches("/24").to_string();
    assert!(std::fs::read_to_string(&leases)
        .unwrap_or_default()
        .contains(&ip));

    // T1 is 10 s: a renewal is a second ACK for the same address.
    wait_for("a lease renewal", Duration::from_secs(40), || {
        (count(&log, &format!("DHCPACK({vs}) {ip}")) >= 2).then_some(())
    });
    assert_eq!(
        cli.addresses(&vc),
        vec![address.clone()],
        "address kept across the renewal"
    );

    client.stop();
    assert!(
        count(&log, &format!("DHCPRELEASE({vs}) {ip}")) >= 1,
        "dnsmasq saw the release"
    );
    wait_for(
        "the lease file to drop the lease",
        Duration::from_secs(10),
        || {
            (!std::fs::read_to_string(&leases)
                .unwrap_or_default()
                .contains(&ip))
            .then_some(())
        },
    );
    assert!(cli.addresses(&vc).is_empty(), "address removed on stop");
}

#[test]
fn link_local_fallback_probes_around_a_conflicting_neighbour() {
    require_root();
    let (srv, cli, vs, vc) = pair("l", "192.0.2.1/24");
    let link: serde_json::Value =
        serde_json::from_str(&cli.ip(&["-j", "link", "show", "dev", &vc]))
            .expect("ip -j link is JSON");
    let mac_text = link[0]["address"]
        .as_str()
        .expect("veth has a MAC")
        .to_string();
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(mac_text.split(':')) {
        *b = u8::from_str_radix(part, 16).expect("hex MAC");
    }
    // The neighbour already holds our first choice, so probing must move on to the second.
    let taken = linklocal::candidate(mac, 0);
    srv.ip(&["addr", "add", &format!("{taken}/16"), "dev", &vs]);
    let want = format!("{}/16", linklocal::candidate(mac, 1));

    let tmp = TempDir::new("net-ll");
    let state = Arc::new(BoardStatus::default());
    let options = Options {
        interfaces: Some(vec![vc.clone()]),
        resolv_conf: tmp.0.join("resolv.conf"),
        wait: Duration::from_secs(1),
        link_local_after: Duration::from_secs(1),
        ..Options::under(Path::new("/"))
    };
    let client = Client::start(&cli, state.clone(), options);
    let got = wait_for("a link-local address", Duration::from_secs(40), || {
        let a = cli.addresses(&vc);
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(got, vec![want.clone()]);
    let addrs = state.addresses();
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert_eq!(
        (addrs[0].address.as_str(), addrs[0].source),
        (want.as_str(), AddressSource::LinkLocal)
    );
    // The neighbour can reach us at the new address: our kernel answers its ARP request.
    let target: Ipv4Addr = want
        .trim_end_matches("/16")
        .parse()
        .expect("an IPv4 address");
    srv.spawn_async(move || {
        Box::pin(async move {
            let s = tokio::net::UdpSocket::bind("0.0.0.0:0")
                .await
                .expect("udp socket");
            s.send_to(b"hello", (target, 9))
                .await
                .expect("send to the link-local address");
        })
    })
    .join()
    .expect("sender thread");
    wait_for(
        "the neighbour to resolve our MAC",
        Duration::from_secs(10),
        || {
            let neigh: serde_json::Value = serde_json::from_str(&srv.ip(&[
                "-j",
                "neigh",
                "show",
                "dev",
                &vs,
                "to",
                &target.to_string(),
            ]))
            .expect("ip -j neigh is JSON");
            (neigh[0]["lladdr"] == mac_text.as_str()).then_some(())
        },
    );

    client.stop();
    assert!(
        cli.addresses(&vc).is_empty(),
        "link-local address removed on stop"
    );
}

#[test]
fn static_mode_configures_the_first_interface_without_dhcp() {
    require_root();
    let (_srv, cli, _vs, vc) = pair("s", "192.0.2.1/24");
    let tmp = TempDir::new("net-static");
    let config = NetworkConfig {
        mode: baton_spec::NetworkMode::Static(baton_spec::StaticAddress {
            address: Ipv4Addr::new(192, 0, 2, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
        }),
        dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
        link_local: true,
    };
    let options = Options {
        interfaces: Some(vec![vc.clone()]),
        resolv_conf: tmp.0.join("resolv.conf"),
        ..Options::under(Path::new("/"))
    };
    let state = Arc::new(BoardStatus::default());
    let client_state = state.clone();
    cli.spawn_async(move || {
        Box::pin(async move {
            let console = Arc::new(Console::quiet(1000));
            let net = start(&config, "baton-test", client_state, console, options)
                .await
                .expect("network start");
            assert!(net.ntp_servers().is_empty());
            net.stop().await;
        })
    })
    .join()
    .expect("client thread");
    assert_eq!(cli.addresses(&vc), vec!["192.0.2.10/24".to_string()]);
    let route: serde_json::Value =
        serde_json::from_str(&cli.ip(&["-j", "route", "show", "default"]))
            .expect("ip -j route is JSON");
    assert_eq!(route[0]["gateway"], "192.0.2.1", "{route}");
    assert_eq!(route[0]["protocol"], "static", "{route}");
    let addrs = state.addresses();
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert_eq!(addrs[0].source, AddressSource::Static);
    let resolv = std::fs::read_to_string(tmp.0.join("resolv.conf")).expect("resolv.conf written");
    assert!(resolv.contains("nameserver 192.0.2.53\n"), "{resolv}");
    assert_eq!(cli.addresses("lo"), vec!["127.0.0.1/8".to_string()]);
}
