//! Rules as matches and statements (lowered to expressions by [`super::lower`]).

use std::net::Ipv4Addr;

use super::expr::{CmpOp, Expr, Verdict};
use super::model::Family;

/// IPv4 header fields a rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrField {
    /// `ip saddr`.
    Saddr,
    /// `ip daddr`.
    Daddr,
}

/// Transport header fields a rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortField {
    /// `tcp sport`.
    TcpSport,
    /// `tcp dport`.
    TcpDport,
    /// `udp sport`.
    UdpSport,
    /// `udp dport`.
    UdpDport,
}

/// `IPPROTO_TCP`.
pub const TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const UDP: u8 = 17;
/// `IPPROTO_ICMP`.
pub const ICMP: u8 = 1;
/// `NFPROTO_IPV4`, the value of `meta nfproto ipv4`.
pub const NFPROTO_IPV4: u8 = 2;

impl PortField {
    pub(crate) fn proto(self) -> u8 {
        match self {
            PortField::TcpSport | PortField::TcpDport => TCP,
            PortField::UdpSport | PortField::UdpDport => UDP,
        }
    }

    pub(crate) fn offset(self) -> u32 {
        match self {
            PortField::TcpSport | PortField::UdpSport => 0,
            PortField::TcpDport | PortField::UdpDport => 2,
        }
    }
}

/// A field that can be part of a set lookup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// An IPv4 address field.
    Addr(AddrField),
    /// A port field.
    Port(PortField),
    /// `meta l4proto`.
    L4proto,
}

/// Connection tracking states (a bit mask; a match holds when any of the bits is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtState(pub u32);

impl CtState {
    /// `invalid`.
    pub const INVALID: CtState = CtState(1);
    /// `established`.
    pub const ESTABLISHED: CtState = CtState(2);
    /// `related`.
    pub const RELATED: CtState = CtState(4);
    /// `new`.
    pub const NEW: CtState = CtState(8);
    /// `untracked`.
    pub const UNTRACKED: CtState = CtState(64);
}

impl std::ops::BitOr for CtState {
    type Output = CtState;
    fn bitor(self, other: CtState) -> CtState {
        CtState(self.0 | other.0)
    }
}

/// An IPv4 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    /// The address (host bits are masked off when matching).
    pub addr: Ipv4Addr,
    /// Prefix length, 0-32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// `addr/prefix`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
        Ipv4Net { addr, prefix }
    }

    /// The netmask as a number.
    pub fn mask(self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `a` is inside this network.
    pub fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.network())
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A condition a packet must meet for the rule to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `iifname [!=] "name"`.
    Iifname(CmpOp, String),
    /// `oifname [!=] "name"`.
    Oifname(CmpOp, String),
    /// `meta l4proto [!=] proto`.
    L4proto(CmpOp, u8),
    /// `meta nfproto [!=] family` (`NFPROTO_*`).
    Nfproto(CmpOp, u8),
    /// `ip saddr|daddr [!=] net`.
    Addr(AddrField, CmpOp, Ipv4Net),
    /// `tcp|udp sport|dport <op> port`.
    Port(PortField, CmpOp, u16),
    /// `key [!=] @set`, with a concatenated key when there are several fields.
    InSet {
        /// The key fields, in the set's key order.
        fields: Vec<KeyField>,
        /// The set's name.
        set: String,
        /// Match when the key is not in the set.
        invert: bool,
    },
    /// `ct state <states>`: any of the given states.
    CtState(CtState),
    /// `numgen random mod <modulus> <value>`: holds for a random `value`-th share of packets
    /// (each rule draws its own number).
    Numgen {
        /// The random number is taken modulo this (at least 1).
        modulus: u32,
        /// The value it must equal.
        value: u32,
    },
    /// `icmp type <type>` (8 is echo-request).
    IcmpType(u8),
    /// `iifname "prefix*"`: the input interface's name starts with `prefix`.
    IifnamePrefix(String),
    /// `ether saddr [!=] mac` (bridge and netdev tables).
    EtherSaddr(CmpOp, [u8; 6]),
    /// An Ethernet/IPv4 ARP packet sent as `hw`/`ip` (bridge tables): `arp htype 1 arp ptype
    /// ip arp hlen 6 arp plen 4 arp saddr ether HW arp saddr ip IP`.
    ArpSender {
        /// The sender hardware address.
        hw: [u8; 6],
        /// The sender protocol address.
        ip: Ipv4Addr,
    },
}

