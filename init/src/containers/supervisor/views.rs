//! What the API sees: each service's view, rebuilt when its instances change, and the network's,
//! rebuilt with the rules.

use std::net::SocketAddr;

use baton_api::{InstancePhase, ServiceState};
use baton_spec::service::ServiceSpec;

use super::freezing::Freeze;
use super::instance::Phase;
use super::state::{Driver, Slot};
use super::{lock, InstanceView, NetworkService, NetworkView, ServiceView};
use crate::svcnet::network::{Member, Network};

/// Whether an instance takes requests: running, and healthy if the spec has a health check (not
/// known to be unhealthy otherwise).
pub(super) fn ready(spec: &ServiceSpec, s: &Slot) -> bool {
    s.machine.phase == Phase::Running
        && s.freeze == Freeze::Thawed
        && s.machine.healthy != Some(false)
        && (spec.health.is_none() || s.machine.healthy == Some(true))
}

impl Driver {
    /// Recomputes the service's view and its published backends.
    pub(super) fn refresh(&mut self, name: &str) {
        self.network_dirty = true;
        let Some(svc) = self.services.get(name) else {
            return;
        };
        let ready = |s: &Slot| ready(&svc.spec, s);
        if let (Some(p), Some(port)) = (&svc.published, svc.spec.port) {
            let backends = svc
                .slots
                .values()
                .filter(|s| ready(s))
                .filter_map(|s| s.address.map(|a| SocketAddr::from((a, port))))
                .collect();
            p.set_backends(backends);
        }
        let instances: Vec<InstanceView> = svc
            .slots
            .iter()
            .map(|(slot, s)| InstanceView {
                id: Self::id(name, *slot),
                // Shown frozen once it is (a freeze under way shows running, not ready).
                state: if s.machine.phase == Phase::Running
                    && matches!(s.freeze, Freeze::Frozen | Freeze::Thawing(_))
                {
                    InstancePhase::Frozen
                } else {
                    s.machine.phase.into()
                },
                address: s.address.map(|a| a.to_string()),
                started_at_ms: s.started_ms,
                start_ms: s.start_ms,
                restarts: s.machine.restarts,
                last_exit: s.machine.last_exit.map(Into::into),
                last_error: s.machine.last_error.clone(),
                oom_kills: s.machine.oom_kills,
                healthy: s.machine.healthy,
                ready: ready(s),
                // Read from the cgroup when the API is asked, not kept.
                usage: None,
            })
            .collect();
        let desired = if svc.removing { 0 } else { svc.spec.scale.min };
        let running = svc.slots.values().filter(|s| ready(s)).count() as u32;
        let state = if svc.removing {
            ServiceState::Removing
        } else if instances
            .iter()
            .any(|i| i.state == InstancePhase::CrashLoop)
        {
            ServiceState::CrashLoop
        } else if running >= desired && desired > 0 {
            ServiceState::Running
        } else if instances
            .iter()
            .all(|i| matches!(i.state, InstancePhase::Stopped | InstancePhase::Frozen))
        {
            // Frozen instances are idle, not starting.
            ServiceState::Stopped
        } else if instances.iter().any(|i| i.state == InstancePhase::Backoff) {
            ServiceState::Degraded
        } else {
            ServiceState::Starting
        };
        let view = ServiceView {
            name: name.to_string(),
            state,
            image: svc.spec.image.to_string(),
            desired,
            running,
            publish: svc.spec.publish,
            instances,
            error: svc.error.as_ref().map(ToString::to_string),
            dropped_log_lines: svc.log.dropped(),
        };
        lock(&self.snapshot.views).insert(name.to_string(), view);
    }
}

/// The network's view: the rule set's generation, the error applying it, and every member's
/// virtual IP, port, callers and egress.
pub(super) fn network_view(
    network: &Network,
    members: &[Member<'_>],
    error: Option<String>,
) -> NetworkView {
    let vips = network.vips();
    NetworkView {
        generation: network.generation(),
        error,
        services: members
            .iter()
            .map(|m| NetworkService {
                name: m.spec.name.clone(),
                vip: vips.get(&m.spec.name).copied(),
                port: m.spec.port,
                allow: m.spec.allow.clone(),
                egress: format!("{:?}", m.spec.egress).to_lowercase(),
            })
            .collect(),
    }
}
