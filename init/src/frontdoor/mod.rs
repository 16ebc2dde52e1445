//! The front door's manager in PID 1 (the front door itself is the crate `baton-frontdoor`,
//! run as a process of its own: docs/design/front-door.md).
//!
//! PID 1 binds the `[front_door]` ports on every address, keeps the sockets for the whole boot
//! and hands copies to the process ([`run`]), which it starts, feeds and restarts
//! ([`process`]). It tells the process the routes and instances ([`feed`], from the
//! supervisor's routed services) and the certificates ([`certs`]: the card's own, or issued by
//! the cluster CA, whose key never leaves PID 1), the identity assertion key and the client
//! CA ([`identity`]), and keeps what the process reports: its load
//! per instance, held requests, access lines (into the services' logs) and its state, for the
//! API ([`Shared`]).

pub mod certs;
pub mod feed;
pub mod identity;
pub mod idp_cache;
pub mod process;
pub mod run;
pub mod session;
pub mod tallies;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use baton_cluster::tls::ca::Ca;
use baton_frontdoor::control::protocol::{AccessLine, Held, InstanceLoad, Listener};
use baton_spec::FrontDoor;
use tokio::sync::{mpsc, watch};

use crate::board::console::Console;
use crate::containers::supervisor::logs::Stream;
use crate::containers::supervisor::output::Piece;
use crate::containers::supervisor::routed::Routed;
use crate::containers::supervisor::Supervisor;

/// Notes kept for the API.
const MAX_NOTES: usize = 32;
/// Instances whose totals are kept.
const MAX_INSTANCES: usize = 4096;

/// What the manager needs.
pub struct Settings {
    /// `[front_door]` of `cluster.toml`.
    pub front_door: FrontDoor,
    /// The binary run as the front door (the init itself).
    pub exe: PathBuf,
    /// The board's `/` (for the cgroup tree and `/proc`).
    pub root: PathBuf,
    /// The config partition (for `certs/`).
    pub card: PathBuf,
    /// This board's name.
    pub board: String,
    /// The cluster CA, when the card has one.
    pub ca: Option<Ca>,
    /// The front door's directory on the data partition (the identity provider's cached
    /// documents: [`idp_cache`]).
    pub data: PathBuf,
    /// The key of `X-Baton-Identity`, derived from the cluster key ([`identity`]); `None` on a
    /// board outside a cluster.
    pub assertion: Option<baton_frontdoor::config::model::AssertionKey>,
    /// The key of the sign-in cookies, derived from the cluster key ([`session`]); `None`
    /// when it could not be made (login routes then answer 503).
    pub session_key: Option<[u8; 32]>,
    /// Where the load per service and the wakes go (scaling with the load).
    pub scaler: Option<Arc<crate::scaling::Scaler>>,
}

/// Where the process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Both ports are 0.
    Off,
    /// Started, not ready yet.
    Starting,
    /// Serving.
    Serving,
    /// Ended; a new one starts after a wait.
    Restarting,
}

/// Requests to one instance since the process started serving it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// In flight at the last report.
    pub inflight: u64,
    /// Answered.
    pub completed: u64,
    /// Failed (no answer from the instance).
    pub failed: u64,
}

#[derive(Debug)]
struct Inner {
    state: State,
    pid: Option<u32>,
    restarts: u64,
    last_exit: Option<String>,
    notes: VecDeque<String>,
    route_notes: Vec<String>,
    cert_notes: Vec<String>,
    cert_sources: BTreeMap<String, certs::Source>,
    totals: BTreeMap<String, Totals>,
    held: Vec<Held>,
    wakes: u64,
    access_dropped: u64,
    /// The service of each instance routed to (by the ids the process reports).
    service_of: BTreeMap<String, String>,
    /// When the last load report came (its period is the time since the one before).
    last_load: Option<std::time::Instant>,
}

