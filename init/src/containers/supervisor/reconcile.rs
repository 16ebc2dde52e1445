//! The decisions: which instances each service should have, and what to do about the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_spec::service::ServiceSpec;

use super::driver::now;
use super::instance::{Action, Event, Instance, Phase, Policy};
use super::logs::ServiceLog;
use super::state::{Driver, ServiceState, Slot};
use super::{lock, Command};

/// The spec without what only the network rules use (`allow`, `egress`).
pub(super) fn without_network_rules(spec: &ServiceSpec) -> ServiceSpec {
    let mut s = spec.clone();
    s.allow.clear();
    s.egress = baton_spec::service::Egress::Internet;
    s
}

/// The rules an instance of `spec` follows.
pub(super) fn policy(spec: &ServiceSpec) -> Policy {
    Policy {
        restart: spec.restart,
        stop_timeout: spec.stop_timeout,
        health_retries: spec.health.as_ref().map_or(1, |h| h.retries),
        health_start_period: spec
            .health
            .as_ref()
            .map_or(Duration::ZERO, |h| h.start_period),
        health_interval: spec.health.as_ref().map_or(Duration::ZERO, |h| h.interval),
    }
}

impl Driver {
    /// Carries out a command from the handle.
    pub(super) fn command(&mut self, command: Command) {
        match command {
            Command::Apply(spec) => self.apply(*spec),
            Command::Remote(remote) => {
                if *remote != self.remote {
                    self.remote = *remote;
                    self.network_dirty = true;
                }
            }
            Command::Assign(name, slots) => {
                self.assignments.insert(name.clone(), slots.clone());
                if let Some(svc) = self.services.get_mut(&name) {
                    svc.assigned = slots;
                    self.settle(&name);
                }
            }
            Command::Freeze(name, slots) => self.set_frozen(&name, slots),
            Command::Thaw(name) => self.thaw_now(&name),
            Command::Remove(name) => {
                if let Some(svc) = self.services.get_mut(&name) {
                    svc.removing = true;
                    let slots: Vec<u32> = svc.slots.keys().copied().collect();
                    for slot in slots {
                        self.feed(&name, slot, Event::Stop);
                    }
                    self.settle(&name);
                }
            }
            Command::Restart(name) => {
                let slots: Vec<u32> = self
                    .services
                    .get(&name)
                    .map(|s| s.slots.keys().copied().collect())
                    .unwrap_or_default();
                for slot in slots {
                    if let Some(s) = self.slot_mut(&name, slot) {
                        s.replace = true;
                    }
                    self.feed(&name, slot, Event::Stop);
                }
                self.settle(&name);
            }
            Command::StopAll(done) => {
                self.shutting_down = true;
                self.released.clear();
                self.stopping.push(done);
                let names: Vec<String> = self.services.keys().cloned().collect();
                for name in names {
                    self.command(Command::Remove(name));
                }
            }
        }
    }

    /// Takes a new or changed spec: a new service starts, a changed one rolls out (unless only
    /// its network rules changed), a removed one that comes back is kept.
    pub(super) fn apply(&mut self, spec: ServiceSpec) {
        let name = spec.name.clone();
        if let Some(svc) = self.services.get_mut(&name) {
            if *svc.spec == spec && !svc.removing {
                return;
            }
            let was_removing = std::mem::replace(&mut svc.removing, false);
            if svc.spec.image != spec.image {
                self.released.insert(svc.spec.image.to_string());
            }
            let publish_changed = svc.spec.publish != spec.publish;
            // Who it may call and where it may go are network rules, not container settings:
            // changing them rebuilds the rules and restarts nothing.
            let network_only = without_network_rules(&svc.spec) == without_network_rules(&spec);
            svc.spec = Arc::new(spec);
            if !network_only || was_removing {
                svc.generation += 1;
            }
            if publish_changed {
                svc.published = None;
                svc.error = None;
            }
        } else {
            let (log, error) = ServiceLog::new(self.paths.logs().as_deref(), &name);
            if let Some(e) = error {
                self.console
                    .line(format_args!("{name}: logs stay in memory only: {e}"));
            }
            let log = Arc::new(log);
            lock(&self.snapshot.logs).insert(name.clone(), Arc::clone(&log));
            self.services.insert(
                name.clone(),
                ServiceState {
                    spec: Arc::new(spec),
                    generation: 1,
                    image: None,
                    log,
                    slots: BTreeMap::new(),
                    published: None,
                    error: None,
                    removing: false,
                    assigned: self.assignments.get(&name).cloned().flatten(),
                    frozen: BTreeSet::new(),
                },
            );
        }
        self.publish(&name);
        self.settle(&name);
    }

    /// Brings the number and generation of instances in line with the spec, one change at a
    /// time for a rollout, and refreshes the view.
    pub(super) fn settle(&mut self, name: &str) {
        let Some(svc) = self.services.get(name) else {
            return;
        };
        let wanted = wanted(svc.assigned.as_ref(), svc.removing, svc.spec.scale.min);
        let observed = svc
            .slots
            .iter()
            .map(|(slot, s)| (*slot, s.generation, s.machine.phase));
        let plan = plan(&wanted, svc.generation, observed);
        for slot in plan.start {
            self.new_instance(name, slot);
        }
        for slot in plan.stop {
            self.feed(name, slot, Event::Stop);
        }
        if let Some(slot) = plan.replace {
            if let Some(s) = self.slot_mut(name, slot) {
                s.replace = true;
            }
            self.feed(name, slot, Event::Stop);
        }
        self.forget_if_removed(name);
        self.refresh(name);
    }

