//! What the supervisor drives, and starting it: the container runtime, the board bridge (with
//! each instance's network namespace), the image store, the isolation rule set and the health
//! probes. Each sits behind a small trait that the real thing implements, so the decisions above
//! are tested against fakes that record calls and inject failures.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_oci::{PreparedImage, Store, StoreError};
use baton_spec::service::{ImageSource, Probe};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::images::{self, CollectError, ImageError, StoreImages};
use super::{health, Paths};
use crate::board::console::Console;
use crate::containers::runtime::{self, ContainerRequest, Runtime};
use crate::svcnet::bridge::{self, Bridge, Netns, Pool};
use crate::svcnet::network::Network;
use crate::svcnet::policy::{self, Policy};

/// The container runtime as the supervisor uses it ([`Runtime`] on a board).
pub(super) trait Containers: Send + Sync {
    /// Creates and starts a container.
    fn run(&self, request: ContainerRequest) -> BoxFuture<'_, Result<(), runtime::Error>>;
    /// Sends `signal` to container `id`'s init.
    fn signal<'a>(&'a self, id: &'a str, signal: i32) -> BoxFuture<'a, Result<(), runtime::Error>>;
    /// Removes container `id` after it ended.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), runtime::Error>>;
    /// Freezes (`frozen`) or thaws container `id`; a freeze returns once it is done.
    fn freeze<'a>(&'a self, id: &'a str, frozen: bool)
        -> BoxFuture<'a, Result<(), runtime::Error>>;
}

/// The board bridge as instances use it: a network namespace per instance, joined to the
/// bridge at its address ([`Bridge`] on a board).
pub(super) trait Links: Send + Sync {
    /// Creates instance `id`'s namespace under `dir`, connects it at `address` and returns its
    /// path.
    fn connect<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        address: Ipv4Addr,
    ) -> BoxFuture<'a, Result<PathBuf, LinkError>>;
    /// Takes `address` off the bridge and removes the namespace at `netns`, either if given;
    /// failures are left behind (the next start of the same instance replaces them).
    fn disconnect(&self, address: Option<Ipv4Addr>, netns: Option<PathBuf>) -> BoxFuture<'_, ()>;
}

/// The image store as the supervisor uses it ([`StoreImages`] on a board). Both calls block.
pub(super) trait Images: Send + Sync {
    /// Brings image `source` into the store unless it is there, and unpacks it.
    fn prepare(&self, source: &ImageSource) -> Result<PreparedImage, ImageError>;
    /// Drops the `released` images that `in_use` does not name; a line for the console about
    /// what that freed, if anything.
    fn collect(
        &self,
        released: &BTreeSet<String>,
        in_use: &BTreeSet<String>,
    ) -> Result<Option<String>, CollectError>;
}

/// Puts a rule set of the services' network in force ([`policy::apply`] on a board).
pub(super) trait Rules: Send + Sync {
    /// Replaces the rules in force with `policy`'s.
    fn apply(&self, policy: &Policy) -> Result<(), policy::Error>;
}

/// Health checks ([`health::check`] on a board).
pub(super) trait Probes: Send + Sync {
    /// Whether the instance at `ip` passes `probe` within `timeout`.
    fn check<'a>(
        &'a self,
        ip: IpAddr,
        port: Option<u16>,
        probe: &'a Probe,
        timeout: Duration,
    ) -> BoxFuture<'a, bool>;
}

/// Why a part of the toolkit is missing; every start fails with it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// The runtime helper did not start.
    #[error("the container runtime did not start: {0}")]
    RuntimeStart(Arc<runtime::Error>),
    /// The runtime helper went away (the reason it gave).
    #[error("the container runtime stopped: {0}")]
    RuntimeLost(String),
    /// The board bridge could not be set up.
    #[error("the container bridge is not available: {0}")]
    Bridge(Arc<bridge::Error>),
    /// The image store could not be opened.
    #[error("the image store is not available: {0}")]
    Store(Arc<StoreError>),
    /// Opening the image store did not finish.
    #[error("the image store is not available: {0}")]
    StoreTask(Arc<tokio::task::JoinError>),
}

