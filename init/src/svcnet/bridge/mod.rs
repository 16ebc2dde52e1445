//! The board bridge `baton0` and the containers' links to it.
//!
//! [`Bridge::ensure`] creates the bridge if needed, gives it the gateway address of the
//! container subnet, brings it up and turns IPv4 forwarding on. It also sets the bridge's
//! `nf_call_iptables` option (on a new bridge and on one left from before), so IPv4 traffic
//! between two containers on the bridge passes the inet/ip netfilter hooks and the policy
//! rules of [`crate::svcnet::nft`] see it, not only traffic routed through the board. The option only
//! has an effect while the `br_netfilter` kernel module is loaded (the board's `containers`
//! module set lists it); without the module bridged traffic silently bypasses nftables. [`Bridge::attach`] connects a
//! container: a veth pair whose host end (`bv` + the container address in hex, e.g.
//! `bv0a580002`) joins the bridge and whose other end is created directly inside the
//! container's network namespace as `eth0`, with the address, `lo` up and a default route via
//! the bridge. The host end's name encodes the address, so after a restart
//! [`Bridge::addresses_in_use`] rebuilds the [`Pool`] from the kernel and
//! [`Bridge::remove_leftovers`] deletes links of containers that no longer exist.
//! [`nat_table`] is the masquerading rule set for [`crate::svcnet::nft::apply`].
//!
//! Every container gets the MAC address [`ports::mac_of`] its address, and after every attach
//! and detach the table of [`ports`] is rewritten from the veths present, so that each
//! container port of the bridge accepts only frames sent as its own container: a container
//! cannot forge another's source address or answer ARP for it, even with `CAP_NET_RAW`.
//! [`Bridge::attach`] returns only once its container's binding is in force.

mod nat;
mod nsnetlink;
pub mod pool;
pub mod ports;

#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod spoof_tests;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use futures_util::TryStreamExt;
use netlink_packet_route::link::{
    InfoBridge, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::svcnet::nft::Ipv4Net;
pub use nat::{nat_table, NAT_TABLE};
pub use nsnetlink::Netns;
pub use pool::Pool;

/// The bridge's default name.
pub const BRIDGE: &str = "baton0";
/// Host-side veth names start with this.
pub const VETH_PREFIX: &str = "bv";
/// The interface name inside containers.
pub const CONTAINER_IF: &str = "eth0";

/// Errors from bridge and veth management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A route netlink socket could not be opened.
    #[error("opening a route netlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// Reaching into a container's namespace failed.
    #[error(transparent)]
    Netns(#[from] nsnetlink::Error),
    /// The kernel refused a request.
    #[error("{what} on {interface}: {source}")]
    Request {
        /// What was asked.
        what: String,
        /// The interface.
        interface: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// An interface that should exist does not.
    #[error("interface {0} not found")]
    NoSuchLink(String),
    /// IP forwarding could not be turned on.
    #[error("turning IPv4 forwarding on ({path}): {source}")]
    Forwarding {
        /// The sysctl file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The subnet cannot hold containers.
    #[error(transparent)]
    Pool(#[from] pool::Error),
    /// The rules binding container ports to their addresses were refused.
    #[error("binding the bridge's container ports to their addresses: {0}")]
    Ports(#[source] crate::svcnet::nft::Error),
}

/// Settings of the board bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bridge name.
    pub name: String,
    /// The container subnet; the bridge gets its first host address.
    pub subnet: Ipv4Net,
    /// The IPv4 forwarding sysctl (a parameter so tests can point elsewhere).
    pub forwarding: PathBuf,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: BRIDGE.to_string(),
            subnet: Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24),
            forwarding: PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
        }
    }
}

/// A container's link to the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The host end, on the bridge.
    pub host_veth: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// Prefix length of the container subnet.
    pub prefix: u8,
    /// The container's default gateway (the bridge).
    pub gateway: Ipv4Addr,
}

/// The host-side veth name for a container address: `bv` and the address in hex.
pub fn veth_name(address: Ipv4Addr) -> String {
    format!("{VETH_PREFIX}{:08x}", u32::from(address))
}

/// The container address encoded in a host-side veth name, if it is one of ours.
pub fn veth_address(name: &str) -> Option<Ipv4Addr> {
    let hex = name.strip_prefix(VETH_PREFIX)?;
    if hex.len() != 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(Ipv4Addr::from)
}

fn link_name(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn request(what: impl Into<String>, interface: &str) -> impl FnOnce(rtnetlink::Error) -> Error {
    let (what, interface) = (what.into(), interface.to_string());
    move |source| Error::Request {
        what,
        interface,
        source,
    }
}

fn is_errno(e: &rtnetlink::Error, code: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.is_some_and(|c| -c.get() == code))
}

