//! The bytes sent to the kernel: set-device messages parsed back with
//! netlink-packet-wireguard, and their layout checked by hand against
//! include/uapi/linux/wireguard.h; dumps read back into peer statuses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, UNIX_EPOCH};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_generic::GenlMessage;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardTimeSpec,
};

use super::device::{self, PeerChanges, KEEPALIVE_SECS, PEERS_PER_MESSAGE};
use super::genl;
use super::*;

// From include/uapi/linux/wireguard.h (and linux/netlink.h for NLA_F_NESTED).
const WG_CMD_SET_DEVICE: u8 = 1;
const WG_GENL_VERSION: u8 = 1;
const WGDEVICE_A_IFINDEX: u16 = 1;
const WGDEVICE_A_PRIVATE_KEY: u16 = 3;
const WGDEVICE_A_LISTEN_PORT: u16 = 6;
const WGDEVICE_A_PEERS: u16 = 8;
const WGPEER_A_PUBLIC_KEY: u16 = 1;
const WGPEER_A_FLAGS: u16 = 3;
const WGPEER_A_ENDPOINT: u16 = 4;
const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: u16 = 5;
const WGPEER_A_ALLOWEDIPS: u16 = 9;
const WGPEER_F_REMOVE_ME: u32 = 1;
const WGPEER_F_REPLACE_ALLOWEDIPS: u32 = 2;
const WGALLOWEDIP_A_FAMILY: u16 = 1;
const WGALLOWEDIP_A_IPADDR: u16 = 2;
const WGALLOWEDIP_A_CIDR_MASK: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;
const AF_INET: u16 = 2;

/// The family id the kernel would have given `wireguard` (any value works).
const FAMILY: u16 = 0x1b;

fn peer(b: u8) -> Peer {
    Peer {
        key: PublicKey([b; 32]),
        endpoint: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, b), PORT),
        allowed: vec![Ipv4Net::new(Ipv4Addr::new(10, 88, b, 0), 24)],
    }
}

/// One attribute at `at`: (kind, value, offset of the next one).
fn tlv(b: &[u8], at: usize) -> (u16, &[u8], usize) {
    let len = usize::from(u16::from_ne_bytes([b[at], b[at + 1]]));
    let kind = u16::from_ne_bytes([b[at + 2], b[at + 3]]);
    assert!(
        len >= 4 && at + len <= b.len(),
        "attribute at {at} out of bounds"
    );
    (kind, &b[at + 4..at + len], at + ((len + 3) & !3))
}

fn u16_of(v: &[u8]) -> u16 {
    u16::from_ne_bytes([v[0], v[1]])
}

fn u32_of(v: &[u8]) -> u32 {
    u32::from_ne_bytes([v[0], v[1], v[2], v[3]])
}

fn wire(msg: WireguardMessage) -> Vec<u8> {
    genl::bytes(&genl::message(msg, FAMILY, NLM_F_REQUEST | NLM_F_ACK, 42))
}

fn parse_back(bytes: &[u8]) -> WireguardMessage {
    let msg = NetlinkMessage::<GenlMessage<WireguardMessage>>::deserialize(bytes)
        .expect("our bytes parse");
    match msg.payload {
        NetlinkPayload::InnerMessage(genl) => genl.payload,
        other => panic!("not a generic netlink message: {other:?}"),
    }
}

#[test]
fn two_peers_parse_back_as_sent() {
    let changes = PeerChanges {
        upsert: vec![peer(2), peer(3)],
        remove: vec![PublicKey([9; 32])],
    };
    let msgs = device::set_peers(7, &changes);
    assert_eq!(msgs.len(), 1);
    let back = parse_back(&wire(msgs[0].clone()));
    assert_eq!(back, msgs[0]);
    assert_eq!(back.cmd, WireguardCmd::SetDevice);
    let Some(WireguardAttribute::Peers(peers)) = back.attributes.get(1) else {
        panic!("second attribute is the peers: {back:?}");
    };
    assert_eq!(peers.len(), 3);
    assert!(peers[0].contains(&WireguardPeerAttribute::PublicKey([9; 32])));
    let second = &peers[2];
    assert!(
        second.contains(&WireguardPeerAttribute::Endpoint(SocketAddr::V4(
            peer(3).endpoint
        )))
    );
    assert!(second.contains(&WireguardPeerAttribute::PersistentKeepalive(KEEPALIVE_SECS)));
    assert!(second.contains(&WireguardPeerAttribute::AllowedIps(vec![
        WireguardAllowedIp(vec![
            WireguardAllowedIpAttr::Family(WireguardAddressFamily::Ipv4),
            WireguardAllowedIpAttr::IpAddr(IpAddr::V4(Ipv4Addr::new(10, 88, 3, 0))),
            WireguardAllowedIpAttr::Cidr(24),
        ])
    ])));
}

