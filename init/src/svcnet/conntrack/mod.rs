//! Calls through a virtual IP, counted from the kernel's connection tracking: the load a board's
//! callers put on each service (design: autoscaling, section 1 item 2).
//!
//! A call to a VIP is DNATed to an instance on the caller's board, so conntrack keeps an entry
//! whose original destination is the VIP and port. [`dump_active`] reads the IPv4 table once
//! ([`dump`]: one ctnetlink dump, bounded in entries, buffer and time; [`parse`]: bounded
//! attribute parsing) and counts, per VIP:port, the TCP connections being opened or that
//! carried a packet in the last few seconds ([`count`], pure; it explains how conntrack's
//! timeouts tell that). An idle keep-alive pool therefore does not count as load.
//!
//! It blocks (a netlink round trip per 32 KiB of entries); the caller runs it off the async
//! runtime, once a second, in the namespace whose conntrack table it wants (the init's own).

pub mod count;
pub mod dump;
pub mod parse;

#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddrV4;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use crate::svcnet::dns::Subnet;
pub use count::Timeouts;

/// Errors reading the conntrack table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netfilter netlink socket could not be opened.
    #[error("conntrack: opening a netfilter netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The dump request could not be sent.
    #[error("conntrack: sending the dump request: {0}")]
    Send(#[source] std::io::Error),
    /// The answer could not be read.
    #[error("conntrack: reading the dump: {0}")]
    Receive(#[source] std::io::Error),
    /// The kernel refused or ended the dump with an error. `EINVAL` when ctnetlink (the
    /// `nf_conntrack_netlink` module) is not loaded: a board loads no module on demand, so it
    /// must be among the board's modules.
    #[error("conntrack: the kernel refused the dump: {0}")]
    Kernel(#[source] std::io::Error),
    /// The dump did not end in time.
    #[error("conntrack: the dump did not end within {limit:?} ({read} entries read)")]
    Deadline {
        /// The time allowed.
        limit: Duration,
        /// Entries read by then.
        read: u64,
    },
    /// A datagram larger than the receive buffer.
    #[error("conntrack: a {len}-byte datagram does not fit the receive buffer")]
    Oversized {
        /// Its length.
        len: usize,
    },
    /// The kernel's answer did not parse.
    #[error("conntrack: malformed dump: {0}")]
    Malformed(#[from] parse::Malformed),
}

/// TCP connections in flight to addresses inside the VIP subnet, from one dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Active {
    /// Per original destination (VIP and port): connections being opened or that carried a
    /// packet in the last [`count::RECENT_SECS`] seconds. Destinations with none are absent.
    pub by_destination: BTreeMap<SocketAddrV4, u32>,
    /// Entries of the table beyond [`dump::MAX_ENTRIES`], not looked at.
    pub truncated: u64,
}

/// Where the TCP timeout sysctls are.
const SYSCTL_DIR: &str = "/proc/sys/net/netfilter";

/// Reads one sysctl holding a number of seconds (at most 32 bytes are read).
fn read_seconds(path: &Path) -> Option<u32> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(32)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

impl Timeouts {
    /// Reads the TCP timeouts from the sysctls in `dir` (of the calling thread's namespace).
    /// Returns `None` if the established timeout cannot be read (conntrack not loaded); a
    /// missing other value keeps the kernel's default.
    pub fn read(dir: &Path) -> Option<Timeouts> {
        let default = Timeouts::default();
        let established = read_seconds(&dir.join("nf_conntrack_tcp_timeout_established"))?;
        let other = |name: &str, fallback| read_seconds(&dir.join(name)).unwrap_or(fallback);
        Some(Timeouts {
            established,
            unacknowledged: other(
                "nf_conntrack_tcp_timeout_unacknowledged",
                default.unacknowledged,
            ),
            max_retrans: other("nf_conntrack_tcp_timeout_max_retrans", default.max_retrans),
        })
    }
}

/// The timeouts, read once per process (in the namespace of the first caller that finds them);
/// until they can be read, the kernel's defaults.
fn timeouts() -> Timeouts {
    static READ: OnceLock<Timeouts> = OnceLock::new();
    if let Some(t) = READ.get() {
        return *t;
    }
    match Timeouts::read(Path::new(SYSCTL_DIR)) {
        Some(t) => *READ.get_or_init(|| t),
        None => Timeouts::default(),
    }
}

/// Counts the TCP connections in flight to each address and port inside `vips`, from the
/// conntrack table of the calling thread's network namespace. Blocking; at most
/// [`dump::MAX_ENTRIES`] entries read and [`dump::DEADLINE`] spent.
pub fn dump_active(vips: &Subnet) -> Result<Active, Error> {
    dump_active_with(vips, &timeouts())
}

/// [`dump_active`] with the given timeouts.
pub fn dump_active_with(vips: &Subnet, timeouts: &Timeouts) -> Result<Active, Error> {
    let mut tally = count::Tally::new(*vips, *timeouts);
    let totals = dump::run(dump::DEADLINE, dump::MAX_ENTRIES, |e| tally.add(e))?;
    Ok(Active {
        by_destination: tally.into_map(),
        truncated: totals.truncated,
    })
}
