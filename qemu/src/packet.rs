//! Just enough Ethernet, IPv4, UDP and TCP for tests that watch or forge traffic on the shared
//! segment: find the UDP datagrams to a port, read their addresses and payload, and build a
//! frame to inject (see [`crate::Lab::inject`]).
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use baton_qemu::packet::{self, UdpDatagram};
//!
//! let datagram = UdpDatagram {
//!     src_mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x01],
//!     dst_mac: packet::BROADCAST,
//!     src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000),
//!     dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7946),
//!     payload: b"garbage",
//! };
//! let frame = datagram.to_frame()?;
//! assert_eq!(packet::udp_to(&frame, 7946), Some(datagram));
//! assert!(packet::udp_to(&frame, 53).is_none());
//! # Ok::<(), baton_qemu::packet::PacketError>(())
//! ```
//!
//! Parsing is lenient where tests want to see hostile traffic (the IPv4 header checksum is not
//! checked; [`Ipv4::checksum_ok`] tells) and strict where a wrong guess would mislead: lengths
//! must fit, Ethernet padding is cut off by the IPv4 total length, and only unfragmented
//! packets (or first fragments, for the ports) yield UDP or TCP. VLAN tags and IPv6 are not
//! understood: such frames parse as [`Ethernet`] only.

use std::net::{Ipv4Addr, SocketAddrV4};

/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Ethernet header length (no VLAN tag).
const ETH_LEN: usize = 14;
/// IPv4 header length without options.
const IPV4_LEN: usize = 20;
/// UDP header length.
const UDP_LEN: usize = 8;
/// Shortest Ethernet frame without its FCS; shorter frames are padded with zeros.
const MIN_FRAME: usize = 60;

/// What went wrong building a frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    /// The payload does not fit in one IPv4 packet.
    #[error("a UDP payload of {len} bytes from {src} to {dst} does not fit in one IPv4 packet (at most 65507)")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Source address.
        src: SocketAddrV4,
        /// Destination address.
        dst: SocketAddrV4,
    },
}

/// An Ethernet II frame header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet<'a> {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
    /// EtherType (for example [`ETHERTYPE_IPV4`]).
    pub ethertype: u16,
    /// Everything after the header, padding included.
    pub payload: &'a [u8],
}

/// An IPv4 packet: the header fields tests filter on, and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number (for example [`PROTO_UDP`]).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Fragment offset in 8-byte units (0 for an unfragmented packet or first fragment).
    pub fragment_offset: u16,
    /// The more-fragments flag.
    pub more_fragments: bool,
    /// The header, options included.
    pub header: &'a [u8],
    /// The payload, cut to the header's total length (no Ethernet padding).
    pub payload: &'a [u8],
}

/// A UDP datagram in an Ethernet frame: what [`UdpDatagram::parse`] finds and
/// [`UdpDatagram::to_frame`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The datagram's payload, cut to the UDP length.
    pub payload: &'a [u8],
}

/// A TCP segment's addresses, flags and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    /// The segment's payload, after the TCP header and its options.
    pub payload: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

