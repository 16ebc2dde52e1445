//! The manager: keeps one front door process running for the whole boot and tells it what
//! to serve.
//!
//! PID 1 binds the listening sockets once and keeps them; each process gets copies in its
//! `Hello`. While a process is being replaced the kernel queues new connections in the
//! listeners' backlog instead of refusing them. A process is replaced when its control socket
//! closes or says something it must not, when no `Load` (its heartbeat) came for
//! [`HEARTBEAT`], or on request; after 100 ms, doubling up to 10 s while it keeps failing (a
//! minute of serving resets that). It never gives up.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use baton_frontdoor::control::channel::Channel;
use baton_frontdoor::control::frame;
use baton_frontdoor::control::protocol::{Instance, Listener, ToFrontDoor, ToInit, PROTOCOL};
use baton_frontdoor::control::snapshot;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::certs::{card_fingerprint, Certs};
use super::feed;
use super::process;
use super::{Settings, Shared, State};
use crate::board::console::Console;
use crate::containers::supervisor::routed::Routed;

/// Time a new process has to answer `Hello`.
pub const READY_WITHIN: Duration = Duration::from_secs(10);
/// Longest silence (no `Load`) before a process is taken for hung.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often certificates are looked at (card files changed, issued ones ending).
pub const CERT_CHECK: Duration = Duration::from_secs(30);
/// First and longest wait before a new process.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Serving this long resets the wait.
const STEADY: Duration = Duration::from_secs(60);

/// The bound listening sockets and what they are.
pub struct Listeners {
    /// What each is.
    pub kinds: Vec<Listener>,
    /// The sockets.
    pub fds: Vec<OwnedFd>,
}

