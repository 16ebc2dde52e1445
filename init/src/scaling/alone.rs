//! Scaling on a board without a cluster: the same decision on this board's table alone, acted
//! on by assigning the supervisor its slots.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use baton_cluster::gossip::BoardValues;
use baton_cluster::scale::BUCKET_MS;
use baton_spec::service::Idle;
use baton_spec::ServiceSpec;

use super::plan::{instances, Board};
use super::{now_ms, Scaler};
use crate::containers::supervisor::Supervisor;

/// The name this board goes by in its own plan.
const ME: &str = "this board";

/// Applies `specs`, then decides and assigns every bucket and at every wake, until the board
/// stops.
pub async fn run(scaler: Arc<Scaler>, supervisor: Supervisor, specs: Vec<ServiceSpec>) {
    for spec in specs {
        supervisor.apply(spec);
    }
    loop {
        let specs = supervisor.specs();
        scaler.set_specs(now_ms(), &specs);
        let values = BoardValues {
            instances: instances(&supervisor),
            ..BoardValues::default()
        };
        let board = Board {
            name: ME,
            alive: true,
            same_specs: true,
            values: &values,
        };
        let plan = scaler.plan(now_ms(), ME, &[board]);
        // Every round, even unchanged: a spec removed and applied again is assigned afresh.
        for spec in &specs {
            let count = plan
                .counts
                .get(&spec.name)
                .copied()
                .unwrap_or(spec.scale.min);
            let frozen = spec.scale.idle == Idle::Freeze && plan.frozen.contains_key(&spec.name);
            supervisor.assign(&spec.name, Some((1..=count).collect()));
            if spec.scale.idle == Idle::Freeze {
                let slots: BTreeSet<u32> = if frozen { [1].into() } else { BTreeSet::new() };
                supervisor.set_frozen(&spec.name, slots);
            }
        }
        tokio::select! {
            () = scaler.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(BUCKET_MS)) => {}
        }
    }
}
