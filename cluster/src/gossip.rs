//! Gossip membership over the sealed transport.