/// Keeps the front door running for ever.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    mut routed: watch::Receiver<Routed>,
    mut restart: mpsc::Receiver<()>,
    shared: Arc<Shared>,
    console: Arc<Console>,
) {
    let memory = settings.front_door.memory_bytes;
    let cgroup = match process::cgroup(&settings.root, memory) {
        Ok(dir) => dir,
        Err(e) => {
            shared.note(format!(
                "its cgroup cannot be set up ({e}); it runs in PID 1's"
            ));
            None
        }
    };
    shared.load_idp(&settings);
    let mut certs = Certs::default();
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let ended = serve_once(
            &settings,
            &listeners,
            cgroup.as_deref(),
            &mut routed,
            &mut restart,
            &mut certs,
            &shared,
            &console,
        )
        .await;
        if started.elapsed() >= STEADY {
            backoff = BACKOFF_MIN;
        }
        console.line(format_args!(
            "front door: {ended}; starting it again in {} ms",
            backoff.as_millis()
        ));
        shared.ended(ended);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One process, from start to end; returns why it ended (it is dead or killed by then).
#[allow(clippy::too_many_arguments)]
async fn serve_once(
    settings: &Settings,
    listeners: &Listeners,
    cgroup: Option<&std::path::Path>,
    routed: &mut watch::Receiver<Routed>,
    restart: &mut mpsc::Receiver<()>,
    certs: &mut Certs,
    shared: &Shared,
    console: &Arc<Console>,
) -> String {
    let (ours, theirs) = match frame::pair() {
        Ok(pair) => pair,
        Err(e) => return format!("no control socket: {e}"),
    };
    let child = match process::spawn(&settings.exe, theirs, console) {
        Ok(child) => child,
        Err(e) => return format!("cannot start {}: {e}", settings.exe.display()),
    };
    if let Some(dir) = cgroup {
        if let Err(e) = process::enter(dir, child.pid) {
            shared.note(format!("not in its cgroup: {e}"));
        }
    }
    shared.set_state(State::Starting, Some(child.pid));
    let ended = talk(
        settings, listeners, child.pid, ours, routed, restart, certs, shared,
    )
    .await;
    child.kill();
    ended
}

/// Waits until `at`, or for ever.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Talks to the process `pid` on `ours` until it must end; returns why.
#[allow(clippy::too_many_arguments)]
pub(super) async fn talk(
    settings: &Settings,
    listeners: &Listeners,
    pid: u32,
    ours: OwnedFd,
    routed: &mut watch::Receiver<Routed>,
    restart: &mut mpsc::Receiver<()>,
    certs: &mut Certs,
    shared: &Shared,
) -> String {
    let channel = match Channel::new(ours) {
        Ok(channel) => channel,
        Err(e) => return format!("control socket: {e}"),
    };
    let hello = ToFrontDoor::Hello {
        protocol: PROTOCOL,
        build: env!("CARGO_PKG_VERSION").to_string(),
        listeners: listeners.kinds.clone(),
    };
    let fds: Vec<BorrowedFd<'_>> = listeners.fds.iter().map(AsFd::as_fd).collect();
    if let Err(e) = channel.send(&hello, &fds).await {
        return format!("Hello not sent: {e}");
    }
    match tokio::time::timeout(READY_WITHIN, channel.recv::<ToInit>()).await {
        Ok(Ok((ToInit::Ready { protocol, notes }, _))) if protocol == PROTOCOL => {
            for note in notes {
                shared.note(note);
            }
        }
        Ok(Ok((other, _))) => return format!("it answered Hello with {}", kind(&other)),
        Ok(Err(e)) => return format!("it ended while starting: {e}"),
        Err(_) => return format!("not ready within {READY_WITHIN:?}"),
    }
    shared.set_state(State::Serving, Some(pid));
    let mut feeder = Feeder::default();
    let mut heartbeat = Instant::now();
    let mut cert_check = tokio::time::interval(CERT_CHECK);
    let mut routed_open = true;
    let mut dirty = true;
    loop {
        if dirty {
            // A copy: a borrow of the watch held across the sends would block the supervisor.
            let current = routed.borrow_and_update().clone();
            shared.retain_totals(&current);
            // A process that stops reading must not stop this loop: the sends have the
            // heartbeat's time, and a restart request cuts them short.
            let pushed = tokio::select! {
                pushed = tokio::time::timeout(
                    HEARTBEAT,
                    feeder.push(settings, &current, certs, &channel, shared),
                ) => pushed,
                Some(()) = restart.recv() => return "restarted on request".into(),
            };
            match pushed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return e,
                Err(_) => return format!("it stopped reading its control socket ({HEARTBEAT:?})"),
            }
            dirty = false;
        }
        tokio::select! {
            changed = routed.changed(), if routed_open => {
                // The supervisor gone (shutdown): keep serving what was last said.
                routed_open = changed.is_ok();
                dirty = true;
            }
            message = channel.recv::<ToInit>() => match message {
                Ok((ToInit::Load { instances, held }, _)) => {
                    heartbeat = Instant::now();
                    shared.load(&instances, &held);
                }
                Ok((ToInit::Requests { services }, _)) => shared.tallies.report(services),
                Ok((ToInit::Wake { service }, _)) => shared.wake(&service),
                Ok((ToInit::Access { lines, dropped }, _)) => shared.access(lines, dropped),
                Ok((ToInit::Fetched { kind, url, body }, _)) => {
                    shared.fetched(settings, kind, url, body);
                }
                Ok((ToInit::Ready { .. }, _)) => return "it said Ready twice".into(),
                Err(e) => return e.to_string(),
            },
            () = until(Some(heartbeat + HEARTBEAT)) => {
                return format!("no heartbeat for {HEARTBEAT:?} (hung)");
            }
            _ = cert_check.tick() => {
                feeder.certs_due = true;
                dirty = true;
            }
            Some(()) = restart.recv() => return "restarted on request".into(),
        }
    }
}

fn kind(message: &ToInit) -> &'static str {
    match message {
        ToInit::Ready { .. } => "Ready of another protocol",
        ToInit::Load { .. } => "Load",
        ToInit::Requests { .. } => "Requests",
        ToInit::Wake { .. } => "Wake",
        ToInit::Access { .. } => "Access",
        ToInit::Fetched { .. } => "Fetched",
    }
}

