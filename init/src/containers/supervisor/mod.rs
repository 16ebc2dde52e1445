//! The supervisor: keeps every service's instances running as their specs say.
//!
//! One task owns all state. It takes commands (apply a spec, remove a service, restart one, stop
//! everything) from the [`Supervisor`] handle, exit events from the container runtime, results
//! of the work it started (launching an instance, cleaning one up, a health check) and its own
//! timers, feeds them to each instance's state machine ([`instance`]) and carries out the actions
//! that come back. The handle reads a snapshot of the state ([`ServiceView`]) and the services'
//! logs without waiting for the task. By concern:
//!
//! - `toolkit`: what the supervisor drives (runtime, bridge, image store, rules, probes), behind
//!   small traits, and starting it;
//! - `driver`: the task's loop, which waits for the next input and hands it on;
//! - `state`: the services and instances the task owns;
//! - `reconcile`: the decisions: which instances each service should have, rollouts, restarts;
//! - `events`: what happened: launches finished, containers ended, health checks;
//! - `effects`: carrying the decisions out: signals, launches, network rules, image collection;
//! - `launcher`: one instance's launch (image, network namespace, container);
//! - `output`, `logs`, `log_writer`: a container's output, cut into bounded lines, rate-limited
//!   and kept in memory and on disk;
//! - `image_files`: files read from an image's layers (its `/etc/passwd`), confined to them;
//! - `views`: what the API shows;
//! - `denials`: seccomp refusals read from the kernel's log, for the instances' logs.

pub mod denials;
mod disk;
mod driver;
mod effects;
mod events;
mod freezing;
pub mod health;
mod id_shift;
pub mod ids;
mod image_files;
mod images;
pub mod instance;
pub mod launch;
mod launcher;
mod log_writer;
pub mod logs;
pub mod output;
mod probing;
mod raised;
mod reconcile;
pub mod routed;
mod state;
#[cfg(test)]
mod tests;
mod toolkit;
mod views;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use baton_spec::service::ServiceSpec;
use tokio::sync::{mpsc, oneshot};

use instance::{ExitStatus, Phase};
use logs::ServiceLog;

/// The views the supervisor gives the API are the API's types: one service and its instances
/// ([`ServiceView`], [`InstanceView`]) and the services' network ([`NetworkView`]).
pub use baton_api::{InstanceView, NetworkService, NetworkView, ServiceView};

use crate::board::console::Console;
use crate::svcnet::network::HostFiles;
pub use crate::svcnet::network::Remote;

/// Where the supervisor keeps things.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The mounted config partition (image archives are relative to it).
    pub config: PathBuf,
    /// The mounted data partition, if any (image store, volumes, logs, writable layers).
    pub data: Option<PathBuf>,
    /// Run-time state that does not survive a reboot (`/run/baton`).
    pub run: PathBuf,
    /// How to reach registries, by host as in image references (`cluster.toml`'s `[registries]`).
    pub registries: Arc<BTreeMap<String, baton_oci::RegistryOptions>>,
    /// The board's container subnet (see [`crate::svcnet::subnet`]).
    pub subnet: crate::svcnet::nft::Ipv4Net,
    /// The host's files the services' network reads (resolvers, interfaces).
    pub host: HostFiles,
    /// Whether the data partition enforces project quotas (`resources.disk`), or why not.
    pub disk_quotas: Result<(), String>,
    /// The services' id ranges (and disk projects).
    pub ids: Arc<ids::UserIds>,
    /// TCP ports the board itself serves on the LAN besides the API (the front door's), opened
    /// in the LAN filter with the services' published ports.
    pub board_tcp_ports: Vec<u16>,
}

impl Paths {
    /// The board's layout under `root` (`/` on the board).
    pub fn board(root: &Path, data_mounted: bool) -> Paths {
        Paths {
            config: root.join("config"),
            data: data_mounted.then(|| root.join("data")),
            run: root.join("run/baton"),
            registries: Arc::default(),
            subnet: crate::svcnet::subnet::STANDALONE,
            host: HostFiles::under(root),
            disk_quotas: Err("not probed".to_string()),
            ids: Arc::new(ids::UserIds::new(
                if data_mounted {
                    root.join("data")
                } else {
                    root.join("run/baton")
                }
                .join("baton/ids.json"),
            )),
            board_tcp_ports: Vec::new(),
        }
    }

