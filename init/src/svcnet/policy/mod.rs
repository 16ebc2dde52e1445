//! The board's network policy: service virtual IPs, allow lists between services, egress and
//! the board's own exposure to the LAN, as one nftables rule set.
//!
//! [`build`] turns a [`Policy`] (the desired state) into an [`nft::Ruleset`]; it is pure, so
//! the rules for any state can be inspected in tests. [`apply`] builds and replaces baton's
//! policy tables in one nfnetlink batch: packets see the old rules or the new ones, never a
//! gap, and a batch the kernel refuses leaves the old rules in place.
//!
//! # The rules
//!
//! Two tables, both owned by this module and replaced as a whole:
//!
//! `ip baton-policy-nat` (virtual IPs):
//! - chains `prerouting` (nat, prerouting, -100) and `output` (nat, output, -100): for every
//!   service port with at least one healthy instance, `ip daddr VIP tcp|udp dport PORT jump
//!   svc-NAME-PROTOPORT`. A [`Service::activate`] service with none gets, in `prerouting`
//!   only and for each TCP port, `ip daddr VIP tcp dport PORT redirect to :ACTIVATOR_PORT`:
//!   the call reaches the activator on the bridge address, and conntrack keeps the VIP for it;
//! - chain `svc-NAME-PROTOPORT`: with healthy instances `i0 .. i(n-1)`, rule `k` is
//!   `tcp|udp dport PORT numgen random mod (n-k) 0 dnat to ik:TARGET`, the last one a plain
//!   `dnat to`. Each rule draws its own random number, so every instance gets `1/n` of the
//!   new connections. Unhealthy instances get none; replies are un-NATed by conntrack.
//!
//! `inet baton-policy` (filtering), chain `forward` (filter, forward, 0, policy accept):
//! 1. `ct state established,related accept` (commented with the rule set's generation);
//! 2. `ct state invalid drop`;
//! 3. `ip saddr . ip daddr . tcp|udp dport @allow_tcp|@allow_udp accept`: the allow lists. For
//!    every service `A`, every service `B` in `A`'s allow list, every instance address of `A`,
//!    every instance of `B` (healthy or not) and every port of `B`, the set holds
//!    `a . b . target port`. The forward hook sees the destination after DNAT, so a call to
//!    `B`'s VIP matches the instance it was sent to. Instances on other boards are in the set
//!    too: a call is checked by the board it leaves and again by the board it reaches;
//! 4. `iifname MESH ip saddr @front_door_peers ip daddr . tcp dport @routed accept` (with
//!    [`Policy::mesh`]): another board's front door reaching an instance here whose service has
//!    a route. Its connection leaves that board with the board's bridge address as source (the
//!    mesh routes carry it), which no container can send from, so this opens nothing to other
//!    boards' containers; TCP only, and only the routed services' ports
//!    ([`Policy::front_door_peers`], [`Policy::routed`]) and those of the [`Service::activate`]
//!    services' instances here (another board's activator hands its held calls over the same way);
//! 5. `iifname MESH` refused (with [`Policy::mesh`]): from other boards' containers only the
//!    allowed calls above (and their replies) get through;
//! 6. `ip daddr @vips reject` (a TCP reset for TCP, ICMP port unreachable otherwise): a
//!    connection to a VIP that was not DNATed has no healthy instance; it is refused rather
//!    than left to time out;
//! 7. `ip saddr SUBNET ip daddr NET reject with icmp type admin-prohibited` for the bridge
//!    subnet and every [`Policy::cluster`] network: default deny between containers, on this
//!    board and towards others. ICMP for TCP as well: the call may have been DNATed from a
//!    VIP, and conntrack maps an ICMP error back to the VIP, where a reset sent for a bridged
//!    packet keeps the instance's address and the caller would ignore it;
//! 8. `ip saddr SUBNET tcp|udp dport @control_tcp|@control_udp` refused, whatever the
//!    destination: no container reaches a board's API, gossip or mesh port through the
//!    masquerade ([`Policy::control_ports`]);
//! 9. `ip saddr @egress accept`: instances of services with [`Egress::Internet`] may reach
//!    anything else (the masquerade of `ip baton-nat` gives them the uplink's address);
//! 10. `ip saddr SUBNET` refused: everything else from containers, including [`Egress::None`].
//!
//! "Refused" is a pair of rules: `meta l4proto tcp reject with tcp reset`, then `reject with
//! icmp type admin-prohibited`, so a forbidden call fails at once instead of timing out.
//!
//! Chain `input` (filter, input, 0, policy accept):
//! 1. `ct state established,related accept`, `iifname "lo" accept`, and with [`Policy::mesh`]
//!    `iifname MESH` refused: other boards' containers cannot reach this board either;
//! 2. `ip saddr SUBNET ip daddr BRIDGE_ADDR udp|tcp dport 53 accept`: DNS on the bridge, and
//!    `ip saddr SUBNET ip daddr BRIDGE_ADDR tcp dport ACTIVATOR_PORT accept`: the activator
//!    (not in the LAN ports: the LAN does not reach it);
//! 3. `ip saddr SUBNET` refused: containers cannot reach the board itself (API, gossip, ...)
//!    on any of its addresses;
//! 4. only with [`Policy::lan_filter`], for every uplink: `tcp|udp dport @lan_tcp|@lan_udp
//!    accept`, `icmp type echo-request accept`, then `drop`. Other interfaces are untouched.
//!
//! Containers on the same bridge talk at layer 2, so the forward rules see their traffic only
//! when the bridge hands bridged IPv4 to netfilter (`br_netfilter`, with `nf_call_iptables`
//! on the bridge); the same setting makes the un-NAT of replies from an instance on the same
//! bridge work. The addresses matched are the ones containers send from: the bridge's own
//! rules ([`crate::svcnet::bridge::ports`]) stop a container from sending as another.

