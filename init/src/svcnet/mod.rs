//! The services' network: the board bridge and its container subnet ([`bridge`], [`subnet`]),
//! network namespaces ([`netns`]), service names and virtual IPs ([`dns`]), the isolation rules
//! ([`policy`], written over netlink by [`nft`]) rebuilt from the services ([`network`]), the
//! WireGuard mesh to other boards ([`mesh`]) and published ports ([`publish`]).

pub mod activator;
pub mod bridge;
pub mod conntrack;
pub mod dns;
pub mod mesh;
pub mod netns;
pub mod network;
pub mod nft;
pub mod policy;
pub mod publish;
pub mod subnet;
