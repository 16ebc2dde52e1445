//! The WireGuard mesh between boards: the kernel's `wireguard` link, configured from PID 1
//! over netlink (no `wg` binary on the board).
//!
//! Every board has one link, [`LINK`], listening on UDP [`PORT`], with a key pair kept on the
//! data partition ([`Keypair::load_or_create`]). The cluster code learns the other boards'
//! public keys, endpoints and container subnets from the gossip and hands them to
//! [`Mesh::set_peers`], which makes the kernel's peers exactly those and routes each peer's
//! subnet into the link with the board's bridge address as source.
//!
//! - [`key`]: the key file and the base64 form of keys.
//! - `genl`: a small generic netlink client for the `wireguard` family.
//! - [`device`]: the family's messages (`WG_CMD_SET_DEVICE`, `WG_CMD_GET_DEVICE`).
//! - [`plan`]: which peers and routes to change (pure functions).
//! - `link`: the link and its routes over rtnetlink.
//!
//! Needs the kernel's `wireguard` module loaded beforehand: the board has no `modprobe`, so
//! neither the family lookup nor the link creation can load it on demand.

pub mod device;
mod genl;
pub mod key;
mod link;
#[cfg(test)]
mod netns_tests;
pub mod plan;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::SystemTime;

pub use key::{Keypair, PublicKey};

use crate::svcnet::nft::Ipv4Net;

/// The mesh link's name.
pub const LINK: &str = "baton-wg";
/// The UDP port the mesh listens on.
pub const PORT: u16 = 51820;

