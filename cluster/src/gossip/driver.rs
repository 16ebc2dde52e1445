//! The endpoint task: one loop that owns foca, the socket, the sealer/opener and the member table.
//!
//! Each turn handles one event (a datagram, a foca timer, a command, a periodic tick) and then
//! flushes what foca produced: datagrams are sealed and sent, timers armed as sleeping tasks that
//! post back to the loop, notifications applied to the table and published to the handle.
//! What arrives is handled in [`receive`]; this node's proof and identity in [`renewal`].

#[cfg(test)]
pub(super) mod proptests;
mod receive;
mod renewal;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::bindings::Bindings;
use super::flood::Flood;
use super::identity::NodeId;
use super::limits::{self, Bucket, Introductions};
use super::pending::Pending;
use super::sanitize;
use super::table::Table;
use super::vouches::Vouches;
use super::wire;
use super::{lock, Command, Roster, Timing};
use crate::board_key::BoardKey;
use crate::sealed::{Opener, Sealer, MAX_DATAGRAM};

type Membership = Foca<NodeId, PostcardCodec, StdRng, NoCustomBroadcast>;

/// What [`Driver::new`] is built from.
pub(super) struct Parts {
    pub(super) id: NodeId,
    pub(super) timing: Timing,
    pub(super) seeds: Vec<SocketAddr>,
    pub(super) socket: UdpSocket,
    pub(super) sealer: Sealer,
    pub(super) opener: Opener,
    pub(super) shared: Arc<Mutex<Roster>>,
    pub(super) changes: watch::Sender<u64>,
    pub(super) board_key: BoardKey,
    pub(super) bindings: Bindings,
}

pub(super) struct Driver {
    name: String,
    /// Where this node receives gossip, as it advertises it.
    addr: SocketAddr,
    generation: u64,
    foca: Membership,
    runtime: AccumulatingRuntime<NodeId>,
    timing: Timing,
    seeds: BTreeSet<SocketAddr>,
    socket: UdpSocket,
    sealer: Sealer,
    opener: Opener,
    table: Table,
    shared: Arc<Mutex<Roster>>,
    changes: watch::Sender<u64>,
    timers: mpsc::UnboundedSender<Timer<NodeId>>,
    timer_rx: mpsc::UnboundedReceiver<Timer<NodeId>>,
    rng: StdRng,
    flood: Flood,
    /// The pause after the last receive error; `None` once a datagram arrived again.
    backoff: Option<Duration>,
    board_key: BoardKey,
    bindings: Bindings,
    pending: Pending,
    /// The last state sent and its proof, as payloads.
    signed: Option<Signed>,
    /// Whether proofs are sent (always, but in tests that play the previous release).
    proofs: bool,
    /// The identity each bound name's latest proof vouches for.
    vouches: Vouches,
    /// What the sanitizer dropped.
    sanitized: sanitize::Counts,
    /// Opened datagrams dropped after the sanitizer or outside it (see `receive`).
    refused: receive::Refused,
    /// Where this node's proof went, and how many it may still send unasked.
    introductions: Introductions,
    /// Addresses this node's proof goes to alone at the next flush (before foca's packets).
    proof_to: Vec<SocketAddr>,
    /// Members that get this node's state at the next flush.
    greet: Vec<SocketAddr>,
    /// Renewals of the membership identity left, and when the next is due.
    renewals: Bucket,
    renew_at: Option<tokio::time::Instant>,
    /// Set once the node leaves: foca goes defunct then, and must stay so.
    leaving: bool,
}

/// This node's state and proof, signed for one version and one member generation.
struct Signed {
    version: u64,
    member_generation: u64,
    state: Vec<u8>,
    proof: Vec<u8>,
    /// When the values carry a load table: the same state without it, and its proof, for
    /// boards whose state arrives unsigned (the previous release refuses values with a load
    /// table, and would take this board for absent).
    without_load: Option<(Vec<u8>, Vec<u8>)>,
}

/// The first pause after a receive error that is not transient; it doubles while errors repeat.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between receive attempts that keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// foca's LAN profile with our intervals and the packet size every board can seal and take.
fn foca_config(timing: &Timing) -> foca::Config {
    let mut config = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(15));
    config.probe_period = timing.probe_period;
    config.probe_rtt = timing.probe_rtt;
    config.suspect_to_down_after = timing.suspect_to_down_after;
    if let Some(size) = NonZeroUsize::new(wire::MAX_FOCA_PACKET) {
        config.max_packet_size = size;
    }
    if let Some(gossip) = config.periodic_gossip.as_mut() {
        gossip.frequency = timing.gossip_period;
    }
    if let Some(announce) = config.periodic_announce.as_mut() {
        announce.frequency = timing.announce_period;
    }
    if let Some(announce) = config.periodic_announce_to_down_members.as_mut() {
        announce.frequency = timing.announce_period * 2;
    }
    config
}

