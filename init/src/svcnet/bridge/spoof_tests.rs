//! A container that forges its source on the real bridge: three containers attached by
//! [`Bridge::attach`] (attacker, victim, target); the attacker writes raw IPv4 packets and raw
//! ARP frames claiming to be the victim, then honest ones. The target sees only the honest
//! ones while the port bindings are in force, and the forged ones once they are removed (so
//! the attack is real and the test can fail). Needs root.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ports::{mac_of, PORTS_TABLE};
use super::{Bridge, Config, Netns as Target};
use crate::svcnet::nft::{self, Family};
use baton_testnet::{require_root, Netns};

const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
const VICTIM: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 3);
const TARGET: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 4);
const PORT: u16 = 9999;

/// Sends a UDP datagram with a hand-made IPv4 header (source `from`) from a raw socket.
fn send_raw_udp(from: Ipv4Addr, to: Ipv4Addr, payload: &[u8]) {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).expect("raw socket");
    s.set_header_included_v4(true).expect("IP_HDRINCL");
    let total = u16::try_from(20 + 8 + payload.len()).expect("small packet");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&from.octets());
    p.extend_from_slice(&to.octets());
    // UDP: source port, destination port, length, no checksum (allowed over IPv4).
    p.extend_from_slice(&4242u16.to_be_bytes());
    p.extend_from_slice(&PORT.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    s.send_to(&p, &SocketAddrV4::new(to, 0).into())
        .expect("sending a raw packet");
}

/// An `AF_PACKET` socket for ARP frames, bound to `eth0`.
fn arp_socket() -> (OwnedFd, i32) {
    let proto = (libc::ETH_P_ARP as u16).to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the argument is a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
    assert!(index > 0, "eth0 has no index");
    let index = i32::try_from(index).expect("small index");
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = index;
    // SAFETY: addr is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    (fd, index)
}

/// An ARP reply frame to the target, from Ethernet source `eth_src`, claiming `sha`/`spa`.
fn arp_reply(eth_src: [u8; 6], sha: [u8; 6], spa: Ipv4Addr) -> Vec<u8> {
    let mut f = mac_of(TARGET).to_vec();
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&mac_of(TARGET));
    f.extend_from_slice(&TARGET.octets());
    f.resize(60, 0);
    f
}

fn send_frames(frames: &[Vec<u8>]) {
    let (fd, _) = arp_socket();
    for f in frames {
        // SAFETY: f is a valid buffer of the length given; the socket is bound to eth0.
        let n = unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        assert_eq!(n, f.len() as isize, "{}", std::io::Error::last_os_error());
    }
}

/// The sender addresses of the ARP replies to the target seen on its `eth0`, until one from
/// `last` arrives (or 5 s pass).
fn arp_senders_until(sock: OwnedFd, last: Ipv4Addr) -> Vec<([u8; 6], Ipv4Addr)> {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: tv is a valid timeval of the size given.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1600];
    while Instant::now() < deadline {
        // SAFETY: buf is writable for its whole length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else { continue };
        let f = &buf[..n];
        if n < 42 || f[12..14] != [0x08, 0x06] || f[20..22] != [0, 2] || f[32..38] != mac_of(TARGET)
        {
            continue;
        }
        let mut sha = [0u8; 6];
        sha.copy_from_slice(&f[22..28]);
        let spa = Ipv4Addr::new(f[28], f[29], f[30], f[31]);
        seen.push((sha, spa));
        if spa == last {
            break;
        }
    }
    seen
}

/// The (source, payload) of the datagrams reaching the target until `control` (or 5 s).
fn datagrams_until(sock: UdpSocket, control: &[u8]) -> Vec<(Ipv4Addr, Vec<u8>)> {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let std::net::SocketAddr::V4(from) = from else {
            continue;
        };
        seen.push((*from.ip(), buf[..n].to_vec()));
        if buf[..n] == *control {
            break;
        }
    }
    seen
}

/// What the target saw of one round: forged then honest IPv4, forged then honest ARP.
struct Seen {
    datagrams: Vec<(Ipv4Addr, Vec<u8>)>,
    arp: Vec<([u8; 6], Ipv4Addr)>,
}

