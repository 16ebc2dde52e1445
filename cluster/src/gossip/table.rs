//! The membership table: foca's view of who is alive, joined with each node's published state.

use std::collections::BTreeMap;
use std::time::Instant;

use super::identity::NodeId;
use super::values::ValuesError;
use super::wire::StateMessage;
use super::{Member, MemberState};

/// Names remembered at most (members, states, last-heard times each); bounds memory even if many
/// key holders churn through names.
const MAX_NAMES: usize = 1024;

/// What a state message did to the table.
enum Accepted {
    /// Older than what is known, or no room for another name: dropped.
    No,
    /// Newer, with the same values.
    Same,
    /// Newer, with other values (or the first from this member).
    Changed,
}

#[derive(Debug)]
struct Entry {
    id: NodeId,
    alive: bool,
}

/// Everything this node knows about its peers.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// This node's own name: an identity of another node that carries it is a key holder's (or a
    /// stale copy of this node), never a member to show beside this node.
    me: String,
    members: BTreeMap<String, Entry>,
    states: BTreeMap<String, StateMessage>,
    /// Why the last state a member sent was refused, until one is read.
    refused: BTreeMap<String, ValuesError>,
    heard: BTreeMap<String, Instant>,
    /// The key that signed each member's current state; absent for an unsigned state (a board
    /// of the previous release, whose name no key has claimed).
    signers: BTreeMap<String, Signer>,
}

/// Who signed a member's current state, and the gossip address the signature vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signer {
    pub(crate) key: [u8; 32],
    pub(crate) addr: std::net::SocketAddr,
}

impl Table {
    /// An empty table for the node named `me`.
    pub(crate) fn new(me: &str) -> Table {
        Table {
            me: me.to_owned(),
            ..Table::default()
        }
    }

    /// foca says `id` is up (or renamed to `id`), `id`'s name being unbound. Returns whether
    /// the table changed. For a name whose state is signed, only an identity at the address the
    /// signature vouches for counts: the membership protocol's packets are not signed, so a key
    /// holder could otherwise announce the name from its own address and later let it die.
    pub(crate) fn up(&mut self, id: &NodeId) -> bool {
        if self
            .signers
            .get(&id.name)
            .is_some_and(|s| s.addr != id.addr)
        {
            return false;
        }
        self.set_up(id, false)
    }

    /// foca says `id` is up, and `id` is exactly the identity its bound name's latest proof
    /// vouches for ([`super::vouches`]): the caller checked that. It replaces whatever the name
    /// showed, even a higher generation (a key holder's, taken before the name was bound).
    pub(crate) fn up_vouched(&mut self, id: &NodeId) -> bool {
        self.set_up(id, true)
    }

    fn set_up(&mut self, id: &NodeId, vouched: bool) -> bool {
        if id.name == self.me {
            return false;
        }
        let full = self.members.len() >= MAX_NAMES;
        match self.members.get_mut(&id.name) {
            Some(entry) if !vouched && entry.id.generation > id.generation => false,
            Some(entry) => {
                let changed = !entry.alive || entry.id != *id;
                entry.id = id.clone();
                entry.alive = true;
                changed
            }
            None if full => false,
            None => {
                self.members.insert(
                    id.name.clone(),
                    Entry {
                        id: id.clone(),
                        alive: true,
                    },
                );
                true
            }
        }
    }

    /// foca says `id` is down. Ignored when the name has since come back with a newer identity.
    pub(crate) fn down(&mut self, id: &NodeId) -> bool {
        match self.members.get_mut(&id.name) {
            Some(entry) if entry.id == *id && entry.alive => {
                entry.alive = false;
                true
            }
            _ => false,
        }
    }

    /// `sender` published `state`; kept if newer than what is known (which also ends an earlier
    /// refusal; an older state does not). Returns whether what the member shows changed.
    /// `signer` is the key whose proof covered it, if any.
    pub(crate) fn state(
        &mut self,
        sender: &str,
        state: StateMessage,
        signer: Option<Signer>,
    ) -> bool {
        let accepted = self.accept(sender, state);
        if !matches!(accepted, Accepted::No) {
            self.set_signer(sender, signer);
        }
        match accepted {
            Accepted::No => false,
            Accepted::Same => self.refused.remove(sender).is_some(),
            Accepted::Changed => {
                self.refused.remove(sender);
                true
            }
        }
    }

