//! Carrying out the decisions: signals, launches, health checks, network rules, image collection.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::driver::now;
use super::instance::{ExitStatus, Phase};
use super::launcher::{Launch, LaunchError, Launched};
use super::lock;
use super::probing::Pacing;
use super::routed::{AuthService, Routed, RoutedInstance, RoutedService};
use super::state::{Driver, Key, PublishError};
use super::views::{network_view, ready};
use crate::svcnet::network::{self, Network};
use crate::svcnet::publish::Published;

/// The result of work the driver started in the background, for the instance incarnation `Key`.
pub(super) enum WorkDone {
    /// A launch finished.
    Launched(Key, Result<Launched, LaunchError>),
    /// An ended container was removed.
    Cleaned(Key, ExitStatus),
    /// A health check finished.
    Health(Key, bool),
    /// An instance's address is off the bridge: another instance may have it now.
    Freed(Ipv4Addr),
    /// A freeze (`frozen`) or thaw, number `op`, finished.
    Froze {
        /// The instance.
        key: Key,
        /// Which operation (the slot's [`super::freezing::Freeze`] names it while under way).
        op: u64,
        /// A freeze, or a thaw.
        frozen: bool,
        /// Its result (the error as text).
        result: Result<(), String>,
    },
}

impl Driver {
    /// Sends `signal` to the instance's container in the background.
    pub(super) fn signal(&mut self, name: &str, slot: u32, signal: i32) {
        let Ok(runtime) = self.kit.runtime.as_ref() else {
            return;
        };
        let runtime = runtime.clone();
        let id = Self::id(name, slot);
        let console = Arc::clone(&self.console);
        let frozen = self.thaw_for_signal(name, slot);
        tokio::spawn(async move {
            // A frozen instance handles no signal but SIGKILL: thaw it first, or kill it.
            let mut signal = signal;
            if frozen {
                if let Err(e) = runtime.freeze(&id, false).await {
                    console.line(format_args!("supervisor: {e}; killing it instead"));
                    signal = libc::SIGKILL;
                }
            }
            if let Err(e) = runtime.signal(&id, signal).await {
                console.line(format_args!("supervisor: signal {signal} to {id}: {e}"));
            }
        });
    }

    /// Starts an instance's container in the background: image, network, container.
    pub(super) fn launch(&mut self, name: &str, slot: u32) {
        let Some(key) = self.key(name, slot) else {
            return;
        };
        let id = Self::id(name, slot);
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let spec = Arc::clone(&svc.spec);
        let log = Arc::clone(&svc.log);
        let image = svc
            .image
            .as_ref()
            .filter(|(g, _)| *g == svc.generation)
            .map(|(_, i)| Arc::clone(i));
        let address = match (&self.kit.bridge, self.kit.pool.as_mut()) {
            (Ok(_), Some(pool)) => match pool.allocate() {
                Ok(a) => Some(a),
                Err(e) => {
                    let _ = self.work.send(WorkDone::Launched(key, Err(e.into())));
                    return;
                }
            },
            _ => None,
        };
        if let (Some(address), Some(network)) = (address, self.kit.network.as_ref()) {
            if let Some(why) = network.failure() {
                if let Some(pool) = self.kit.pool.as_mut() {
                    pool.release(address);
                }
                let _ = self
                    .work
                    .send(WorkDone::Launched(key, Err(LaunchError::Isolation(why))));
                return;
            }
        }
        if let Some(s) = self.slot_mut(name, slot) {
            s.address = address;
            s.launched_at = Some(now());
        }
        let launch = Launch {
            netns_name: format!("{id}.{}", key.uid),
            id,
            spec,
            image,
            address,
            log,
            paths: self.paths.clone(),
            runtime: self.kit.runtime.clone(),
            bridge: self.kit.bridge.clone(),
            store: self.kit.store.clone(),
            resolv_conf: self.kit.network.as_ref().and_then(Network::resolv_conf),
            console: Arc::clone(&self.console),
        };
        let results = self.work.clone();
        tokio::spawn(async move {
            let result = launch.run().await;
            let _ = results.send(WorkDone::Launched(key, result));
        });
        self.refresh(name);
    }

    /// Checks the instance's health, if the spec has a check: at once, fast until a check
    /// passes, then every interval ([`Pacing`]).
    pub(super) fn health_task(&self, key: &Key) -> Option<JoinHandle<()>> {
        let svc = self.services.get(&key.service)?;
        let check = svc.spec.health.clone()?;
        let address = svc.slots.get(&key.slot)?.address?;
        let port = svc.spec.port;
        let results = self.work.clone();
        let probes = Arc::clone(&self.kit.probes);
        let key = key.clone();
        let mut pacing = Pacing::new(check.interval, check.start_period + check.interval);
        Some(tokio::spawn(async move {
            let began = tokio::time::Instant::now();
            loop {
                let ok = probes
                    .check(address.into(), port, &check.probe, check.timeout)
                    .await;
                if results.send(WorkDone::Health(key.clone(), ok)).is_err() {
                    return;
                }
                tokio::time::sleep(pacing.after(ok, began.elapsed())).await;
            }
        }))
    }

    /// Gives the instance's address back and takes it off the bridge.
    pub(super) fn free_network(&mut self, name: &str, slot: u32) {
        let Some(s) = self.slot_mut(name, slot) else {
            return;
        };
        let address = s.address.take();
        let ns = s.netns.take();
        let Ok(bridge) = self.kit.bridge.clone() else {
            if let (Some(a), Some(pool)) = (address, self.kit.pool.as_mut()) {
                pool.release(a);
            }
            return;
        };
        // The address goes back to the pool once its link is gone: an instance started at once
        // with the same address (its link is named after it) must not lose its new link to
        // this removal.
        let done = self.work.clone();
        tokio::spawn(async move {
            bridge.disconnect(address, ns).await;
            if let Some(a) = address {
                let _ = done.send(WorkDone::Freed(a));
            }
        });
    }

