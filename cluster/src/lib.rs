//! The cluster layer of baton: which board runs what ([`placement`]), and how boards that share a
//! cluster key talk to each other ([`sealed`], [`gossip`]).

pub mod gossip;
pub mod placement;
pub mod sealed;