/// What the manager shares with the API.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<Inner>,
    /// Where access lines go (the services' logs); `None` in tests.
    supervisor: Option<Supervisor>,
    console: Arc<Console>,
    /// The ports in use (0: off).
    pub ports: (u16, u16),
    /// The identity provider's documents as last fetched.
    idp: Mutex<idp_cache::Cache>,
    /// Where the load and the wakes go.
    scaler: Option<Arc<crate::scaling::Scaler>>,
    /// Requests by service, status and time taken.
    pub tallies: tallies::Tallies,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, note: String) {
        self.console.line(format_args!("front door: {note}"));
        let mut inner = self.lock();
        if inner.notes.len() >= MAX_NOTES {
            inner.notes.pop_front();
        }
        inner.notes.push_back(note);
    }

    fn set_state(&self, state: State, pid: Option<u32>) {
        let mut inner = self.lock();
        inner.state = state;
        inner.pid = pid;
    }

    fn ended(&self, why: String) {
        self.tallies.ended();
        let mut inner = self.lock();
        inner.state = State::Restarting;
        inner.pid = None;
        inner.restarts += 1;
        inner.last_exit = Some(why);
        inner.held.clear();
        for t in inner.totals.values_mut() {
            t.inflight = 0;
        }
    }

    fn set_certs(&self, sources: BTreeMap<String, certs::Source>, notes: Vec<String>) {
        for note in notes.iter().filter(|n| !self.lock().cert_notes.contains(n)) {
            self.console.line(format_args!("front door: {note}"));
        }
        let mut inner = self.lock();
        inner.cert_sources = sources;
        inner.cert_notes = notes;
    }

    fn set_route_notes(&self, notes: Vec<String>) {
        for note in notes
            .iter()
            .filter(|n| !self.lock().route_notes.contains(n))
        {
            self.console.line(format_args!("front door: {note}"));
        }
        self.lock().route_notes = notes;
    }

    fn load(&self, instances: &[InstanceLoad], held: &[Held]) {
        let mut inner = self.lock();
        let now = std::time::Instant::now();
        // The child reports every second; the first report, or one after a pause, counts as
        // one second (what it covers is at most that since the child's own last report).
        let period_ms = inner
            .last_load
            .map_or(1000, |t| now.duration_since(t).as_millis() as u64)
            .clamp(1, 1000);
        inner.last_load = Some(now);
        let mut per_service: BTreeMap<String, u64> = BTreeMap::new();
        for load in instances {
            if let Some(service) = inner.service_of.get(&load.id) {
                let sum = per_service.entry(service.clone()).or_default();
                *sum = sum.saturating_add(load.inflight_ms);
            }
        }
        let held_now: BTreeMap<String, u32> = held
            .iter()
            .map(|h| {
                (
                    h.service.clone(),
                    u32::try_from(h.count).unwrap_or(u32::MAX),
                )
            })
            .collect();
        // A request waiting for an instance is load as much as one in flight to it.
        for (service, count) in &held_now {
            let sum = per_service.entry(service.clone()).or_default();
            *sum = sum.saturating_add(u64::from(*count).saturating_mul(period_ms));
        }
        if let Some(scaler) = &self.scaler {
            scaler.record(crate::scaling::now_ms(), period_ms, &per_service);
        }
        for load in instances {
            if !inner.totals.contains_key(&load.id) && inner.totals.len() >= MAX_INSTANCES {
                continue;
            }
            let t = inner.totals.entry(load.id.clone()).or_default();
            t.inflight = load.inflight_now;
            t.completed = t.completed.saturating_add(load.completed);
            t.failed = t.failed.saturating_add(load.failed);
        }
        inner.held = held.to_vec();
        drop(inner);
        if let Some(scaler) = &self.scaler {
            scaler.held(crate::scaling::Source::FrontDoor, held_now);
        }
    }

    /// Forgets the totals of instances no longer routed to (ids change with every run).
    fn retain_totals(&self, routed: &Routed) {
        let current: std::collections::BTreeSet<&str> = routed
            .services
            .values()
            .flat_map(|s| s.instances.iter().map(|i| i.id.as_str()))
            .collect();
        let mut inner = self.lock();
        inner.totals.retain(|id, _| current.contains(id.as_str()));
        inner.service_of = routed
            .services
            .iter()
            .flat_map(|(name, s)| {
                s.instances
                    .iter()
                    .map(move |i| (i.id.clone(), name.clone()))
            })
            .collect();
    }

    fn wake(&self, service: &str) {
        self.lock().wakes += 1;
        // A frozen instance here thaws at once; the scaler's decision follows.
        if let Some(supervisor) = &self.supervisor {
            supervisor.thaw(service);
        }
        if let Some(scaler) = &self.scaler {
            scaler.wake(crate::scaling::Source::FrontDoor, service);
        }
    }

    fn access(&self, lines: Vec<AccessLine>, dropped: u64) {
        self.lock().access_dropped += dropped;
        let Some(supervisor) = &self.supervisor else {
            return;
        };
        for line in lines {
            let Some(log) = supervisor.log(&line.route) else {
                continue;
            };
            let text = format!(
                "{} {} {} {} {} {}ms {} id={}",
                line.method,
                line.host,
                line.path,
                line.status,
                line.instance.as_deref().unwrap_or("-"),
                line.ms,
                line.identity.as_deref().unwrap_or("-"),
                line.request_id
            );
            // Through the service's rate limit, as its own output: a flood of requests cannot
            // flush the service's own lines or wear the card.
            let text: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            log.offer(
                "front-door",
                Stream::Access,
                Piece {
                    text,
                    continued: false,
                },
            );
        }
    }

    /// How long the oldest request held for `service` has waited, in milliseconds.
    pub fn oldest_held_ms(&self, service: &str) -> Option<u64> {
        self.lock()
            .held
            .iter()
            .find(|h| h.service == service && h.count > 0)
            .map(|h| h.oldest_ms)
    }

    /// The totals of each instance the process reported on.
    pub fn totals(&self) -> BTreeMap<String, Totals> {
        self.lock().totals.clone()
    }

    /// The process's state for `/v1/status`.
    pub fn status(&self) -> baton_api::FrontDoorStatus {
        let inner = self.lock();
        baton_api::FrontDoorStatus {
            state: serde_json::to_value(inner.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            pid: inner.pid,
            restarts: inner.restarts,
            last_exit: inner.last_exit.clone(),
            http: self.ports.0,
            https: self.ports.1,
            notes: inner
                .notes
                .iter()
                .chain(&inner.route_notes)
                .chain(&inner.cert_notes)
                .cloned()
                .collect(),
        }
    }

    /// Where each host's certificate comes from.
    pub fn cert_sources(&self) -> BTreeMap<String, certs::Source> {
        self.lock().cert_sources.clone()
    }
}

