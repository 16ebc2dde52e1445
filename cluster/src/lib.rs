//! The cluster layer of baton: how boards find each other on the LAN ([`discovery`]), which board
//! runs what ([`placement`]), and how boards that share a cluster key talk to each other
//! ([`sealed`], [`gossip`]).

pub mod board_key;
pub mod desired;
pub mod discovery;
pub mod gossip;
pub mod placement;
pub mod plausible;
pub mod scale;
pub mod sealed;
pub mod sync;
pub mod tls;
