//! The board as a member of its cluster: discovery, membership, the cluster-wide specs, placement,
//! and the catalog of what runs where.
//!
//! Every couple of seconds, and whenever the membership or the specs change, a *round* runs:
//! 1. the `services/` directory of the config partition is read, and what changed there since the
//!    last round becomes new spec records ([`local`]);
//! 2. records are merged into the cluster's desired state ([`baton_cluster::desired`]), the card
//!    is brought in line with the result, and both are saved on the data partition;
//! 3. peers whose spec digest (in the gossip) differs are asked for their records over the sealed
//!    sync exchange ([`baton_cluster::sync`]), which sends ours along; a request is answered only
//!    while fresh ([`answer`]); the boards seen are registered ([`known`]), and a tombstone goes
//!    once past its time and confirmed by every known board ([`tombstones`], [`forget`]);
//! 4. every board computes the same placement ([`baton_cluster::placement`]) from the gossiped
//!    members, their capacity and labels, and the instances each one runs; this board's supervisor
//!    is told which instances are its own;
//! 5. this board's values are published ([`baton_cluster::gossip::BoardValues`]): API address,
//!    capacity, labels, spec digest, the instances it runs and its end of the mesh.

mod answer;
mod cmdline;
mod deletion;
mod fabric;
mod fabric_round;
mod forget;
mod generation;
#[cfg(test)]
mod hostile_tests;
mod identity;
pub mod known;
pub mod local;
mod news;
pub mod peer_read;
mod refused;
mod round;
mod scaling_round;
#[cfg(test)]
mod sync_http_tests;
mod sync_round;
mod tenure;
mod tombstones;
mod view;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_cluster::desired::{Clock, Conflict, Desired};
use baton_cluster::discovery::{Advert, Discovery, Interfaces, PeerEvent};
use baton_cluster::gossip::{self, BoardValues, GossipConfig, GossipHandle, Timing};
use baton_cluster::placement::Assignment;
use baton_cluster::sync::SyncKey;
use tokio::sync::Notify;

use crate::board::cgroups;
use crate::board::console::Console;
use crate::containers::supervisor::Supervisor;

pub use cmdline::interface_from_cmdline;
pub use forget::NotForgotten;
pub use generation::next_generation;

/// UDP port of the membership gossip.
pub const GOSSIP_PORT: u16 = 7946;

/// How often a round runs when nothing happens.
const ROUND_PERIOD: Duration = Duration::from_secs(2);

/// How long a starting board waits for its peers before it places services, so that boards
/// booting together do not each start every instance and then hand them over. A board that was
/// alone when it last ran starts at once.
const HOLD: Duration = Duration::from_secs(6);

/// What the node needs from the boot.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[cluster] name`.
    pub cluster: String,
    /// `[cluster] key`.
    pub key: String,
    /// This board's host name.
    pub board: String,
    /// `[board] labels`.
    pub labels: BTreeMap<String, String>,
    /// `[cluster] interface`, else the kernel's `baton.cluster_interface=` (see
    /// [`interface_from_cmdline`]), or `None` for the first wired interface with an address.
    pub interface: Option<String>,
    /// Where the cluster's changes are raised as events (members, moves).
    pub bus: Arc<crate::events::Bus>,
    /// The card's spec files with their copy on the data partition, through which the card is
    /// written.
    pub card: Arc<crate::board::card::CardStore>,
    /// Where the cluster state is saved (`/data/cluster`), if the data partition is mounted.
    pub state_dir: Option<PathBuf>,
    /// Grows with every boot (a boot counter on the data partition, see [`next_generation`]).
    pub generation: u64,
    /// Where that counter is kept (`/data/baton`), if the data partition is mounted: it is
    /// raised there when the gossip renews this board's identity.
    pub counter_dir: Option<PathBuf>,
    /// `[front_door]`: the card's specs are also checked against it (see
    /// [`baton_spec::FrontDoor::check_service`]).
    pub front_door: baton_spec::FrontDoor,
    /// API port.
    pub api_port: u16,
    /// How to reach other boards' APIs over TLS (trusting the cluster CA); `None` on a card
    /// without a CA, whose API and whose peers' speak plain HTTP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// This board's container subnet.
    pub subnet: crate::svcnet::nft::Ipv4Net,
    /// Where the board's restart is asked for (when it must move to another subnet).
    pub power: tokio::sync::mpsc::Sender<crate::board::sys::Action>,
    /// Where the member reports what an operator should see.
    pub console: Arc<Console>,
    /// The board's side of scaling: its load table (published) and the counts decided.
    pub scaler: Arc<crate::scaling::Scaler>,
}