fn round(attacker: &Netns, target: &Netns) -> Seen {
    let (ready, bound) = mpsc::channel();
    let listener = target.spawn(move || {
        let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).expect("udp listener");
        let (arp, _) = arp_socket();
        ready.send(()).expect("test alive");
        let datagrams = datagrams_until(udp, b"honest");
        let arp = arp_senders_until(arp, ATTACKER);
        Seen { datagrams, arp }
    });
    bound
        .recv_timeout(Duration::from_secs(5))
        .expect("listeners up");
    attacker.run(|| {
        send_raw_udp(VICTIM, TARGET, b"forged");
        send_raw_udp(ATTACKER, TARGET, b"honest");
        let me = mac_of(ATTACKER);
        let victim = mac_of(VICTIM);
        send_frames(&[
            // The classic poisoning: "the victim's address is at my MAC".
            arp_reply(me, me, VICTIM),
            // Full impersonation: the victim's MAC as the Ethernet and ARP source.
            arp_reply(victim, victim, VICTIM),
            arp_reply(me, me, ATTACKER),
        ]);
    });
    listener.join().expect("listener thread")
}

#[test]
fn a_container_cannot_send_as_another_even_with_raw_sockets() {
    require_root();
    let board = Netns::new("spoof-board");
    let ctrs = [
        Netns::new("spoof-att"),
        Netns::new("spoof-vic"),
        Netns::new("spoof-tgt"),
    ];
    let files: Vec<std::fs::File> = ctrs
        .iter()
        .map(|n| std::fs::File::open(n.path()).expect("namespace file"))
        .collect();
    board.block_on(move || {
        Box::pin(async move {
            let bridge = Bridge::ensure(Config {
                forwarding: std::env::temp_dir().join("baton-spoof-forwarding"),
                ..Config::default()
            })
            .await
            .expect("bridge up");
            for (file, a) in files.iter().zip([ATTACKER, VICTIM, TARGET]) {
                bridge
                    .attach(a, Target::Fd(file.as_fd()))
                    .await
                    .expect("attach");
            }
        })
    });
    let [attacker, _victim, target] = &ctrs;

    let bound = round(attacker, target);
    assert_eq!(
        bound.datagrams,
        vec![(ATTACKER, b"honest".to_vec())],
        "only the honest datagram arrives"
    );
    assert_eq!(
        bound.arp,
        vec![(mac_of(ATTACKER), ATTACKER)],
        "only the honest ARP reply arrives"
    );
    let neighbours = target.ip(&["neigh", "show", &VICTIM.to_string()]);
    assert!(
        !neighbours.contains("02:ba:0a:58:00:02"),
        "the target's ARP cache is not poisoned: {neighbours}"
    );

    // Without the bindings the same frames get through: the attack is real.
    board
        .run(|| nft::remove(&[(Family::Bridge, PORTS_TABLE)]))
        .expect("removing the bindings");
    let open = round(attacker, target);
    assert_eq!(
        open.datagrams,
        vec![(VICTIM, b"forged".to_vec()), (ATTACKER, b"honest".to_vec())]
    );
    assert_eq!(
        open.arp,
        vec![
            (mac_of(ATTACKER), VICTIM),
            (mac_of(VICTIM), VICTIM),
            (mac_of(ATTACKER), ATTACKER)
        ]
    );
}

#[test]
fn a_full_subnet_of_bindings_applies_in_one_batch() {
    require_root();
    let ns = Netns::new("spoof-many");
    let addresses: Vec<Ipv4Addr> = (2..=254).map(|d| Ipv4Addr::new(10, 88, 0, d)).collect();
    let table = super::ports::ports_table(&addresses);
    ns.run(move || nft::apply(&nft::Ruleset::new(vec![table])))
        .expect("253 bindings in one transaction");
    let listing = ns.nft(&["list", "table", "bridge", PORTS_TABLE]);
    assert_eq!(listing.matches("arp saddr ip").count(), 253);
}