    fn persistent(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(|| self.run.clone())
    }

    /// The image store.
    pub fn images(&self) -> PathBuf {
        self.persistent().join("images")
    }

    /// Logs.
    pub fn logs(&self) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.join("logs"))
    }

    /// Named volumes of `service`.
    pub fn volumes(&self, service: &str) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.join("volumes").join(service))
    }

    /// Writable layers of running instances (wiped per run).
    pub fn writable(&self, id: &str) -> PathBuf {
        self.persistent().join("containers").join(id)
    }

    /// Pinned network namespaces.
    pub fn netns(&self) -> PathBuf {
        self.run.join("netns")
    }
}

/// What the handle reads without waiting for the driver: the views, the logs and the network,
/// as the driver last wrote them.
#[derive(Debug)]
struct Snapshot {
    views: Mutex<BTreeMap<String, ServiceView>>,
    logs: Mutex<BTreeMap<String, Arc<ServiceLog>>>,
    network: Mutex<NetworkView>,
    routed: tokio::sync::watch::Sender<routed::Routed>,
    /// The specs applied and not removed, as handed in.
    specs: Mutex<BTreeMap<String, ServiceSpec>>,
    /// Holds calls to services at zero (when the bridge and its rules came up).
    activator: Option<crate::svcnet::activator::Activator>,
    /// The services the activator asks to wake, until taken ([`Supervisor::take_wakes`]).
    wakes: Mutex<Option<mpsc::Receiver<String>>>,
    /// The board's events: instances, specs.
    bus: Arc<crate::events::Bus>,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            views: Mutex::default(),
            logs: Mutex::default(),
            network: Mutex::default(),
            routed: tokio::sync::watch::Sender::new(routed::Routed::default()),
            specs: Mutex::default(),
            activator: None,
            wakes: Mutex::default(),
            bus: Arc::default(),
        }
    }
}

impl From<Phase> for baton_api::InstancePhase {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Starting => Self::Starting,
            Phase::Running => Self::Running,
            Phase::Stopping => Self::Stopping,
            Phase::Backoff => Self::Backoff,
            Phase::CrashLoop => Self::CrashLoop,
            Phase::Stopped => Self::Stopped,
        }
    }
}

impl From<ExitStatus> for baton_api::ExitStatus {
    fn from(exit: ExitStatus) -> Self {
        Self {
            code: exit.code,
            signal: exit.signal,
            oom_killed: exit.oom_killed,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Command {
    Apply(Box<ServiceSpec>),
    Assign(String, Option<BTreeSet<u32>>),
    Remove(String),
    Restart(String),
    StopAll(oneshot::Sender<()>),
    Remote(Box<Remote>),
    Freeze(String, BTreeSet<u32>),
    /// Thaw the frozen instances of a service now (a request waits).
    Thaw(String),
}

/// The handle the boot sequence and the API use.
#[derive(Debug, Clone)]
pub struct Supervisor {
    commands: mpsc::UnboundedSender<Command>,
    snapshot: Arc<Snapshot>,
    ids: Arc<ids::UserIds>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Apply(s) => write!(f, "Apply({})", s.name),
            Command::Assign(n, slots) => write!(f, "Assign({n}, {slots:?})"),
            Command::Remove(n) => write!(f, "Remove({n})"),
            Command::Restart(n) => write!(f, "Restart({n})"),
            Command::StopAll(_) => write!(f, "StopAll"),
            Command::Remote(r) => write!(f, "Remote({} instances)", r.instances.len()),
            Command::Freeze(n, slots) => write!(f, "Freeze({n}, {slots:?})"),
            Command::Thaw(n) => write!(f, "Thaw({n})"),
        }
    }
}

impl Supervisor {
    /// Starts the supervisor on the current tokio runtime: the container runtime helper, the
    /// board bridge with its NAT rules and the image store. If one of them cannot start, the
    /// supervisor still runs and every instance fails to start with that reason (visible in the
    /// API), so the board stays manageable.
    /// What it has to say goes to `console`; what happens to instances and specs, to `bus`.
    pub async fn start(
        paths: Paths,
        console: Arc<Console>,
        bus: Arc<crate::events::Bus>,
    ) -> (Supervisor, Vec<String>) {
        let (commands, rx) = mpsc::unbounded_channel();
        let (kit, mut notes) = toolkit::Toolkit::start(&paths, &console).await;
        let (activator, wakes) = start_activator(&paths, &kit, &mut notes);
        let snapshot = Arc::new(Snapshot {
            activator,
            wakes: Mutex::new(wakes),
            bus,
            ..Snapshot::default()
        });
        let ids = Arc::clone(&paths.ids);
        tokio::spawn(driver::run(paths, kit, rx, Arc::clone(&snapshot), console));
        (
            Supervisor {
                commands,
                snapshot,
                ids,
            },
            notes,
        )
    }

