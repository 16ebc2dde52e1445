//! The wireguard family's messages (include/uapi/linux/wireguard.h): setting the device's key
//! and port, changing peers, and reading the device's peers back from a dump.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};

use super::key::{Keypair, PublicKey};
use super::{Peer, PeerStatus};
use crate::svcnet::nft::Ipv4Net;

/// Persistent keepalive for every peer, in seconds: keeps NAT and conntrack state open and
/// lets a peer see the other is alive.
pub const KEEPALIVE_SECS: u16 = 25;

/// Peers per `WG_CMD_SET_DEVICE` message. Each change stands on its own (no
/// `WGDEVICE_F_REPLACE_PEERS`), so a long list is split freely. A peer with one allowed
/// network takes about 110 bytes, so a message stays under 8 KiB, well inside the socket's
/// send buffer; a peer's allowed networks are never split, so one peer may carry up to about
/// 7,000 of them before a message outgrows the send buffer (about 200 KiB).
pub const PEERS_PER_MESSAGE: usize = 64;

/// What to do to the kernel's peer list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerChanges {
    /// Peers to add or to bring up to date (endpoint, allowed networks, keepalive).
    pub upsert: Vec<Peer>,
    /// Peers to remove.
    pub remove: Vec<PublicKey>,
}

impl PeerChanges {
    /// Whether nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }
}

/// `WG_CMD_SET_DEVICE` setting the private key and listen port of link `index`.
pub fn set_key_and_port(index: u32, key: &Keypair, port: u16) -> WireguardMessage {
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes: vec![
            WireguardAttribute::IfIndex(index),
            WireguardAttribute::PrivateKey(*key.private()),
            WireguardAttribute::ListenPort(port),
        ],
    }
}

/// The allowed-IP nest for one network (host bits cleared).
fn allowed_ip(net: Ipv4Net) -> WireguardAllowedIp {
    WireguardAllowedIp(vec![
        WireguardAllowedIpAttr::Family(WireguardAddressFamily::Ipv4),
        WireguardAllowedIpAttr::IpAddr(IpAddr::V4(net.network())),
        WireguardAllowedIpAttr::Cidr(net.prefix),
    ])
}

/// The peer nest that adds `peer` or updates it in place: its endpoint, keepalive and
/// exactly its allowed networks (`WGPEER_F_REPLACE_ALLOWEDIPS`). Its session is kept.
fn upsert(peer: &Peer) -> WireguardPeer {
    WireguardPeer(vec![
        WireguardPeerAttribute::PublicKey(peer.key.0),
        WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps),
        WireguardPeerAttribute::Endpoint(SocketAddr::V4(peer.endpoint)),
        WireguardPeerAttribute::PersistentKeepalive(KEEPALIVE_SECS),
        WireguardPeerAttribute::AllowedIps(peer.allowed.iter().copied().map(allowed_ip).collect()),
    ])
}

/// The peer nest that removes the peer `key` (`WGPEER_F_REMOVE_ME`).
fn remove(key: PublicKey) -> WireguardPeer {
    WireguardPeer(vec![
        WireguardPeerAttribute::PublicKey(key.0),
        WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
    ])
}

/// The `WG_CMD_SET_DEVICE` messages that apply `changes` to link `index`, removals first,
/// at most [`PEERS_PER_MESSAGE`] peers each.
pub fn set_peers(index: u32, changes: &PeerChanges) -> Vec<WireguardMessage> {
    let nests: Vec<WireguardPeer> = changes
        .remove
        .iter()
        .copied()
        .map(remove)
        .chain(changes.upsert.iter().map(upsert))
        .collect();
    nests
        .chunks(PEERS_PER_MESSAGE)
        .map(|chunk| WireguardMessage {
            cmd: WireguardCmd::SetDevice,
            attributes: vec![
                WireguardAttribute::IfIndex(index),
                WireguardAttribute::Peers(chunk.to_vec()),
            ],
        })
        .collect()
}

/// `WG_CMD_GET_DEVICE` for link `index` (sent as a dump).
pub fn get_device(index: u32) -> WireguardMessage {
    WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![WireguardAttribute::IfIndex(index)],
    }
}

/// The peers in a `WG_CMD_GET_DEVICE` dump, in key order. The kernel continues a peer whose
/// allowed IPs do not fit in one message in the next one (same public key, more allowed
/// IPs): those parts are merged. IPv6 allowed IPs are left out.
pub fn peers_of(dump: &[WireguardMessage]) -> Vec<PeerStatus> {
    let mut peers: BTreeMap<PublicKey, PeerStatus> = BTreeMap::new();
    let nests = dump
        .iter()
        .flat_map(|m| m.attributes.iter())
        .filter_map(|a| match a {
            WireguardAttribute::Peers(p) => Some(p),
            _ => None,
        })
        .flatten();
    for nest in nests {
        let Some(key) = nest.iter().find_map(|a| match a {
            WireguardPeerAttribute::PublicKey(k) => Some(PublicKey(*k)),
            _ => None,
        }) else {
            continue;
        };
        let peer = peers.entry(key).or_insert_with(|| PeerStatus {
            key,
            endpoint: None,
            last_handshake: None,
            rx_bytes: 0,
            tx_bytes: 0,
            keepalive: 0,
            allowed: Vec::new(),
        });
        for attr in nest.iter() {
            match attr {
                WireguardPeerAttribute::Endpoint(e) => peer.endpoint = Some(*e),
                WireguardPeerAttribute::LastHandshake(t) => {
                    peer.last_handshake = (t.seconds > 0 || t.nano_seconds > 0)
                        .then(|| {
                            let secs = u64::try_from(t.seconds).unwrap_or(0);
                            let nanos = u64::try_from(t.nano_seconds).unwrap_or(0);
                            UNIX_EPOCH.checked_add(
                                Duration::from_secs(secs) + Duration::from_nanos(nanos),
                            )
                        })
                        .flatten();
                }
                WireguardPeerAttribute::RxBytes(n) => peer.rx_bytes = *n,
                WireguardPeerAttribute::TxBytes(n) => peer.tx_bytes = *n,
                WireguardPeerAttribute::PersistentKeepalive(s) => peer.keepalive = *s,
                WireguardPeerAttribute::AllowedIps(ips) => {
                    peer.allowed.extend(ips.iter().filter_map(ipv4_net));
                }
                _ => {}
            }
        }
    }
    peers.into_values().collect()
}

/// An IPv4 allowed-IP nest as a network.
fn ipv4_net(ip: &WireguardAllowedIp) -> Option<Ipv4Net> {
    let addr = ip.iter().find_map(|a| match a {
        WireguardAllowedIpAttr::IpAddr(IpAddr::V4(a)) => Some(*a),
        _ => None,
    })?;
    let prefix = ip.iter().find_map(|a| match a {
        WireguardAllowedIpAttr::Cidr(c) => Some(*c),
        _ => None,
    })?;
    Some(Ipv4Net::new(addr, prefix))
}
