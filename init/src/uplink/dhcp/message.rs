//! Building the client's DHCP messages and reading the server's replies.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};

/// Who the client is, as told to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The interface's MAC (chaddr, and the client identifier `01:<mac>`).
    pub mac: [u8; 6],
    /// Host name sent as option 12; empty sends none.
    pub hostname: String,
}

/// Options the client asks for (option 55).
const WANTED: [OptionCode; 8] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::NtpServers,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

fn base(id: &Identity, kind: MessageType, xid: u32, secs: u16, broadcast: bool) -> Message {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(
        xid,
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        &id.mac,
    );
    m.set_opcode(Opcode::BootRequest).set_secs(secs);
    if broadcast {
        m.set_flags(Flags::default().set_broadcast());
    }
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    let mut client_id = vec![1u8];
    client_id.extend_from_slice(&id.mac);
    opts.insert(DhcpOption::ClientIdentifier(client_id));
    if kind != MessageType::Release {
        if !id.hostname.is_empty() {
            opts.insert(DhcpOption::Hostname(id.hostname.clone()));
        }
        opts.insert(DhcpOption::ParameterRequestList(WANTED.to_vec()));
        opts.insert(DhcpOption::MaxMessageSize(1500));
    }
    m
}

/// DHCPDISCOVER, broadcast, asking servers to broadcast their answer.
pub fn discover(id: &Identity, xid: u32, secs: u16) -> Message {
    base(id, MessageType::Discover, xid, secs, true)
}

/// DHCPREQUEST in SELECTING: accepts `offered` from `server`.
pub fn request_selecting(
    id: &Identity,
    xid: u32,
    secs: u16,
    offered: Ipv4Addr,
    server: Ipv4Addr,
) -> Message {
    let mut m = base(id, MessageType::Request, xid, secs, true);
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(offered));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    m
}

/// DHCPREQUEST in RENEWING or REBINDING: extends the lease on `address` (put in ciaddr).
pub fn request_extend(id: &Identity, xid: u32, secs: u16, address: Ipv4Addr) -> Message {
    let mut m = base(id, MessageType::Request, xid, secs, false);
    m.set_ciaddr(address);
    m
}

/// DHCPRELEASE of `address`, leased from `server`.
pub fn release(id: &Identity, xid: u32, address: Ipv4Addr, server: Ipv4Addr) -> Message {
    let mut m = base(id, MessageType::Release, xid, 0, false);
    m.set_ciaddr(address);
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    m
}

/// The kinds of server message the client acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// DHCPOFFER.
    Offer,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
}

/// A server reply, reduced to what the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Offer, ack or nak.
    pub kind: ReplyKind,
    /// Transaction id it answers.
    pub xid: u32,
    /// Offered or acknowledged address.
    pub address: Ipv4Addr,
    /// Prefix length from the subnet mask (24 when the server sends none).
    pub prefix: u8,
    /// Server identifier (option 54, else siaddr).
    pub server: Ipv4Addr,
    /// Routers, in preference order.
    pub routers: Vec<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// NTP servers.
    pub ntp: Vec<Ipv4Addr>,
    /// Domain name (used as resolv.conf search domain).
    pub domain: Option<String>,
    /// Lease time in seconds (`u32::MAX` is infinite).
    pub lease_secs: Option<u32>,
    /// Renewal time T1 in seconds.
    pub t1_secs: Option<u32>,
    /// Rebinding time T2 in seconds.
    pub t2_secs: Option<u32>,
}