/// Connecting an instance to the bridge failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The namespace could not be created.
    #[error(transparent)]
    Netns(#[from] crate::svcnet::netns::Error),
    /// Creating the namespace did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// The namespace, once created, could not be opened.
    #[error("opening {}: {source}", path.display())]
    Open {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bridge refused the veth pair.
    #[error("connecting to the bridge: {0}")]
    Attach(#[source] bridge::Error),
}

/// What instances need from the board; any of it may be missing, with the reason.
pub(super) struct Toolkit {
    /// The container runtime.
    pub(super) runtime: Result<Arc<dyn Containers>, Unavailable>,
    /// The runtime's exit events, until it is lost.
    pub(super) events: Option<mpsc::UnboundedReceiver<runtime::Event>>,
    /// Seccomp refusals from the kernel's log: (instance id, line).
    pub(super) denials: Option<mpsc::Receiver<(String, String)>>,
    /// The board bridge.
    pub(super) bridge: Result<Arc<dyn Links>, Unavailable>,
    /// The bridge's free addresses.
    pub(super) pool: Option<Pool>,
    /// The image store.
    pub(super) store: Result<Arc<dyn Images>, Unavailable>,
    /// Service names and the rules' state, when the bridge is up.
    pub(super) network: Option<Network>,
    /// Puts the rules in force.
    pub(super) rules: Arc<dyn Rules>,
    /// Checks instances' health.
    pub(super) probes: Arc<dyn Probes>,
}

/// Seccomp refusals waiting for the supervisor; more are dropped (and counted by the reader).
const DENIALS_QUEUE: usize = 64;

impl Toolkit {
    /// Starts the runtime helper, the bridge with its NAT rules and the service names, and opens
    /// the image store; notes for the console about what each found.
    pub(super) async fn start(paths: &Paths, console: &Arc<Console>) -> (Toolkit, Vec<String>) {
        let mut notes = Vec::new();
        let runtime = Runtime::start(runtime::RuntimePaths::default(), Arc::clone(console))
            .await
            .map_err(|e| Unavailable::RuntimeStart(Arc::new(e)));
        if let Ok(r) = &runtime {
            notes.extend(r.startup_notes().iter().cloned());
        }
        let events = runtime.as_ref().ok().and_then(Runtime::events);
        let (to, denials) = mpsc::channel(DENIALS_QUEUE);
        let denials = match super::denials::spawn("/dev/kmsg".into(), "/proc".into(), to) {
            Ok(_) => Some(denials),
            Err(e) => {
                notes.push(format!(
                    "seccomp refusals will not reach the services' logs (/dev/kmsg: {e})"
                ));
                None
            }
        };
        let bridge = start_bridge(paths, &mut notes).await;
        let pool = match &bridge {
            Ok(b) => Pool::new(b.subnet()).ok(),
            Err(_) => None,
        };
        let network = match &bridge {
            Ok(b) => {
                let (mut network, note) =
                    Network::start(b.subnet(), b.gateway(), paths.host.clone()).await;
                notes.extend(note);
                network.open_board_tcp(&paths.board_tcp_ports);
                Some(network)
            }
            Err(_) => None,
        };
        let store = open_store(paths, console, &mut notes).await;
        let (images, ids) = (paths.images(), Arc::clone(&paths.ids));
        match tokio::task::spawn_blocking(move || ids.probe(&images)).await {
            Ok(Ok(())) => notes.push("services run in user namespaces of their own".into()),
            Ok(Err(why)) => notes.push(format!(
                "services cannot run in user namespaces ({why}): only those with host_ids start"
            )),
            Err(e) => notes.push(format!("probing user namespaces: {e}")),
        }
        let kit = Toolkit {
            runtime: runtime.map(|r| Arc::new(r) as Arc<dyn Containers>),
            events,
            denials,
            bridge: bridge.map(|b| Arc::new(b) as Arc<dyn Links>),
            pool,
            store: store.map(|s| Arc::new(s) as Arc<dyn Images>),
            network,
            rules: Arc::new(KernelRules),
            probes: Arc::new(NetworkProbes),
        };
        (kit, notes)
    }
}

/// Sets up the bridge, removes links a previous run left behind and installs the NAT rules.
async fn start_bridge(paths: &Paths, notes: &mut Vec<String>) -> Result<Bridge, Unavailable> {
    let config = bridge::Config {
        subnet: paths.subnet,
        ..bridge::Config::default()
    };
    let b = Bridge::ensure(config.clone())
        .await
        .map_err(|e| Unavailable::Bridge(Arc::new(e)))?;
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

/// Opens the image store. Opening recovers from a power cut; a collection keeping every ref then
/// drops blobs and layers that an interrupted import or pull left without a ref.
async fn open_store(
    paths: &Paths,
    console: &Console,
    notes: &mut Vec<String>,
) -> Result<StoreImages, Unavailable> {
    let dir = paths.images();
    let (store, collected) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&dir)?;
        let collected = images::collect(&store, &BTreeSet::new(), &BTreeSet::new())
            .ok()
            .and_then(|report| images::summary(&report));
        Ok::<_, StoreError>((store, collected))
    })
    .await
    .map_err(|e| Unavailable::StoreTask(Arc::new(e)))?
    .map_err(|e| Unavailable::Store(Arc::new(e)))?;
    if let Some(line) = collected {
        console.line(line);
    }
    let r = store.recovery();
    if !r.removed_temp.is_empty() || !r.dropped_refs.is_empty() {
        notes.push(format!(
            "image store recovered: {} temporary files removed, {} broken refs dropped",
            r.removed_temp.len(),
            r.dropped_refs.len()
        ));
    }
    Ok(StoreImages::new(Arc::new(store), paths))
}