/// Index of the interface `name`, if it exists.
async fn find_link(handle: &Handle, name: &str) -> Result<Option<u32>, Error> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(found) => Ok(found.map(|m| m.header.index)),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(request("looking up the interface", name)(e)),
    }
}

async fn set_up(handle: &Handle, index: u32, name: &str) -> Result<(), Error> {
    let msg = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(request("setting the link up", name))
}

async fn add_address(handle: &Handle, index: u32, name: &str, net: Ipv4Net) -> Result<(), Error> {
    handle
        .address()
        .add(index, IpAddr::V4(net.addr), net.prefix)
        .replace()
        .execute()
        .await
        .map_err(request(format!("adding {net}"), name))
}

/// Sets the bridge option that hands bridged IPv4 frames to the IPv4 netfilter hooks
/// (`IFLA_BR_NF_CALL_IPTABLES`, `ip link set NAME type bridge nf_call_iptables 1`).
async fn pass_to_netfilter(handle: &Handle, index: u32, name: &str) -> Result<(), Error> {
    let msg = LinkMessageBuilder::<LinkBridge>::new_with_info_kind(InfoKind::Bridge)
        .index(index)
        .append_info_data(InfoBridge::NfCallIpTables(true))
        .build();
    // RTM_NEWLINK on the existing link (`change`): RTM_SETLINK ignores the kind's options.
    handle
        .link()
        .change(msg)
        .execute()
        .await
        .map_err(request("passing bridged IPv4 traffic to netfilter", name))
}

/// The board bridge.
#[derive(Debug, Clone)]
pub struct Bridge {
    handle: Handle,
    config: Config,
    index: u32,
    gateway: Ipv4Addr,
    /// Held while the port bindings are read from the kernel and rewritten, so that concurrent
    /// attaches cannot apply an older view last.
    binding: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Bridge {
    /// Creates (or finds) the bridge in the calling thread's network namespace, sets its
    /// address and brings it up, and turns IPv4 forwarding on. Idempotent. Must run inside a
    /// tokio runtime (the netlink connection's driver is spawned on it).
    pub async fn ensure(config: Config) -> Result<Bridge, Error> {
        let pool = Pool::new(config.subnet)?;
        let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Connect)?;
        tokio::spawn(connection);
        let name = config.name.as_str();
        let index = match find_link(&handle, name).await? {
            Some(i) => i,
            None => {
                let msg = LinkBridge::new(name)
                    .append_info_data(InfoBridge::NfCallIpTables(true))
                    .build();
                match handle.link().add(msg).execute().await {
                    Err(e) if is_errno(&e, libc::EEXIST) => {}
                    r => r.map_err(request("creating the bridge", name))?,
                }
                find_link(&handle, name)
                    .await?
                    .ok_or_else(|| Error::NoSuchLink(name.to_string()))?
            }
        };
        // Also for a bridge that existed already (or lost the race above).
        pass_to_netfilter(&handle, index, name).await?;
        let gateway = pool.gateway();
        add_address(
            &handle,
            index,
            name,
            Ipv4Net::new(gateway, config.subnet.prefix),
        )
        .await?;
        set_up(&handle, index, name).await?;
        std::fs::write(&config.forwarding, "1\n").map_err(|source| Error::Forwarding {
            path: config.forwarding.clone(),
            source,
        })?;
        Ok(Bridge {
            handle,
            config,
            index,
            gateway,
            binding: std::sync::Arc::default(),
        })
    }

    /// The bridge's address, the containers' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The container subnet.
    pub fn subnet(&self) -> Ipv4Net {
        Ipv4Net::new(self.config.subnet.network(), self.config.subnet.prefix)
    }

    /// Names of all interfaces whose name marks them as container veths of ours.
    async fn our_veths(&self) -> Result<Vec<(String, u32, Ipv4Addr)>, Error> {
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(msg) = links
            .try_next()
            .await
            .map_err(request("listing interfaces", &self.config.name))?
        {
            if let Some(name) = link_name(&msg) {
                if let Some(a) = veth_address(name) {
                    out.push((name.to_string(), msg.header.index, a));
                }
            }
        }
        Ok(out)
    }

    /// Addresses of the containers attached now (from the host-side veth names), for
    /// rebuilding the [`Pool`] after a restart.
    pub async fn addresses_in_use(&self) -> Result<Vec<Ipv4Addr>, Error> {
        let subnet = self.subnet();
        Ok(self
            .our_veths()
            .await?
            .into_iter()
            .map(|(_, _, a)| a)
            .filter(|a| subnet.contains(*a))
            .collect())
    }

    /// A pool with the addresses of attached containers already taken.
    pub async fn pool(&self) -> Result<Pool, Error> {
        let mut pool = Pool::new(self.config.subnet)?;
        for a in self.addresses_in_use().await? {
            // An address outside the pool (e.g. the subnet changed) is not handed out anyway.
            let _ = pool.reserve(a);
        }
        Ok(pool)
    }

