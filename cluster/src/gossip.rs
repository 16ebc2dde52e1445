//! Gossip membership over the sealed transport.
//!
//! Each board runs one gossip endpoint on a UDP port. It finds out which other boards of the cluster are
//! alive, and what each publishes ([`BoardValues`]: API address, capacity, labels, a digest of its
//! specs, its instances and its end of the mesh).
//! Every datagram goes through [`crate::sealed`], so only boards with the cluster key take part.
//!
//! # Library: foca
//! Membership and failure detection come from [foca](https://crates.io/crates/foca) 1.0 (SWIM with
//! suspicion, indirect probes and piggybacked updates). Why foca rather than chitchat:
//! - chitchat (MIT, quickwit) has key/value state built in and a replaceable `Transport` trait, but
//!   every version up to 0.13 depends on `zstd` (C code through `zstd-sys`): its build for
//!   `aarch64-unknown-linux-musl` fails here for want of a C cross compiler, and the board's binary must
//!   be pure Rust.
//! - foca is pure Rust and `no_std` at its core; it owns no socket, timer or thread: the caller feeds it
//!   datagrams and timer events and it hands back datagrams to send, timers to arm and notifications.
//!   So sealing every datagram needs no transport trait at all: [`driver`] seals what foca asks to send
//!   and opens what arrives before foca sees it.
//! - Rejoin after reboot: foca identities with the same name are one node over time; the identity
//!   with the higher generation wins the conflict (see [`identity`]), so a restarted board replaces its
//!   old self. A node wrongly declared dead renews its identity (the endpoint does, after signing it).
//! - foca's packets are not signed: for a name bound to a board key, only the identity that key's
//!   latest proof vouches for enters foca ([`vouches`], [`sanitize`]).
//! - Healing after a partition: foca periodically announces to members it believes down, and this module
//!   re-announces to every seed that is not an alive member.
//! - Licence: MPL-2.0, file-level copyleft: we use its files unmodified, so our binaries stay MIT OR
//!   Apache-2.0 (modifying foca's own files would oblige us to publish those changes).
//! - foca 1.0 declares rust-version 1.81 (2.0 needs 1.88, above the workspace's 1.85).
//!
//! foca has no state of its own, so it is added here: each node sends its versioned values
//! ([`wire::StateMessage`]) to a member that comes up, to every alive member when they change, and
//! to one random alive member every [`Timing::state_push_period`]; receivers keep the newest by
//! (generation, version). The state must fit one datagram (about 1.4 kB); [`values`] says how
//! it is encoded and why.

pub mod bindings;
mod driver;
mod flood;
mod identity;
mod limits;
#[cfg(test)]
mod membership_tests;
mod pending;
mod proof;
mod sanitize;
#[cfg(test)]
mod signed_tests;
mod table;
#[cfg(test)]
mod tests;
pub mod values;
mod vouches;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::sealed::{self, DropCounts, SealError};
pub use bindings::{Binding, Bindings, NameConflict};
pub use values::{BoardValues, MeshEndpoint, RunningInstance, ValuesError};

/// What went wrong in the gossip endpoint.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The cluster key or node name is unusable.
    #[error("gossip setup for node {name:?}: {source}")]
    Seal {
        /// Node name.
        name: String,
        /// Cause.
        source: SealError,
    },
    /// The UDP socket could not be bound.
    #[error("binding the gossip socket on {addr}: {source}")]
    Bind {
        /// Listen address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The node's values would not fit one datagram.
    #[error("the values of node {name:?} take {len} bytes, more than the {max} a datagram holds")]
    StateTooLarge {
        /// Node name.
        name: String,
        /// Encoded size.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The endpoint has stopped (shut down, or its socket failed).
    #[error("the gossip endpoint of node {0:?} has stopped")]
    Stopped(String),
}

/// How often things happen; shorter means faster detection and more traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often a random member is probed.
    pub probe_period: Duration,
    /// How long a probe waits for an answer before asking others to probe indirectly.
    pub probe_rtt: Duration,
    /// How long a suspected member has to refute before it is declared dead.
    pub suspect_to_down_after: Duration,
    /// How often membership updates are gossiped to a few members.
    pub gossip_period: Duration,
    /// How often the node announces itself to seeds and to a member (down members: twice as long).
    pub announce_period: Duration,
    /// How often the node's values are pushed to one random member.
    pub state_push_period: Duration,
}

