//! The policy applied for real: a board namespace with the bridge, three "containers" and an
//! "internet" namespace behind the board's uplink; TCP listeners inside each.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::tests::{base_policy, ip, many, service, vip};
use super::*;
use baton_testnet::{require_root, Netns};

/// A TCP server inside a namespace answering every connection with `name`; stopped on drop.
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub(super) fn start(ns: &Netns, at: SocketAddrV4, name: &'static str) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, bound) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = ns.spawn(move || {
            let l = TcpListener::bind(at).unwrap_or_else(|e| panic!("binding {at}: {e}"));
            l.set_nonblocking(true).expect("nonblocking listener");
            ready.send(()).expect("test alive");
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(name.as_bytes());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept on {at}: {e}"),
                }
            }
        });
        bound
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("listener on {at} did not start: {e}"));
        Listener {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` and reads the server's name; a dropped connection times out.
fn call(ns: &Netns, to: SocketAddrV4) -> Result<String, ErrorKind> {
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&to.into(), Duration::from_millis(700))
            .map_err(|e| e.kind())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.kind())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.kind())?;
        Ok(out)
    })
}

/// Sends one ICMP echo request to `to` from a raw socket and waits (up to 2 s) for the reply.
fn echo(to: Ipv4Addr) -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw socket");
    let id: u16 = 0xba70;
    let mut req = vec![8, 0, 0, 0];
    req.extend_from_slice(&id.to_be_bytes());
    req.extend_from_slice(&[0, 1]);
    req.extend_from_slice(b"baton policy");
    let sum = req
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !((folded & 0xffff) + (folded >> 16)) as u16;
    req[2..4].copy_from_slice(&checksum.to_be_bytes());
    s.send_to(&req, &SocketAddrV4::new(to, 0).into())
        .expect("sending an echo request");
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
        let Ok(n) = s.recv(&mut buf) else {
            return false;
        };
        // SAFETY: recv initialised the first n bytes.
        let got: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let icmp = &got[usize::from(got[0] & 0x0f) * 4..];
        if icmp.len() >= 6 && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() {
            return true;
        }
    }
    false
}

const INTERNET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

pub(crate) struct Lab {
    pub(crate) board: Netns,
    pub(crate) internet: Netns,
    pub(crate) containers: Vec<Netns>,
}

pub(crate) fn setup(tag: &str) -> Lab {
    let board = Netns::new(&format!("{tag}-board"));
    let internet = Netns::new(&format!("{tag}-inet"));
    board.ip(&[
        "link",
        "add",
        "baton0",
        "type",
        "bridge",
        "nf_call_iptables",
        "1",
    ]);
    board.ip(&["addr", "add", "10.88.0.1/24", "dev", "baton0"]);
    board.ip(&["link", "set", "baton0", "up"]);
    let (ok, _, err) = board.exec("sysctl", &["-w", "net.ipv4.ip_forward=1"]);
    assert!(ok, "ip_forward: {err}");
    board.ip(&[
        "link",
        "add",
        "up0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &internet.0,
    ]);
    board.ip(&["addr", "add", "192.0.2.1/24", "dev", "up0"]);
    board.ip(&["link", "set", "up0", "up"]);
    board.ip(&["route", "add", "default", "via", "192.0.2.2"]);
    internet.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    internet.ip(&["link", "set", "eth0", "up"]);
    internet.ip(&["route", "add", "10.88.0.0/24", "via", "192.0.2.1"]);
    let mut containers = Vec::new();
    for (name, addrs) in [("a", &[2][..]), ("b", &[3][..]), ("c", &[4, 5][..])] {
        let ns = Netns::new(&format!("{tag}-{name}"));
        let host = format!("v{name}");
        board.ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns.0,
        ]);
        board.ip(&["link", "set", &host, "master", "baton0", "up"]);
        for d in addrs {
            ns.ip(&["addr", "add", &format!("{}/24", ip(*d)), "dev", "eth0"]);
        }
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["route", "add", "default", "via", "10.88.0.1"]);
        containers.push(ns);
    }
    Lab {
        board,
        internet,
        containers,
    }
}

pub(crate) fn lab_policy() -> Policy {
    let mut p = base_policy();
    p.generation = 1;
    p.uplinks = vec!["up0".into()];
    let mut b = service("b", vip(3), &[ip(3)], &[]);
    b.egress = Egress::None;
    p.services = vec![
        service("a", vip(2), &[ip(2)], &["b"]),
        b,
        service("c", vip(4), &[ip(4), ip(5)], &[]),
    ];
    p
}

pub(crate) fn apply_in(ns: &Netns, p: &Policy) {
    let p = p.clone();
    ns.run(move || apply(&p)).expect("applying the policy");
}

pub(crate) fn at(a: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(a, port)
}

pub(super) fn refused(r: Result<String, ErrorKind>, what: &str) {
    assert!(r.is_err(), "{what} should fail, got {r:?}");
}

/// The call is refused at once (a TCP reset), not dropped (which would time out).
pub(super) fn reset(r: Result<String, ErrorKind>, what: &str) {
    assert_eq!(r, Err(ErrorKind::ConnectionRefused), "{what}");
}

/// The call is refused at once with ICMP "administratively prohibited", not dropped.
fn prohibited(r: Result<String, ErrorKind>, what: &str) {
    assert_eq!(r, Err(ErrorKind::HostUnreachable), "{what}");
}

/// Sends one UDP datagram from inside `ns` on a connected socket and waits up to 2 s for an
/// answer or the error an ICMP refusal reports.
fn datagram(ns: &Netns, to: SocketAddrV4) -> Result<(), ErrorKind> {
    ns.run(move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.kind())?;
        s.connect(to).map_err(|e| e.kind())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.kind())?;
        s.send(b"gossip?").map_err(|e| e.kind())?;
        let mut buf = [0u8; 64];
        s.recv(&mut buf).map(|_| ()).map_err(|e| e.kind())
    })
}

#[test]
fn allow_lists_vips_board_ports_and_egress_are_enforced() {
    require_root();
    let lab = setup("pol");
    let [a, b, c] = &lab.containers[..] else {
        panic!("three containers")
    };
    let any = Ipv4Addr::UNSPECIFIED;
    let _servers = [
        Listener::start(a, at(any, 8080), "a"),
        Listener::start(b, at(any, 8080), "b"),
        Listener::start(c, at(ip(4), 8080), "c"),
        Listener::start(c, at(ip(5), 8080), "c5"),
        Listener::start(&lab.board, at(ip(1), 53), "dns"),
        Listener::start(&lab.board, at(any, API_PORT), "api"),
        Listener::start(&lab.internet, at(INTERNET, 9000), "internet"),
        // The "internet" namespace stands in for another board on the LAN too.
        Listener::start(&lab.internet, at(INTERNET, API_PORT), "peer api"),
    ];
    assert_eq!(
        call(a, at(ip(4), 8080)),
        Ok("c".into()),
        "open before the policy"
    );
    assert_eq!(
        call(a, at(INTERNET, API_PORT)),
        Ok("peer api".into()),
        "another board's API is reachable through the masquerade before the policy"
    );
    let mut p = lab_policy();
    apply_in(&lab.board, &p);

    assert_eq!(
        call(a, at(vip(3), 80)),
        Ok("b".into()),
        "a may call b by its VIP"
    );
    refused(call(a, at(vip(4), 80)), "a → c's VIP");
    prohibited(call(a, at(ip(4), 8080)), "a → c's instance");
    prohibited(call(c, at(vip(2), 80)), "c → a's VIP");
    refused(
        call(b, at(vip(2), 80)),
        "b → a (replies aside, allow is one way)",
    );
    assert_eq!(
        call(a, at(ip(1), 53)),
        Ok("dns".into()),
        "DNS on the bridge"
    );
    reset(
        call(a, at(ip(1), API_PORT)),
        "a container → the board's API on the bridge",
    );
    reset(
        call(a, at(Ipv4Addr::new(192, 0, 2, 1), API_PORT)),
        "a container → the board's API on its LAN address",
    );
    assert_eq!(
        call(a, at(INTERNET, 9000)),
        Ok("internet".into()),
        "a has egress"
    );
    reset(
        call(a, at(INTERNET, API_PORT)),
        "a container → another board's API, egress or not",
    );
    assert_eq!(
        datagram(a, at(INTERNET, GOSSIP_PORT)),
        Err(ErrorKind::HostUnreachable),
        "a container → another board's gossip port: ICMP admin-prohibited"
    );
    assert_eq!(
        datagram(a, at(INTERNET, crate::svcnet::mesh::PORT)),
        Err(ErrorKind::HostUnreachable),
        "a container → another board's mesh port"
    );
    reset(call(b, at(INTERNET, 9000)), "b has egress none");

    // A new allow list takes effect without touching the containers.
    p.generation = 2;
    p.services[2].allow = vec!["a".into()];
    p.services[0].allow = vec!["c".into()];
    let started = Instant::now();
    apply_in(&lab.board, &p);
    let took = started.elapsed();
    assert_eq!(call(c, at(vip(2), 80)), Ok("a".into()), "c may now call a");
    refused(call(a, at(vip(3), 80)), "a may no longer call b");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(call(a, at(vip(4), 80)).expect("a may now call c"));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "both instances of c get connections: {seen:?}"
    );

    // A service without a healthy instance is refused at once, not left to time out.
    p.generation = 3;
    p.services[0].allow = vec!["b".into()];
    p.services[1].instances[0].healthy = false;
    apply_in(&lab.board, &p);
    assert_eq!(call(a, at(vip(3), 80)), Err(ErrorKind::ConnectionRefused));

    let listing = lab.board.nft(&["list", "ruleset"]);
    for want in [
        "table inet baton-policy",
        "comment \"baton policy generation 3\"",
        "ip saddr . ip daddr . tcp dport @allow_tcp accept",
        "meta l4proto tcp ip daddr @vips reject with tcp reset",
        "ip daddr 10.99.0.4 tcp dport 80 jump svc-c-tcp80",
        "tcp dport 80 numgen random mod 2 0 dnat to 10.88.0.4:8080",
        "tcp dport 80 dnat to 10.88.0.5:8080",
        "10.88.0.4 . 10.88.0.2 . 8080",
    ] {
        assert!(listing.contains(want), "{want:?} missing from:\n{listing}");
    }
    assert!(!listing.contains("svc-b-tcp80"), "{listing}");
    assert!(took < Duration::from_secs(1), "apply took {took:?}");
}

#[test]
fn the_lan_filter_opens_only_the_listed_ports() {
    require_root();
    let lab = setup("pollan");
    let _servers = [
        Listener::start(&lab.board, at(Ipv4Addr::new(192, 0, 2, 1), API_PORT), "api"),
        Listener::start(&lab.board, at(Ipv4Addr::new(192, 0, 2, 1), 2222), "other"),
    ];
    let mut p = lab_policy();
    apply_in(&lab.board, &p);
    let board = Ipv4Addr::new(192, 0, 2, 1);
    assert_eq!(
        call(&lab.internet, at(board, 2222)),
        Ok("other".into()),
        "filter off"
    );
    p.lan_filter = true;
    apply_in(&lab.board, &p);
    assert_eq!(call(&lab.internet, at(board, API_PORT)), Ok("api".into()));
    refused(call(&lab.internet, at(board, 2222)), "an unlisted port");
    assert!(
        lab.internet.run(move || echo(board)),
        "echo requests are answered"
    );
    // Leaving the filter off again restores access, atomically replacing the tables.
    p.lan_filter = false;
    apply_in(&lab.board, &p);
    assert_eq!(call(&lab.internet, at(board, 2222)), Ok("other".into()));
    lab.board.run(remove).expect("removing the policy");
    assert!(!lab.board.nft(&["list", "ruleset"]).contains("baton-policy"));
}

/// Joins `remote` (standing in for another board) to the lab's board over a link named like
/// the mesh (the receiving board's rules key on the interface, not on WireGuard itself), with
/// `addrs` in the other board's subnet `10.88.7.0/24`.
pub(super) fn join_mesh(lab: &Lab, remote: &Netns, addrs: &[Ipv4Addr]) {
    lab.board.ip(&[
        "link", "add", "baton-wg", "type", "veth", "peer", "name", "eth0", "netns", &remote.0,
    ]);
    lab.board.ip(&["link", "set", "baton-wg", "up"]);
    lab.board.ip(&[
        "route",
        "add",
        "10.88.7.0/24",
        "dev",
        "baton-wg",
        "src",
        "10.88.0.1",
    ]);
    // Proxy ARP answers for this board's containers on the link, at once (by default it waits
    // up to 0.8 s, longer than a call here waits to connect).
    for setting in [
        "net.ipv4.conf.baton-wg.proxy_arp=1",
        "net.ipv4.neigh.baton-wg.proxy_delay=0",
    ] {
        let (ok, _, err) = lab.board.exec("sysctl", &["-w", setting]);
        assert!(ok, "{setting}: {err}");
    }
    for a in addrs {
        remote.ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"]);
    }
    remote.ip(&["link", "set", "eth0", "up"]);
    remote.ip(&["route", "add", "10.88.0.0/24", "dev", "eth0"]);
}

/// Another board's container, reaching this board over a link named like the mesh (the receiving
/// board's rules key on the interface, not on WireGuard itself): its allowed call gets through,
/// anything else it tries is dropped here, whatever the sending board let out.
#[test]
fn calls_from_other_boards_are_checked_on_arrival() {
    require_root();
    let lab = setup("polmesh");
    let remote = Netns::new("polmesh-r");
    let remote_ip = Ipv4Addr::new(10, 88, 7, 2);
    join_mesh(&lab, &remote, &[remote_ip]);
    let [_, b, c] = &lab.containers[..] else {
        panic!("three containers")
    };
    let any = Ipv4Addr::UNSPECIFIED;
    let _servers = [
        Listener::start(b, at(any, 8080), "b"),
        Listener::start(c, at(ip(4), 8080), "c"),
        Listener::start(&lab.board, at(ip(1), API_PORT), "api"),
        Listener::start(&remote, at(remote_ip, 8080), "r"),
    ];
    assert_eq!(
        call(&remote, at(ip(4), 8080)),
        Ok("c".into()),
        "open before"
    );
    let mut p = lab_policy();
    p.mesh = Some("baton-wg".into());
    p.cluster = vec![Ipv4Net::new(Ipv4Addr::new(10, 88, 7, 0), 24)];
    p.services.push(service("r", vip(9), &[remote_ip], &["b"]));
    apply_in(&lab.board, &p);
    assert_eq!(
        call(&remote, at(ip(3), 8080)),
        Ok("b".into()),
        "r may call b"
    );
    refused(
        call(&remote, at(ip(4), 8080)),
        "r → c (not in its allow list)",
    );
    refused(call(&remote, at(ip(1), API_PORT)), "r → this board's API");
    refused(call(b, at(remote_ip, 8080)), "b → r (allow is one way)");
}

#[test]
fn a_hundred_services_apply_in_one_batch_and_read_back() {
    require_root();
    let ns = Netns::new("pol-many");
    let rs = build(&many(100));
    let messages = crate::svcnet::nft::encode::encode(&rs, 0)
        .expect("encodes")
        .messages
        .len();
    assert!(messages > 300, "a big batch: {messages} messages");
    ns.run(move || crate::svcnet::nft::apply(&rs))
        .expect("every answer fits the receive buffer");
    let listing = ns.nft(&["list", "table", "ip", NAT_TABLE]);
    assert_eq!(listing.matches("numgen random mod 2 0 dnat").count(), 100);
}

/// Time to build and apply the rule set for 10 and 100 services (run with `--ignored
/// --nocapture`).
#[test]
#[ignore]
fn bench_build_and_apply() {
    require_root();
    let ns = Netns::new("pol-bench");
    for n in [10, 100] {
        let p = many(n);
        let rounds = 20;
        let (mut build_t, mut apply_t) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let t = Instant::now();
            let rs = build(&p);
            build_t += t.elapsed();
            let t = Instant::now();
            ns.run(move || crate::svcnet::nft::apply(&rs))
                .expect("apply");
            apply_t += t.elapsed();
        }
        println!(
            "policy: {n} services: build {:?}, apply {:?} (mean of {rounds}; apply includes a thread hop into the namespace)",
            build_t / rounds,
            apply_t / rounds
        );
    }
}