/// Mutable state of the node, behind one lock that is never held across an await.
#[derive(Debug, Default)]
pub(crate) struct NodeState {
    pub desired: Desired,
    pub clock: Clock,
    pub book: local::Book,
    /// Local changes that lost to another board's newer version.
    pub conflicts: BTreeMap<String, Conflict>,
    /// The latest placement.
    pub assignment: Assignment,
    /// The peers and whether they were alive, at the last round (see [`news`]).
    pub members_seen: news::Seen,
    /// Errors in specs that came from the cluster, by service.
    pub spec_errors: BTreeMap<String, String>,
    /// The specs last handed to the supervisor, by service.
    pub applied: BTreeMap<String, baton_spec::ServiceSpec>,
    /// When each peer was last asked for its records.
    pub synced: BTreeMap<String, Instant>,
    /// The spec errors of the card last reported (so they are printed once, not every round).
    pub local_errors: Option<Vec<String>>,
    /// Until then, while no peer has shown up, nothing is placed (see [`HOLD`]).
    pub hold_until: Option<Instant>,
    /// Alive peers at the last round, as saved on the data partition.
    pub peers_saved: Option<usize>,
    /// The mesh peers last configured.
    pub mesh_boards: Option<Vec<fabric::Board>>,
    /// The subnet this board moves to (at its restart), once it found its own taken.
    pub moving_to: Option<crate::svcnet::nft::Ipv4Net>,
    /// The last error publishing this board's values, said once.
    pub publish_error: Option<String>,
    /// When this run first saw each board (the tenure rule for boards without a key binding).
    pub first_seen: tenure::FirstSeen,
    /// The last problem with the mesh or the subnet, printed once.
    pub mesh_note: Option<String>,
    /// Why each peer's values are refused (another build), printed once.
    pub refused: BTreeMap<String, String>,
    /// Records refused so far (bad names, ...), from peers, the saved state or the card.
    pub records_refused: u64,
    /// The refusals already printed (see [`refused::report`]).
    pub refusal_notes: std::collections::BTreeSet<String>,
    /// The gossip receive errors already reported.
    pub receive_errors_seen: u64,
    /// The names refused for want of room in the bindings already reported.
    pub bindings_full_seen: u64,
    /// The boards known to be in the cluster (saved on the data partition).
    pub known: known::Known,
    /// Which known boards confirmed each tombstone (saved on the data partition).
    pub confirmations: tombstones::Confirmations,
    /// The sync requests answered lately (their nonces), to refuse replays.
    pub freshness: baton_cluster::sync::fresh::Freshness,
    /// Each peer's clock minus this board's, learnt from its refusals (see
    /// [`baton_cluster::sync::SyncRefusal`]), in ms.
    pub clock_offsets: BTreeMap<String, i64>,
    /// Sync requests refused as not fresh, since the start.
    pub sync_refused: u64,
    /// The tombstones held past their time and the boards they wait for, as last printed.
    pub tombstones_note: Option<String>,
    /// Boards not registered because the registry is full, as last printed.
    pub registry_full_note: Option<String>,
}

/// What [`Node::answer_sync`] has for a peer.
#[derive(Debug)]
pub enum SyncAnswer {
    /// The sealed answer.
    Sealed(Vec<u8>),
    /// The request does not open with the cluster key (nothing is revealed).
    Refused,
    /// The request opened but is not fresh: the sealed [`baton_cluster::sync::SyncRefusal`].
    Stale(Vec<u8>),
    /// The request opened but no answer could be sealed (reported on the console too).
    Failed(String),
}

/// A running cluster member.
pub struct Node {
    settings: Settings,
    gossip: GossipHandle,
    sync_key: SyncKey,
    address: Ipv4Addr,
    inner: Mutex<NodeState>,
    /// Held while the records are written to the data partition, so that the round and an API
    /// deletion save one after the other, each what is in force when its turn comes.
    saving: Mutex<()>,
    poke: Notify,
    discovery: Mutex<Option<Discovery>>,
    supervisor: Supervisor,
    /// What the board offers to services (see [`capacity`]), measured once at start.
    capacity: baton_api::Capacity,
    /// The WireGuard link to the other boards, if it came up.
    mesh: tokio::sync::Mutex<Option<crate::svcnet::mesh::Mesh>>,
    /// The fingerprint of this board's own key.
    key_print: String,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("board", &self.settings.board)
            .field("address", &self.address)
            .finish()
    }
}