impl Timing {
    /// For boards on a LAN (foca's LAN profile for up to 16 boards).
    pub fn lan() -> Self {
        Self {
            probe_period: Duration::from_secs(1),
            probe_rtt: Duration::from_millis(500),
            suspect_to_down_after: Duration::from_secs(5),
            gossip_period: Duration::from_millis(200),
            announce_period: Duration::from_secs(10),
            state_push_period: Duration::from_secs(5),
        }
    }

    /// Short intervals for tests on loopback.
    pub fn fast() -> Self {
        Self {
            probe_period: Duration::from_millis(100),
            probe_rtt: Duration::from_millis(40),
            suspect_to_down_after: Duration::from_millis(500),
            gossip_period: Duration::from_millis(50),
            announce_period: Duration::from_millis(300),
            state_push_period: Duration::from_millis(300),
        }
    }
}

/// What [`start`] needs.
#[derive(Clone)]
pub struct GossipConfig {
    /// Address to bind, e.g. `0.0.0.0:7946`.
    pub listen: SocketAddr,
    /// Address peers reach this node at; defaults to the bound address (fine when `listen` names an IP).
    pub advertise: Option<SocketAddr>,
    /// This board's node name (1 to 63 bytes), unique in the cluster.
    pub name: String,
    /// Must grow with every start of the node (for example a boot counter kept on the data
    /// partition, or milliseconds since the epoch once the clock is synced).
    pub generation: u64,
    /// Gossip addresses of other boards to announce to (more can come with [`GossipHandle::add_seed`]).
    pub seeds: Vec<SocketAddr>,
    /// The `[cluster] key` text from `cluster.toml`.
    pub cluster_key: String,
    /// The values this node publishes from the start.
    pub values: BoardValues,
    /// Intervals.
    pub timing: Timing,
    /// This board's own key, which signs its state.
    pub board_key: crate::board_key::BoardKey,
    /// The name-to-key bindings kept from earlier runs (see [`bindings`]); the endpoint adds
    /// to them, and [`GossipHandle::bindings`] returns them to be saved.
    pub bindings: std::collections::BTreeMap<String, Binding>,
}

/// Whether a member is believed alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Declared dead by the failure detector (or left).
    Dead,
}

/// A peer as this node sees it (the node itself is never listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: SocketAddr,
    /// The generation of the identity last seen for this name.
    pub generation: u64,
    /// Alive or dead.
    pub state: MemberState,
    /// The values it published (empty until its state arrives, or while it sends values this
    /// node refuses).
    pub values: BoardValues,
    /// Why the last values it sent were refused (a board of another build), until it sends
    /// values this node reads.
    pub values_error: Option<ValuesError>,
    /// The fingerprint of the board key that signed its values; `None` for a board of the
    /// previous release, which signs nothing (see [`bindings`]).
    pub signed_by: Option<String>,
    /// When an authenticated datagram from it last arrived.
    pub last_heard: Option<Instant>,
}

/// What the endpoint shares with its handle: the members it knows, what it dropped, and its own
/// values with their version.
#[derive(Debug, Default)]
struct Roster {
    members: Vec<Member>,
    drops: DropCounts,
    /// Receive errors of the socket other than the transient ones, and the last one.
    receive_errors: u64,
    last_receive_error: Option<String>,
    /// Own values and their version.
    values: BoardValues,
    version: u64,
    /// The generation of this node's membership identity (its start generation, plus one per
    /// renewal).
    member_generation: u64,
    /// The name-to-key bindings, and the conflicts refused.
    bindings: std::collections::BTreeMap<String, Binding>,
    conflicts: Vec<NameConflict>,
    /// Names refused because the bindings were full, and the latest.
    refused_full: (u64, Option<String>),
}