mod build;

#[cfg(test)]
mod activate_tests;
#[cfg(test)]
mod front_door_netns_tests;
#[cfg(test)]
mod front_door_tests;
#[cfg(test)]
pub(crate) mod netns_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::net::Ipv4Addr;

use crate::svcnet::nft::{self, Family, Ipv4Net};

pub use build::build;

/// The filtering table.
pub const FILTER_TABLE: &str = "baton-policy";
/// The virtual IP table.
pub const NAT_TABLE: &str = "baton-policy-nat";

/// The board's API port.
pub const API_PORT: u16 = 7070;
/// The gossip port.
pub const GOSSIP_PORT: u16 = 7946;
/// mDNS.
pub const MDNS_PORT: u16 = 5353;
/// The DHCP client port.
pub const DHCP_CLIENT_PORT: u16 = 68;
/// DNS, served on the bridge address.
pub const DNS_PORT: u16 = 53;
/// The activator ([`crate::svcnet::activator`]), on the bridge address: TCP calls to the VIP of
/// a service with no healthy instance are redirected to it.
pub const ACTIVATOR_PORT: u16 = 7099;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A port of one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSpec {
    /// The protocol.
    pub proto: Proto,
    /// The port.
    pub port: u16,
}

impl PortSpec {
    /// A TCP port.
    pub fn tcp(port: u16) -> PortSpec {
        PortSpec {
            proto: Proto::Tcp,
            port,
        }
    }

    /// A UDP port.
    pub fn udp(port: u16) -> PortSpec {
        PortSpec {
            proto: Proto::Udp,
            port,
        }
    }
}

/// A service port: what callers use on the VIP and where the instances listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort {
    /// Protocol.
    pub proto: Proto,
    /// The port on the virtual IP.
    pub port: u16,
    /// The port on each instance.
    pub target: u16,
}

/// One instance of a service, on this board or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// The instance's container address.
    pub addr: Ipv4Addr,
    /// Whether it gets new connections.
    pub healthy: bool,
}

/// Where a service's containers may connect outside the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Egress {
    /// Anywhere (`egress = "internet"`, the default).
    #[default]
    Internet,
    /// Nowhere (`egress = "none"`); calls to allowed services still work.
    None,
}

/// A service as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Name, as allow lists refer to it.
    pub name: String,
    /// Its virtual IP (the same on every board).
    pub vip: Ipv4Addr,
    /// Its ports.
    pub ports: Vec<ServicePort>,
    /// Its instances.
    pub instances: Vec<Instance>,
    /// The services its containers may call; names without a service are ignored.
    pub allow: Vec<String>,
    /// Its egress beyond the cluster.
    pub egress: Egress,
    /// Whether a call to its VIP with no healthy instance is held by the activator (which wakes
    /// the service) instead of refused: set for services that scale to zero or freeze.
    pub activate: bool,
}

