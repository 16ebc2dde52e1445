//! The supervisor's task: the only owner of services, instances, addresses and timers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_api::{InstancePhase, ServiceState};
use baton_oci::{PreparedImage, PullRequest, RegistryOptions, Source, Store};
use baton_spec::service::{ImageReference, ImageSource, ServiceSpec};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::instance::{Action, Event, ExitStatus, Instance, Phase, Policy};
use super::launch::{self, Placement};
use super::logs::{ServiceLog, Stream};
use super::{health, images, lock, Command, InstanceView, Paths, ServiceView, Shared};
use crate::containers::runtime::{self, ContainerRequest, Runtime};
use crate::svcnet::bridge::{self, Bridge, Netns};
use crate::svcnet::netns;
use crate::svcnet::network::{self, Network};
use crate::svcnet::publish::Published;

/// What instances need from the board; any of it may be missing, with the reason.
pub(super) struct Deps {
    runtime: Result<Runtime, String>,
    bridge: Result<Bridge, String>,
    pool: Option<bridge::pool::Pool>,
    store: Result<Arc<Store>, String>,
}

impl Deps {
    pub(super) async fn start(paths: &Paths) -> (Deps, Vec<String>) {
        let mut notes = Vec::new();
        let runtime = Runtime::start(runtime::RuntimePaths::default())
            .await
            .map_err(|e| format!("the container runtime did not start: {e}"));
        if let Ok(r) = &runtime {
            notes.extend(r.startup_notes().iter().cloned());
        }
        let config = bridge::Config {
            subnet: paths.subnet,
            ..bridge::Config::default()
        };
        let bridge = match Bridge::ensure(config.clone()).await {
            Ok(b) => {
                match b.remove_leftovers(&[]).await {
                    Ok(removed) if !removed.is_empty() => {
                        notes.push(format!("removed leftover links {}", removed.join(", ")))
                    }
                    Ok(_) => {}
                    Err(e) => notes.push(format!("removing leftover links: {e}")),
                }
                if let Err(e) = crate::svcnet::nft::apply(&crate::svcnet::nft::model::Ruleset {
                    tables: vec![bridge::nat_table(b.subnet(), &config.name)],
                }) {
                    notes.push(format!(
                        "container traffic cannot reach the uplink (NAT rules refused): {e}"
                    ));
                }
                Ok(b)
            }
            Err(e) => Err(format!("the container bridge is not available: {e}")),
        };
        let pool = match &bridge {
            Ok(b) => bridge::pool::Pool::new(b.subnet()).ok(),
            Err(_) => None,
        };
        let images = paths.images();
        // Opening recovers from a power cut; a collection keeping every ref then drops blobs and
        // layers that an interrupted import or pull left without a ref.
        let store = tokio::task::spawn_blocking(move || {
            let store = Store::open(&images)?;
            if let Ok(report) = images::collect(&store, &BTreeSet::new(), &BTreeSet::new()) {
                if let Some(line) = images::summary(&report) {
                    println!("baton: {line}");
                }
            }
            Ok::<_, baton_oci::StoreError>(store)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map(Arc::new)
        .map_err(|e| format!("the image store is not available: {e}"));
        if let Ok(s) = &store {
            let r = s.recovery();
            if !r.removed_temp.is_empty() || !r.dropped_refs.is_empty() {
                notes.push(format!(
                    "image store recovered: {} temporary files removed, {} broken refs dropped",
                    r.removed_temp.len(),
                    r.dropped_refs.len()
                ));
            }
        }
        (
            Deps {
                runtime,
                bridge,
                pool,
                store,
            },
            notes,
        )
    }
}

/// Identifies one incarnation of one instance; stale results carry an old `uid`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    service: String,
    slot: u32,
    uid: u64,
}

enum Internal {
    Launched(Key, Result<Launched, String>),
    Cleaned(Key, ExitStatus),
    Health(Key, bool),
}

struct Launched {
    image: Arc<PreparedImage>,
    netns: Option<PathBuf>,
}

struct Slot {
    uid: u64,
    generation: u64,
    machine: Instance,
    address: Option<Ipv4Addr>,
    netns: Option<PathBuf>,
    started_ms: Option<u64>,
    launched_at: Option<Instant>,
    start_ms: Option<u64>,
    health: Option<JoinHandle<()>>,
    /// Replace with a fresh instance when this one is released (restart, rollout).
    replace: bool,
    timer: Option<Instant>,
}

struct Svc {
    spec: Arc<ServiceSpec>,
    generation: u64,
    image: Option<(u64, Arc<PreparedImage>)>,
    log: Arc<ServiceLog>,
    slots: BTreeMap<u32, Slot>,
    published: Option<Published>,
    error: Option<String>,
    removing: bool,
    /// The instances placement gave this board; `None` means 1 to `scale.min`.
    assigned: Option<BTreeSet<u32>>,
}

struct Driver {
    paths: Paths,
    deps: Deps,
    services: BTreeMap<String, Svc>,
    shared: Arc<Shared>,
    internal: mpsc::UnboundedSender<Internal>,
    next_uid: u64,
    stopping: Vec<oneshot::Sender<()>>,
    /// Images (by spec text) that a service stopped using; collected once no rollout is running.
    released: BTreeSet<String>,
    /// Set by `StopAll`: services stop because the board does, so their images stay.
    shutting_down: bool,
    /// Placement's slots per service, also for services not applied yet.
    assignments: BTreeMap<String, Option<BTreeSet<u32>>>,
    /// Service names and the isolation rules, when the bridge is up.
    network: Option<Network>,
    /// Services or instances changed since the rules were last rebuilt.
    network_dirty: bool,
    /// The other boards' instances and the mesh to them.
    remote: super::Remote,
}

pub(super) async fn run(
    paths: Paths,
    deps: Deps,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let (internal, mut results) = mpsc::unbounded_channel();
    let mut exits = deps.runtime.as_ref().ok().and_then(Runtime::events);
    let mut d = Driver {
        paths,
        deps,
        services: BTreeMap::new(),
        shared,
        internal,
        next_uid: 1,
        stopping: Vec::new(),
        released: BTreeSet::new(),
        shutting_down: false,
        assignments: BTreeMap::new(),
        network: None,
        network_dirty: true,
        remote: super::Remote::default(),
    };
    if let Ok(bridge) = &d.deps.bridge {
        let (network, note) = Network::start(bridge.subnet(), bridge.gateway()).await;
        if let Some(note) = note {
            eprintln!("baton: services: {note}");
        }
        d.network = Some(network);
        // The first rule set (no services yet): if the kernel refuses it, no instance starts.
        d.update_network();
    }
    loop {
        let next_timer = d.next_timer();
        let sleep = async {
            match next_timer {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let exit = async {
            match exits.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => match command {
                Some(c) => d.command(c),
                None => return,
            },
            Some(result) = results.recv() => d.internal(result),
            event = exit => match event {
                Some(runtime::Event::Exit(exit)) => d.exited(exit),
                Some(runtime::Event::Lost(why)) => {
                    eprintln!("baton: supervisor: the container runtime is gone: {why}");
                    d.deps.runtime = Err(format!("the container runtime stopped: {why}"));
                    exits = None;
                    d.all_lost();
                }
                None => exits = None,
            },
            () = sleep => d.timers(),
        }
        d.finish_stop_all();
        d.collect_images();
        d.update_network();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether an instance takes requests: running, and healthy if the spec has a health check (not
/// known to be unhealthy otherwise).
fn ready(spec: &ServiceSpec, s: &Slot) -> bool {
    s.machine.phase == Phase::Running
        && s.machine.healthy != Some(false)
        && (spec.health.is_none() || s.machine.healthy == Some(true))
}

/// The spec without what only the network rules use (`allow`, `egress`).
fn without_network_rules(spec: &ServiceSpec) -> ServiceSpec {
    let mut s = spec.clone();
    s.allow.clear();
    s.egress = baton_spec::service::Egress::Internet;
    s
}

fn policy(spec: &ServiceSpec) -> Policy {
    Policy {
        restart: spec.restart,
        stop_timeout: spec.stop_timeout,
        health_retries: spec.health.as_ref().map_or(1, |h| h.retries),
        health_start_period: spec
            .health
            .as_ref()
            .map_or(Duration::ZERO, |h| h.start_period),
    }
}

impl Driver {
    fn command(&mut self, command: Command) {
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

    fn apply(&mut self, spec: ServiceSpec) {
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
                eprintln!("baton: {name}: logs stay in memory only: {e}");
            }
            let log = Arc::new(log);
            lock(&self.shared.logs).insert(name.clone(), Arc::clone(&log));
            self.services.insert(
                name.clone(),
                Svc {
                    spec: Arc::new(spec),
                    generation: 1,
                    image: None,
                    log,
                    slots: BTreeMap::new(),
                    published: None,
                    error: None,
                    removing: false,
                    assigned: self.assignments.get(&name).cloned().flatten(),
                },
            );
        }
        self.publish(&name);
        self.settle(&name);
    }

    /// Opens the service's published port if it has one and it is not open yet.
    fn publish(&mut self, name: &str) {
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
            Err(e) => svc.error = Some(format!("cannot publish port {port}: {e}")),
        }
    }

    /// Brings the number and generation of instances in line with the spec, one change at a
    /// time for a rollout, and refreshes the view.
    fn settle(&mut self, name: &str) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let wanted: BTreeSet<u32> = match (&svc.assigned, svc.removing) {
            (_, true) => BTreeSet::new(),
            (Some(slots), false) => slots.clone(),
            (None, false) => (1..=svc.spec.scale.min).collect(),
        };
        let generation = svc.generation;
        // Start missing instances.
        let to_start: Vec<u32> = wanted
            .iter()
            .copied()
            .filter(|slot| !svc.slots.contains_key(slot))
            .collect();
        // Stop surplus ones.
        let surplus: Vec<u32> = svc
            .slots
            .keys()
            .copied()
            .filter(|s| !wanted.contains(s))
            .collect();
        // Roll one outdated instance at a time, once nothing else is changing.
        let busy = svc
            .slots
            .values()
            .any(|s| matches!(s.machine.phase, Phase::Starting | Phase::Stopping));
        let outdated = svc
            .slots
            .iter()
            .find(|(_, s)| s.generation != generation && s.machine.phase != Phase::Stopped)
            .map(|(k, _)| *k);
        for slot in to_start {
            self.new_instance(name, slot);
        }
        for slot in surplus {
            self.feed(name, slot, Event::Stop);
        }
        if let (false, Some(slot)) = (busy, outdated) {
            if let Some(s) = self.slot_mut(name, slot) {
                s.replace = true;
            }
            self.feed(name, slot, Event::Stop);
        }
        self.forget_if_removed(name);
        self.refresh(name);
    }

    fn forget_if_removed(&mut self, name: &str) {
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
            lock(&self.shared.views).remove(name);
            lock(&self.shared.logs).remove(name);
        }
    }

    fn new_instance(&mut self, name: &str, slot: u32) {
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
            },
        );
        self.act(name, slot, actions);
    }