/// Requests from the handle to the endpoint task.
#[derive(Debug)]
enum Command {
    /// Own values changed (they are in [`Roster`]).
    StateChanged,
    /// Announce to this address now and whenever it is not an alive member.
    AddSeed(SocketAddr),
    /// Forget this name's key binding.
    Forget(String),
    /// Leave the cluster and stop.
    Shutdown,
    /// Behave as if receiving failed with this error (tests of the endpoint's resilience).
    #[cfg(test)]
    FailReceive(std::io::ErrorKind),
    /// Send state without proofs, as the previous release does (tests of N/N-1).
    #[cfg(test)]
    PreviousRelease,
}

/// A running gossip endpoint; dropping it without [`GossipHandle::shutdown`] stops it abruptly.
#[derive(Debug)]
pub struct GossipHandle {
    name: String,
    local_addr: SocketAddr,
    max_state: usize,
    shared: Arc<Mutex<Roster>>,
    commands: mpsc::UnboundedSender<Command>,
    changes: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

/// Binds the socket and starts the endpoint on the current tokio runtime.
pub async fn start(config: GossipConfig) -> Result<GossipHandle, GossipError> {
    let seal_err = |source| GossipError::Seal {
        name: config.name.clone(),
        source,
    };
    let key = sealed::SealKey::derive(&config.cluster_key).map_err(seal_err)?;
    let sealer =
        sealed::Sealer::new(key.clone(), &config.name, config.generation).map_err(seal_err)?;
    let socket = tokio::net::UdpSocket::bind(config.listen)
        .await
        .map_err(|source| GossipError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = socket.local_addr().map_err(|source| GossipError::Bind {
        addr: config.listen,
        source,
    })?;
    // One byte of every payload is the kind.
    let max_state = sealer.max_payload() - 1;
    let bindings = Bindings::new(config.bindings);
    let mut opener = sealed::Opener::new(key.clone());
    for (name, binding) in bindings.all() {
        opener.expect_signed(name);
        // The pin saved in an earlier run: a key holder's replay of the board's datagrams from
        // before its last restart stays refused after this board's own restart.
        if let Some(generation) = binding.pinned_generation {
            opener.confirm(name, generation);
        }
    }
    let shared = Arc::new(Mutex::new(Roster {
        values: config.values.clone(),
        member_generation: config.generation,
        bindings: bindings.all().clone(),
        ..Roster::default()
    }));
    check_state_size(&config.name, &config.values, max_state)?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (change_tx, changes) = watch::channel(0);
    let id = identity::NodeId {
        name: config.name.clone(),
        addr: config.advertise.unwrap_or(local_addr),
        generation: config.generation,
    };
    let endpoint = driver::Driver::new(driver::Parts {
        id,
        timing: config.timing,
        seeds: config.seeds,
        socket,
        sealer,
        opener,
        board_key: config.board_key,
        bindings,
        shared: shared.clone(),
        changes: change_tx,
    });
    let task = tokio::spawn(endpoint.run(command_rx));
    Ok(GossipHandle {
        name: config.name,
        local_addr,
        max_state,
        shared,
        commands,
        changes,
        task,
    })
}

fn check_state_size(name: &str, values: &BoardValues, max: usize) -> Result<(), GossipError> {
    let len = wire::StateMessage {
        generation: u64::MAX,
        version: u64::MAX,
        values: values.clone(),
    }
    .encode()
    .len();
    if len > max {
        return Err(GossipError::StateTooLarge {
            name: name.to_owned(),
            len,
            max,
        });
    }
    Ok(())
}

/// Locks the shared state; a panic elsewhere while holding it leaves data that is still usable.
fn lock(shared: &Mutex<Roster>) -> MutexGuard<'_, Roster> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GossipHandle {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Changes the values this node publishes with `edit` and sends them to the cluster;
    /// refused (nothing changes) if they would no longer fit one datagram.
    pub fn update(&self, edit: impl FnOnce(&mut BoardValues)) -> Result<(), GossipError> {
        {
            let mut shared = lock(&self.shared);
            let mut values = shared.values.clone();
            edit(&mut values);
            check_state_size(&self.name, &values, self.max_state)?;
            shared.values = values;
            shared.version += 1;
        }
        self.send(Command::StateChanged)
    }

    /// Adds a seed (for example one found by mDNS) and announces to it right away.
    pub fn add_seed(&self, addr: SocketAddr) -> Result<(), GossipError> {
        self.send(Command::AddSeed(addr))
    }

    /// The peers, sorted by name; the node itself is not listed.
    pub fn members(&self) -> Vec<Member> {
        lock(&self.shared).members.clone()
    }

    /// Datagrams dropped by the sealed transport so far.
    pub fn drops(&self) -> DropCounts {
        lock(&self.shared).drops
    }

    /// How many times receiving failed with an error other than a transient one, and the last
    /// such error. The endpoint keeps receiving after each (pausing longer while they repeat).
    pub fn receive_errors(&self) -> (u64, Option<String>) {
        let shared = lock(&self.shared);
        (shared.receive_errors, shared.last_receive_error.clone())
    }

    /// The generation of this node's membership identity: the start generation, raised by one
    /// each time the cluster declared the node down and it renewed. The next start's generation
    /// should exceed it, or peers may still hold the identity as down (one more renewal).
    /// [`GossipHandle::watch`] changes when it rises.
    pub fn member_generation(&self) -> u64 {
        lock(&self.shared).member_generation
    }

    /// The name-to-key bindings this node holds (to be saved on the data partition).
    pub fn bindings(&self) -> std::collections::BTreeMap<String, Binding> {
        lock(&self.shared).bindings.clone()
    }

    /// Proofs refused because their name is bound to another key, oldest first.
    pub fn conflicts(&self) -> Vec<NameConflict> {
        lock(&self.shared).conflicts.clone()
    }

    /// Names whose proofs were refused because this board holds the most bindings it keeps
    /// ([`bindings::MAX_BINDINGS`]), and the latest: such a name is not bound to its key, and its
    /// state is shown unsigned. A name counts once while it keeps sending proofs; the watch
    /// changes when another is refused.
    pub fn refused_full(&self) -> (u64, Option<String>) {
        lock(&self.shared).refused_full.clone()
    }

    /// Forgets `name`'s key binding, so that the next key to sign in that name is bound (a
    /// board that got a new card, or lost its data partition).
    pub fn forget(&self, name: &str) -> Result<(), GossipError> {
        self.send(Command::Forget(name.to_owned()))
    }

    #[cfg(test)]
    fn as_previous_release(&self) -> Result<(), GossipError> {
        self.send(Command::PreviousRelease)
    }

    #[cfg(test)]
    fn fail_receive(&self, kind: std::io::ErrorKind) -> Result<(), GossipError> {
        self.send(Command::FailReceive(kind))
    }

    /// A receiver that changes whenever membership or someone's values change (not on every
    /// datagram): wait with `changed()`, then read [`GossipHandle::members`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Tells the peers this node leaves, then stops the endpoint and closes its socket.
    pub async fn shutdown(self) -> Result<(), GossipError> {
        // The task may already have stopped; joining tells either way.
        let _ = self.commands.send(Command::Shutdown);
        self.task
            .await
            .map_err(|_| GossipError::Stopped(self.name.clone()))
    }

    /// Tells the peers this node leaves and stops the endpoint, without waiting for it (for a
    /// handle that is shared); waits at most `grace` for the goodbye to go out.
    pub async fn leave(&self, grace: Duration) {
        if self.commands.send(Command::Shutdown).is_ok() {
            let mut changes = self.changes.clone();
            let _ = tokio::time::timeout(grace, async {
                while !self.task.is_finished() {
                    if changes.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
    }

    fn send(&self, command: Command) -> Result<(), GossipError> {
        self.commands
            .send(command)
            .map_err(|_| GossipError::Stopped(self.name.clone()))
    }
}