impl Driver {
    pub(super) fn new(parts: Parts) -> Self {
        let foca = Foca::new(
            parts.id.clone(),
            foca_config(&parts.timing),
            StdRng::from_os_rng(),
            PostcardCodec,
        );
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let table = Table::new(&parts.id.name);
        Self {
            addr: parts.id.addr,
            name: parts.id.name,
            generation: parts.id.generation,
            foca,
            runtime: AccumulatingRuntime::new(),
            timing: parts.timing,
            seeds: parts.seeds.into_iter().collect(),
            socket: parts.socket,
            sealer: parts.sealer,
            opener: parts.opener,
            table,
            shared: parts.shared,
            changes: parts.changes,
            timers,
            timer_rx,
            rng: StdRng::from_os_rng(),
            flood: Flood::default(),
            backoff: None,
            board_key: parts.board_key,
            bindings: parts.bindings,
            pending: Pending::default(),
            signed: None,
            proofs: true,
            vouches: Vouches::default(),
            sanitized: sanitize::Counts::default(),
            refused: receive::Refused::default(),
            introductions: Introductions::new(parts.timing.state_push_period),
            proof_to: Vec::new(),
            greet: Vec::new(),
            renewals: limits::RENEWALS,
            renew_at: None,
            leaving: false,
        }
    }

