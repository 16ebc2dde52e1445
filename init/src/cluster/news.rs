//! What changed in the cluster between two rounds, as events (see
//! `docs/design/observability.md`, section 2): boards that joined or left, and instances that
//! placement moved to another board. Every board computes them alike from the same gossip, so
//! each raises them itself and a reader takes them from the board it talks to.

use std::collections::BTreeMap;

use baton_api::events::What;
use baton_cluster::gossip::{Member as GossipMember, MemberState};
use baton_cluster::placement::Assignment;

use super::{lock, Node};

impl Node {
    /// Raises the boards that joined or left since the last round.
    pub(super) fn note_members(&self, peers: &[GossipMember]) {
        let news = {
            let mut inner = lock(&self.inner);
            let (news, seen) = member_changes(&inner.members_seen, peers);
            inner.members_seen = seen;
            news
        };
        for what in news {
            self.settings.bus.raise(what);
        }
    }

    /// Keeps `assignment` as the latest placement, and raises the instances it moved.
    pub(super) fn note_placement(&self, assignment: Assignment) {
        let moved = {
            let mut inner = lock(&self.inner);
            let moved = moves(&inner.assignment, &assignment);
            inner.assignment = assignment;
            moved
        };
        for what in moved {
            self.settings.bus.raise(what);
        }
    }
}

/// The peers as the last round saw them: name → alive. Bounded by the gossip's own registry.
pub type Seen = BTreeMap<String, bool>;

/// The member changes from `seen` to `peers`, and what to remember for the next round.
///
/// A peer alive now that was unknown or dead has joined; one alive before that is dead now
/// has left (`dead`); one alive before that the gossip no longer lists was forgotten (`gone`).
/// A dead peer forgotten later, or one first seen dead, raises nothing: it was not up.
pub fn member_changes(seen: &Seen, peers: &[GossipMember]) -> (Vec<What>, Seen) {
    let now: Seen = peers
        .iter()
        .map(|p| (p.name.clone(), p.state == MemberState::Alive))
        .collect();
    let mut news = Vec::new();
    for (name, &alive) in &now {
        let before = seen.get(name).copied().unwrap_or(false);
        match (before, alive) {
            (false, true) => news.push(What::BoardJoined {
                member: name.clone(),
            }),
            (true, false) => news.push(What::BoardLeft {
                member: name.clone(),
                why: "dead".to_string(),
            }),
            _ => {}
        }
    }
    for (name, &alive) in seen {
        if alive && !now.contains_key(name) {
            news.push(What::BoardLeft {
                member: name.clone(),
                why: "gone".to_string(),
            });
        }
    }
    (news, now)
}

/// The instances placed on a board in both `old` and `new` whose board differs. An instance
/// that lost its board, or was added or removed by scaling, did not move.
pub fn moves(old: &Assignment, new: &Assignment) -> Vec<What> {
    let mut news = Vec::new();
    for (service, placed) in &new.services {
        let Some(before) = old.services.get(service) else {
            continue;
        };
        for (index, to) in &placed.instances {
            match before.instances.get(index) {
                Some(from) if from != to => news.push(What::InstanceMoved {
                    service: service.clone(),
                    instance: format!("{service}-{}", index.saturating_add(1)),
                    from: from.clone(),
                    to: to.clone(),
                }),
                _ => {}
            }
        }
    }
    news
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_cluster::placement::ServiceAssignment;

    fn peer(name: &str, state: MemberState) -> GossipMember {
        let addr = std::net::SocketAddr::from(([192, 0, 2, 1], 7946));
        let alive = state == MemberState::Alive;
        super::super::fabric::gossip_member(name, addr, alive, Default::default())
    }

    fn kinds(news: &[What]) -> Vec<String> {
        news.iter()
            .map(|w| match w {
                What::BoardJoined { member } => format!("joined {member}"),
                What::BoardLeft { member, why } => format!("left {member} {why}"),
                other => other.kind().to_string(),
            })
            .collect()
    }

    #[test]
    fn the_first_round_sees_every_alive_peer_join_and_no_dead_one() {
        let peers = [
            peer("pi-b", MemberState::Alive),
            peer("pi-c", MemberState::Dead),
        ];
        let (news, seen) = member_changes(&Seen::new(), &peers);
        assert_eq!(kinds(&news), ["joined pi-b"]);
        assert_eq!(seen.get("pi-c"), Some(&false));
    }

    #[test]
    fn a_peer_that_dies_leaves_comes_back_joins_and_is_forgotten_is_gone() {
        let alive = [peer("pi-b", MemberState::Alive)];
        let (_, seen) = member_changes(&Seen::new(), &alive);
        let (news, seen) = member_changes(&seen, &alive);
        assert!(news.is_empty(), "no change, no news: {news:?}");
        let (news, seen) = member_changes(&seen, &[peer("pi-b", MemberState::Dead)]);
        assert_eq!(kinds(&news), ["left pi-b dead"]);
        let (news, dead_seen) = member_changes(&seen, &[]);
        assert!(
            news.is_empty(),
            "a dead board forgotten was not up: {news:?}"
        );
        let (news, seen) = member_changes(&dead_seen, &alive);
        assert_eq!(kinds(&news), ["joined pi-b"]);
        let (news, seen) = member_changes(&seen, &[]);
        assert_eq!(kinds(&news), ["left pi-b gone"]);
        assert!(seen.is_empty());
    }

    fn placed(pairs: &[(&str, u32, &str)]) -> Assignment {
        let mut a = Assignment::default();
        for (service, index, board) in pairs {
            a.services
                .entry(service.to_string())
                .or_insert_with(ServiceAssignment::default)
                .instances
                .insert(*index, board.to_string());
        }
        a
    }

    #[test]
    fn only_an_instance_on_another_board_in_both_placements_moved() {
        let old = placed(&[("web", 0, "pi-a"), ("web", 1, "pi-c"), ("db", 0, "pi-b")]);
        let new = placed(&[
            ("web", 0, "pi-a"),
            ("web", 1, "pi-b"),
            ("web", 2, "pi-c"),
            ("cache", 0, "pi-a"),
        ]);
        assert_eq!(
            moves(&old, &new),
            [What::InstanceMoved {
                service: "web".into(),
                instance: "web-2".into(),
                from: "pi-c".into(),
                to: "pi-b".into(),
            }]
        );
        assert!(moves(&Assignment::default(), &new).is_empty());
        assert!(moves(&new, &new).is_empty());
    }
}
