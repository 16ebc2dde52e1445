//! Service names: a DNS server on the board's bridge address.
//!
//! Containers resolve `<service>` and `<service>.baton` (case-insensitive, trailing dot
//! optional) to the service's stable virtual IP ([`vip::assign_vips`]), the same on every
//! board. A queries get the VIP with a 5 s TTL; other types for a service get an empty
//! NOERROR; other names under `.baton` get NXDOMAIN; everything else is relayed to the board's
//! upstream resolvers in order, or answered SERVFAIL when none of them answers, for the clients in
//! the [`Reaching`] set (instances of services with egress). Every other client (`egress =
//! "none"`, or an instance the rules do not know yet) gets service names only: any other name
//! is answered REFUSED without asking anyone, so the resolvers cannot carry its data out in the
//! names it looks up.
//!
//! [`start`] serves UDP and TCP on one address until the returned [`DnsServer`] is dropped.
//! The VIP table and the upstream list are shared handles the caller updates at run time;
//! each query reads them afresh. Concurrency is bounded ([`Limits`]): forwards beyond the
//! limit and TCP connections beyond theirs are dropped (clients retry), and garbage is ignored.

mod answer;
mod forward;
mod server;
pub mod vip;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use answer::VIP_TTL;
pub use server::{start, start_with, DnsServer};
pub use vip::{assign_vips, Subnet, DEFAULT_SUBNET};

/// Service name → virtual IP, shared with whoever keeps it current (lowercase names).
pub type VipTable = Arc<RwLock<BTreeMap<String, Ipv4Addr>>>;

/// The upstream resolvers (the board's DHCP or static DNS servers), tried in order.
pub type Upstreams = Arc<RwLock<Vec<SocketAddr>>>;

/// Client addresses whose queries for other names are forwarded (instances of services with
/// egress), shared with whoever keeps it current.
pub type Reaching = Arc<RwLock<BTreeSet<IpAddr>>>;

/// Bounds on the server's work.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Forwarded queries in flight at once (UDP and TCP together).
    pub max_forwards: usize,
    /// TCP connections served at once.
    pub max_tcp: usize,
    /// How long each upstream gets to answer before the next one is tried.
    pub upstream_timeout: Duration,
    /// How long an idle TCP connection is kept.
    pub tcp_idle: Duration,
    /// How fast one source (a container's address, a LAN host) may send UDP queries; those
    /// beyond are dropped unread, as a resolver that lost them (clients retry).
    pub udp_rate: baton_listen::Rate,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_forwards: 64,
            max_tcp: 16,
            upstream_timeout: Duration::from_secs(2),
            tcp_idle: Duration::from_secs(10),
            udp_rate: baton_listen::Rate {
                burst: 500,
                per_second: 250,
            },
        }
    }
}

/// Errors of the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A VIP subnet with an unusable prefix.
    #[error("VIP subnet {addr}/{prefix}: prefix must be between 8 and 29")]
    Subnet {
        /// The address given.
        addr: Ipv4Addr,
        /// The prefix length given.
        prefix: u8,
    },
    /// The UDP socket could not be bound.
    #[error("cannot bind the DNS UDP socket on {addr}: {source}")]
    BindUdp {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TCP listener could not be bound.
    #[error("cannot bind the DNS TCP listener on {addr}: {source}")]
    BindTcp {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}
