//! Finding boards on the LAN with multicast DNS (RFC 6762) and DNS-SD (RFC 6763).
//!
//! Every board advertises one instance of `_baton._tcp.local` named after its host name. The SRV
//! record points at the board's HTTP API, so any DNS-SD browser (avahi-browse, Bonjour's
//! `dns-sd -B _baton._tcp`, or a one-shot `dig @224.0.0.251 -p 5353`) lists boards and where to
//! reach them. The TXT record carries what a peer needs to join:
//!
//! | key       | value                                      |
//! |-----------|--------------------------------------------|
//! | `v`       | `1`, the version of these records           |
//! | `cluster` | the cluster name from `cluster.toml`        |
//! | `board`   | the board's host name                       |
//! | `gossip`  | the UDP port of the membership gossip       |
//!
//! Nothing secret is advertised: the cluster key never leaves the board, and a board that finds
//! another through mDNS still has to prove the key in the gossip before anything is shared.
//!
//! mdns-sd runs its own thread and needs no async runtime; events come out of a channel.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

/// The DNS-SD service type every board advertises.
pub const SERVICE_TYPE: &str = "_baton._tcp.local.";

/// Version of the TXT record layout.
const TXT_VERSION: &str = "1";

/// Errors from mDNS.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS daemon could not start (no socket, no interface).
    #[error("mDNS: cannot start the responder: {0}")]
    Start(String),
    /// The advertisement was refused (bad name or record).
    #[error("mDNS: cannot advertise {name:?}: {reason}")]
    Advertise {
        /// The instance name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Browsing could not start.
    #[error("mDNS: cannot browse {SERVICE_TYPE}: {0}")]
    Browse(String),
}

/// What a board advertises about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Cluster name (`[cluster] name`).
    pub cluster: String,
    /// The board's host name; also the DNS-SD instance name and the `.local` host name.
    pub board: String,
    /// TCP port of the HTTP API (the SRV record's port).
    pub api_port: u16,
    /// UDP port of the membership gossip.
    pub gossip_port: u16,
}

/// A board found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    /// Its host name (from the TXT record, else the instance name).
    pub board: String,
    /// Its cluster name; empty when it did not say.
    pub cluster: String,
    /// Its IPv4 addresses, sorted.
    pub addresses: Vec<Ipv4Addr>,
    /// Its API port.
    pub api_port: u16,
    /// Its gossip port, when it advertised one.
    pub gossip_port: Option<u16>,
}

/// What happened to a board on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A board was found or its records changed.
    Found(Peer),
    /// A board said goodbye (instance name).
    Gone(String),
}

/// Which interfaces mDNS uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interfaces {
    /// Every interface with an IPv4 address, loopback excepted.
    All,
    /// Only these, by name.
    Named(Vec<String>),
}

/// A running mDNS responder and browser.
pub struct Discovery {
    daemon: ServiceDaemon,
    fullname: Option<String>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("advertised", &self.fullname)
            .finish()
    }
}

impl Discovery {
    /// Starts mDNS on `interfaces`, IPv4 only.
    pub fn start(interfaces: &Interfaces) -> Result<Discovery, DiscoveryError> {
        let daemon = ServiceDaemon::new().map_err(|e| DiscoveryError::Start(e.to_string()))?;
        let start = |e: mdns_sd::Error| DiscoveryError::Start(e.to_string());
        daemon.disable_interface(IfKind::IPv6).map_err(start)?;
        daemon
            .disable_interface(IfKind::LoopbackV4)
            .map_err(start)?;
        if let Interfaces::Named(names) = interfaces {
            daemon.disable_interface(IfKind::All).map_err(start)?;
            for name in names {
                daemon
                    .enable_interface(IfKind::Name(name.clone()))
                    .map_err(start)?;
            }
            daemon.disable_interface(IfKind::IPv6).map_err(start)?;
        }
        Ok(Discovery {
            daemon,
            fullname: None,
        })
    }

    /// Advertises this board, with the addresses of whichever interface a query arrives on
    /// (they follow DHCP and link-local changes by themselves).
    pub fn advertise(&mut self, advert: &Advert) -> Result<(), DiscoveryError> {
        let fail = |e: mdns_sd::Error| DiscoveryError::Advertise {
            name: advert.board.clone(),
            reason: e.to_string(),
        };
        let gossip = advert.gossip_port.to_string();
        let properties = [
            ("v", TXT_VERSION),
            ("cluster", advert.cluster.as_str()),
            ("board", advert.board.as_str()),
            ("gossip", gossip.as_str()),
        ];
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            &advert.board,
            &format!("{}.local.", advert.board),
            "",
            advert.api_port,
            &properties[..],
        )
        .map_err(fail)?
        .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        self.daemon.register(info).map_err(fail)?;
        self.fullname = Some(fullname);
        Ok(())
    }

    /// Browses for boards; events arrive on the returned channel until the discovery stops.
    pub fn browse(&self) -> Result<Browser, DiscoveryError> {
        let receiver = self
            .daemon
            .browse(SERVICE_TYPE)
            .map_err(|e| DiscoveryError::Browse(e.to_string()))?;
        Ok(Browser { receiver })
    }

    /// Says goodbye (so peers drop this board at once) and stops the mDNS thread.
    pub fn shutdown(self) {
        if let Some(name) = &self.fullname {
            if let Ok(done) = self.daemon.unregister(name) {
                let _ = done.recv_timeout(Duration::from_secs(1));
            }
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Boards as they are found.
#[derive(Debug)]
pub struct Browser {
    receiver: mdns_sd::Receiver<ServiceEvent>,
}

impl Browser {
    /// The next event, waiting at most `timeout`; `None` on timeout or when mDNS stopped.
    pub fn next(&self, timeout: Duration) -> Option<PeerEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left).ok()? {
                ServiceEvent::ServiceResolved(service) => {
                    let txt = |key: &str| service.get_property_val_str(key).map(str::to_string);
                    let instance = instance_name(service.get_fullname());
                    let addresses: BTreeSet<Ipv4Addr> =
                        service.get_addresses_v4().into_iter().collect();
                    return Some(PeerEvent::Found(Peer {
                        board: txt("board").unwrap_or(instance),
                        cluster: txt("cluster").unwrap_or_default(),
                        addresses: addresses.into_iter().collect(),
                        api_port: service.get_port(),
                        gossip_port: txt("gossip").and_then(|p| p.parse().ok()),
                    }));
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    return Some(PeerEvent::Gone(instance_name(&fullname)));
                }
                _ => {}
            }
        }
    }

    /// Every board found within `window`, one entry per board (latest records win), sorted.
    pub fn collect(&self, window: Duration) -> Vec<Peer> {
        let deadline = Instant::now() + window;
        let mut found: std::collections::BTreeMap<String, Peer> = Default::default();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(PeerEvent::Found(peer)) => {
                    found.insert(peer.board.clone(), peer);
                }
                Some(PeerEvent::Gone(name)) => {
                    found.remove(&name);
                }
                None => break,
            }
        }
        found.into_values().collect()
    }
}

/// `pi-a._baton._tcp.local.` → `pi-a` (DNS-SD escapes dots inside instance names as `\.`).
fn instance_name(fullname: &str) -> String {
    let name = fullname.strip_suffix(SERVICE_TYPE).unwrap_or(fullname);
    let name = name.strip_suffix('.').unwrap_or(name);
    name.replace("\\.", ".")
}

#[cfg(test)]
mod tests;