    /// A proof by `key` arrived for the state `sender` already shows (applied unsigned before its
    /// name was bound). Returns whether that is news.
    pub(crate) fn signed(&mut self, sender: &str, state: &StateMessage, signer: Signer) -> bool {
        let current = self
            .states
            .get(sender)
            .is_some_and(|s| (s.generation, s.version) == (state.generation, state.version));
        if !current || self.signers.get(sender) == Some(&signer) {
            return false;
        }
        self.set_signer(sender, Some(signer));
        true
    }

    /// Forgets everything about `name` (its key binding was forgotten by an operator).
    pub(crate) fn forget(&mut self, name: &str) {
        self.members.remove(name);
        self.states.remove(name);
        self.refused.remove(name);
        self.heard.remove(name);
        self.signers.remove(name);
    }

    fn set_signer(&mut self, sender: &str, signer: Option<Signer>) {
        match signer {
            Some(signer) if self.signers.len() < MAX_NAMES || self.signers.contains_key(sender) => {
                self.signers.insert(sender.to_owned(), signer);
            }
            _ => {
                self.signers.remove(sender);
            }
        }
    }

    /// `sender` published state that does not read (`why`). Returns whether that is news.
    pub(crate) fn refused(&mut self, sender: &str, why: ValuesError) -> bool {
        if self.refused.get(sender) == Some(&why) {
            return false;
        }
        if self.refused.len() >= MAX_NAMES && !self.refused.contains_key(sender) {
            return false;
        }
        self.refused.insert(sender.to_owned(), why);
        true
    }

    fn accept(&mut self, sender: &str, state: StateMessage) -> Accepted {
        let full = self.states.len() >= MAX_NAMES;
        match self.states.get_mut(sender) {
            Some(known) if !state.newer_than(known.generation, known.version) => Accepted::No,
            Some(known) => {
                let changed = known.values != state.values;
                *known = state;
                if changed {
                    Accepted::Changed
                } else {
                    Accepted::Same
                }
            }
            None if full => Accepted::No,
            None => {
                self.states.insert(sender.to_owned(), state);
                Accepted::Changed
            }
        }
    }

    /// An authenticated datagram arrived from `sender`.
    pub(crate) fn heard(&mut self, sender: &str, now: Instant) {
        if let Some(at) = self.heard.get_mut(sender) {
            *at = now;
        } else if self.heard.len() < MAX_NAMES {
            self.heard.insert(sender.to_owned(), now);
        }
    }

