//! The scaling part of a round: the counts decided from the gossip, and freezing the last
//! instance of an idle `freeze` service where it runs.

use std::collections::BTreeSet;

use baton_cluster::gossip::{BoardValues, Member as GossipMember, MemberState};
use baton_cluster::placement::Assignment;
use baton_spec::ServiceSpec;

use super::{lock, now_ms, Node};
use crate::scaling::plan::{Board, Plan};

impl Node {
    /// Every service's count from the load every board publishes (this one's `own` values
    /// included), decided alike on every board.
    pub(super) fn plan(&self, own: &BoardValues, peers: &[GossipMember]) -> Plan {
        let digest = super::specs_digest(&lock(&self.inner).desired);
        let mut boards = vec![Board {
            name: &self.settings.board,
            alive: true,
            same_specs: true,
            values: own,
        }];
        for p in peers {
            boards.push(Board {
                name: &p.name,
                alive: p.state == MemberState::Alive,
                same_specs: p.values.digest.as_deref() == Some(digest.as_str()),
                values: &p.values,
            });
        }
        self.settings
            .scaler
            .plan(now_ms(), &self.settings.board, &boards)
    }

    /// Freezes the instance this board runs of each service the plan keeps frozen, and thaws
    /// the others (services that may freeze only).
    pub(super) fn freeze(&self, specs: &[ServiceSpec], assignment: &Assignment, plan: &Plan) {
        for spec in specs
            .iter()
            .filter(|s| s.scale.idle == baton_spec::service::Idle::Freeze)
        {
            let frozen = plan.frozen.get(&spec.name).copied().unwrap_or(0);
            let slots: BTreeSet<u32> = assignment
                .services
                .get(&spec.name)
                .map(|a| {
                    a.instances
                        .iter()
                        .filter(|(index, board)| **index < frozen && **board == self.settings.board)
                        .map(|(index, _)| index + 1)
                        .collect()
                })
                .unwrap_or_default();
            self.supervisor.set_frozen(&spec.name, slots);
        }
    }
}