/// A TCP server inside a namespace that reads one line and answers `pong`, blocking on every
/// call (no polling delay in the round trip). Stopped by [`Responder::stop`].
struct Responder {
    at: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Responder {
    fn start(ns: &Netns, at: SocketAddrV4) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, bound) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = ns.spawn(move || {
            let l = TcpListener::bind(at).unwrap_or_else(|e| panic!("binding {at}: {e}"));
            ready.send(()).expect("test alive");
            for s in l.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut s) = s else { continue };
                let mut line = Vec::new();
                let mut buf = [0u8; 64];
                while !line.contains(&b'\n') {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => line.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"pong\n");
            }
        });
        bound
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("responder on {at} did not start: {e}"));
        Responder { at, stop, thread }
    }

    /// Stops the server: sets the flag, then wakes its accept with a connection from `via` to
    /// `reach` (an address of the server's namespace).
    fn stop(self, via: &Netns, reach: Ipv4Addr) {
        self.stop.store(true, Ordering::Relaxed);
        let to = SocketAddrV4::new(reach, self.at.port());
        let _ = via.run(move || TcpStream::connect_timeout(&to.into(), Duration::from_secs(2)));
        let _ = self.thread.join();
    }
}

/// The times of `n` sequential calls (connect, send a line, read the answer to its end) from
/// inside `ns` to `to`, after a few untimed ones.
fn round_trips(ns: &Netns, to: SocketAddrV4, n: u32) -> Vec<Duration> {
    ns.run(move || {
        let one = || -> std::io::Result<()> {
            let mut s = TcpStream::connect_timeout(&to.into(), Duration::from_secs(2))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"ping\n")?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            assert_eq!(out, b"pong\n", "answer from {to}");
            Ok(())
        };
        for _ in 0..20 {
            one().unwrap_or_else(|e| panic!("warm-up call to {to}: {e}"));
        }
        (0..n)
            .map(|i| {
                let started = Instant::now();
                one().unwrap_or_else(|e| panic!("call {i} to {to}: {e}"));
                started.elapsed()
            })
            .collect()
    })
}

