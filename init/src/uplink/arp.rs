//! ARP packets for Ethernet/IPv4 (RFC 826), as used by IPv4 link-local probing (RFC 3927).
//!
//! Only the 28-byte ARP payload: the packet socket (`arp_socket`) adds and strips the
//! Ethernet header.

use std::net::Ipv4Addr;

/// ARP request opcode.
pub const REQUEST: u16 = 1;
/// ARP reply opcode.
pub const REPLY: u16 = 2;
/// Length of an Ethernet/IPv4 ARP payload.
pub const LEN: usize = 28;

/// One Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// [`REQUEST`] or [`REPLY`].
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address (0.0.0.0 in a probe).
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// An ARP probe for `candidate` (RFC 3927 2.2.1): sender IP all zeros.
    pub fn probe(mac: [u8; 6], candidate: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: REQUEST,
            sender_mac: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: [0; 6],
            target_ip: candidate,
        }
    }

    /// An ARP announcement of `address` (RFC 3927 2.4): sender and target IP both `address`.
    pub fn announcement(mac: [u8; 6], address: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: REQUEST,
            sender_mac: mac,
            sender_ip: address,
            target_mac: [0; 6],
            target_ip: address,
        }
    }

    /// The packet's wire form.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// Parses an Ethernet/IPv4 ARP payload; `None` for anything else or a short packet.
    pub fn decode(b: &[u8]) -> Option<ArpPacket> {
        if b.len() < LEN || b[0..6] != [0, 1, 8, 0, 6, 4] {
            return None;
        }
        let mac = |r: std::ops::Range<usize>| -> [u8; 6] {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[r]);
            m
        };
        let ip = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        Some(ArpPacket {
            op: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: mac(8..14),
            sender_ip: ip(14),
            target_mac: mac(18..24),
            target_ip: ip(24),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0xaa, 0xbb, 0xcc];

    #[test]
    fn probe_has_known_bytes() {
        let p = ArpPacket::probe(MAC, Ipv4Addr::new(169, 254, 1, 2)).encode();
        let want: [u8; LEN] = [
            0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0xaa, 0xbb, 0xcc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            169, 254, 1, 2,
        ];
        assert_eq!(p, want);
    }

    #[test]
    fn round_trip_and_rejects_other_protocols() {
        let a = ArpPacket::announcement(MAC, Ipv4Addr::new(169, 254, 9, 9));
        assert_eq!(ArpPacket::decode(&a.encode()), Some(a));
        let mut ipv6ish = a.encode();
        ipv6ish[2] = 0x86;
        assert_eq!(ArpPacket::decode(&ipv6ish), None);
        assert_eq!(ArpPacket::decode(&a.encode()[..20]), None);
    }
}