#[test]
fn set_peers_bytes_follow_the_uapi() {
    let changes = PeerChanges {
        upsert: vec![peer(2), peer(3)],
        remove: Vec::new(),
    };
    let msgs = device::set_peers(7, &changes);
    let b = wire(msgs[0].clone());
    // 16 (nlmsghdr) + 4 (genlmsghdr) + 8 (ifindex) + 4 (peers) + 2 * 108 (one peer).
    assert_eq!(b.len(), 248);
    // struct nlmsghdr
    assert_eq!(u32_of(&b[0..]), 248);
    assert_eq!(u16_of(&b[4..]), FAMILY);
    assert_eq!(u16_of(&b[6..]), NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(u32_of(&b[8..]), 42);
    // struct genlmsghdr
    assert_eq!(&b[16..20], &[WG_CMD_SET_DEVICE, WG_GENL_VERSION, 0, 0]);
    // WGDEVICE_A_IFINDEX
    let (kind, value, at) = tlv(&b, 20);
    assert_eq!((kind, u32_of(value)), (WGDEVICE_A_IFINDEX, 7));
    // WGDEVICE_A_PEERS, nested, holding two nested peers
    let (kind, peers, end) = tlv(&b, at);
    assert_eq!(kind, WGDEVICE_A_PEERS | NLA_F_NESTED);
    assert_eq!(end, b.len());
    let (kind, first, next) = tlv(peers, 0);
    assert_eq!(kind & NLA_F_NESTED, NLA_F_NESTED);
    assert_eq!(first.len(), 104);
    let (_, second, last) = tlv(peers, next);
    assert_eq!(last, peers.len());
    // The second peer, attribute by attribute.
    let (kind, value, at) = tlv(second, 0);
    assert_eq!((kind, value), (WGPEER_A_PUBLIC_KEY, &[3u8; 32][..]));
    let (kind, value, at) = tlv(second, at);
    assert_eq!(
        (kind, u32_of(value)),
        (WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS)
    );
    let (kind, value, at) = tlv(second, at);
    assert_eq!(kind, WGPEER_A_ENDPOINT);
    // struct sockaddr_in: family (host order), port (network order), address, zero padding.
    assert_eq!(value.len(), 16);
    assert_eq!(u16_of(value), AF_INET);
    assert_eq!(&value[2..4], &PORT.to_be_bytes());
    assert_eq!(&value[4..8], &[192, 168, 1, 3]);
    assert_eq!(&value[8..], &[0; 8]);
    let (kind, value, at) = tlv(second, at);
    assert_eq!(
        (kind, u16_of(value)),
        (WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25)
    );
    let (kind, ips, end) = tlv(second, at);
    assert_eq!(kind, WGPEER_A_ALLOWEDIPS | NLA_F_NESTED);
    assert_eq!(end, second.len());
    let (kind, ip, end) = tlv(ips, 0);
    assert_eq!(kind & NLA_F_NESTED, NLA_F_NESTED);
    assert_eq!(end, ips.len());
    let (kind, value, at) = tlv(ip, 0);
    assert_eq!((kind, u16_of(value)), (WGALLOWEDIP_A_FAMILY, AF_INET));
    let (kind, value, at) = tlv(ip, at);
    assert_eq!((kind, value), (WGALLOWEDIP_A_IPADDR, &[10u8, 88, 3, 0][..]));
    let (kind, value, at) = tlv(ip, at);
    assert_eq!((kind, value), (WGALLOWEDIP_A_CIDR_MASK, &[24u8][..]));
    assert_eq!(at, ip.len());
}

#[test]
fn removal_carries_only_the_key_and_remove_me() {
    let changes = PeerChanges {
        upsert: Vec::new(),
        remove: vec![PublicKey([5; 32])],
    };
    let b = wire(device::set_peers(7, &changes)[0].clone());
    let (_, _, at) = tlv(&b, 20);
    let (_, peers, _) = tlv(&b, at);
    let (_, only, end) = tlv(peers, 0);
    assert_eq!(end, peers.len());
    let (kind, value, at) = tlv(only, 0);
    assert_eq!((kind, value), (WGPEER_A_PUBLIC_KEY, &[5u8; 32][..]));
    let (kind, value, at) = tlv(only, at);
    assert_eq!((kind, u32_of(value)), (WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME));
    assert_eq!(at, only.len());
}

#[test]
fn key_and_port_message_follows_the_uapi() {
    let pair = Keypair::from_private([0x11; 32]);
    let b = wire(device::set_key_and_port(4, &pair, 51820));
    let (kind, value, at) = tlv(&b, 20);
    assert_eq!((kind, u32_of(value)), (WGDEVICE_A_IFINDEX, 4));
    let (kind, value, at) = tlv(&b, at);
    assert_eq!((kind, value), (WGDEVICE_A_PRIVATE_KEY, &[0x11u8; 32][..]));
    let (kind, value, at) = tlv(&b, at);
    assert_eq!((kind, u16_of(value)), (WGDEVICE_A_LISTEN_PORT, 51820));
    assert_eq!(at, b.len());
}

#[test]
fn many_peers_are_split_across_messages() {
    let changes = PeerChanges {
        upsert: (0..=150u8).map(peer).collect(),
        remove: vec![PublicKey([0xff; 32])],
    };
    let msgs = device::set_peers(7, &changes);
    assert_eq!(msgs.len(), 152_usize.div_ceil(PEERS_PER_MESSAGE));
    let total: usize = msgs
        .iter()
        .map(|m| match &m.attributes[1] {
            WireguardAttribute::Peers(p) => p.len(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    assert_eq!(total, 152);
    assert!(msgs
        .iter()
        .all(|m| m.attributes[0] == WireguardAttribute::IfIndex(7)));
    assert!(device::set_peers(7, &PeerChanges::default()).is_empty());
}

#[test]
fn a_dump_reads_back_as_peers_with_split_peers_merged() {
    let allowed = |c: u8| {
        WireguardAllowedIp(vec![
            WireguardAllowedIpAttr::Family(WireguardAddressFamily::Ipv4),
            WireguardAllowedIpAttr::IpAddr(IpAddr::V4(Ipv4Addr::new(10, 88, c, 0))),
            WireguardAllowedIpAttr::Cidr(24),
        ])
    };
    let first = WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![
            WireguardAttribute::IfIndex(7),
            WireguardAttribute::Peers(vec![
                WireguardPeer(vec![
                    WireguardPeerAttribute::PublicKey([3; 32]),
                    WireguardPeerAttribute::Endpoint("192.168.1.3:51820".parse().expect("addr")),
                    WireguardPeerAttribute::LastHandshake(WireguardTimeSpec {
                        seconds: 1_700_000_000,
                        nano_seconds: 5,
                    }),
                    WireguardPeerAttribute::RxBytes(100),
                    WireguardPeerAttribute::TxBytes(200),
                    WireguardPeerAttribute::PersistentKeepalive(25),
                    WireguardPeerAttribute::AllowedIps(vec![allowed(3)]),
                ]),
                WireguardPeer(vec![
                    WireguardPeerAttribute::PublicKey([2; 32]),
                    WireguardPeerAttribute::LastHandshake(WireguardTimeSpec::default()),
                ]),
            ]),
        ],
    };
    // The kernel continues peer 3's allowed IPs in the next message.
    let second = WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![WireguardAttribute::Peers(vec![WireguardPeer(vec![
            WireguardPeerAttribute::PublicKey([3; 32]),
            WireguardPeerAttribute::AllowedIps(vec![allowed(33)]),
        ])])],
    };
    // Through the wire and back, as the kernel's answer would come.
    let dump: Vec<_> = [first, second]
        .into_iter()
        .map(|m| parse_back(&wire(m)))
        .collect();
    let peers = device::peers_of(&dump);
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].key, PublicKey([2; 32]));
    assert_eq!(peers[0].endpoint, None);
    assert_eq!(peers[0].last_handshake, None, "a zero time means never");
    let p = &peers[1];
    assert_eq!(p.endpoint, Some("192.168.1.3:51820".parse().expect("addr")));
    assert_eq!(
        p.last_handshake,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_nanos(5))
    );
    assert_eq!((p.rx_bytes, p.tx_bytes, p.keepalive), (100, 200, 25));
    assert_eq!(
        p.allowed,
        vec![
            Ipv4Net::new(Ipv4Addr::new(10, 88, 3, 0), 24),
            Ipv4Net::new(Ipv4Addr::new(10, 88, 33, 0), 24)
        ]
    );
}

#[test]
fn a_datagram_of_several_messages_is_split() {
    let one = wire(device::get_device(1));
    let two = wire(device::get_device(2));
    let both = [one, two].concat();
    let msgs = genl::parse_datagram::<GenlMessage<WireguardMessage>>(&both).expect("parses");
    assert_eq!(msgs.len(), 2);
    assert!(genl::parse_datagram::<GenlMessage<WireguardMessage>>(&both[..30]).is_err());
}