/// The lab policy plus 100 filler services (2 instances each, each allowed to call the next
/// one and every other one also the one after), so a→b is one allowed call among ~600.
fn crowded_policy() -> Policy {
    let mut p = lab_policy();
    let n = 100;
    let mut fillers = many(n).services;
    for (i, s) in fillers.iter_mut().enumerate() {
        s.vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 99, 1, 0)) + i as u32 + 1);
        if i % 2 == 0 {
            s.allow.push(format!("s{}", (i + 2) % n));
        }
    }
    p.services.extend(fillers);
    p
}

/// The latency the allow-list path adds to a call between two containers on one board: the
/// mean of N sequential connect+request+answer calls from `a` to `b` with no policy, and with
/// the lab policy plus 100 filler services applied, to b's VIP (DNAT) and to its instance
/// address. Prints, asserts nothing about time (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn bench_allow_list_latency() {
    require_root();
    let lab = setup("polrtt");
    let [a, b, _] = &lab.containers[..] else {
        panic!("three containers")
    };
    let instance = at(ip(3), 8080);
    let server = Responder::start(b, at(Ipv4Addr::UNSPECIFIED, 8080));
    let n = 500;
    let rounds = 5;
    let p = crowded_policy();
    let rs = build(&p);
    let elements: usize = rs
        .tables
        .iter()
        .flat_map(|t| &t.sets)
        .filter(|s| s.name.starts_with("allow_"))
        .map(|s| s.elements.len())
        .sum();
    // Rounds of the three cases back to back, so a busy machine skews all of them alike.
    let (mut open, mut direct, mut via_vip) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        open.extend(round_trips(a, instance, n));
        apply_in(&lab.board, &p);
        via_vip.extend(round_trips(a, at(vip(3), 80), n));
        direct.extend(round_trips(a, instance, n));
        lab.board.run(remove).expect("removing the policy");
    }
    server.stop(&lab.board, ip(3));

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // Mean, median, 99th percentile and slowest call, in µs.
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        let mean = us(v.iter().sum::<Duration>()) / v.len() as f64;
        let at = |q: f64| us(v[((v.len() - 1) as f64 * q) as usize]);
        (mean, at(0.5), at(0.99), at(1.0))
    };
    let base = stats(&mut open);
    println!(
        "allow-list latency: a → b (connect + request + answer), {} sequential calls per case in {rounds} interleaved rounds; {} services, {elements} allow-set elements",
        n * rounds,
        p.services.len()
    );
    println!(
        "  {:28} {:>9} {:>9} {:>9} {:>9} {:>12} {:>14}",
        "µs", "mean", "median", "p99", "max", "mean - none", "median - none"
    );
    for (what, v) in [
        ("no policy, to the instance", &mut open),
        ("policy, to the instance", &mut direct),
        ("policy, to the VIP (DNAT)", &mut via_vip),
    ] {
        let (mean, median, p99, max) = stats(v);
        println!(
            "  {what:28} {mean:9.1} {median:9.1} {p99:9.1} {max:9.1} {:+12.1} {:+14.1}",
            mean - base.0,
            median - base.1
        );
    }
}