fn addr(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

impl<'a> Ethernet<'a> {
    /// Reads the Ethernet header; `None` if the frame is shorter than one.
    pub fn parse(frame: &'a [u8]) -> Option<Ethernet<'a>> {
        Some(Ethernet {
            dst: mac(frame, 0)?,
            src: mac(frame, 6)?,
            ethertype: be16(frame, 12)?,
            payload: frame.get(ETH_LEN..)?,
        })
    }

    /// The IPv4 packet inside, if the EtherType is IPv4 and the header holds together.
    pub fn ipv4(&self) -> Option<Ipv4<'a>> {
        if self.ethertype != ETHERTYPE_IPV4 {
            return None;
        }
        Ipv4::parse(self.payload)
    }
}

impl<'a> Ipv4<'a> {
    /// Reads an IPv4 header; `None` unless the version is 4 and the header and total lengths
    /// fit in `packet`.
    pub fn parse(packet: &'a [u8]) -> Option<Ipv4<'a>> {
        let first = *packet.first()?;
        let header_len = usize::from(first & 0x0f) * 4;
        let total = usize::from(be16(packet, 2)?);
        if first >> 4 != 4 || header_len < IPV4_LEN || total < header_len {
            return None;
        }
        let fragment = be16(packet, 6)?;
        Some(Ipv4 {
            src: addr(packet, 12)?,
            dst: addr(packet, 16)?,
            protocol: *packet.get(9)?,
            ttl: *packet.get(8)?,
            fragment_offset: fragment & 0x1fff,
            more_fragments: fragment & 0x2000 != 0,
            header: packet.get(..header_len)?,
            payload: packet.get(header_len..total)?,
        })
    }

    /// Whether the header checksum is right.
    pub fn checksum_ok(&self) -> bool {
        checksum(&[self.header]) == 0
    }

    /// Whether the payload is a whole transport packet (not a fragment).
    pub fn is_whole(&self) -> bool {
        self.fragment_offset == 0 && !self.more_fragments
    }
}

impl<'a> UdpDatagram<'a> {
    /// The UDP datagram in an Ethernet frame; `None` if it holds none (or only a fragment).
    pub fn parse(frame: &'a [u8]) -> Option<UdpDatagram<'a>> {
        let eth = Ethernet::parse(frame)?;
        let ip = eth.ipv4()?;
        if ip.protocol != PROTO_UDP || !ip.is_whole() {
            return None;
        }
        let udp = ip.payload;
        let len = usize::from(be16(udp, 4)?);
        if len < UDP_LEN {
            return None;
        }
        Some(UdpDatagram {
            src_mac: eth.src,
            dst_mac: eth.dst,
            src: SocketAddrV4::new(ip.src, be16(udp, 0)?),
            dst: SocketAddrV4::new(ip.dst, be16(udp, 2)?),
            payload: udp.get(UDP_LEN..len)?,
        })
    }

    /// Builds the Ethernet frame: an IPv4 header (TTL 64, don't-fragment, identification 0)
    /// with its checksum, a UDP header with its checksum, the payload, and zero padding up to
    /// the 60-byte Ethernet minimum.
    pub fn to_frame(&self) -> Result<Vec<u8>, PacketError> {
        let too_large = || PacketError::TooLarge {
            len: self.payload.len(),
            src: self.src,
            dst: self.dst,
        };
        let udp_len = u16::try_from(UDP_LEN + self.payload.len()).map_err(|_| too_large())?;
        let total = u16::try_from(IPV4_LEN + usize::from(udp_len)).map_err(|_| too_large())?;
        let (src, dst) = (self.src.ip().octets(), self.dst.ip().octets());

        let mut ip = [0u8; IPV4_LEN];
        ip[0] = 0x45; // version 4, header length 5 words
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6] = 0x40; // don't fragment; identification (4..6) stays 0, as RFC 6864 allows
        ip[8] = 64; // TTL
        ip[9] = PROTO_UDP;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let sum = checksum(&[&ip]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());

        let mut udp = [0u8; UDP_LEN];
        udp[0..2].copy_from_slice(&self.src.port().to_be_bytes());
        udp[2..4].copy_from_slice(&self.dst.port().to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        // RFC 768: the checksum covers a pseudo-header (addresses, protocol, UDP length), the
        // UDP header and the payload; a computed 0 is sent as 0xffff, since 0 means "none".
        let pseudo = [0, PROTO_UDP, udp[4], udp[5]];
        let sum = match checksum(&[&src, &dst, &pseudo, &udp, self.payload]) {
            0 => 0xffff,
            s => s,
        };
        udp[6..8].copy_from_slice(&sum.to_be_bytes());

        let mut frame = Vec::with_capacity(MIN_FRAME.max(ETH_LEN + usize::from(total)));
        frame.extend_from_slice(&self.dst_mac);
        frame.extend_from_slice(&self.src_mac);
        frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&udp);
        frame.extend_from_slice(self.payload);
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        Ok(frame)
    }
}

impl<'a> TcpSegment<'a> {
    /// The TCP segment in an Ethernet frame; `None` if it holds none (or only a fragment).
    pub fn parse(frame: &'a [u8]) -> Option<TcpSegment<'a>> {
        let ip = Ethernet::parse(frame)?.ipv4()?;
        if ip.protocol != PROTO_TCP || !ip.is_whole() {
            return None;
        }
        let tcp = ip.payload;
        let data_offset = usize::from(*tcp.get(12)? >> 4) * 4;
        if data_offset < 20 {
            return None;
        }
        Some(TcpSegment {
            src: SocketAddrV4::new(ip.src, be16(tcp, 0)?),
            dst: SocketAddrV4::new(ip.dst, be16(tcp, 2)?),
            flags: *tcp.get(13)?,
            payload: tcp.get(data_offset..)?,
        })
    }
}

/// The UDP datagram in `frame` if it goes to port `port`.
pub fn udp_to(frame: &[u8], port: u16) -> Option<UdpDatagram<'_>> {
    UdpDatagram::parse(frame).filter(|d| d.dst.port() == port)
}

/// The TCP segment in `frame` if it goes to port `port`.
pub fn tcp_to(frame: &[u8], port: u16) -> Option<TcpSegment<'_>> {
    TcpSegment::parse(frame).filter(|s| s.dst.port() == port)
}

/// Whether `needle` occurs anywhere in `haystack` (an empty needle always does): for looking
/// for plaintext in captured frames.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`: the ones' complement
/// of the ones' complement sum of its 16-bit big-endian words, an odd last byte padded with a
/// zero. Parts of odd length are joined as one byte stream. Over a header that holds its own
/// checksum the result is 0 when that checksum is right.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut high: Option<u8> = None;
    for &byte in parts.iter().flat_map(|p| p.iter()) {
        match high.take() {
            Some(h) => sum += u64::from(u16::from_be_bytes([h, byte])),
            None => high = Some(byte),
        }
    }
    if let Some(h) = high {
        sum += u64::from(u16::from_be_bytes([h, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> UdpDatagram<'_> {
        UdpDatagram {
            src_mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x01],
            dst_mac: BROADCAST,
            src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000),
            dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7946),
            payload,
        }
    }

    /// The frame for `sample(b"hi")`, worked out by hand.
    ///
    /// IPv4 header (RFC 791), total length 20 + 8 + 2 = 30 = 0x001e; its checksum (RFC 1071) is
    /// the complement of 4500 + 001e + 0000 + 4000 + 4011 + 0a00 + 0001 + 0a00 + 0002 = d932,
    /// so 26cd. UDP (RFC 768): ports 5000 = 1388 and 7946 = 1f0a, length 8 + 2 = 000a; the
    /// checksum is the complement of the pseudo-header 0a00 + 0001 + 0a00 + 0002 + 0011 + 000a
    /// plus 1388 + 1f0a + 000a + 0000 + 6869 ("hi") = af23, so 50dc. 44 bytes, padded to 60.
    const HI: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x52, 0x54, 0x00, 0x12, 0x34, 0x01, // source
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x1e, // version, IHL, TOS, total length
        0x00, 0x00, 0x40, 0x00, // identification, DF
        0x40, 0x11, 0x26, 0xcd, // TTL 64, UDP, header checksum
        10, 0, 0, 1, // source address
        10, 0, 0, 2, // destination address
        0x13, 0x88, 0x1f, 0x0a, // ports
        0x00, 0x0a, 0x50, 0xdc, // UDP length, checksum
        b'h', b'i', // payload
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // Ethernet padding
    ];

    #[test]
    fn builds_the_frame_worked_out_from_the_rfcs() {
        let frame = sample(b"hi").to_frame().unwrap();
        assert_eq!(frame, HI);
        let ip = Ethernet::parse(&frame).unwrap().ipv4().unwrap();
        assert!(ip.checksum_ok());
        assert_eq!(ip.payload.len(), 10, "padding is not part of the packet");
    }

    #[test]
    fn parses_what_it_builds() {
        let long = vec![0xa5; 1400];
        for payload in [&b""[..], b"hi", b"odd", &long] {
            let d = sample(payload);
            let frame = d.to_frame().unwrap();
            assert_eq!(UdpDatagram::parse(&frame), Some(d));
            assert_eq!(udp_to(&frame, 7946), Some(d));
            assert_eq!(udp_to(&frame, 7947), None);
            assert_eq!(TcpSegment::parse(&frame), None);
            assert!(frame.len() >= 60);
        }
    }

    #[test]
    fn checksums_verify_over_the_whole_datagram() {
        let d = sample(b"odd length");
        let frame = d.to_frame().unwrap();
        let ip = Ethernet::parse(&frame).unwrap().ipv4().unwrap();
        let pseudo = [0, PROTO_UDP, ip.payload[4], ip.payload[5]];
        let src = ip.src.octets();
        let dst = ip.dst.octets();
        assert_eq!(checksum(&[&src, &dst, &pseudo, ip.payload]), 0);
        // The example from RFC 1071, section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2], &[0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            !0xddf2
        );
    }

    #[test]
    fn refuses_a_payload_too_large_for_ipv4() {
        let big = vec![0; 65508];
        assert!(matches!(
            sample(&big).to_frame(),
            Err(PacketError::TooLarge { len: 65508, .. })
        ));
        assert_eq!(sample(&big[..65507]).to_frame().unwrap().len(), 14 + 65535);
    }

    #[test]
    fn rejects_frames_that_do_not_hold_together() {
        let frame = HI;
        assert_eq!(Ethernet::parse(&frame[..13]), None);
        assert_eq!(
            UdpDatagram::parse(&frame[..40]),
            None,
            "cut inside the UDP header"
        );
        let mut bad = frame;
        bad[14] = 0x65; // IPv6 version in an IPv4 EtherType
        assert_eq!(UdpDatagram::parse(&bad), None);
        let mut bad = frame;
        bad[17] = 0xff; // total length past the end of the frame
        assert_eq!(UdpDatagram::parse(&bad), None);
        let mut bad = frame;
        bad[38..40].copy_from_slice(&[0, 7]); // UDP length shorter than its header
        assert_eq!(UdpDatagram::parse(&bad), None);
        let mut fragment = frame;
        fragment[20] = 0x20; // more fragments
        assert_eq!(UdpDatagram::parse(&fragment), None);
        let mut tampered = frame;
        tampered[29] ^= 1; // source address changed, checksum not
        let ip = Ethernet::parse(&tampered).unwrap().ipv4().unwrap();
        assert!(!ip.checksum_ok());
        assert_eq!(
            UdpDatagram::parse(&tampered).unwrap().src.ip(),
            &Ipv4Addr::new(10, 0, 0, 0)
        );
    }

    #[test]
    fn parses_tcp_ports_flags_and_payload() {
        let mut frame = HI[..34].to_vec();
        frame[23] = PROTO_TCP;
        frame[16..18].copy_from_slice(&(20u16 + 24 + 3).to_be_bytes());
        let mut tcp = [0u8; 24];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&8080u16.to_be_bytes());
        tcp[12] = 6 << 4; // data offset: 6 words, one option word
        tcp[13] = 0x18; // PSH, ACK
        frame.extend_from_slice(&tcp);
        frame.extend_from_slice(b"GET");
        let s = tcp_to(&frame, 8080).unwrap();
        assert_eq!(s.src, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000));
        assert_eq!(s.dst.port(), 8080);
        assert_eq!(s.flags, 0x18);
        assert_eq!(s.payload, b"GET");
        assert_eq!(tcp_to(&frame, 80), None);
        assert_eq!(UdpDatagram::parse(&frame), None);
    }

    #[test]
    fn finds_plaintext() {
        let frame = sample(b"secret token").to_frame().unwrap();
        assert!(contains(&frame, b"token"));
        assert!(!contains(&frame, b"tokens"));
        assert!(contains(&frame, b""));
    }
}
