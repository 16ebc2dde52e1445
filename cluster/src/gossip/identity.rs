//! Who a node is, as foca sees it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A node's identity in the membership protocol.
///
/// foca treats two identities with the same [`foca::Identity::addr`] (here: the gossip address) as
/// the same node at different times and keeps the one that wins the conflict: the higher generation.
/// That is how a board that restarted replaces its old self instead of being shadowed by it.
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
    /// A stand-in for a seed whose name is not known yet: foca accepts an announce addressed to any
    /// identity with the receiver's address.
    pub(crate) fn seed(addr: SocketAddr) -> Self {
        Self {
            name: String::new(),
            addr,
            generation: 0,
        }
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            generation: self.generation.checked_add(1)?,
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
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
    fn newer_generation_wins_and_renew_bumps_it() {
        let addr: SocketAddr = ([127, 0, 0, 1], 7946).into();
        let old = NodeId {
            name: "pi-1".into(),
            addr,
            generation: 10,
        };
        let renewed = old.renew().expect("renew");
        assert_eq!(renewed.generation, 11);
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        assert_eq!(NodeId::seed(addr).addr(), old.addr());
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
