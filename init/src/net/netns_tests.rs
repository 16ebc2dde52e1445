//! The real thing, against real peers: two network namespaces joined by a veth pair, Debian's
//! dnsmasq as the DHCP server in one, our client in the other. Needs root (CI runs as root);
//! fails loudly otherwise. Everything the tests create is removed again, also on failure.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_spec::NetworkConfig;

use super::{linklocal, start_with, Options};
use crate::status::{Address, AddressSource, State};

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "network namespace tests need root (they create namespaces and veths)"
    );
}

/// Runs a command and returns its stdout; panics with its stderr on failure.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A network namespace, deleted on drop (which also deletes the veth end inside it).
struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// IPv4 addresses on `dev` as `a.b.c.d/n`.
    fn addresses(&self, dev: &str) -> Vec<String> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ip(&["-j", "-4", "addr", "show", "dev", dev]))
                .expect("ip -j addr output is JSON");
        let mut out = Vec::new();
        for link in json.as_array().into_iter().flatten() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{}/{}",
                    a["local"].as_str().unwrap_or("?"),
                    a["prefixlen"]
                ));
            }
        }
        out
    }

    /// Runs `f` on a thread inside this namespace with its own current-thread tokio runtime.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = PathBuf::from("/run/netns").join(&self.0);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            // SAFETY: setns on a valid namespace descriptor only changes this thread's network namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A child process killed and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("baton-net-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two namespaces joined by a veth pair `<tag>s` (server side, up, with `server_addr`) and
/// `<tag>c` (client side, down).
fn pair(tag: &str, server_addr: &str) -> (Netns, Netns, String, String) {
    let pid = std::process::id();
    let srv = Netns::new(format!("baton-{tag}{pid}-srv"));
    let cli = Netns::new(format!("baton-{tag}{pid}-cli"));
    let (vs, vc) = (format!("{tag}{pid}s"), format!("{tag}{pid}c"));
    srv.ip(&[
        "link", "add", &vs, "type", "veth", "peer", "name", &vc, "netns", &cli.0,
    ]);
    srv.ip(&["addr", "add", server_addr, "dev", &vs]);
    srv.ip(&["link", "set", &vs, "up"]);
    (srv, cli, vs, vc)
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
    let tmp = TempDir::new("dhcp");
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

    let state = Arc::new(State::default());
    let (ntp_tx, ntp_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        interfaces: Some(vec![vc.clone()]),
        resolv_conf: resolv.clone(),
        wait: Duration::from_secs(30),
        link_local_after: Duration::from_secs(600),
        ..Options::default()
    };
    let client_state = state.clone();
    let client = cli.spawn(move || {
        Box::pin(async move {
            let net = start_with(
                &NetworkConfig::default(),
                "baton-test",
                client_state,
                options,
            )
            .await
            .expect("network start");
            let _ = ntp_tx.send(net.ntp_servers());
            let _ = stop_rx.await;
            net.stop().await;
        })
    });

    let ntp = ntp_rx
        .recv_timeout(Duration::from_secs(40))
        .expect("start_with returned");
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

    let _ = stop_tx.send(());
    client.join().expect("client thread");
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

    let tmp = TempDir::new("ll");
    let state = Arc::new(State::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        interfaces: Some(vec![vc.clone()]),
        resolv_conf: tmp.0.join("resolv.conf"),
        wait: Duration::from_secs(1),
        link_local_after: Duration::from_secs(1),
        ..Options::default()
    };
    let client_state = state.clone();
    let client = cli.spawn(move || {
        Box::pin(async move {
            let net = start_with(
                &NetworkConfig::default(),
                "baton-test",
                client_state,
                options,
            )
            .await
            .expect("network start");
            let _ = stop_rx.await;
            net.stop().await;
        })
    });
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
    srv.spawn(move || {
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

    let _ = stop_tx.send(());
    client.join().expect("client thread");
    assert!(
        cli.addresses(&vc).is_empty(),
        "link-local address removed on stop"
    );
}

#[test]
fn static_mode_configures_the_first_interface_without_dhcp() {
    require_root();
    let (_srv, cli, _vs, vc) = pair("s", "192.0.2.1/24");
    let tmp = TempDir::new("static");
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
        ..Options::default()
    };
    let state = Arc::new(State::default());
    let client_state = state.clone();
    cli.spawn(move || {
        Box::pin(async move {
            let net = start_with(&config, "baton-test", client_state, options)
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
