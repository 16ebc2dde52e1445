//! A spec's scaling settings as the decision takes them.

use baton_cluster::scale::{Policy, SurgeDays};
use baton_spec::service::Idle;
use baton_spec::ServiceSpec;

/// The [`Policy`] of `spec`.
pub fn of(spec: &ServiceSpec) -> Policy {
    let scale = &spec.scale;
    Policy {
        min: scale.min,
        max: scale.max,
        target: scale.target_concurrency.max(1),
        window_ms: millis(scale.window),
        panic_percent: scale.panic,
        idle_after_ms: millis(scale.idle_after),
        freeze: scale.idle == Idle::Freeze,
        surges: spec
            .surge
            .iter()
            .map(|s| SurgeDays {
                dates: s.dates.clone(),
                max: s.max,
                min: s.min,
            })
            .collect(),
    }
}

/// Whether a connection to the service may wait for an instance (the activator, the front
/// door's hold): a service that may have no ready instance when idle.
pub fn wakes(spec: &ServiceSpec) -> bool {
    spec.scale.min == 0 || spec.scale.idle == Idle::Freeze
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