    /// Runs until shutdown or until every handle is gone. A receive error is reported and
    /// followed by a pause (see [`Driver::receive_failed`]), never by the end of the loop.
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        // One byte more than the largest datagram, so an oversized one is seen (and dropped) as such.
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut announce = tokio::time::interval(self.timing.announce_period);
        let mut push = tokio::time::interval(self.timing.state_push_period);
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => {
                        self.backoff = None;
                        // Each datagram opened costs a decryption: a source past its share is
                        // dropped before that.
                        if self.flood.admit(from.ip(), Instant::now()) {
                            self.on_datagram(buf.get(..len).unwrap_or_default());
                        } else {
                            self.publish_drops();
                        }
                    }
                    Err(err) if is_transient(&err) => {}
                    Err(err) => self.receive_failed(&err).await,
                },
                () = tokio::time::sleep_until(self.renew_at.unwrap_or_else(far)),
                    if self.renew_at.is_some() => self.renew(),
                Some(timer) = self.timer_rx.recv() => {
                    // Errors concern one event (e.g. a stale timer); the protocol goes on.
                    let _ = self.foca.handle_timer(timer, &mut self.runtime);
                }
                command = commands.recv() => match command {
                    Some(Command::StateChanged) => {
                        for addr in self.table.alive_addrs() {
                            self.send_state(addr).await;
                        }
                    }
                    Some(Command::Forget(name)) => {
                        self.bindings.forget(&name);
                        self.vouches.clear(&name);
                        self.pending.forget(&name);
                        self.opener.forget(&name);
                        // What it showed came from the old key (a new card counts its
                        // generations from one again and would never outrank it).
                        self.table.forget(&name);
                        self.publish_bindings();
                        self.publish();
                    }
                    Some(Command::AddSeed(addr)) => {
                        self.seeds.insert(addr);
                        self.announce_to(addr);
                    }
                    #[cfg(test)]
                    Some(Command::PreviousRelease) => self.proofs = false,
                    #[cfg(test)]
                    Some(Command::FailReceive(kind)) => {
                        self.receive_failed(&std::io::Error::from(kind)).await;
                    }
                    Some(Command::Shutdown) | None => {
                        self.leaving = true;
                        let _ = self.foca.leave_cluster(&mut self.runtime);
                        self.flush().await;
                        break;
                    }
                },
                _ = announce.tick() => self.announce_to_seeds(),
                _ = push.tick() => {
                    let alive = self.table.alive_addrs();
                    if let Some(&addr) = alive.choose(&mut self.rng) {
                        self.send_state(addr).await;
                    }
                }
            }
            self.flush().await;
        }
    }

    /// Announces to every seed that is not an alive member: the first join, and healing after a
    /// partition outlasted foca's own announcements.
    fn announce_to_seeds(&mut self) {
        let alive = self.table.alive_addrs();
        let own = self.foca.identity().addr;
        let seeds: Vec<SocketAddr> = self.seeds.iter().copied().collect();
        for seed in seeds {
            if seed != own && !alive.contains(&seed) {
                self.announce_to(seed);
            }
        }
    }

    /// Announces to a seed, after this node's proof: a seed that bound this node's name admits
    /// only the identity a proof vouches for (it may have restarted since it last had one).
    fn announce_to(&mut self, seed: SocketAddr) {
        if self.proofs {
            self.introductions.sent(seed, Instant::now());
            self.proof_to.push(seed);
        }
        let _ = self.foca.announce(NodeId::seed(seed), &mut self.runtime);
    }

    /// Receiving failed with an error that is not known to be transient: counts and keeps it
    /// for [`super::GossipHandle::receive_errors`], then pauses before the next attempt (10 ms,
    /// doubling up to a second while errors repeat), so a socket that keeps failing does not
    /// spin; a datagram that arrives again ends the back-off.
    async fn receive_failed(&mut self, err: &std::io::Error) {
        let pause = self
            .backoff
            .map_or(FIRST_BACKOFF, |last| (last * 2).min(MAX_BACKOFF));
        self.backoff = Some(pause);
        {
            let mut shared = lock(&self.shared);
            shared.receive_errors = shared.receive_errors.saturating_add(1);
            shared.last_receive_error = Some(format!("receiving gossip datagrams: {err}"));
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        tokio::time::sleep(pause).await;
    }

    fn publish_drops(&self) {
        let mut drops = self.opener.drops();
        drops.rate_limited = self.flood.dropped();
        drops.unvouched_sender = self.sanitized.senders;
        drops.unvouched_update = self.sanitized.updates;
        drops.malformed_membership = self.sanitized.malformed;
        drops.trimmed_update = self.sanitized.trimmed;
        drops.bindings_full = self.bindings.proofs_refused_full();
        drops.refused_proof = self.refused.proofs;
        drops.refused_state = self.refused.states;
        drops.unknown_kind = self.refused.kinds;
        drops.refused_membership = self.refused.membership;
        lock(&self.shared).drops = drops;
    }

    async fn send(&mut self, addr: SocketAddr, payload: &[u8]) {
        // Sizes are checked when state is set and foca's packets are at most MAX_FOCA_PACKET,
        // which every name can seal; a lost datagram is something gossip tolerates anyway.
        if let Ok(datagram) = self.sealer.seal(payload) {
            let _ = self.socket.send_to(&datagram, addr).await;
        }
    }

    /// Sends, arms and applies what foca produced, then publishes the table.
    async fn flush(&mut self) {
        self.send_proofs().await;
        while let Some((to, packet)) = self.runtime.to_send() {
            self.send(to.addr, &wire::foca_payload(&packet)).await;
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.arm(after, timer);
        }
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                // A member new to the table gets our state straight away.
                OwnedNotification::MemberUp(id) | OwnedNotification::Rename(_, id)
                    if self.member_up(&id) =>
                {
                    self.greet.push(id.addr);
                }
                OwnedNotification::MemberDown(id) => {
                    self.table.down(&id);
                }
                OwnedNotification::Defunct => self.defunct(),
                _ => {}
            }
        }
        for addr in std::mem::take(&mut self.greet) {
            self.send_state(addr).await;
        }
        self.send_proofs().await;
        self.publish();
    }

    fn arm(&self, after: Duration, timer: Timer<NodeId>) {
        let timers = self.timers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            // The loop may have stopped; then the timer no longer matters.
            let _ = timers.send(timer);
        });
    }

    fn publish(&mut self) {
        let members = self.table.snapshot();
        let changed = {
            let mut shared = lock(&self.shared);
            let changed = !same_ignoring_last_heard(&shared.members, &members);
            shared.members = members;
            changed
        };
        if changed {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// A time the renewal timer never reaches (it is disabled while no renewal is due).
fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

fn same_ignoring_last_heard(a: &[super::Member], b: &[super::Member]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.addr == y.addr
                && x.generation == y.generation
                && x.state == y.state
                && x.values == y.values
                && x.values_error == y.values_error
                && x.signed_by == y.signed_by
        })
}

/// Errors after which the socket still works (an ICMP error from an earlier send, memory pressure).
fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::Interrupted
            | ErrorKind::OutOfMemory
            | ErrorKind::WouldBlock
    )
}
