//! Bounded parsing of ctnetlink answers: netlink message framing, attribute lists, and the
//! few fields of a conntrack entry that counting needs.
//!
//! Every length is checked against the bytes actually there before it is used, nesting is
//! fixed by the code (tuple inside entry, TCP info inside protocol info), so no input can make
//! the parser read out of bounds, recurse or allocate.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::svcnet::nft::wire::align;

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nfgenmsg`, the header of every nfnetlink message.
pub const NFGENMSG_LEN: usize = 4;
/// The attribute type bits (`NLA_TYPE_MASK`): without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `CTA_TUPLE_ORIG`: the tuple of the direction that opened the connection (nested).
pub const CTA_TUPLE_ORIG: u16 = 1;
/// `CTA_PROTOINFO`: protocol state (nested).
pub const CTA_PROTOINFO: u16 = 4;
/// `CTA_TIMEOUT`: seconds until the entry expires (big-endian u32).
pub const CTA_TIMEOUT: u16 = 7;
/// `CTA_TUPLE_IP` inside a tuple (nested).
pub const CTA_TUPLE_IP: u16 = 1;
/// `CTA_TUPLE_PROTO` inside a tuple (nested).
pub const CTA_TUPLE_PROTO: u16 = 2;
/// `CTA_IP_V4_DST` inside `CTA_TUPLE_IP`: four bytes, network order.
pub const CTA_IP_V4_DST: u16 = 2;
/// `CTA_PROTO_NUM` inside `CTA_TUPLE_PROTO`: the IP protocol number (u8).
pub const CTA_PROTO_NUM: u16 = 1;
/// `CTA_PROTO_DST_PORT` inside `CTA_TUPLE_PROTO`: big-endian u16.
pub const CTA_PROTO_DST_PORT: u16 = 3;
/// `CTA_PROTOINFO_TCP` inside `CTA_PROTOINFO` (nested).
pub const CTA_PROTOINFO_TCP: u16 = 1;
/// `CTA_PROTOINFO_TCP_STATE` inside `CTA_PROTOINFO_TCP`: the TCP state (u8).
pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;

/// Input the parser refused: what was wrong and at which byte of the datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct Malformed {
    /// What was wrong.
    pub what: &'static str,
    /// Offset in the datagram.
    pub at: usize,
}

/// A netlink message header, in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages of one datagram: each header with its payload and the payload's offset.
pub struct Messages<'a> {
    buf: &'a [u8],
    at: usize,
}

/// Splits a datagram into netlink messages.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages {
        buf: datagram,
        at: 0,
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(Header, &'a [u8], usize), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let at = self.at;
        let fail = |what| Some(Err(Malformed { what, at }));
        // After an error nothing more is read: the framing cannot be trusted.
        self.at = self.buf.len();
        let (Some(len), Some(kind), Some(flags), Some(seq)) = (
            u32_ne(self.buf, at),
            u16_ne(self.buf, at + 4),
            u16_ne(self.buf, at + 6),
            u32_ne(self.buf, at + 8),
        ) else {
            return fail("truncated message header");
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() - at {
            return fail("message length out of bounds");
        }
        self.at = at.saturating_add(align(len)).min(self.buf.len());
        let header = Header { kind, flags, seq };
        Some(Ok((
            header,
            &self.buf[at + NLMSG_HDRLEN..at + len],
            at + NLMSG_HDRLEN,
        )))
    }
}

/// The attributes of a list: each type (flags masked off) with its payload and its offset.
pub struct Attrs<'a> {
    buf: &'a [u8],
    at: usize,
    /// Offset of `buf` in the datagram, for error messages.
    base: usize,
}

/// The attributes in `buf`, which starts at byte `base` of the datagram.
pub fn attrs(buf: &[u8], base: usize) -> Attrs<'_> {
    Attrs { buf, at: 0, base }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8], usize), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let at = self.at;
        let base = self.base;
        self.at = self.buf.len();
        let fail = |what| {
            Some(Err(Malformed {
                what,
                at: base + at,
            }))
        };
        let (Some(len), Some(kind)) = (u16_ne(self.buf, at), u16_ne(self.buf, at + 2)) else {
            return fail("truncated attribute header");
        };
        let len = usize::from(len);
        if len < 4 || len > self.buf.len() - at {
            return fail("attribute length out of bounds");
        }
        self.at = at.saturating_add(align(len)).min(self.buf.len());
        Some(Ok((
            kind & NLA_TYPE_MASK,
            &self.buf[at + 4..at + len],
            self.base + at + 4,
        )))
    }
}

/// What counting needs from one conntrack entry; `None` where the kernel did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// The IP protocol of the original tuple (6 for TCP).
    pub protocol: Option<u8>,
    /// The original tuple's IPv4 destination address and port (both present).
    pub destination: Option<SocketAddrV4>,
    /// The TCP state (`TCP_CONNTRACK_*`), for TCP entries.
    pub tcp_state: Option<u8>,
    /// Seconds until the entry expires.
    pub timeout: Option<u32>,
}

/// A fixed-size payload, or an error naming the attribute.
fn exact<const N: usize>(
    payload: &[u8],
    at: usize,
    what: &'static str,
) -> Result<[u8; N], Malformed> {
    payload.try_into().map_err(|_| Malformed { what, at })
}

/// Parses the payload of an `IPCTNL_MSG_CT_NEW` message (nfgenmsg, then attributes) that
/// starts at byte `base` of the datagram. Returns the entry's address family and the entry.
pub fn entry(payload: &[u8], base: usize) -> Result<(u8, Entry), Malformed> {
    let Some(family) = payload
        .first()
        .copied()
        .filter(|_| payload.len() >= NFGENMSG_LEN)
    else {
        return Err(Malformed {
            what: "truncated nfgenmsg",
            at: base,
        });
    };
    let mut out = Entry::default();
    for attr in attrs(&payload[NFGENMSG_LEN..], base + NFGENMSG_LEN) {
        let (kind, value, at) = attr?;
        match kind {
            CTA_TUPLE_ORIG => tuple(value, at, &mut out)?,
            CTA_PROTOINFO => protoinfo(value, at, &mut out)?,
            CTA_TIMEOUT => {
                out.timeout = Some(u32::from_be_bytes(exact(
                    value,
                    at,
                    "CTA_TIMEOUT of wrong size",
                )?));
            }
            _ => {}
        }
    }
    Ok((family, out))
}

/// The original tuple: destination address, protocol and destination port.
fn tuple(buf: &[u8], base: usize, out: &mut Entry) -> Result<(), Malformed> {
    let mut addr = None;
    let mut port = None;
    for attr in attrs(buf, base) {
        let (kind, value, at) = attr?;
        match kind {
            CTA_TUPLE_IP => {
                for inner in attrs(value, at) {
                    let (kind, value, at) = inner?;
                    if kind == CTA_IP_V4_DST {
                        let octets = exact(value, at, "CTA_IP_V4_DST of wrong size")?;
                        addr = Some(Ipv4Addr::from(octets));
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for inner in attrs(value, at) {
                    let (kind, value, at) = inner?;
                    match kind {
                        CTA_PROTO_NUM => {
                            let [n] = exact(value, at, "CTA_PROTO_NUM of wrong size")?;
                            out.protocol = Some(n);
                        }
                        CTA_PROTO_DST_PORT => {
                            let b = exact(value, at, "CTA_PROTO_DST_PORT of wrong size")?;
                            port = Some(u16::from_be_bytes(b));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out.destination = addr.zip(port).map(|(a, p)| SocketAddrV4::new(a, p));
    Ok(())
}

/// The protocol information: the TCP state, if this is TCP.
fn protoinfo(buf: &[u8], base: usize, out: &mut Entry) -> Result<(), Malformed> {
    for attr in attrs(buf, base) {
        let (kind, value, at) = attr?;
        if kind != CTA_PROTOINFO_TCP {
            continue;
        }
        for inner in attrs(value, at) {
            let (kind, value, at) = inner?;
            if kind == CTA_PROTOINFO_TCP_STATE {
                let [state] = exact(value, at, "CTA_PROTOINFO_TCP_STATE of wrong size")?;
                out.tcp_state = Some(state);
            }
        }
    }
    Ok(())
}