    /// Forgets a removed service once its last instance is gone; its image may be collected.
    pub(super) fn forget_if_removed(&mut self, name: &str) {
        let gone = self
            .services
            .get(name)
            .is_some_and(|s| s.removing && s.slots.is_empty());
        if gone {
            self.network_dirty = true;
            if let Some(svc) = self.services.get(name).filter(|_| !self.shutting_down) {
                self.released.insert(svc.spec.image.to_string());
            }
            self.services.remove(name);
            lock(&self.snapshot.views).remove(name);
            lock(&self.snapshot.logs).remove(name);
        }
    }

    /// A fresh incarnation of instance `slot`, started at once.
    pub(super) fn new_instance(&mut self, name: &str, slot: u32) {
        let uid = self.next_uid;
        self.next_uid += 1;
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let (machine, actions) = Instance::new();
        svc.slots.insert(
            slot,
            Slot {
                uid,
                generation: svc.generation,
                machine,
                address: None,
                netns: None,
                started_ms: None,
                launched_at: None,
                start_ms: None,
                health: None,
                replace: false,
                timer: None,
                freeze: Default::default(),
            },
        );
        self.act(name, slot, actions);
    }

    /// Feeds one event to an instance's machine and carries out the actions.
    pub(super) fn feed(&mut self, name: &str, slot: u32, event: Event) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let p = policy(&svc.spec);
        let Some(s) = svc.slots.get_mut(&slot) else {
            return;
        };
        let before = (s.machine.phase, super::views::ready(&svc.spec, s));
        let unhealthy = s.machine.healthy == Some(false);
        let seen = event.clone();
        let actions = s.machine.handle(event, now(), &p);
        let after = (s.machine.phase, super::views::ready(&svc.spec, s));
        let raised = super::raised::instance(super::raised::Step {
            service: name,
            instance: Self::id(name, slot),
            event: &seen,
            before,
            after,
            unhealthy,
            restarts: s.machine.restarts,
            start_ms: s.start_ms,
        });
        for what in raised {
            self.snapshot.bus.raise(what);
        }
        self.act(name, slot, actions);
    }

    /// Carries out what an instance's machine asked for.
    pub(super) fn act(&mut self, name: &str, slot: u32, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Start => self.launch(name, slot),
                Action::Terminate => self.signal(name, slot, libc::SIGTERM),
                Action::Kill => self.signal(name, slot, libc::SIGKILL),
                Action::Timer(at) => {
                    if let Some(s) = self.slot_mut(name, slot) {
                        s.timer = Some(at);
                    }
                }
                Action::Release => self.release(name, slot),
            }
        }
    }

    /// Releases an instance for good (after its container is gone) and maybe replaces it.
    pub(super) fn release(&mut self, name: &str, slot: u32) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let Some(s) = svc.slots.remove(&slot) else {
            return;
        };
        if let Some(h) = &s.health {
            h.abort();
        }
        let replace = s.replace && !svc.removing;
        if replace && slot <= svc.spec.scale.min {
            self.new_instance(name, slot);
        }
        // A service whose instances all ended keeps its view (state `stopped`).
        self.settle(name);
    }

    /// When the earliest instance timer is due.
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.services
            .values()
            .flat_map(|s| s.slots.values())
            .filter_map(|s| s.timer)
            .min()
    }

    /// Tells the instances whose timers are due.
    pub(super) fn timers(&mut self) {
        let at = now();
        let due: Vec<(String, u32)> = self
            .services
            .iter()
            .flat_map(|(n, svc)| {
                svc.slots
                    .iter()
                    .filter(|(_, s)| s.timer.is_some_and(|t| t <= at))
                    .map(|(k, _)| (n.clone(), *k))
            })
            .collect();
        for (name, slot) in due {
            if let Some(s) = self.slot_mut(&name, slot) {
                s.timer = None;
            }
            self.feed(&name, slot, Event::Timer);
            self.settle(&name);
        }
    }

    /// Answers `stop_all` callers once every service is gone.
    pub(super) fn finish_stop_all(&mut self) {
        if !self.stopping.is_empty() && self.services.is_empty() {
            for done in self.stopping.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

/// The instances a service should have: none while it is being removed, those placement
/// assigned to this board, or else 1 to `scale_min`.
pub(super) fn wanted(
    assigned: Option<&BTreeSet<u32>>,
    removing: bool,
    scale_min: u32,
) -> BTreeSet<u32> {
    match (assigned, removing) {
        (_, true) => BTreeSet::new(),
        (Some(slots), false) => slots.clone(),
        (None, false) => (1..=scale_min).collect(),
    }
}

/// What to do about one service's instances.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Wanted instances that do not exist: start them.
    pub(super) start: Vec<u32>,
    /// Instances that are not wanted: stop them.
    pub(super) stop: Vec<u32>,
    /// An instance of an older generation to stop and start again (a rollout's next step).
    pub(super) replace: Option<u32>,
}

/// Compares the `wanted` instances of a service at `generation` with the `observed` ones
/// (number, generation, phase): start the missing, stop the surplus, and roll one outdated
/// instance at a time, once none is starting or stopping.
pub(super) fn plan(
    wanted: &BTreeSet<u32>,
    generation: u64,
    observed: impl Iterator<Item = (u32, u64, Phase)> + Clone,
) -> Plan {
    let exists: BTreeSet<u32> = observed.clone().map(|(slot, _, _)| slot).collect();
    let busy = observed
        .clone()
        .any(|(_, _, phase)| matches!(phase, Phase::Starting | Phase::Stopping));
    let outdated = observed
        .clone()
        .find(|(_, g, phase)| *g != generation && *phase != Phase::Stopped)
        .map(|(slot, _, _)| slot);
    Plan {
        start: wanted.difference(&exists).copied().collect(),
        stop: exists.difference(wanted).copied().collect(),
        replace: outdated.filter(|_| !busy),
    }
}
