//! Link, address and route configuration over rtnetlink.
//!
//! A thin layer over the `rtnetlink` crate that speaks in this module's terms (a [`Link`], an
//! IPv4 address and prefix, a default route) and whose errors name the interface. Removing
//! something that is already gone is not an error.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use netlink_packet_route::address::AddressScope;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::RouteProtocol;
use rtnetlink::{AddressMessageBuilder, Handle, LinkUnspec, RouteMessageBuilder};

/// Errors from rtnetlink requests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netlink socket could not be opened.
    #[error("opening a route netlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// No interface has this name.
    #[error("interface {0} not found")]
    NoSuchLink(String),
    /// The kernel refused a request.
    #[error("{what} on {interface}: {source}")]
    Request {
        /// What was asked, e.g. `adding 10.0.0.5/24`.
        what: String,
        /// The interface.
        interface: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

/// An interface as netlink knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Hardware address (all zeros for interfaces without one, e.g. `lo`).
    pub mac: [u8; 6],
}

/// How an address or route came about; routes are tagged with it (`proto dhcp`/`proto static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Leased over DHCP.
    Dhcp,
    /// From the configuration.
    Static,
}

/// A route netlink connection. Its socket belongs to the network namespace of the thread that
/// called [`Netlink::connect`].
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

/// Whether a netlink error is one of `codes` (negated errno values in the kernel's reply).
fn is_errno(e: &rtnetlink::Error, codes: &[i32]) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.is_some_and(|c| codes.contains(&-c.get())),
        _ => false,
    }
}

impl Netlink {
    /// Opens a connection and spawns its driver task on the current tokio runtime.
    pub fn connect() -> Result<Netlink, Error> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Connect)?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    fn request_error(what: String, link: &Link) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
        move |source| Error::Request {
            what,
            interface: link.name.clone(),
            source,
        }
    }

    /// Looks an interface up by name.
    pub async fn link(&self, name: &str) -> Result<Link, Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let found = links.try_next().await.map_err(|source| {
            if is_errno(&source, &[libc::ENODEV]) {
                Error::NoSuchLink(name.to_string())
            } else {
                Error::Request {
                    what: "looking up the interface".to_string(),
                    interface: name.to_string(),
                    source,
                }
            }
        })?;
        let msg = found.ok_or_else(|| Error::NoSuchLink(name.to_string()))?;
        let mut mac = [0u8; 6];
        for attr in &msg.attributes {
            if let LinkAttribute::Address(a) = attr {
                if a.len() == 6 {
                    mac.copy_from_slice(a);
                }
            }
        }
        Ok(Link {
            name: name.to_string(),
            index: msg.header.index,
            mac,
        })
    }

    /// Sets the interface administratively up.
    pub async fn set_up(&self, link: &Link) -> Result<(), Error> {
        let msg = LinkUnspec::new_with_index(link.index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(Self::request_error("setting the link up".to_string(), link))
    }

    /// Adds `address/prefix` (or refreshes it if present); link-local addresses get link scope.
    pub async fn add_address(
        &self,
        link: &Link,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), Error> {
        let mut req = self
            .handle
            .address()
            .add(link.index, IpAddr::V4(address), prefix)
            .replace();
        if address.is_link_local() {
            req.message_mut().header.scope = AddressScope::Link;
        } else if address.is_loopback() {
            req.message_mut().header.scope = AddressScope::Host;
        }
        req.execute().await.map_err(Self::request_error(
            format!("adding {address}/{prefix}"),
            link,
        ))
    }

    /// Removes `address/prefix`; an address that is not there is fine.
    pub async fn del_address(
        &self,
        link: &Link,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), Error> {
        let msg = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(link.index)
            .address(address, prefix)
            .build();
        match self.handle.address().del(msg).execute().await {
            Err(e) if is_errno(&e, &[libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV]) => Ok(()),
            r => r.map_err(Self::request_error(
                format!("removing {address}/{prefix}"),
                link,
            )),
        }
    }

    fn default_route(
        link: &Link,
        gateway: Ipv4Addr,
        origin: Origin,
    ) -> netlink_packet_route::route::RouteMessage {
        let protocol = match origin {
            Origin::Dhcp => RouteProtocol::Dhcp,
            Origin::Static => RouteProtocol::Static,
        };
        RouteMessageBuilder::<Ipv4Addr>::new()
            .output_interface(link.index)
            .gateway(gateway)
            .protocol(protocol)
            // Each uplink gets its own metric so two DHCP interfaces can both hold a default route.
            .priority(100 + link.index)
            .build()
    }

    /// Adds (or replaces) the default route via `gateway` on `link`.
    pub async fn add_default_route(
        &self,
        link: &Link,
        gateway: Ipv4Addr,
        origin: Origin,
    ) -> Result<(), Error> {
        let msg = Self::default_route(link, gateway, origin);
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(Self::request_error(
                format!("adding default route via {gateway}"),
                link,
            ))
    }

    /// Removes the default route via `gateway` on `link`; a route that is gone is fine.
    pub async fn del_default_route(
        &self,
        link: &Link,
        gateway: Ipv4Addr,
        origin: Origin,
    ) -> Result<(), Error> {
        let msg = Self::default_route(link, gateway, origin);
        match self.handle.route().del(msg).execute().await {
            Err(e) if is_errno(&e, &[libc::ESRCH, libc::ENOENT, libc::ENODEV]) => Ok(()),
            r => r.map_err(Self::request_error(
                format!("removing default route via {gateway}"),
                link,
            )),
        }
    }
}