    fn slot_mut(&mut self, name: &str, slot: u32) -> Option<&mut Slot> {
        self.services.get_mut(name)?.slots.get_mut(&slot)
    }

    fn key(&self, name: &str, slot: u32) -> Option<Key> {
        let s = self.services.get(name)?.slots.get(&slot)?;
        Some(Key {
            service: name.to_string(),
            slot,
            uid: s.uid,
        })
    }

    fn current(&self, key: &Key) -> bool {
        self.key(&key.service, key.slot).as_ref() == Some(key)
    }

    /// Feeds one event to an instance's machine and carries out the actions.
    fn feed(&mut self, name: &str, slot: u32, event: Event) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        let p = policy(&svc.spec);
        let Some(s) = svc.slots.get_mut(&slot) else {
            return;
        };
        let actions = s.machine.handle(event, Instant::now(), &p);
        self.act(name, slot, actions);
    }

    fn act(&mut self, name: &str, slot: u32, actions: Vec<Action>) {
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

    fn id(name: &str, slot: u32) -> String {
        format!("{name}-{slot}")
    }

    fn signal(&mut self, name: &str, slot: u32, signal: i32) {
        let Ok(runtime) = self.deps.runtime.as_ref() else {
            return;
        };
        let runtime = runtime.clone();
        let id = Self::id(name, slot);
        tokio::spawn(async move {
            if let Err(e) = runtime.signal(&id, signal).await {
                eprintln!("baton: supervisor: signal {signal} to {id}: {e}");
            }
        });
    }

    /// Releases an instance for good (after its container is gone) and maybe replaces it.
    fn release(&mut self, name: &str, slot: u32) {
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

    /// Starts an instance's container in the background: image, network, container.
    fn launch(&mut self, name: &str, slot: u32) {
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
        let address = match (&self.deps.bridge, self.deps.pool.as_mut()) {
            (Ok(_), Some(pool)) => match pool.allocate() {
                Ok(a) => Some(a),
                Err(e) => {
                    let _ = self
                        .internal
                        .send(Internal::Launched(key, Err(e.to_string())));
                    return;
                }
            },
            _ => None,
        };
        if let (Some(address), Some(network)) = (address, self.network.as_ref()) {
            if let Some(why) = network.failure() {
                if let Some(pool) = self.deps.pool.as_mut() {
                    pool.release(address);
                }
                let _ = self.internal.send(Internal::Launched(
                    key,
                    Err(format!(
                        "not started: this board cannot enforce the services' network isolation ({why})"
                    )),
                ));
                return;
            }
        }
        if let Some(s) = self.slot_mut(name, slot) {
            s.address = address;
            s.launched_at = Some(Instant::now());
        }
        let job = Job {
            id,
            spec,
            image,
            address,
            log,
            paths: self.paths.clone(),
            runtime: self.deps.runtime.clone(),
            bridge: self.deps.bridge.clone(),
            store: self.deps.store.clone(),
            resolv_conf: self.network.as_ref().and_then(Network::resolv_conf),
        };
        let results = self.internal.clone();
        tokio::spawn(async move {
            let result = job.run().await;
            let _ = results.send(Internal::Launched(key, result));
        });
        self.refresh(name);
    }

    fn internal(&mut self, result: Internal) {
        match result {
            Internal::Launched(key, result) => {
                if !self.current(&key) {
                    return;
                }
                let Key { service, slot, .. } = key.clone();
                match result {
                    Ok(launched) => {
                        let generation = self.services.get(&service).map_or(0, |s| s.generation);
                        let health = self.health_task(&key);
                        if let Some(svc) = self.services.get_mut(&service) {
                            svc.image = Some((generation, launched.image));
                        }
                        if let Some(s) = self.slot_mut(&service, slot) {
                            s.netns = launched.netns;
                            s.started_ms = Some(now_ms());
                            s.start_ms =
                                s.launched_at.take().map(|t| t.elapsed().as_millis() as u64);
                            s.health = health;
                        }
                        self.feed(&service, slot, Event::Started);
                    }
                    Err(message) => {
                        eprintln!("baton: {service}-{slot}: start failed: {message}");
                        if let Some(svc) = self.services.get(&service) {
                            svc.log.push(
                                &Self::id(&service, slot),
                                Stream::Stderr,
                                &format!("baton: start failed: {message}"),
                            );
                        }
                        self.free_network(&service, slot);
                        self.feed(&service, slot, Event::StartFailed(message));
                    }
                }
                self.settle(&service);
            }
            Internal::Cleaned(key, status) => {
                if !self.current(&key) {
                    return;
                }
                self.free_network(&key.service, key.slot);
                if let Some(s) = self.slot_mut(&key.service, key.slot) {
                    s.started_ms = None;
                    if let Some(h) = s.health.take() {
                        h.abort();
                    }
                }
                self.feed(&key.service, key.slot, Event::Exited(status));
                self.settle(&key.service);
            }
            Internal::Health(key, ok) => {
                if self.current(&key) {
                    self.feed(&key.service, key.slot, Event::Health(ok));
                    self.settle(&key.service);
                }
            }
        }
    }

    fn health_task(&self, key: &Key) -> Option<JoinHandle<()>> {
        let svc = self.services.get(&key.service)?;
        let check = svc.spec.health.clone()?;
        let address = svc.slots.get(&key.slot)?.address?;
        let port = svc.spec.port;
        let results = self.internal.clone();
        let key = key.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(check.interval).await;
                let ok = health::check(address.into(), port, &check.probe, check.timeout).await;
                if results.send(Internal::Health(key.clone(), ok)).is_err() {
                    return;
                }
            }
        }))
    }

    /// A container ended: remove it, then tell its machine.
    fn exited(&mut self, exit: runtime::Exit) {
        let Some((name, slot)) = exit
            .id
            .rsplit_once('-')
            .and_then(|(n, s)| Some((n.to_string(), s.parse::<u32>().ok()?)))
        else {
            return;
        };
        let Some(key) = self.key(&name, slot) else {
            return;
        };
        let status = ExitStatus {
            code: match exit.status {
                runtime::ExitStatus::Code(c) => Some(c),
                runtime::ExitStatus::Signal(_) => None,
            },
            signal: match exit.status {
                runtime::ExitStatus::Signal(s) => Some(s),
                runtime::ExitStatus::Code(_) => None,
            },
            oom_killed: exit.oom_killed,
        };
        if let Some(svc) = self.services.get(&name) {
            let how = match (status.code, status.signal) {
                (Some(c), _) => format!("exited with code {c}"),
                (_, Some(s)) => format!("was killed by signal {s}"),
                _ => "ended".to_string(),
            };
            let oom = if status.oom_killed {
                " (out of memory)"
            } else {
                ""
            };
            svc.log.push(
                &exit.id,
                Stream::Stderr,
                &format!("baton: {} {how}{oom}", exit.id),
            );
        }
        let runtime = self.deps.runtime.clone();
        let results = self.internal.clone();
        tokio::spawn(async move {
            if let Ok(r) = runtime {
                if let Err(e) = r.remove(&exit.id).await {
                    eprintln!("baton: supervisor: removing container {}: {e}", exit.id);
                }
            }
            let _ = results.send(Internal::Cleaned(key, status));
        });
    }

    /// The runtime is gone: every running instance ended with it.
    fn all_lost(&mut self) {
        let lost = ExitStatus {
            code: None,
            signal: Some(libc::SIGKILL),
            oom_killed: false,
        };
        let keys: Vec<Key> = self
            .services
            .iter()
            .flat_map(|(n, svc)| {
                svc.slots
                    .iter()
                    .filter(|(_, s)| matches!(s.machine.phase, Phase::Running | Phase::Stopping))
                    .map(|(slot, s)| Key {
                        service: n.clone(),
                        slot: *slot,
                        uid: s.uid,
                    })
            })
            .collect();
        for key in keys {
            let _ = self.internal.send(Internal::Cleaned(key, lost));
        }
    }

    fn free_network(&mut self, name: &str, slot: u32) {
        let Some(s) = self.slot_mut(name, slot) else {
            return;
        };
        let address = s.address.take();
        let ns = s.netns.take();
        if let (Some(a), Some(pool)) = (address, self.deps.pool.as_mut()) {
            pool.release(a);
        }
        let bridge = self.deps.bridge.clone();
        tokio::spawn(async move {
            if let (Some(a), Ok(b)) = (address, bridge) {
                let _ = b.detach(a).await;
            }
            if let Some(path) = ns {
                let _ = tokio::task::spawn_blocking(move || netns::remove(&path)).await;
            }
        });
    }

    fn next_timer(&self) -> Option<Instant> {
        self.services
            .values()
            .flat_map(|s| s.slots.values())
            .filter_map(|s| s.timer)
            .min()
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let due: Vec<(String, u32)> = self
            .services
            .iter()
            .flat_map(|(n, svc)| {
                svc.slots
                    .iter()
                    .filter(|(_, s)| s.timer.is_some_and(|t| t <= now))
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

    /// Rebuilds names and rules when services or instances changed.
    fn update_network(&mut self) {
        if !self.network_dirty || self.shutting_down {
            return;
        }
        let Some(network) = self.network.as_mut() else {
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
                            .filter(|(name, _, _)| *name == svc.spec.name)
                            .map(|(_, a, r)| (*a, *r)),
                    )
                    .collect(),
            })
            .collect();
        let error = network.update(&members, &self.remote);
        if let Some(e) = &error {
            eprintln!("baton: services: isolation rules not applied: {e}");
        }
        let vips = network.vips();
        let view = super::NetworkView {
            generation: network.generation(),
            error,
            services: members
                .iter()
                .map(|m| super::NetworkService {
                    name: m.spec.name.clone(),
                    vip: vips.get(&m.spec.name).copied(),
                    port: m.spec.port,
                    allow: m.spec.allow.clone(),
                    egress: format!("{:?}", m.spec.egress).to_lowercase(),
                })
                .collect(),
        };
        *lock(&self.shared.network) = view;
    }

    /// Collects the released images once no instance is starting, stopping or outdated (so no
    /// container still runs from them) and the board is not shutting down.
    fn collect_images(&mut self) {
        if self.released.is_empty() || self.shutting_down {
            return;
        }
        let settled = self.services.values().all(|svc| {
            svc.slots.values().all(|s| {
                s.generation == svc.generation
                    && !matches!(s.machine.phase, Phase::Starting | Phase::Stopping)
            })
        });
        let Ok(store) = self.deps.store.clone() else {
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
        tokio::task::spawn_blocking(move || match images::collect(&store, &released, &in_use) {
            Ok(report) => {
                if let Some(line) = images::summary(&report) {
                    println!("baton: {line}");
                }
            }
            Err(e) => eprintln!("baton: {e}"),
        });
    }

    fn finish_stop_all(&mut self) {
        if !self.stopping.is_empty() && self.services.is_empty() {
            for done in self.stopping.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// Recomputes the service's view and its published backends.
    fn refresh(&mut self, name: &str) {
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
                state: s.machine.phase.into(),
                address: s.address.map(|a| a.to_string()),
                started_at_ms: s.started_ms,
                start_ms: s.start_ms,
                restarts: s.machine.restarts,
                last_exit: s.machine.last_exit.map(Into::into),
                last_error: s.machine.last_error.clone(),
                oom_kills: s.machine.oom_kills,
                healthy: s.machine.healthy,
                ready: ready(s),
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
        } else if instances.iter().all(|i| i.state == InstancePhase::Stopped) {
            ServiceState::Stopped
        } else if instances
            .iter()
            .any(|i| matches!(i.state, InstancePhase::Backoff))
        {
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
            error: svc.error.clone(),
        };
        lock(&self.shared.views).insert(name.to_string(), view);
    }
}

/// Everything one launch needs, moved into its task.
struct Job {
    id: String,
    spec: Arc<ServiceSpec>,
    image: Option<Arc<PreparedImage>>,
    address: Option<Ipv4Addr>,
    log: Arc<ServiceLog>,
    paths: Paths,
    runtime: Result<Runtime, String>,
    bridge: Result<Bridge, String>,
    store: Result<Arc<Store>, String>,
    /// The container's `/etc/resolv.conf`; the board's own when `None`.
    resolv_conf: Option<Vec<u8>>,
}

impl Job {
    async fn run(self) -> Result<Launched, String> {
        let runtime = self.runtime.clone()?;
        let image = match self.image.clone() {
            Some(i) => i,
            None => self.prepare().await?,
        };
        let (netns, address) = match (&self.bridge, self.address) {
            (Ok(bridge), Some(address)) => {
                let dir = self.paths.netns();
                let id = self.id.clone();
                let path = tokio::task::spawn_blocking(move || netns::create(&dir, &id))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let file = std::fs::File::open(&path)
                    .map_err(|e| format!("opening {}: {e}", path.display()))?;
                if let Err(e) = bridge.attach(address, Netns::Fd(file.as_fd())).await {
                    let _ = netns::remove(&path);
                    return Err(format!("connecting to the bridge: {e}"));
                }
                (Some(path), Some(address))
            }
            (Err(why), _) => return Err(why.clone()),
            (Ok(_), None) => return Err("no address for the instance".to_string()),
        };
        let placement = Placement {
            id: &self.id,
            lower_dirs: &image.lower_dirs,
            writable_dir: self.paths.writable(&self.id),
            netns: netns.clone(),
            address,
            volumes_dir: self.paths.volumes(&self.spec.name),
            resolv_conf: self
                .resolv_conf
                .clone()
                .unwrap_or_else(|| std::fs::read("/etc/resolv.conf").unwrap_or_default()),
        };
        let result = async {
            let config = launch::container_config(&self.spec, &image.config, &placement)
                .map_err(|e| e.to_string())?;
            for v in &config.volumes {
                std::fs::create_dir_all(&v.host)
                    .map_err(|e| format!("creating volume {}: {e}", v.host.display()))?;
            }
            let stdout = self.pipe(Stream::Stdout)?;
            let stderr = self.pipe(Stream::Stderr)?;
            runtime
                .run(ContainerRequest {
                    config,
                    stdout,
                    stderr,
                })
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(_) => Ok(Launched { image, netns }),
            Err(e) => {
                if let Some(path) = &netns {
                    let _ = netns::remove(path);
                }
                Err(e)
            }
        }
    }

    async fn prepare(&self) -> Result<Arc<PreparedImage>, String> {
        let store = self.store.clone()?;
        let text = self.spec.image.to_string();
        let config = self.paths.config.clone();
        let name = self.spec.name.clone();
        let registry = match &self.spec.image {
            ImageSource::Registry(reference) => Some(reference.clone()),
            _ => None,
        };
        let registries = Arc::clone(&self.paths.registries);
        let started = Instant::now();
        let service = name.clone();
        tokio::task::spawn_blocking(move || {
            println!("baton: {service}: preparing image {text}");
            match registry {
                Some(reference) => pull(&store, &reference, &text, &registries)?,
                None => {
                    let source =
                        Source::parse(&text, &config).map_err(|e| format!("image {text}: {e}"))?;
                    store.import(&source, &text).map_err(|e| e.to_string())?;
                }
            }
            let prepared = store.prepare(&text).map_err(|e| e.to_string())?;
            println!(
                "baton: {service}: image {text} ready in {} ms",
                started.elapsed().as_millis()
            );
            Ok(Arc::new(prepared))
        })
        .await
        .map_err(|e| format!("{name}: preparing the image: {e}"))?
    }

    /// A pipe whose read end feeds the service log; returns the write end for the container.
    fn pipe(&self, stream: Stream) -> Result<OwnedFd, String> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("creating a pipe: {e}"))?;
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .map_err(|e| format!("watching a pipe: {e}"))?;
        let log = Arc::clone(&self.log);
        let id = self.id.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(receiver).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.push(&id, stream, &line);
            }
        });
        Ok(write)
    }
}

/// Pulls a registry image into the store under the reference text `name`, unless the store
/// already holds it: an image pinned by digest that is stored under that digest, or a tag that
/// was pulled (or baked into the image by `baton image build --image`) before. So a board starts
/// its services without the network, and a tag is only fetched again when the service is
/// removed and its image collected.
fn pull(
    store: &Store,
    reference: &ImageReference,
    name: &str,
    registries: &BTreeMap<String, RegistryOptions>,
) -> Result<(), String> {
    if let Ok(stored) = store.get_ref(name) {
        match &reference.digest {
            Some(digest) if stored.to_string() != *digest => {}
            _ => return Ok(()),
        }
    }
    let request = PullRequest {
        registry: reference.api_host().to_owned(),
        repository: reference.repository.clone(),
        reference: reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".to_owned()),
    };
    let options = registries
        .get(&reference.registry)
        .cloned()
        .unwrap_or_default();
    store
        .pull(&request, name, &options)
        .map(|_| ())
        .map_err(|e| format!("pulling {reference}: {e}"))
}
