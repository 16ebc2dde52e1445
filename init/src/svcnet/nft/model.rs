//! The typed rule set: tables holding sets and chains, chains holding rules.
//!
//! A [`Ruleset`] is what baton wants in the kernel for the tables it names; applying it
//! ([`super::apply`]) replaces exactly those tables, atomically.

use std::net::Ipv4Addr;

use super::rule::Rule;

/// An nftables address family (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 and IPv6 (`inet`).
    Inet = 1,
    /// IPv4 only (`ip`).
    Ip = 2,
    /// Frames crossing a bridge (`bridge`): layer 2, ARP included.
    Bridge = 7,
    /// IPv6 only (`ip6`).
    Ip6 = 10,
}

impl Family {
    /// The name `nft` uses.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Bridge => "bridge",
            Family::Ip6 => "ip6",
        }
    }
}

/// The netfilter hooks of the inet families (the bridge family numbers its hooks the same:
/// prerouting is a frame entering the bridge from a port, before it is forwarded or delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Before routing.
    Prerouting = 0,
    /// Delivered to this host.
    Input = 1,
    /// Routed through this host.
    Forward = 2,
    /// Sent by this host.
    Output = 3,
    /// After routing, on the way out.
    Postrouting = 4,
}

/// The type of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    /// Filtering.
    Filter,
    /// Network address translation (sees the first packet of each connection).
    Nat,
    /// Rerouting after a mark change (output hook).
    Route,
}

impl ChainType {
    /// The name the kernel knows the type by.
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

/// What a base chain does with a packet that no rule decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Let it through.
    Accept,
    /// Drop it.
    Drop,
}

/// How a base chain is attached to the network stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    /// Chain type.
    pub kind: ChainType,
    /// Where it hooks in.
    pub hook: Hook,
    /// Order among chains on the same hook (lower runs first; NAT prerouting is -100,
    /// filter 0, NAT postrouting 100).
    pub priority: i32,
    /// Verdict for packets no rule decided on.
    pub policy: Policy,
}

/// A chain: a base chain attached to a hook, or a regular chain reached by jumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Name, unique in its table.
    pub name: String,
    /// Hook attachment; `None` for a regular chain.
    pub base: Option<BaseChain>,
    /// The rules, evaluated in order.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// A regular chain (reached by `jump`/`goto`).
    pub fn regular(name: &str) -> Chain {
        Chain {
            name: name.to_string(),
            base: None,
            rules: Vec::new(),
        }
    }

    /// A base chain attached to `hook`.
    pub fn base(name: &str, kind: ChainType, hook: Hook, priority: i32, policy: Policy) -> Chain {
        Chain {
            name: name.to_string(),
            base: Some(BaseChain {
                kind,
                hook,
                priority,
                policy,
            }),
            rules: Vec::new(),
        }
    }

    /// Appends a rule.
    pub fn rule(mut self, rule: Rule) -> Chain {
        self.rules.push(rule);
        self
    }
}

/// The data type of a set key (or of one field of a concatenated key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// An IPv4 address (4 bytes).
    Ipv4Addr,
    /// A TCP/UDP port (2 bytes, network order).
    InetService,
    /// A layer 4 protocol number (1 byte).
    InetProto,
}

impl KeyType {
    /// nft's data type number (`TYPE_*` in nftables' datatype.h).
    pub fn type_id(self) -> u32 {
        match self {
            KeyType::Ipv4Addr => 7,
            KeyType::InetProto => 12,
            KeyType::InetService => 13,
        }
    }

    /// Size of a value in bytes.
    pub fn size(self) -> usize {
        match self {
            KeyType::Ipv4Addr => 4,
            KeyType::InetService => 2,
            KeyType::InetProto => 1,
        }
    }
}

/// One field of a set element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// A port.
    Port(u16),
    /// A protocol number.
    Proto(u8),
}

impl Value {
    /// The type this value belongs to.
    pub fn key_type(self) -> KeyType {
        match self {
            Value::Ipv4(_) => KeyType::Ipv4Addr,
            Value::Port(_) => KeyType::InetService,
            Value::Proto(_) => KeyType::InetProto,
        }
    }

    /// The value in the kernel's byte order.
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Value::Ipv4(a) => a.octets().to_vec(),
            Value::Port(p) => p.to_be_bytes().to_vec(),
            Value::Proto(p) => vec![p],
        }
    }
}

/// A named set of keys that rules look values up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Name, unique in its table.
    pub name: String,
    /// Key type; more than one field makes a concatenation (`ipv4_addr . inet_service`).
    pub key: Vec<KeyType>,
    /// The elements, each with one value per key field.
    pub elements: Vec<Vec<Value>>,
}

impl Set {
    /// A set with a single-field key.
    pub fn new(name: &str, key: KeyType) -> Set {
        Set {
            name: name.to_string(),
            key: vec![key],
            elements: Vec::new(),
        }
    }

    /// A set with a concatenated key.
    pub fn concat(name: &str, key: &[KeyType]) -> Set {
        Set {
            name: name.to_string(),
            key: key.to_vec(),
            elements: Vec::new(),
        }
    }

    /// Adds an element.
    pub fn element(mut self, values: &[Value]) -> Set {
        self.elements.push(values.to_vec());
        self
    }
}

/// A table: baton owns it entirely and replaces it as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Address family.
    pub family: Family,
    /// Name, e.g. `baton`.
    pub name: String,
    /// Sets, created before the chains.
    pub sets: Vec<Set>,
    /// Chains; all are created before any rule, so rules may jump to any of them.
    pub chains: Vec<Chain>,
}

impl Table {
    /// An empty table.
    pub fn new(family: Family, name: &str) -> Table {
        Table {
            family,
            name: name.to_string(),
            sets: Vec::new(),
            chains: Vec::new(),
        }
    }

    /// Adds a set.
    pub fn set(mut self, set: Set) -> Table {
        self.sets.push(set);
        self
    }

    /// Adds a chain.
    pub fn chain(mut self, chain: Chain) -> Table {
        self.chains.push(chain);
        self
    }
}

/// The tables baton owns; applying a rule set replaces each of them in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The tables.
    pub tables: Vec<Table>,
}

impl Ruleset {
    /// A rule set of the given tables.
    pub fn new(tables: Vec<Table>) -> Ruleset {
        Ruleset { tables }
    }
}