impl Containers for Runtime {
    fn run(&self, request: ContainerRequest) -> BoxFuture<'_, Result<(), runtime::Error>> {
        Box::pin(async move { Runtime::run(self, request).await.map(|_| ()) })
    }

    fn signal<'a>(&'a self, id: &'a str, signal: i32) -> BoxFuture<'a, Result<(), runtime::Error>> {
        Box::pin(Runtime::signal(self, id, signal))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), runtime::Error>> {
        Box::pin(Runtime::remove(self, id))
    }

    fn freeze<'a>(
        &'a self,
        id: &'a str,
        frozen: bool,
    ) -> BoxFuture<'a, Result<(), runtime::Error>> {
        Box::pin(Runtime::freeze(self, id, frozen))
    }
}

impl Links for Bridge {
    fn connect<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        address: Ipv4Addr,
    ) -> BoxFuture<'a, Result<PathBuf, LinkError>> {
        Box::pin(async move {
            let (dir, id) = (dir.to_path_buf(), id.to_string());
            let path = tokio::task::spawn_blocking(move || crate::svcnet::netns::create(&dir, &id))
                .await??;
            let file = std::fs::File::open(&path).map_err(|source| LinkError::Open {
                path: path.clone(),
                source,
            })?;
            if let Err(e) = self.attach(address, Netns::Fd(file.as_fd())).await {
                let _ = crate::svcnet::netns::remove(&path);
                return Err(LinkError::Attach(e));
            }
            Ok(path)
        })
    }

    fn disconnect(&self, address: Option<Ipv4Addr>, netns: Option<PathBuf>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(a) = address {
                let _ = self.detach(a).await;
            }
            if let Some(path) = netns {
                let _ =
                    tokio::task::spawn_blocking(move || crate::svcnet::netns::remove(&path)).await;
            }
        })
    }
}

/// The kernel's nftables.
struct KernelRules;

impl Rules for KernelRules {
    fn apply(&self, policy: &Policy) -> Result<(), policy::Error> {
        policy::apply(policy)
    }
}

/// Probes over the bridge.
struct NetworkProbes;

impl Probes for NetworkProbes {
    fn check<'a>(
        &'a self,
        ip: IpAddr,
        port: Option<u16>,
        probe: &'a Probe,
        timeout: Duration,
    ) -> BoxFuture<'a, bool> {
        Box::pin(health::check(ip, port, probe, timeout))
    }
}