/// The handle the API holds.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The shared state.
    pub shared: Arc<Shared>,
    restart: mpsc::Sender<()>,
}

impl Handle {
    /// Kills the process (it is started again at once).
    pub fn restart(&self) {
        let _ = self.restart.try_send(());
    }
}

/// Binds the listeners and starts the manager; what could not be bound is said on the console
/// and in the status (that port stays closed).
pub fn spawn(settings: Settings, supervisor: Supervisor, console: Arc<Console>) -> Handle {
    let (restart_tx, restart_rx) = mpsc::channel(1);
    let mut kinds = Vec::new();
    let mut fds = Vec::new();
    let mut notes = Vec::new();
    let ports = (settings.front_door.http, settings.front_door.https);
    for (kind, port) in [(Listener::Http, ports.0), (Listener::Https, ports.1)] {
        if port == 0 {
            continue;
        }
        match bind(port) {
            Ok(fd) => {
                kinds.push(kind);
                fds.push(fd);
            }
            Err(e) => notes.push(format!("port {port} cannot be bound: {e}")),
        }
    }
    let shared = Arc::new(
        Shared::new(
            if kinds.is_empty() {
                State::Off
            } else {
                State::Starting
            },
            Some(supervisor.clone()),
            Arc::clone(&console),
            ports,
        )
        .with_scaler(settings.scaler.clone()),
    );
    for note in notes {
        shared.note(note);
    }
    if !kinds.is_empty() {
        let routed: watch::Receiver<Routed> = supervisor.routed();
        let listeners = run::Listeners { kinds, fds };
        tokio::spawn(run::run(
            settings,
            listeners,
            routed,
            restart_rx,
            Arc::clone(&shared),
            console,
        ));
    }
    Handle {
        shared,
        restart: restart_tx,
    }
}

