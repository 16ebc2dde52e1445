//! Counting for real: a client namespace calls a virtual IP that a nat rule (applied with the
//! project's own nftables code) sends to a server in a second namespace, and the client's
//! conntrack table is dumped. One connection sends every 200 ms, one goes idle after one
//! exchange, one goes straight to the server's address (outside the VIP subnet).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::*;
use crate::svcnet::dns::DEFAULT_SUBNET;
use crate::svcnet::nft::rule::{AddrField, Ipv4Net, Match, Rule, Statement};
use crate::svcnet::nft::{apply, Chain, ChainType, CmpOp, Family, Hook, Policy, Ruleset, Table};
use baton_testnet::{require_root, wait_for, Lan, Netns};

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 8080);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 10);
/// The port the busy connection calls.
const BUSY: SocketAddrV4 = SocketAddrV4::new(VIP, 80);
/// The port the idle connection calls.
const IDLE: SocketAddrV4 = SocketAddrV4::new(VIP, 81);

/// An echo server inside `ns`; every connection on its own thread. Stops when `stop` is set.
fn echo_server(ns: &Netns, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let (ready, bound) = mpsc::channel();
    let thread = ns.spawn(move || {
        let l = TcpListener::bind(SERVER).unwrap_or_else(|e| panic!("binding {SERVER}: {e}"));
        l.set_nonblocking(true).expect("nonblocking listener");
        ready.send(()).expect("test alive");
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).expect("blocking stream");
                        s.set_read_timeout(Some(Duration::from_millis(100)))
                            .expect("read timeout");
                        let mut b = [0u8; 64];
                        while !stop.load(Ordering::Relaxed) {
                            match s.read(&mut b) {
                                Ok(0) => return,
                                Ok(n) => {
                                    if s.write_all(&b[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        ErrorKind::WouldBlock | ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept on {SERVER}: {e}"),
            }
        }
    });
    bound
        .recv_timeout(Duration::from_secs(5))
        .expect("echo server started");
    thread
}

/// Sends one byte and waits for its echo.
fn exchange(s: &mut TcpStream) -> std::io::Result<()> {
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
}

fn connect(to: SocketAddrV4) -> TcpStream {
    let s = TcpStream::connect_timeout(&to.into(), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connecting to {to}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    s
}

/// A connection from inside `ns` to `to` that exchanges a byte every 200 ms until `stop`.
fn busy(ns: &Netns, to: SocketAddrV4, stop: Arc<AtomicBool>) -> JoinHandle<Result<(), String>> {
    ns.spawn(move || {
        let mut s = connect(to);
        while !stop.load(Ordering::Relaxed) {
            exchange(&mut s).map_err(|e| format!("busy connection to {to}: {e}"))?;
            // The traffic pattern under test, not a wait for a condition.
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    })
}

/// A connection from inside `ns` to `to` that makes one exchange, then one more per message
/// on `pokes` (answering on `done`), and stays open until `pokes` is dropped.
fn idle(
    ns: &Netns,
    to: SocketAddrV4,
    pokes: mpsc::Receiver<()>,
    done: mpsc::Sender<()>,
) -> JoinHandle<Result<(), String>> {
    ns.spawn(move || {
        let mut s = connect(to);
        let mut talk = || exchange(&mut s).map_err(|e| format!("idle connection to {to}: {e}"));
        talk()?;
        let _ = done.send(());
        while pokes.recv().is_ok() {
            talk()?;
            let _ = done.send(());
        }
        Ok(())
    })
}

/// `ip daddr <vip> tcp dport <port> dnat to <server>` in a nat chain on the output hook.
fn nat_rules() -> Ruleset {
    let mut chain = Chain::base("output", ChainType::Nat, Hook::Output, -100, Policy::Accept);
    for to in [BUSY, IDLE] {
        chain = chain.rule(
            Rule::new()
                .when(Match::Addr(
                    AddrField::Daddr,
                    CmpOp::Eq,
                    Ipv4Net::new(*to.ip(), 32),
                ))
                .tcp_dport(to.port())
                .then(Statement::Dnat {
                    addr: *SERVER.ip(),
                    port: Some(SERVER.port()),
                }),
        );
    }
    Ruleset::new(vec![Table::new(Family::Ip, "ct-test").chain(chain)])
}

fn dump_in(ns: &Netns) -> Active {
    ns.run(|| dump_active(&DEFAULT_SUBNET))
        .unwrap_or_else(|e| panic!("dumping conntrack: {e}"))
}

#[test]
fn a_busy_call_counts_and_an_idle_one_stops_counting() {
    require_root();
    let lan = Lan::new("ct", "10.77.0.1/24", "10.77.0.2/24");
    let (client, server) = (&lan.a, &lan.b);
    // The route only serves the lookup before the nat rule rewrites the destination.
    client.ip(&[
        "route",
        "add",
        "10.89.0.0/16",
        "via",
        "10.77.0.2",
        "dev",
        "eth0",
    ]);
    let rules = nat_rules();
    client
        .run(move || apply(&rules))
        .unwrap_or_else(|e| panic!("applying the nat rules: {e}"));

    let stop = Arc::new(AtomicBool::new(false));
    let _server = echo_server(server, Arc::clone(&stop));
    let (poke, pokes) = mpsc::channel();
    let (done, answered) = mpsc::channel();
    let idle_conn = idle(client, IDLE, pokes, done);
    answered
        .recv_timeout(Duration::from_secs(5))
        .expect("the idle connection's first exchange");
    let busy_conn = busy(client, BUSY, Arc::clone(&stop));
    let direct = busy(client, SERVER, Arc::clone(&stop));

    let both = wait_for("both calls to count", Duration::from_secs(10), || {
        let a = dump_in(client);
        (a.by_destination.contains_key(&BUSY) && a.by_destination.contains_key(&IDLE)).then_some(a)
    });
    assert_eq!(both.by_destination.get(&BUSY), Some(&1), "{both:?}");
    assert_eq!(both.by_destination.get(&IDLE), Some(&1), "{both:?}");

    // Conntrack refreshes on each packet: the idle one drops out after 3 s without any.
    let later = wait_for(
        "the idle call to stop counting",
        Duration::from_secs(15),
        || {
            let a = dump_in(client);
            (!a.by_destination.contains_key(&IDLE)).then_some(a)
        },
    );
    assert_eq!(
        later.by_destination.get(&BUSY),
        Some(&1),
        "the busy call still counts: {later:?}"
    );
    // Only VIP destinations: the direct call to the server's own address is not there.
    assert_eq!(later.by_destination.len(), 1, "{later:?}");
    assert_eq!(later.truncated, 0);

    // The idle connection is still open: one more exchange makes it count again.
    poke.send(()).expect("idle connection alive");
    answered
        .recv_timeout(Duration::from_secs(5))
        .expect("the idle connection's second exchange");
    let again = dump_in(client);
    assert_eq!(again.by_destination.get(&IDLE), Some(&1), "{again:?}");

    drop(poke);
    stop.store(true, Ordering::Relaxed);
    for (what, t) in [("idle", idle_conn), ("busy", busy_conn), ("direct", direct)] {
        t.join()
            .unwrap_or_else(|_| panic!("{what} client panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
