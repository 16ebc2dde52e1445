//! What to change to go from the kernel's state to the wanted one: peers and routes. Pure
//! functions, so the decisions are tested without a kernel.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

use super::device::{PeerChanges, KEEPALIVE_SECS};
use super::key::PublicKey;
use super::{Peer, PeerStatus};
use crate::svcnet::nft::Ipv4Net;

/// `net` with its host bits cleared.
fn normal(net: Ipv4Net) -> Ipv4Net {
    Ipv4Net::new(net.network(), net.prefix.min(32))
}

/// Sorted, deduplicated, host bits cleared: the form the kernel reports allowed IPs in.
fn normal_set(nets: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let set: BTreeSet<(u32, u8)> = nets
        .iter()
        .map(|n| normal(*n))
        .map(|n| (u32::from(n.addr), n.prefix))
        .collect();
    set.into_iter()
        .map(|(a, p)| Ipv4Net::new(Ipv4Addr::from(a), p))
        .collect()
}

/// The peers to configure: `wanted` without our own key (the kernel silently ignores a peer
/// with the device's key) and without repeated keys (the first one counts), with normalised
/// allowed networks.
pub fn effective_peers(wanted: &[Peer], own: PublicKey) -> Vec<Peer> {
    let mut seen = BTreeSet::new();
    wanted
        .iter()
        .filter(|p| p.key != own && seen.insert(p.key))
        .map(|p| Peer {
            key: p.key,
            endpoint: p.endpoint,
            allowed: normal_set(&p.allowed),
        })
        .collect()
}

/// The changes that make the kernel's peers `current` exactly `wanted` (already passed
/// through [`effective_peers`]): peers it lacks or holds differently (endpoint, keepalive,
/// allowed networks) are upserted, peers it has that are not wanted are removed, and peers
/// already right are left alone, so their sessions go on.
pub fn peer_changes(current: &[PeerStatus], wanted: &[Peer]) -> PeerChanges {
    let upsert = wanted
        .iter()
        .filter(|w| {
            let same = current.iter().find(|c| c.key == w.key).is_some_and(|c| {
                c.endpoint == Some(SocketAddr::V4(w.endpoint))
                    && c.keepalive == KEEPALIVE_SECS
                    && normal_set(&c.allowed) == w.allowed
            });
            !same
        })
        .cloned()
        .collect();
    let remove = current
        .iter()
        .filter(|c| !wanted.iter().any(|w| w.key == c.key))
        .map(|c| c.key)
        .collect();
    PeerChanges { upsert, remove }
}

/// A route on the mesh link as the kernel lists it (main table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRoute {
    /// Destination network.
    pub net: Ipv4Net,
    /// Preferred source address, if set.
    pub source: Option<Ipv4Addr>,
    /// Metric (0 if unset).
    pub metric: u32,
}

/// Which routes to add and remove.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteChanges {
    /// Networks to route into the link with the board's source address.
    pub add: Vec<Ipv4Net>,
    /// Indexes into the current routes of those to delete.
    pub remove: Vec<usize>,
}

/// The route changes that leave the link with exactly one route per network in `peers`'
/// allowed networks, each `src source` with metric 0: routes already so are kept, others on
/// the link (gone peers, another source, another metric) are removed, missing ones added.
pub fn route_changes(current: &[LinkRoute], peers: &[Peer], source: Ipv4Addr) -> RouteChanges {
    let all: Vec<Ipv4Net> = peers
        .iter()
        .flat_map(|p| p.allowed.iter().copied())
        .collect();
    let wanted = normal_set(&all);
    let good = |r: &LinkRoute| {
        r.source == Some(source) && r.metric == 0 && wanted.contains(&normal(r.net))
    };
    let remove = (0..current.len()).filter(|i| !good(&current[*i])).collect();
    let add = wanted
        .iter()
        .copied()
        .filter(|n| !current.iter().any(|r| good(r) && normal(r.net) == *n))
        .collect();
    RouteChanges { add, remove }
}