/// The desired network policy of one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Changes with every new policy; shown in the rule set and by `/v1/network`.
    pub generation: u64,
    /// The container subnet on the bridge.
    pub subnet: Ipv4Net,
    /// The bridge's own address (the containers' gateway and DNS server).
    pub bridge_addr: Ipv4Addr,
    /// Networks inside the cluster besides `subnet` (other boards' container subnets, the
    /// VIP range): containers reach them only through allow lists.
    pub cluster: Vec<Ipv4Net>,
    /// The board's LAN interfaces.
    pub uplinks: Vec<String>,
    /// Ports of the board open on the uplinks (see [`Policy::board_ports`]).
    pub lan_ports: Vec<PortSpec>,
    /// Whether the uplinks are filtered at all (off: the board accepts everything from them).
    pub lan_filter: bool,
    /// The link other boards' containers arrive on (the WireGuard mesh), if any.
    pub mesh: Option<String>,
    /// The other boards' bridge addresses (the first host address of each one's container
    /// subnet): the source of what their host processes, the front door among them, send over
    /// the mesh. The bridge rules keep containers from sending from it.
    pub front_door_peers: Vec<Ipv4Addr>,
    /// Reachable from peers' host processes: the instances here of services with a route, with
    /// the port the front door sends requests to (the spec's `port`); what
    /// [`Policy::front_door_peers`] may reach. The rule set adds the instances here of
    /// [`Service::activate`] services and their TCP ports (another board's activator).
    pub routed: Vec<(Ipv4Addr, u16)>,
    /// The ports of the cluster's own protocols (API and sync, gossip, mesh): containers may
    /// not reach them anywhere (see [`Policy::control_ports`]).
    pub control_ports: Vec<PortSpec>,
    /// The services.
    pub services: Vec<Service>,
}

impl Policy {
    /// The ports every board opens to the LAN: API, gossip, mDNS and the DHCP client.
    pub fn board_ports() -> Vec<PortSpec> {
        vec![
            PortSpec::tcp(API_PORT),
            PortSpec::udp(GOSSIP_PORT),
            PortSpec::udp(MDNS_PORT),
            PortSpec::udp(DHCP_CLIENT_PORT),
        ]
    }

    /// The ports boards talk to each other on: the API (which also carries the cluster's
    /// record sync), gossip and the WireGuard mesh.
    pub fn control_ports() -> Vec<PortSpec> {
        vec![
            PortSpec::tcp(API_PORT),
            PortSpec::udp(GOSSIP_PORT),
            PortSpec::udp(crate::svcnet::mesh::PORT),
        ]
    }

    /// A policy without services for the bridge `subnet` at `bridge_addr`, with the
    /// [`Policy::board_ports`] open on `uplinks` and the LAN filter off.
    pub fn new(subnet: Ipv4Net, bridge_addr: Ipv4Addr, uplinks: &[&str]) -> Policy {
        Policy {
            generation: 0,
            subnet,
            bridge_addr,
            cluster: Vec::new(),
            uplinks: uplinks.iter().map(|u| u.to_string()).collect(),
            lan_ports: Policy::board_ports(),
            lan_filter: false,
            mesh: None,
            front_door_peers: Vec::new(),
            routed: Vec::new(),
            control_ports: Policy::control_ports(),
            services: Vec::new(),
        }
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// Errors applying a policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rule set was refused (by our checks or by the kernel); the old rules stay.
    #[error("applying network policy generation {generation}: {source}")]
    Apply {
        /// The generation that was not applied.
        generation: u64,
        /// What failed.
        #[source]
        source: nft::Error,
    },
    /// The policy tables could not be removed.
    #[error("removing the network policy tables: {0}")]
    Remove(#[source] nft::Error),
}

/// Builds the rule set of `policy` and replaces the policy tables with it, atomically, in the
/// calling thread's network namespace.
pub fn apply(policy: &Policy) -> Result<(), Error> {
    nft::apply(&build(policy)).map_err(|source| Error::Apply {
        generation: policy.generation,
        source,
    })
}

/// Removes the policy tables (everything is allowed again).
pub fn remove() -> Result<(), Error> {
    nft::remove(&[(Family::Inet, FILTER_TABLE), (Family::Ip, NAT_TABLE)]).map_err(Error::Remove)
}
