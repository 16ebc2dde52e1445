//! Which conntrack entries are connections in flight to a virtual IP, counted per VIP:port.
//! Pure: no socket, no clock.
//!
//! Conntrack keeps no "last packet" time, but it sets an entry's timeout afresh on every
//! packet, to a value that depends on the state: `nf_conntrack_tcp_timeout_established` for an
//! established connection (432,000 s by default), or `…_unacknowledged` / `…_max_retrans`
//! (300 s each) while data is waiting for its acknowledgement. So an established entry whose
//! remaining timeout is within [`RECENT_SECS`] below one of those values saw a packet in the
//! last [`RECENT_SECS`] seconds. The unacknowledged value matters: a connection that sends
//! every 200 ms spends part of each round trip with data unacknowledged, and a dump taken then
//! sees about 300 s left. The only false positive is an established entry idle for about
//! five days, passing through those 3 seconds once. An idle keep-alive connection stops
//! counting 3 s after its last packet. Connections being opened (`SYN_SENT`, `SYN_RECV`) are
//! demand too and always count.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use super::parse::Entry;
use crate::svcnet::dns::Subnet;

/// How recent a packet must be for its connection to count as in flight, in seconds.
pub const RECENT_SECS: u32 = 3;

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `TCP_CONNTRACK_SYN_SENT`.
pub const TCP_SYN_SENT: u8 = 1;
/// `TCP_CONNTRACK_SYN_RECV`.
pub const TCP_SYN_RECV: u8 = 2;
/// `TCP_CONNTRACK_ESTABLISHED`.
pub const TCP_ESTABLISHED: u8 = 3;

/// The timeouts (seconds) conntrack gives an established TCP entry on each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `nf_conntrack_tcp_timeout_established`.
    pub established: u32,
    /// `nf_conntrack_tcp_timeout_unacknowledged`.
    pub unacknowledged: u32,
    /// `nf_conntrack_tcp_timeout_max_retrans`.
    pub max_retrans: u32,
}

impl Default for Timeouts {
    /// The kernel's defaults.
    fn default() -> Timeouts {
        Timeouts {
            established: 432_000,
            unacknowledged: 300,
            max_retrans: 300,
        }
    }
}

/// Whether `remaining` seconds left of a timeout set to `set` means a packet in the last
/// [`RECENT_SECS`] seconds.
fn fresh(remaining: u32, set: u32) -> bool {
    remaining <= set && remaining >= set.saturating_sub(RECENT_SECS)
}

/// Whether `entry` is a TCP connection being opened or one that carried a packet recently.
pub fn in_flight(entry: &Entry, timeouts: &Timeouts) -> bool {
    if entry.protocol != Some(IPPROTO_TCP) {
        return false;
    }
    match entry.tcp_state {
        Some(TCP_SYN_SENT | TCP_SYN_RECV) => true,
        Some(TCP_ESTABLISHED) => entry.timeout.is_some_and(|left| {
            [
                timeouts.established,
                timeouts.unacknowledged,
                timeouts.max_retrans,
            ]
            .into_iter()
            .any(|set| fresh(left, set))
        }),
        _ => false,
    }
}

/// Connections in flight per original destination inside one subnet.
#[derive(Debug, Clone)]
pub struct Tally {
    subnet: Subnet,
    timeouts: Timeouts,
    by_destination: BTreeMap<SocketAddrV4, u32>,
}

impl Tally {
    /// An empty tally of destinations inside `subnet`.
    pub fn new(subnet: Subnet, timeouts: Timeouts) -> Tally {
        Tally {
            subnet,
            timeouts,
            by_destination: BTreeMap::new(),
        }
    }

    /// Counts `entry` if it is in flight to an address inside the subnet. The map grows by at
    /// most one key per entry, and the dump reads a bounded number of entries.
    pub fn add(&mut self, entry: &Entry) {
        let Some(to) = entry.destination else {
            return;
        };
        if self.subnet.contains(*to.ip()) && in_flight(entry, &self.timeouts) {
            let n = self.by_destination.entry(to).or_insert(0);
            *n = n.saturating_add(1);
        }
    }

    /// The counts.
    pub fn into_map(self) -> BTreeMap<SocketAddrV4, u32> {
        self.by_destination
    }
}