/// What was last sent to the process, to send only what changed.
#[derive(Default)]
struct Feeder {
    generation: u64,
    /// The snapshot sent, as JSON (certificates included).
    config: Option<Vec<u8>>,
    instances: BTreeMap<String, Vec<Instance>>,
    /// The card's certificate files when last read.
    card: Vec<(String, u64, i64)>,
    /// Read the certificates again before the next push.
    certs_due: bool,
    built_certs: Option<Vec<baton_frontdoor::config::Cert>>,
    /// The hosts they were built for.
    cert_hosts: std::collections::BTreeSet<String>,
}

impl Feeder {
    /// Sends a new snapshot if the configuration changed, then the instance lists that
    /// changed. An error ends the process.
    async fn push(
        &mut self,
        settings: &Settings,
        routed: &Routed,
        certs: &mut Certs,
        channel: &Channel,
        shared: &Shared,
    ) -> Result<(), String> {
        let hosts = feed::hosts(routed);
        let card = card_fingerprint(&settings.card, &hosts);
        if self.built_certs.is_none()
            || self.certs_due
            || card != self.card
            || hosts != self.cert_hosts
        {
            let built = certs.build(
                &hosts,
                &settings.card,
                settings.ca.as_ref(),
                &settings.board,
                time::OffsetDateTime::now_utc(),
            );
            shared.set_certs(built.sources, built.notes);
            self.built_certs = Some(built.certs);
            self.card = card;
            self.cert_hosts = hosts;
            self.certs_due = false;
        }
        let certs = self.built_certs.clone().unwrap_or_default();
        let (mut oidc, oidc_note) = feed::oidc(&settings.front_door, &settings.card);
        let idp_notes = match &mut oidc {
            Some(oidc) => shared.complete_oidc(oidc, settings),
            None => Vec::new(),
        };
        let (mut snapshot, mut notes) =
            feed::snapshot(&settings.front_door, routed, certs, oidc, &settings.board);
        snapshot.login = settings
            .session_key
            .and_then(|key| super::session::login(&settings.front_door, &key, &snapshot.routes));
        notes.extend(oidc_note);
        notes.extend(idp_notes);
        let (mtls, mtls_note) = super::identity::client_ca(&settings.front_door, &settings.card);
        snapshot.assertion = settings.assertion.clone();
        snapshot.mtls = mtls;
        notes.extend(mtls_note);
        shared.set_route_notes(notes);
        // The configuration without the instance lists decides whether a snapshot is due;
        // lists that change alone go as `Instances`.
        let mut config = snapshot.clone();
        config.instances.clear();
        let key = serde_json::to_vec(&config).map_err(|e| format!("snapshot: {e}"))?;
        if self.config.as_ref() != Some(&key) {
            let bytes = serde_json::to_vec(&snapshot).map_err(|e| format!("snapshot: {e}"))?;
            let memfd = snapshot::write(&bytes).map_err(|e| format!("snapshot: {e}"))?;
            self.generation += 1;
            let message = ToFrontDoor::Snapshot {
                generation: self.generation,
            };
            channel
                .send(&message, &[memfd.as_fd()])
                .await
                .map_err(|e| format!("Snapshot not sent: {e}"))?;
            self.config = Some(key);
            // The snapshot carried the lists as they are.
            self.instances = snapshot.instances;
        }
        for (service, list) in feed::instances(routed, &settings.board) {
            if self.instances.get(&service) == Some(&list) {
                continue;
            }
            let message = ToFrontDoor::Instances {
                generation: self.generation,
                service: service.clone(),
                instances: list.clone(),
            };
            channel
                .send(&message, &[])
                .await
                .map_err(|e| format!("Instances not sent: {e}"))?;
            self.instances.insert(service, list);
        }
        Ok(())
    }
}