/// What went wrong with the mesh, and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds something other than a key.
    #[error("key file {path}: not a WireGuard private key ({reason}); left as it is")]
    KeyFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        reason: key::KeyDecodeError,
    },
    /// A text that should be a base64 key is not one.
    #[error("{text:?} is not a WireGuard key: {reason}")]
    KeyText {
        /// The text (at most 60 characters of it).
        text: String,
        /// What is wrong with it.
        #[source]
        reason: key::KeyDecodeError,
    },
    /// The OS random generator failed.
    #[error("reading the OS random generator for a new key: {0}")]
    Random(#[source] std::io::Error),
    /// A netlink socket could not be opened.
    #[error("opening a netlink socket for {LINK}: {0}")]
    Connect(#[source] std::io::Error),
    /// The kernel lacks the wireguard driver.
    #[error("the kernel has no wireguard support (generic netlink family 'wireguard' not found; is the wireguard module loaded?)")]
    NoWireguard,
    /// A link named [`LINK`] exists and is not a WireGuard link.
    #[error("link {LINK} exists but is of kind {kind}, not wireguard")]
    NotWireguard {
        /// Its kind.
        kind: String,
    },
    /// An rtnetlink request on the link failed.
    #[error("{what} {LINK}: {source}")]
    Link {
        /// What was asked, e.g. `creating link`.
        what: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A route request failed.
    #[error("{what} on {LINK}: {source}")]
    Route {
        /// What was asked, e.g. `adding route 10.88.2.0/24 src 10.88.1.1`.
        what: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A wireguard generic netlink request failed.
    #[error("{what} on {LINK}: {source}")]
    Genl {
        /// What was asked, e.g. `setting the private key and port (WG_CMD_SET_DEVICE)`.
        what: String,
        /// The kernel's errno (or the socket's error).
        #[source]
        source: std::io::Error,
    },
    /// Setting the peers took longer than the bound (a netlink answer lost).
    #[error("setting the peers of {LINK}: no answer within {0:?}")]
    NoAnswer(std::time::Duration),
    /// The kernel's answer could not be parsed.
    #[error("malformed answer while {what} on {LINK}: {reason}")]
    Malformed {
        /// What was asked.
        what: String,
        /// What was wrong.
        #[source]
        reason: genl::DatagramError,
    },
}

/// Another board as a mesh peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its public key.
    pub key: PublicKey,
    /// Where its mesh link listens.
    pub endpoint: SocketAddrV4,
    /// The networks routed to it (its container subnet).
    pub allowed: Vec<Ipv4Net>,
}

/// A peer as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Its public key.
    pub key: PublicKey,
    /// Where the kernel sends its packets (the last address it was heard from, once it was).
    pub endpoint: Option<SocketAddr>,
    /// When the last handshake with it completed; `None` if never.
    pub last_handshake: Option<SystemTime>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// Persistent keepalive interval in seconds (0: off).
    pub keepalive: u16,
    /// Its IPv4 allowed networks.
    pub allowed: Vec<Ipv4Net>,
}

/// The board's mesh link, up and keyed.
#[derive(Debug)]
pub struct Mesh {
    handle: rtnetlink::Handle,
    index: u32,
    source: Ipv4Addr,
    own: PublicKey,
}

impl Mesh {
    /// Creates [`LINK`] if it does not exist (`RTM_NEWLINK`, kind `wireguard`), sets its
    /// private key and listen port (`WG_CMD_SET_DEVICE`) and sets it up. Routes to peers'
    /// networks will use `source` (the board's bridge address) as their preferred source, so
    /// the board's own packets into the mesh come from an address the peers accept.
    /// Idempotent: a restarted init finds the link (with its peers) and takes it over.
    pub async fn up(key: &Keypair, port: u16, source: Ipv4Addr) -> Result<Mesh, Error> {
        // First the family: without the driver, it fails clearly and nothing is created.
        let mut genl = genl::Genl::wireguard().await?;
        let handle = link::connect()?;
        let index = link::ensure(&handle).await?;
        genl.request(
            device::set_key_and_port(index, key, port),
            "setting the private key and listen port (WG_CMD_SET_DEVICE)",
        )
        .await?;
        link::set_up(&handle, index).await?;
        Ok(Mesh {
            handle,
            index,
            source,
            own: key.public(),
        })
    }

    /// Makes the kernel's peers exactly `peers` (our own key and repeated keys left out),
    /// each with its endpoint, exactly its allowed networks and a persistent keepalive of
    /// [`device::KEEPALIVE_SECS`]; then makes the link's routes one per allowed network,
    /// `dev baton-wg src <source>`. Reads the kernel's peers first and sends only the
    /// differences (new or changed peers, removed peers), so calling it again with the same
    /// peers sends nothing, and an unchanged peer keeps its session when others change.
    pub async fn set_peers(&mut self, peers: &[Peer]) -> Result<(), Error> {
        let wanted = plan::effective_peers(peers, self.own);
        let mut genl = genl::Genl::wireguard().await?;
        let current = self.read_peers(&mut genl).await?;
        let changes = plan::peer_changes(&current, &wanted);
        for msg in device::set_peers(self.index, &changes) {
            genl.request(msg, "setting peers (WG_CMD_SET_DEVICE)")
                .await?;
        }
        link::sync_routes(&self.handle, self.index, &wanted, self.source).await
    }

    /// The peers as the kernel has them (`WG_CMD_GET_DEVICE`, a dump), in key order.
    pub async fn status(&self) -> Result<Vec<PeerStatus>, Error> {
        let mut genl = genl::Genl::wireguard().await?;
        self.read_peers(&mut genl).await
    }

    async fn read_peers(&self, genl: &mut genl::Genl) -> Result<Vec<PeerStatus>, Error> {
        let dump = genl
            .dump(
                device::get_device(self.index),
                "reading the peers (WG_CMD_GET_DEVICE)",
            )
            .await?;
        Ok(device::peers_of(&dump))
    }

    /// Deletes the link (its peers and routes go with it); used by tests and at shutdown.
    pub async fn down(self) -> Result<(), Error> {
        link::delete(&self.handle, self.index).await
    }

    /// The link's interface index.
    pub fn index(&self) -> u32 {
        self.index
    }
}