/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;

/// How a `reject` statement answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// `reject with tcp reset` (the rule must match TCP only, e.g. `meta l4proto tcp`).
    TcpReset,
    /// `reject`: ICMP port unreachable (family-independent in an `inet` table).
    PortUnreachable,
    /// `reject with icmp type admin-prohibited` (`icmpx` in an `inet` rule that did not match
    /// IPv4): the answer of a filter that forbids the packet.
    AdminProhibited,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Count packets and bytes.
    Counter,
    /// A verdict; ends the rule.
    Verdict(Verdict),
    /// Source NAT to the output interface's address.
    Masquerade,
    /// Destination NAT to `addr`, and `port` if given.
    Dnat {
        /// New destination address.
        addr: Ipv4Addr,
        /// New destination port.
        port: Option<u16>,
    },
    /// Refuse the packet with an answer instead of dropping it silently.
    Reject(Reject),
    /// Redirect to this host, to `port` if given.
    Redirect {
        /// New destination port.
        port: Option<u16>,
    },
}

/// A rule: matches, then statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// The conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// The actions, in order.
    pub statements: Vec<Statement>,
    /// A comment stored with the rule (shown by `nft list ruleset`, used in error messages).
    pub comment: Option<String>,
}

impl Rule {
    /// An empty rule (matches everything, does nothing).
    pub fn new() -> Rule {
        Rule::default()
    }

    /// Adds a match.
    pub fn when(mut self, m: Match) -> Rule {
        self.matches.push(m);
        self
    }

    /// Adds a statement.
    pub fn then(mut self, s: Statement) -> Rule {
        self.statements.push(s);
        self
    }

    /// Sets the comment.
    pub fn comment(mut self, c: &str) -> Rule {
        self.comment = Some(c.to_string());
        self
    }

    /// `iifname "name"`.
    pub fn iifname(self, name: &str) -> Rule {
        self.when(Match::Iifname(CmpOp::Eq, name.to_string()))
    }

    /// `oifname "name"`.
    pub fn oifname(self, name: &str) -> Rule {
        self.when(Match::Oifname(CmpOp::Eq, name.to_string()))
    }

    /// `ip saddr net`.
    pub fn ip_saddr(self, net: Ipv4Net) -> Rule {
        self.when(Match::Addr(AddrField::Saddr, CmpOp::Eq, net))
    }

    /// `ip daddr net`.
    pub fn ip_daddr(self, net: Ipv4Net) -> Rule {
        self.when(Match::Addr(AddrField::Daddr, CmpOp::Eq, net))
    }

    /// `tcp dport port`.
    pub fn tcp_dport(self, port: u16) -> Rule {
        self.when(Match::Port(PortField::TcpDport, CmpOp::Eq, port))
    }

    /// `udp dport port`.
    pub fn udp_dport(self, port: u16) -> Rule {
        self.when(Match::Port(PortField::UdpDport, CmpOp::Eq, port))
    }

    /// `ct state states`.
    pub fn ct_state(self, states: CtState) -> Rule {
        self.when(Match::CtState(states))
    }

    /// `counter`.
    pub fn counter(self) -> Rule {
        self.then(Statement::Counter)
    }

    /// `accept`.
    pub fn accept(self) -> Rule {
        self.then(Statement::Verdict(Verdict::Accept))
    }

    /// `drop`.
    pub fn drop(self) -> Rule {
        self.then(Statement::Verdict(Verdict::Drop))
    }

    /// `jump chain`.
    pub fn jump(self, chain: &str) -> Rule {
        self.then(Statement::Verdict(Verdict::Jump(chain.to_string())))
    }

    /// `reject with ...`.
    pub fn reject(self, with: Reject) -> Rule {
        self.then(Statement::Reject(with))
    }

    /// `masquerade`.
    pub fn masquerade(self) -> Rule {
        self.then(Statement::Masquerade)
    }

    /// The rule's expressions in a table of `family`; `set_id` gives the batch id of a set
    /// created in the same batch.
    pub fn expressions(&self, family: Family, set_id: &dyn Fn(&str) -> Option<u32>) -> Vec<Expr> {
        super::lower::lower(self, family, set_id)
    }
}