/// Reads a server reply addressed to `mac`; `None` for anything else (requests, other
/// clients' replies, unknown message types).
pub fn parse_reply(m: &Message, mac: [u8; 6]) -> Option<Reply> {
    if m.opcode() != Opcode::BootReply || m.chaddr().get(..6) != Some(&mac[..]) {
        return None;
    }
    let opts = m.opts();
    let kind = match opts.msg_type()? {
        MessageType::Offer => ReplyKind::Offer,
        MessageType::Ack => ReplyKind::Ack,
        MessageType::Nak => ReplyKind::Nak,
        _ => return None,
    };
    let addrs = |code| match opts.get(code) {
        Some(
            DhcpOption::Router(v) | DhcpOption::DomainNameServer(v) | DhcpOption::NtpServers(v),
        ) => v.clone(),
        _ => Vec::new(),
    };
    let u32_opt = |code| match opts.get(code) {
        Some(
            DhcpOption::AddressLeaseTime(v) | DhcpOption::Renewal(v) | DhcpOption::Rebinding(v),
        ) => Some(*v),
        _ => None,
    };
    let prefix = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => u32::from(*mask).leading_ones() as u8,
        _ => 24,
    };
    let server = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => m.siaddr(),
    };
    let domain = match opts.get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(d)) if !d.is_empty() => {
            Some(d.trim_end_matches('\0').to_string())
        }
        _ => None,
    };
    Some(Reply {
        kind,
        xid: m.xid(),
        address: m.yiaddr(),
        prefix,
        server,
        routers: addrs(OptionCode::Router),
        dns: addrs(OptionCode::DomainNameServer),
        ntp: addrs(OptionCode::NtpServers),
        domain,
        lease_secs: u32_opt(OptionCode::AddressLeaseTime),
        t1_secs: u32_opt(OptionCode::Renewal),
        t2_secs: u32_opt(OptionCode::Rebinding),
    })
}

#[cfg(test)]
mod tests {
    use dhcproto::{Decodable, Encodable};

    use super::*;

    fn id() -> Identity {
        Identity {
            mac: [2, 0, 0, 0, 0, 7],
            hostname: "board-1".to_string(),
        }
    }

    #[test]
    fn discover_carries_identity_and_request_list_and_survives_the_wire() {
        let bytes = discover(&id(), 0x1234_5678, 3).to_vec().expect("encodes");
        assert_eq!(bytes[0], 1, "BOOTREQUEST");
        assert_eq!(&bytes[4..8], &[0x12, 0x34, 0x56, 0x78], "xid");
        assert_eq!(&bytes[10..12], &[0x80, 0], "broadcast flag");
        assert_eq!(&bytes[28..34], &[2, 0, 0, 0, 0, 7], "chaddr");
        assert_eq!(&bytes[236..240], &[99, 130, 83, 99], "magic cookie");
        let m = Message::from_bytes(&bytes).expect("decodes");
        let o = m.opts();
        assert_eq!(o.msg_type(), Some(MessageType::Discover));
        assert_eq!(
            o.get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 7]))
        );
        assert_eq!(
            o.get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("board-1".into()))
        );
        match o.get(OptionCode::ParameterRequestList) {
            Some(DhcpOption::ParameterRequestList(l)) => {
                for code in [
                    OptionCode::NtpServers,
                    OptionCode::Renewal,
                    OptionCode::Rebinding,
                    OptionCode::Router,
                ] {
                    assert!(l.contains(&code), "{code:?}");
                }
            }
            other => panic!("no parameter request list: {other:?}"),
        }
    }

    #[test]
    fn release_names_server_and_address_without_hostname() {
        let m = release(
            &id(),
            9,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        assert_eq!(m.ciaddr(), Ipv4Addr::new(10, 0, 0, 5));
        assert!(!m.flags().broadcast());
        assert_eq!(m.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(
            m.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert!(m.opts().get(OptionCode::Hostname).is_none());
    }

    #[test]
    fn parses_an_ack_and_ignores_other_clients() {
        let mut m = Message::new_with_id(
            77,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 9, 0, 50),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &id().mac,
        );
        m.set_opcode(Opcode::BootReply);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(MessageType::Ack));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 252, 0)));
        o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 9, 0, 1)));
        o.insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 9, 0, 1)]));
        o.insert(DhcpOption::NtpServers(vec![Ipv4Addr::new(10, 9, 0, 2)]));
        o.insert(DhcpOption::AddressLeaseTime(120));
        let r = parse_reply(&m, id().mac).expect("our reply");
        assert_eq!(r.kind, ReplyKind::Ack);
        assert_eq!((r.address, r.prefix), (Ipv4Addr::new(10, 9, 0, 50), 22));
        assert_eq!(r.server, Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(r.ntp, vec![Ipv4Addr::new(10, 9, 0, 2)]);
        assert_eq!((r.lease_secs, r.t1_secs), (Some(120), None));
        assert_eq!(parse_reply(&m, [2, 0, 0, 0, 0, 8]), None);
    }
}