    /// Whether services can run in user namespaces of their own, or why not; `None` until the
    /// supervisor has found out.
    pub fn user_namespaces(&self) -> Option<Result<(), String>> {
        self.ids.probed()
    }

    /// Runs `spec`: starts a new service, or replaces a changed one's instances one by one.
    pub fn apply(&self, spec: ServiceSpec) {
        let old = lock(&self.snapshot.specs).insert(spec.name.clone(), spec.clone());
        if old.as_ref() != Some(&spec) {
            self.snapshot
                .bus
                .raise(baton_api::events::What::SpecApplied {
                    service: spec.name.clone(),
                });
        }
        self.set_holds();
        let _ = self.commands.send(Command::Apply(Box::new(spec)));
    }

    /// Hands the activator every service's hold bounds.
    fn set_holds(&self) {
        let Some(activator) = &self.snapshot.activator else {
            return;
        };
        let holds = lock(&self.snapshot.specs)
            .values()
            .map(|s| {
                let hold = crate::svcnet::activator::Hold {
                    queue: s.scale.hold_queue,
                    timeout: s.scale.hold_timeout,
                };
                (s.name.clone(), hold)
            })
            .collect();
        activator.set_holds(holds);
    }

    /// The services the activator asks to wake (calls to them wait); `None` after the first
    /// call, or without an activator.
    pub fn take_wakes(&self) -> Option<mpsc::Receiver<String>> {
        lock(&self.snapshot.wakes).take()
    }

    /// Connections the activator holds waiting for an instance, per service (those it passed
    /// on are counted as any call to the service's virtual IP is, while they carry traffic).
    pub fn activator_held(&self) -> BTreeMap<String, u32> {
        let Some(activator) = &self.snapshot.activator else {
            return BTreeMap::new();
        };
        activator
            .counts()
            .into_iter()
            .filter(|(_, c)| c.held > 0)
            .map(|(service, c)| (service, c.held))
            .collect()
    }

    /// The specs applied and not removed since.
    pub fn specs(&self) -> Vec<ServiceSpec> {
        lock(&self.snapshot.specs).values().cloned().collect()
    }

    /// Runs only instances `slots` (1-based) of service `name` on this board, whatever its
    /// `scale.min`; `None` runs instances 1 to `scale.min` (a board on its own). Placement
    /// decides the slots; the assignment outlives changes of the spec.
    pub fn assign(&self, name: &str, slots: Option<BTreeSet<u32>>) {
        let _ = self.commands.send(Command::Assign(name.to_string(), slots));
    }

    /// Freezes instances `slots` of service `name` that are running and ready, and thaws
    /// every other frozen instance of it (an empty set thaws all). A frozen instance keeps its
    /// memory and its slot, shows as [`baton_api::InstancePhase::Frozen`], is not ready (no
    /// requests reach it) and is not health-checked; thawed, it is ready at once and its checks
    /// start over, fast. A failed freeze or thaw is reported on the console; a failed freeze
    /// leaves the instance running, a failed thaw restarts it. Stopping a frozen instance
    /// thaws it first.
    pub fn set_frozen(&self, name: &str, slots: BTreeSet<u32>) {
        let _ = self.commands.send(Command::Freeze(name.to_string(), slots));
    }

