//! Who a node is, as foca sees it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A node's identity in the membership protocol.
///
/// foca treats two identities with the same [`foca::Identity::addr`] as the same node at different
/// times and keeps the one that wins the conflict: the higher generation. That key is the node
/// name, not the gossip address (which only this node's own state uses; nothing of it travels):
/// foca holds at most one identity per name, and identities of different names never displace
/// each other. Keyed by address, a key holder's identity of another name at a board's address
/// (or its own name, with the board's address signed) would take the board's place. A board that
/// restarted, at the same address or another, replaces its old self.
///
/// foca never renews an identity by itself ([`foca::Identity::renew`] gives none): the endpoint
/// does, once it has signed the renewed identity's proof (see `super::driver`), because
/// receivers that bound the name admit only the identity a proof vouches for.
///
/// An identity whose generation is further ahead than
/// [`crate::plausible::highest_generation`] of this board's clock does not decode, so foca drops
/// the packet that carries it: an identity of generation `u64::MAX` would win every conflict
/// and could never be renewed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WireNodeId")]
pub(crate) struct NodeId {
    /// The board's node name.
    pub(crate) name: String,
    /// Where the node receives gossip.
    pub(crate) addr: SocketAddr,
    /// Grows with every start of the node, and by one whenever foca renews the identity after the
    /// cluster wrongly declared it dead.
    pub(crate) generation: u64,
}

/// [`NodeId`] as it travels (the same fields, so the same bytes), before its generation is checked.
#[derive(Deserialize)]
struct WireNodeId {
    name: String,
    addr: SocketAddr,
    generation: u64,
}

impl TryFrom<WireNodeId> for NodeId {
    type Error = String;

    fn try_from(wire: WireNodeId) -> Result<Self, Self::Error> {
        let highest = crate::plausible::highest_generation(crate::plausible::wall_ms());
        if wire.generation > highest {
            return Err(format!(
                "generation {} is further ahead than {highest}",
                wire.generation
            ));
        }
        Ok(Self {
            name: wire.name,
            addr: wire.addr,
            generation: wire.generation,
        })
    }
}

impl NodeId {
    /// A stand-in for a seed whose name is not known yet. The receiver readdresses an announce
    /// to it to its own identity (`super::sanitize`); the previous release, keyed by address,
    /// accepts it as it is.
    pub(crate) fn seed(addr: SocketAddr) -> Self {
        Self {
            name: String::new(),
            addr,
            generation: 0,
        }
    }
}

impl NodeId {
    /// The next identity of this node (one generation up), if there is one.
    pub(crate) fn next(&self) -> Option<Self> {
        Some(Self {
            generation: self.generation.checked_add(1)?,
            ..self.clone()
        })
    }
}

impl foca::Identity for NodeId {
    type Addr = String;

    fn renew(&self) -> Option<Self> {
        None
    }

    fn addr(&self) -> String {
        self.name.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    #[test]
    fn identities_conflict_by_name_and_the_newer_generation_wins() {
        let addr: SocketAddr = ([127, 0, 0, 1], 7946).into();
        let old = NodeId {
            name: "pi-1".into(),
            addr,
            generation: 10,
        };
        assert_eq!(old.renew(), None, "the endpoint renews, not foca");
        let renewed = old.next().expect("next");
        assert_eq!(renewed.generation, 11);
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        let junk = NodeId {
            name: "junk".into(),
            ..renewed.clone()
        };
        assert_ne!(junk.addr(), old.addr(), "another name at the same address");
        let moved = NodeId {
            addr: ([127, 0, 0, 2], 7946).into(),
            ..renewed
        };
        assert_eq!(moved.addr(), old.addr());
    }

    #[test]
    fn an_identity_with_a_generation_far_ahead_does_not_decode() {
        let addr: SocketAddr = ([127, 0, 0, 1], 7946).into();
        let id = |generation| NodeId {
            name: "pi-1".into(),
            addr,
            generation,
        };
        let bytes = postcard::to_extend(&id(12), Vec::new()).expect("encode");
        assert_eq!(postcard::from_bytes::<NodeId>(&bytes), Ok(id(12)));
        let clock_seconds = crate::plausible::wall_ms() / 1000;
        let bytes = postcard::to_extend(&id(clock_seconds), Vec::new()).expect("encode");
        assert_eq!(
            postcard::from_bytes::<NodeId>(&bytes),
            Ok(id(clock_seconds))
        );
        for generation in [u64::MAX, clock_seconds + 2 * 86_400] {
            let bytes = postcard::to_extend(&id(generation), Vec::new()).expect("encode");
            assert!(
                postcard::from_bytes::<NodeId>(&bytes).is_err(),
                "{generation}"
            );
        }
    }
}