impl Shared {
    /// A record in `state`.
    pub fn new(
        state: State,
        supervisor: Option<Supervisor>,
        console: Arc<Console>,
        ports: (u16, u16),
    ) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                state,
                pid: None,
                restarts: 0,
                last_exit: None,
                notes: VecDeque::new(),
                route_notes: Vec::new(),
                cert_notes: Vec::new(),
                cert_sources: BTreeMap::new(),
                totals: BTreeMap::new(),
                held: Vec::new(),
                wakes: 0,
                access_dropped: 0,
                service_of: BTreeMap::new(),
                last_load: None,
            }),
            supervisor,
            console,
            ports,
            idp: Mutex::new(idp_cache::Cache::default()),
            scaler: None,
            tallies: Default::default(),
        }
    }

    /// The same, handing the load and the wakes to `scaler`.
    pub fn with_scaler(self, scaler: Option<Arc<crate::scaling::Scaler>>) -> Shared {
        Shared { scaler, ..self }
    }

    fn idp(&self) -> MutexGuard<'_, idp_cache::Cache> {
        self.idp.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the identity provider's cached documents from `settings.data` (at the manager's
    /// start: once a boot).
    fn load_idp(&self, settings: &Settings) {
        let Some(oidc) = &settings.front_door.oidc else {
            return;
        };
        let expect = idp_cache::Expect {
            issuer: &oidc.issuer,
            jwks_url: oidc.jwks_url.as_deref(),
        };
        let (cache, notes) = idp_cache::Cache::load(&settings.data, &expect);
        *self.idp() = cache;
        for note in notes {
            self.note(note);
        }
    }

    /// Keeps a document the process fetched (checked, and written to the data partition).
    fn fetched(
        &self,
        settings: &Settings,
        kind: baton_frontdoor::control::protocol::Fetched,
        url: String,
        body: String,
    ) {
        let Some(oidc) = &settings.front_door.oidc else {
            return self.note(format!(
                "a fetched {kind:?} from {url:?} ignored: no [front_door.oidc]"
            ));
        };
        let expect = idp_cache::Expect {
            issuer: &oidc.issuer,
            jwks_url: oidc.jwks_url.as_deref(),
        };
        let taken = self
            .idp()
            .take(&settings.data, &expect, kind, url.clone(), body);
        match taken {
            Err(e) => self.note(format!(
                "the fetched {kind:?} from {url:?} is not kept: {e}"
            )),
            // The write syncs the card: off this thread, which serves the rest of PID 1.
            Ok(Some((path, bytes))) => {
                let console = Arc::clone(&self.console);
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = idp_cache::write(&path, &bytes) {
                        console.line(format_args!(
                            "front door: the fetched {kind:?} from {url:?} is not kept: {e}"
                        ));
                    }
                });
            }
            Ok(None) => {}
        }
    }

    /// The provider settings with the cached documents and the card's `ca`; notes on what
    /// could not be read.
    fn complete_oidc(
        &self,
        oidc: &mut baton_frontdoor::config::model::OidcSettings,
        settings: &Settings,
    ) -> Vec<String> {
        match &settings.front_door.oidc {
            Some(spec) => self.idp().complete(oidc, spec, &settings.card),
            None => Vec::new(),
        }
    }
}

/// A listening TCP socket on every IPv4 address, with a long backlog (connections made while
/// the process restarts wait there).
fn bind(port: u16) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd as _;
    let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
    let fd = OwnedFd::from(listener);
    // Listening again only raises the backlog (the kernel caps it at net.core.somaxconn). Not
    // through nix's Backlog, which refuses values above the libc's SOMAXCONN (128 on musl).
    // SAFETY: listen on a socket descriptor we own; no memory is passed.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// The listeners' backlog: connections made while the process restarts wait there.
const BACKLOG: i32 = 1024;

#[cfg(test)]
mod scaling_tests;
#[cfg(test)]
mod tests;