    /// Addresses of the members believed alive.
    pub(crate) fn alive_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.members
            .iter()
            .filter(|(_, e)| e.alive)
            .map(|(name, e)| self.addr_of(name, e))
            .collect()
    }

    /// A member's address: the one its signed state vouches for, else the one foca reports
    /// (which any key holder could have announced for the name).
    fn addr_of(&self, name: &str, entry: &Entry) -> std::net::SocketAddr {
        self.signers.get(name).map_or(entry.id.addr, |s| s.addr)
    }

    /// The peers as the public API shows them, sorted by name.
    pub(crate) fn snapshot(&self) -> Vec<Member> {
        self.members
            .iter()
            .map(|(name, entry)| Member {
                name: name.clone(),
                addr: self.addr_of(name, entry),
                generation: entry.id.generation,
                state: if entry.alive {
                    MemberState::Alive
                } else {
                    MemberState::Dead
                },
                // A member whose latest values were refused shows none: what it said before
                // may no longer hold (it may run another build), so it takes no instances.
                values: self
                    .states
                    .get(name)
                    .filter(|_| !self.refused.contains_key(name))
                    .map(|s| s.values.clone())
                    .unwrap_or_default(),
                values_error: self.refused.get(name).cloned(),
                signed_by: self
                    .signers
                    .get(name)
                    .map(|s| crate::board_key::fingerprint(&s.key)),
                last_heard: self.heard.get(name).copied(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Table {
        fn state_unsigned(&mut self, sender: &str, state: StateMessage) -> bool {
            self.state(sender, state, None)
        }
    }

    fn id(name: &str, generation: u64) -> NodeId {
        NodeId {
            name: name.into(),
            addr: ([127, 0, 0, 1], 7000).into(),
            generation,
        }
    }

    #[test]
    fn another_identity_under_this_nodes_own_name_is_never_a_member() {
        let mut table = Table::new("me");
        assert!(!table.up(&id("me", u64::from(u32::MAX))));
        assert!(table.up(&id("a", 1)));
        let names: Vec<String> = table.snapshot().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn a_vouched_identity_replaces_a_higher_generation_taken_before_its_name_was_bound() {
        let mut table = Table::new("me");
        assert!(table.up(&id("b", 1_000)), "forged, while b was unbound");
        assert!(
            !table.up(&id("b", 1)),
            "unvouched: the higher generation stays"
        );
        assert!(table.up_vouched(&id("b", 1)));
        assert_eq!(table.snapshot()[0].generation, 1);
        assert!(
            !table.up_vouched(&id("me", 1)),
            "never this node's own name"
        );
    }

    #[test]
    fn restarted_node_replaces_its_old_self() {
        let mut table = Table::default();
        assert!(table.up(&id("a", 1)));
        assert!(table.down(&id("a", 1)));
        assert_eq!(table.snapshot()[0].state, MemberState::Dead);
        assert!(table.up(&id("a", 2)));
        assert!(
            !table.down(&id("a", 1)),
            "late news about the old self is ignored"
        );
        assert!(!table.up(&id("a", 1)));
        let members = table.snapshot();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].state, MemberState::Alive);
        assert_eq!(members[0].generation, 2);
    }

    #[test]
    fn newer_state_wins() {
        let mut table = Table::default();
        table.up(&id("a", 1));
        let state = |generation, version, v: &str| {
            let mut values = super::super::BoardValues::default();
            values.labels.insert("k".to_owned(), v.to_owned());
            StateMessage {
                generation,
                version,
                values,
            }
        };
        assert!(table.state_unsigned("a", state(1, 2, "two")));
        assert!(!table.state_unsigned("a", state(1, 1, "one")));
        assert_eq!(table.snapshot()[0].values.labels["k"], "two");
        assert!(table.state_unsigned("a", state(2, 0, "rebooted")));
        assert_eq!(table.snapshot()[0].values.labels["k"], "rebooted");
    }

    #[test]
    fn refused_state_is_shown_until_state_reads_again() {
        let mut table = Table::default();
        table.up(&id("a", 1));
        let newer = ValuesError::Newer { found: 9, known: 1 };
        assert!(table.refused("a", newer.clone()));
        assert!(
            !table.refused("a", newer.clone()),
            "the same refusal is no news"
        );
        assert_eq!(table.snapshot()[0].values_error, Some(newer));
        assert_eq!(table.snapshot()[0].values, Default::default());
        let state = StateMessage {
            generation: 1,
            version: 1,
            values: Default::default(),
        };
        assert!(
            table.state("a", state, None),
            "a refusal cleared is a change"
        );
        assert_eq!(table.snapshot()[0].values_error, None);
    }

    #[test]
    fn a_refused_member_shows_no_stale_values_and_only_a_newer_state_clears_it() {
        let mut table = Table::default();
        table.up(&id("a", 1));
        let state = |version, v: &str| {
            let mut values = super::super::BoardValues::default();
            values.labels.insert("k".to_owned(), v.to_owned());
            StateMessage {
                generation: 1,
                version,
                values,
            }
        };
        assert!(table.state_unsigned("a", state(5, "old build")));
        let newer = ValuesError::Newer { found: 9, known: 1 };
        assert!(table.refused("a", newer.clone()));
        assert_eq!(
            table.snapshot()[0].values,
            Default::default(),
            "what it said before the refusal is not used"
        );
        assert!(
            !table.state_unsigned("a", state(4, "replayed")),
            "an older state is dropped"
        );
        assert_eq!(table.snapshot()[0].values_error, Some(newer));
        assert_eq!(table.snapshot()[0].values, Default::default());
        assert!(table.state_unsigned("a", state(6, "old build")));
        assert_eq!(table.snapshot()[0].values_error, None);
        assert_eq!(table.snapshot()[0].values.labels["k"], "old build");
    }

    #[test]
    fn a_signed_state_s_address_wins_over_the_one_foca_reports() {
        let mut table = Table::default();
        table.up(&id("b", 1));
        let real: std::net::SocketAddr = ([192, 0, 2, 2], 7946).into();
        let state = StateMessage {
            generation: 1,
            version: 1,
            values: Default::default(),
        };
        let signer = Signer {
            key: [2; 32],
            addr: real,
        };
        assert!(table.state("b", state, Some(signer)));
        // A key holder announced the name from its own address, with a newer generation.
        let mut forged = id("b", 2);
        forged.addr = ([192, 0, 2, 66], 7946).into();
        assert!(!table.up(&forged), "ignored");
        assert_eq!(table.snapshot()[0].addr, real);
        assert_eq!(table.alive_addrs(), vec![real]);
        assert!(!table.down(&forged), "and so is its death");
        assert_eq!(table.snapshot()[0].state, MemberState::Alive);
        let mut moved = id("b", 3);
        moved.addr = real;
        assert!(table.up(&moved), "the signed address counts");
    }
}
