//! Which membership identity each bound name may have: the one its latest proof vouches for.
//!
//! foca's packets are not signed, so any holder of the cluster key could gossip an identity of a
//! board under its name (a higher generation, another address) and have foca take it over the
//! board's own. A state proof ([`super::proof`]) signs the board's address and the generation of
//! its current membership identity, so for a name bound to a key ([`super::bindings`]) this node
//! admits only that identity: the highest (boot generation, member generation) of the proofs
//! verified under the bound key. The highest rather than the latest, because proofs of one boot
//! can arrive reordered and a replay must never lower it (older boot generations are refused by
//! the replay window once the newer one is pinned, see [`crate::sealed`]).
//!
//! An unbound name (a board of the previous release, or one whose first proof has not come yet)
//! is admitted as foca sees it: nothing could check it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::bindings::Bindings;
use super::identity::NodeId;

/// What a name's proofs vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Vouch {
    addr: SocketAddr,
    generation: u64,
    member_generation: u64,
}

/// The vouched identity of every bound name whose proof arrived in this run. Only names bound
/// to a key get one, so it holds at most [`super::bindings::MAX_BINDINGS`].
#[derive(Debug, Default)]
pub(crate) struct Vouches {
    by_name: BTreeMap<String, Vouch>,
}

impl Vouches {
    /// A proof verified under `name`'s bound key vouches for `name`@`addr` in boot generation
    /// `generation` as member generation `member_generation`. Returns the newly vouched identity
    /// if the vouch rose (an equal or lower one changes nothing).
    pub(crate) fn raise(
        &mut self,
        name: &str,
        addr: SocketAddr,
        (generation, member_generation): (u64, u64),
    ) -> Option<NodeId> {
        let new = Vouch {
            addr,
            generation,
            member_generation,
        };
        let higher =
            |old: &Vouch| (generation, member_generation) > (old.generation, old.member_generation);
        match self.by_name.get_mut(name) {
            Some(old) if !higher(old) => return None,
            Some(old) => *old = new,
            None => {
                self.by_name.insert(name.to_owned(), new);
            }
        }
        self.identity(name)
    }

    /// Forgets `name`'s vouch (its binding was forgotten or replaced by another key's).
    pub(crate) fn clear(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    /// The identity `name`'s proofs vouch for.
    pub(crate) fn identity(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).map(|v| NodeId {
            name: name.to_owned(),
            addr: v.addr,
            generation: v.member_generation,
        })
    }
}

/// Decides which membership identities this node lets into foca and its table.
pub(crate) struct Gate<'a> {
    /// This node's current identity.
    pub(crate) me: &'a NodeId,
    pub(crate) bindings: &'a Bindings,
    pub(crate) vouches: &'a Vouches,
}

impl Gate<'_> {
    /// Whether `id` is admissible: an unbound name's identity; for a bound name, exactly the
    /// vouched identity; under this node's own name, only its current identity.
    pub(crate) fn admits(&self, id: &NodeId) -> bool {
        if id.name == self.me.name {
            return id == self.me;
        }
        if self.bindings.get(&id.name).is_none() {
            return true;
        }
        self.vouches
            .by_name
            .get(&id.name)
            .is_some_and(|v| v.addr == id.addr && v.member_generation == id.generation)
    }

    /// Whether `id`'s name is bound (or is this node's own), so that only one identity of it
    /// is admitted.
    pub(crate) fn guards(&self, id: &NodeId) -> bool {
        id.name == self.me.name || self.bindings.get(&id.name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, port: u16, generation: u64) -> NodeId {
        NodeId {
            name: name.into(),
            addr: ([127, 0, 0, 1], port).into(),
            generation,
        }
    }

    #[test]
    fn the_highest_vouch_counts_and_only_its_identity_is_admitted_for_a_bound_name() {
        let mut bindings = Bindings::default();
        bindings.check("b", [2; 32], 0, 0);
        let mut vouches = Vouches::default();
        let me = id("a", 1, 5);
        let addr = id("b", 2, 0).addr;
        let gate = |v: &Vouches, b: &Bindings, x: &NodeId| {
            Gate {
                me: &me,
                bindings: b,
                vouches: v,
            }
            .admits(x)
        };
        assert!(
            !gate(&vouches, &bindings, &id("b", 2, 7)),
            "bound, no vouch"
        );
        assert!(gate(&vouches, &bindings, &id("c", 3, 7)), "unbound");
        assert!(gate(&vouches, &bindings, &me));
        assert!(
            !gate(&vouches, &bindings, &id("a", 1, 6)),
            "not my identity"
        );
        assert_eq!(vouches.raise("b", addr, (7, 7)), Some(id("b", 2, 7)));
        assert_eq!(vouches.raise("b", addr, (7, 9)), Some(id("b", 2, 9)));
        assert_eq!(vouches.raise("b", addr, (7, 8)), None, "reordered: kept");
        assert_eq!(vouches.raise("b", addr, (6, 99)), None, "older boot");
        assert!(gate(&vouches, &bindings, &id("b", 2, 9)));
        assert!(
            !gate(&vouches, &bindings, &id("b", 2, 1009)),
            "forged ahead"
        );
        assert!(!gate(&vouches, &bindings, &id("b", 66, 9)), "elsewhere");
        vouches.clear("b");
        assert!(!gate(&vouches, &bindings, &id("b", 2, 9)));
        assert_eq!(vouches.identity("b"), None);
    }
}