/// Why the node did not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gossip endpoint did not start.
    #[error("cluster: {0}")]
    Gossip(#[from] gossip::GossipError),
    /// The cluster key is unusable.
    #[error("cluster: {0}")]
    Key(#[from] baton_cluster::sync::SyncError),
    /// No board key could be made (the console says why).
    #[error("cluster: this board has no key to sign its state with")]
    NoBoardKey,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The digest of the desired state as the gossip carries it (its first 16 hex digits).
pub(crate) fn specs_digest(desired: &Desired) -> String {
    desired.digest()[..16].to_string()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The IPv4 address of `interface`, or of the first wired interface that has one (link-local
/// only when nothing better exists).
pub fn interface_address(interface: Option<&str>) -> Option<(String, Ipv4Addr)> {
    let mut found: Vec<(String, Ipv4Addr)> = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().ok()? {
        let Some(addr) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        let ip = addr.ip();
        if ip.is_loopback()
            || ifa.interface_name.starts_with("baton")
            || ifa.interface_name.starts_with("bv")
        {
            continue;
        }
        match interface {
            Some(name) if ifa.interface_name != name => continue,
            _ => found.push((ifa.interface_name.clone(), ip)),
        }
    }
    found.sort_by_key(|(name, ip)| (ip.is_link_local(), name.clone()));
    found.into_iter().next()
}

/// This board's capacity for services: every CPU, and twice the memory the system does not keep
/// for itself ([`cgroups::reserve`]). Placement adds up the instances' memory *limits*
/// (`memory.max`), which services rarely reach all at once, so limits may add up to twice what
/// is free; an instance that does use its whole limit is still held by it, and all of them
/// together by the containers' parent cgroup, which leaves the reserve to the system.
pub fn capacity() -> (u64, u64) {
    const OVERCOMMIT: u64 = 2;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| cgroups::mem_total(&m))
        .map_or(0, |total| {
            total.saturating_sub(cgroups::reserve(total)) * OVERCOMMIT
        });
    (cpus * 1000, memory)
}

/// Saves the gossip's name-to-key bindings on the data partition whenever they change (off the
/// runtime thread: the write syncs the disk).
async fn save_bindings(node: Arc<Node>) {
    let Some(dir) = node.settings.state_dir.clone() else {
        return;
    };
    let mut changes = node.gossip.watch();
    let mut saved = node.gossip.bindings();
    while changes.changed().await.is_ok() {
        let now = node.gossip.bindings();
        if now == saved {
            continue;
        }
        let (into, copy) = (dir.clone(), now.clone());
        let result =
            tokio::task::spawn_blocking(move || identity::save_bindings(&into, &copy)).await;
        match result {
            Ok(Ok(())) => saved = now,
            Ok(Err(e)) => node.settings.console.line(format_args!(
                "cluster: saving the board key bindings in {}: {e}",
                dir.display()
            )),
            Err(_) => {}
        }
    }
}

/// Loads or creates the mesh key (on the data partition, else in `/run`) and brings the mesh
/// link up.
async fn start_mesh(
    settings: &Settings,
) -> Result<(crate::svcnet::mesh::Mesh, crate::svcnet::mesh::PublicKey), crate::svcnet::mesh::Error>
{
    let dir = settings
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/run/baton"));
    let keypair = crate::svcnet::mesh::Keypair::load_or_create(&dir.join("mesh.key"))?;
    // The bridge's address: the source of the board's own packets into the mesh.
    let mesh = crate::svcnet::mesh::Mesh::up(
        &keypair,
        crate::svcnet::mesh::PORT,
        crate::svcnet::bridge::pool::gateway_of(settings.subnet),
    )
    .await?;
    Ok((mesh, keypair.public()))
}

impl Node {
    /// Waits for the cluster interface to have an address, then starts gossip and mDNS and the
    /// rounds. Runs until the board stops; reports through `say`.
    pub async fn start(
        settings: Settings,
        supervisor: Supervisor,
        state: Arc<crate::board::status::BoardStatus>,
    ) -> Result<Arc<Node>, Error> {
        let sync_key = SyncKey::derive(&settings.key)?;
        let (interface, address) = loop {
            if let Some(found) = interface_address(settings.interface.as_deref()) {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let (cpu, memory) = capacity();
        let mut values = BoardValues {
            api: Some(SocketAddrV4::new(address, settings.api_port)),
            capacity: Some(baton_api::Capacity {
                cpu_millis: cpu,
                memory_bytes: memory,
            }),
            labels: settings.labels.clone(),
            ..BoardValues::default()
        };
        let mesh = match start_mesh(&settings).await {
            Ok((mesh, key)) => {
                values.net = Some(fabric::endpoint(
                    settings.subnet,
                    &key,
                    crate::svcnet::mesh::PORT,
                ));
                settings.console.line(format_args!(
                    "cluster: containers on {}, mesh {} on UDP {} (key {key})",
                    settings.subnet,
                    crate::svcnet::mesh::LINK,
                    crate::svcnet::mesh::PORT
                ));
                Some(mesh)
            }
            Err(e) => {
                settings.console.line(format_args!(
                    "cluster: the mesh to other boards is down ({e}); services here cannot call instances on other boards"
                ));
                None
            }
        };
        let state_dir = settings.state_dir.as_deref();
        let board_key =
            identity::board_key(state_dir, now_ms(), &settings.console).ok_or(Error::NoBoardKey)?;
        let key_print = baton_cluster::board_key::fingerprint(&board_key.public());
        let bindings = identity::load_bindings(state_dir, &settings.console);
        let gossip = gossip::start(GossipConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, GOSSIP_PORT)),
            advertise: Some(SocketAddr::from((address, GOSSIP_PORT))),
            name: settings.board.clone(),
            generation: settings.generation,
            seeds: Vec::new(),
            cluster_key: settings.key.clone(),
            values,
            timing: Timing::lan(),
            board_key,
            bindings,
        })
        .await?;
        settings.console.line(format_args!(
            "cluster {}: board {} (key {key_print}) on {interface} ({address}), gossip on UDP {GOSSIP_PORT}",
            settings.cluster, settings.board
        ));
        let mut inner = NodeState::default();
        let mut alone_last_time = false;
        if let Some(dir) = &settings.state_dir {
            let files = local::Files::under(dir);
            inner.book = files.load_book();
            let records = files.load_records();
            let changes = inner.desired.merge(records, &mut inner.clock, now_ms());
            let source = format!("the saved state {}", files.desired.display());
            refused::report(&settings.console, &mut inner, &source, &changes);
            inner.peers_saved = files.load_peers();
            let (known, problem) = known::Known::load(&known::Known::file(dir));
            let (confirmations, problem2) =
                tombstones::Confirmations::load(&tombstones::Confirmations::file(dir));
            for problem in problem.iter().chain(&problem2) {
                settings.console.line(format_args!(
                    "cluster: {problem}; starting over (tombstones wait for confirmations anew)"
                ));
            }
            inner.known = known;
            inner.confirmations = confirmations;
            alone_last_time = inner.peers_saved == Some(0);
        }
        if !alone_last_time {
            inner.hold_until = Some(Instant::now() + HOLD);
        }
        let node = Arc::new(Node {
            settings,
            gossip,
            sync_key,
            address,
            inner: Mutex::new(inner),
            saving: Mutex::new(()),
            poke: Notify::new(),
            discovery: Mutex::new(None),
            supervisor,
            capacity: baton_api::Capacity {
                cpu_millis: cpu,
                memory_bytes: memory,
            },
            mesh: tokio::sync::Mutex::new(mesh),
            key_print,
        });
        node.start_discovery(&interface);
        tokio::spawn(save_bindings(Arc::clone(&node)));
        tokio::spawn(generation::keep_renewals(Arc::clone(&node)));
        tokio::spawn(round::run(Arc::clone(&node), state));
        Ok(node)
    }

    /// Advertises the board over mDNS and feeds the peers found to the gossip as seeds.
    fn start_discovery(self: &Arc<Self>, interface: &str) {
        let started =
            Discovery::start(&Interfaces::Named(vec![interface.to_string()])).and_then(|mut d| {
                d.advertise(&Advert {
                    cluster: self.settings.cluster.clone(),
                    board: self.settings.board.clone(),
                    api_port: self.settings.api_port,
                    gossip_port: GOSSIP_PORT,
                })?;
                let browser = d.browse()?;
                Ok((d, browser))
            });
        let (discovery, browser) = match started {
            Ok(pair) => pair,
            Err(e) => {
                self.settings.console.line(format_args!(
                    "cluster: {e}; peers are found only when they find this board"
                ));
                return;
            }
        };
        *self.discovery.lock().unwrap_or_else(|p| p.into_inner()) = Some(discovery);
        let node = Arc::downgrade(self);
        let cluster = self.settings.cluster.clone();
        let me = self.settings.board.clone();
        // The browser blocks; it gets a thread of its own (mdns-sd runs one anyway).
        let spawned = std::thread::Builder::new()
            .name("mdns-browse".into())
            .spawn(move || loop {
                let Some(node) = node.upgrade() else {
                    return;
                };
                if let Some(PeerEvent::Found(peer)) = browser.next(Duration::from_secs(5)) {
                    if peer.cluster != cluster || peer.board == me {
                        continue;
                    }
                    let port = peer.gossip_port.unwrap_or(GOSSIP_PORT);
                    for ip in &peer.addresses {
                        let _ = node.gossip.add_seed(SocketAddr::from((*ip, port)));
                    }
                }
            });
        if let Err(e) = spawned {
            self.settings
                .console
                .line(format_args!("cluster: cannot start the mDNS browser: {e}"));
        }
    }

    /// Runs a round soon (a spec changed through the API).
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// The board's name.
    pub fn board(&self) -> &str {
        &self.settings.board
    }

    /// Leaves the cluster (peers learn at once) and stops mDNS.
    pub async fn shutdown(&self) {
        if let Some(d) = self
            .discovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            d.shutdown();
        }
        self.gossip.leave(Duration::from_millis(500)).await;
    }
}