    /// Rebuilds names and rules when services or instances changed.
    pub(super) fn update_network(&mut self) {
        if !self.network_dirty || self.shutting_down {
            return;
        }
        let Some(network) = self.kit.network.as_mut() else {
            return;
        };
        self.network_dirty = false;
        let members: Vec<network::Member<'_>> = self
            .services
            .values()
            .filter(|svc| !svc.removing)
            .map(|svc| network::Member {
                spec: &svc.spec,
                instances: svc
                    .slots
                    .values()
                    .filter(|s| s.machine.phase == Phase::Running)
                    .filter_map(|s| s.address.map(|a| (a, ready(&svc.spec, s))))
                    .chain(
                        self.remote
                            .instances
                            .iter()
                            .filter(|i| i.service == svc.spec.name)
                            .map(|i| (i.addr, i.ready)),
                    )
                    .collect(),
            })
            .collect();
        let rules = Arc::clone(&self.kit.rules);
        let error = network.update_with(&members, &self.remote, |p| rules.apply(p));
        if let Some(e) = &error {
            self.console
                .line(format_args!("services: isolation rules not applied: {e}"));
        }
        let view = network_view(network, &members, error);
        *lock(&self.snapshot.network) = view;
        let routed = self.routed();
        self.snapshot.routed.send_if_modified(|old| {
            let changed = *old != routed;
            *old = routed;
            changed
        });
    }

    /// The routed services and their instances, for the front door, and the auth services
    /// their routes' `forward.url` names (the front door asks those instances directly).
    fn routed(&self) -> Routed {
        let mut out = Routed::default();
        let live = || self.services.values().filter(|svc| !svc.removing);
        for svc in live() {
            let (Some(route), Some(port)) = (&svc.spec.route, svc.spec.port) else {
                continue;
            };
            out.services.insert(
                svc.spec.name.clone(),
                RoutedService {
                    route: route.clone(),
                    port,
                    instances: self.routed_instances(svc),
                    hold_queue: svc.spec.scale.hold_queue,
                    hold_timeout: svc.spec.scale.hold_timeout,
                },
            );
        }
        let targets: BTreeSet<String> = out
            .services
            .values()
            .filter_map(|s| s.route.forward.as_ref())
            .filter_map(|f| baton_spec::service::route::url_host(&f.url))
            .collect();
        for svc in live().filter(|svc| svc.spec.route.is_none()) {
            let Some(port) = svc.spec.port.filter(|_| targets.contains(&svc.spec.name)) else {
                continue;
            };
            out.auth_services.insert(
                svc.spec.name.clone(),
                AuthService {
                    port,
                    instances: self.routed_instances(svc),
                },
            );
        }
        out
    }

    /// The running instances of `svc`, here and on the other boards, for the front door.
    fn routed_instances(&self, svc: &super::state::ServiceState) -> Vec<RoutedInstance> {
        let local = svc.slots.iter().filter_map(|(slot, s)| {
            let addr = s.address.filter(|_| s.machine.phase == Phase::Running)?;
            Some(RoutedInstance {
                id: format!("{}#{}", Driver::id(&svc.spec.name, *slot), s.uid),
                addr,
                board: None,
                ready: ready(&svc.spec, s),
            })
        });
        let remote = self
            .remote
            .instances
            .iter()
            .filter(|i| i.service == svc.spec.name)
            .map(|i| RoutedInstance {
                id: format!("{}/{}", i.board, i.addr),
                addr: i.addr,
                board: Some(i.board.clone()),
                ready: i.ready,
            });
        local.chain(remote).collect()
    }

    /// Collects the released images once no instance is starting, stopping or outdated (so no
    /// container still runs from them) and the board is not shutting down.
    pub(super) fn collect_images(&mut self) {
        if self.released.is_empty() || self.shutting_down {
            return;
        }
        let settled = self.services.values().all(|svc| {
            svc.slots.values().all(|s| {
                s.generation == svc.generation
                    && !matches!(s.machine.phase, Phase::Starting | Phase::Stopping)
            })
        });
        let Ok(store) = self.kit.store.clone() else {
            self.released.clear();
            return;
        };
        if !settled {
            return;
        }
        let released = std::mem::take(&mut self.released);
        let in_use: BTreeSet<String> = self
            .services
            .values()
            .map(|svc| svc.spec.image.to_string())
            .collect();
        let console = Arc::clone(&self.console);
        tokio::task::spawn_blocking(move || match store.collect(&released, &in_use) {
            Ok(Some(line)) => console.line(line),
            Ok(None) => {}
            Err(e) => console.line(e),
        });
    }

    /// Opens the service's published port if it has one and it is not open yet.
    pub(super) fn publish(&mut self, name: &str) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let Some(port) = svc.spec.publish else {
            svc.published = None;
            return;
        };
        if svc.published.is_some() {
            return;
        }
        // Binding is quick; a std listener avoids waiting inside the driver.
        match std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).and_then(|l| {
            l.set_nonblocking(true)?;
            Published::from_std(l)
        }) {
            Ok(p) => svc.published = Some(p),
            Err(source) => svc.error = Some(PublishError { port, source }),
        }
    }
}