    /// Thaws the frozen instances of `name` on this board at once, without waiting for the
    /// round that decides so: a request or a call waits for it here. The round's next
    /// [`Supervisor::set_frozen`] follows the count the wait asked for.
    pub fn thaw(&self, name: &str) {
        let _ = self.commands.send(Command::Thaw(name.to_string()));
    }

    /// Tells the network rules about the other boards' instances and the mesh to them.
    pub fn set_remote(&self, remote: Remote) {
        let _ = self.commands.send(Command::Remote(Box::new(remote)));
    }

    /// Stops and forgets service `name`.
    pub fn remove(&self, name: &str) {
        if lock(&self.snapshot.specs).remove(name).is_some() {
            self.snapshot
                .bus
                .raise(baton_api::events::What::SpecDeleted {
                    service: name.to_string(),
                });
        }
        self.set_holds();
        let _ = self.commands.send(Command::Remove(name.to_string()));
    }

    /// Restarts every instance of `name`; `false` if there is no such service.
    pub fn restart(&self, name: &str) -> bool {
        if !lock(&self.snapshot.views).contains_key(name) {
            return false;
        }
        self.commands
            .send(Command::Restart(name.to_string()))
            .is_ok()
    }

    /// Stops every instance (SIGTERM, then SIGKILL after each service's stop timeout) and
    /// returns when all are gone.
    pub async fn stop_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::StopAll(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The routed services and their instances, as they change (for the front door).
    pub fn routed(&self) -> tokio::sync::watch::Receiver<routed::Routed> {
        self.snapshot.routed.subscribe()
    }

    /// Names, virtual IPs and the rule set's generation.
    pub fn network(&self) -> NetworkView {
        lock(&self.snapshot.network).clone()
    }

    /// Every service, by name.
    pub fn services(&self) -> Vec<ServiceView> {
        let views: Vec<ServiceView> = lock(&self.snapshot.views).values().cloned().collect();
        views.into_iter().map(|v| self.with_log_counts(v)).collect()
    }

    /// One service.
    pub fn service(&self, name: &str) -> Option<ServiceView> {
        let view = lock(&self.snapshot.views).get(name).cloned();
        view.map(|v| self.with_log_counts(v))
    }

    /// The view with its log's current count of dropped lines (which changes between refreshes).
    fn with_log_counts(&self, mut view: ServiceView) -> ServiceView {
        if let Some(log) = lock(&self.snapshot.logs).get(&view.name) {
            view.dropped_log_lines = log.dropped();
        }
        view
    }

    /// The log of service `name`.
    pub fn log(&self, name: &str) -> Option<Arc<ServiceLog>> {
        lock(&self.snapshot.logs).get(name).cloned()
    }
}

/// Wakes the activator may queue before the scaler takes them (it sends at most one per service
/// a second, and drops what does not fit).
const WAKES_QUEUE: usize = 256;

/// Starts the activator on the bridge's address, once the network rules run (calls to a service
/// at zero are redirected to it); `None` and a note without them.
fn start_activator(
    paths: &Paths,
    kit: &toolkit::Toolkit,
    notes: &mut Vec<String>,
) -> (
    Option<crate::svcnet::activator::Activator>,
    Option<mpsc::Receiver<String>>,
) {
    let Some(network) = &kit.network else {
        return (None, None);
    };
    let (tx, rx) = mpsc::channel(WAKES_QUEUE);
    let gateway = crate::svcnet::bridge::pool::gateway_of(paths.subnet);
    match crate::svcnet::activator::Activator::start(gateway, network.applied(), tx) {
        Ok(activator) => (Some(activator), Some(rx)),
        Err(e) => {
            notes.push(format!(
                "the activator cannot listen on {gateway}:{}: calls to services at zero are refused ({e})",
                crate::svcnet::policy::ACTIVATOR_PORT
            ));
            (None, None)
        }
    }
}