    /// Deletes container veths left from a previous run, except those of `keep`; returns the
    /// names deleted.
    pub async fn remove_leftovers(&self, keep: &[Ipv4Addr]) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for (name, index, address) in self.our_veths().await? {
            if keep.contains(&address) {
                continue;
            }
            match self.handle.link().del(index).execute().await {
                Err(e) if is_errno(&e, libc::ENODEV) => {}
                r => r.map_err(request("deleting a leftover veth", &name))?,
            }
            removed.push(name);
        }
        self.bind_ports().await?;
        Ok(removed)
    }

    /// Rewrites the port bindings ([`ports::ports_table`]) for the container veths present
    /// now, in one nftables transaction.
    pub async fn bind_ports(&self) -> Result<(), Error> {
        let _held = self.binding.lock().await;
        let addresses: Vec<Ipv4Addr> = self
            .our_veths()
            .await?
            .into_iter()
            .map(|(_, _, a)| a)
            .collect();
        let table = ports::ports_table(&addresses);
        crate::svcnet::nft::apply(&crate::svcnet::nft::Ruleset::new(vec![table]))
            .map_err(Error::Ports)
    }

    /// Connects a container: creates the veth pair (host end on the bridge, `eth0` inside
    /// `netns` with the MAC [`ports::mac_of`] `address`), configures the container side with
    /// `address`, `lo` up and a default route via the bridge, and binds the port to those
    /// addresses. On failure the host end is removed again.
    pub async fn attach(&self, address: Ipv4Addr, netns: Netns<'_>) -> Result<Attachment, Error> {
        let host = veth_name(address);
        let ns_fd = netns.open()?;
        let peer = LinkUnspec::new_with_name(CONTAINER_IF)
            .append_extra_attribute(LinkAttribute::NetNsFd(std::os::fd::AsRawFd::as_raw_fd(
                &ns_fd,
            )))
            .append_extra_attribute(LinkAttribute::Address(ports::mac_of(address).to_vec()))
            .build();
        let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(self.index)
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(request(
                format!("creating the veth pair into {}", netns.describe()),
                &host,
            ))?;
        drop(ns_fd);
        let mut attached = self.configure(&host, address, netns).await;
        if attached.is_ok() {
            if let Err(e) = self.bind_ports().await {
                attached = Err(e);
            }
        }
        if attached.is_err() {
            let _ = self.detach(address).await;
        }
        attached
    }

    async fn configure(
        &self,
        host: &str,
        address: Ipv4Addr,
        netns: Netns<'_>,
    ) -> Result<Attachment, Error> {
        let index = find_link(&self.handle, host)
            .await?
            .ok_or_else(|| Error::NoSuchLink(host.to_string()))?;
        set_up(&self.handle, index, host).await?;

        let inner = nsnetlink::connect(netns)?;
        let inside = |what: &str| format!("{what} in {}", netns.describe());
        let eth = find_link(&inner, CONTAINER_IF)
            .await?
            .ok_or_else(|| Error::NoSuchLink(inside(CONTAINER_IF)))?;
        let prefix = self.config.subnet.prefix;
        add_address(
            &inner,
            eth,
            &inside(CONTAINER_IF),
            Ipv4Net::new(address, prefix),
        )
        .await?;
        set_up(&inner, eth, &inside(CONTAINER_IF)).await?;
        if let Some(lo) = find_link(&inner, "lo").await? {
            set_up(&inner, lo, &inside("lo")).await?;
        }
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .output_interface(eth)
            .gateway(self.gateway)
            .build();
        inner
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(request(
                format!("adding the default route via {}", self.gateway),
                &inside(CONTAINER_IF),
            ))?;
        Ok(Attachment {
            host_veth: host.to_string(),
            address,
            prefix,
            gateway: self.gateway,
        })
    }

    /// Disconnects the container with `address` (deleting the host end deletes both ends) and
    /// drops its port binding; a link that is already gone is fine.
    pub async fn detach(&self, address: Ipv4Addr) -> Result<(), Error> {
        let host = veth_name(address);
        let Some(index) = find_link(&self.handle, &host).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Err(e) if is_errno(&e, libc::ENODEV) => {}
            r => r.map_err(request("deleting the veth", &host))?,
        }
        self.bind_ports().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_encode_the_address_and_fit_ifnamsiz() {
        let a = Ipv4Addr::new(10, 88, 0, 2);
        assert_eq!(veth_name(a), "bv0a580002");
        assert_eq!(veth_address("bv0a580002"), Some(a));
        assert_eq!(veth_name(Ipv4Addr::new(255, 255, 255, 254)).len(), 10);
        assert_eq!(veth_address("baton0"), None);
        assert_eq!(veth_address("bv0a58"), None);
        assert_eq!(veth_address("bvzzzzzzzz"), None);
    }
}
