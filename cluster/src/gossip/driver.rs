//! The endpoint task: one loop that owns foca, the socket, the sealer/opener and the member table.
//!
//! Each turn handles one event (a datagram, a foca timer, a command, a periodic tick) and then
//! flushes what foca produced: datagrams are sealed and sent, timers armed as sleeping tasks that
//! post back to the loop, notifications applied to the table and published to the handle.

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

use super::bindings::{Bindings, Verdict};
use super::flood::Flood;
use super::identity::NodeId;
use super::pending::Pending;
use super::proof::{payload_digest, StateProof};
use super::table::{Signer, Table};
use super::values::ValuesError;
use super::wire::{self, StateMessage};
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
    /// The last state sent and its proof, as payloads, by version: signed once per version.
    signed: Option<(u64, Vec<u8>, Vec<u8>)>,
    /// Whether proofs are sent (always, but in tests that play the previous release).
    proofs: bool,
}

/// The first pause after a receive error that is not transient; it doubles while errors repeat.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between receive attempts that keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// foca's LAN profile with our intervals and the packet size left after sealing.
fn foca_config(timing: &Timing, max_packet: usize) -> foca::Config {
    let mut config = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(15));
    config.probe_period = timing.probe_period;
    config.probe_rtt = timing.probe_rtt;
    config.suspect_to_down_after = timing.suspect_to_down_after;
    if let Some(size) = NonZeroUsize::new(max_packet) {
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
        // One byte of every payload is the kind.
        let max_packet = parts.sealer.max_payload() - 1;
        let foca = Foca::new(
            parts.id.clone(),
            foca_config(&parts.timing, max_packet),
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
                        let _ = self.foca.announce(NodeId::seed(addr), &mut self.runtime);
                    }
                    #[cfg(test)]
                    Some(Command::PreviousRelease) => self.proofs = false,
                    #[cfg(test)]
                    Some(Command::FailReceive(kind)) => {
                        self.receive_failed(&std::io::Error::from(kind)).await;
                    }
                    Some(Command::Shutdown) | None => {
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
        for &seed in &self.seeds {
            if seed != own && !alive.contains(&seed) {
                let _ = self.foca.announce(NodeId::seed(seed), &mut self.runtime);
            }
        }
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
        lock(&self.shared).drops = drops;
    }

    fn on_datagram(&mut self, datagram: &[u8]) {
        let opened = self.opener.open(datagram);
        self.publish_drops();
        let Ok(opened) = opened else { return };
        if opened.sender == self.name {
            return;
        }
        self.table.heard(&opened.sender, Instant::now());
        match opened.payload.split_first() {
            Some((&wire::KIND_FOCA, packet)) => {
                // Malformed or misdirected packets are foca's to reject; nothing to do about them.
                let _ = self.foca.handle_data(packet, &mut self.runtime);
            }
            Some((&wire::KIND_STATE, body)) => {
                let digest = payload_digest(&opened.payload);
                self.on_state(&opened.sender, opened.generation, body, digest);
            }
            Some((&wire::KIND_PROOF, body)) => {
                self.on_proof(&opened.sender, opened.generation, body);
            }
            _ => {}
        }
    }

    /// A state message from `sender`. A name bound to a key shows only states its key signed,
    /// so the state waits for its proof; an unbound name (a board of the previous release, or one
    /// whose proof has not come yet) shows it at once, unsigned.
    fn on_state(&mut self, sender: &str, generation: u64, body: &[u8], digest: [u8; 32]) {
        let bound = self.bindings.get(sender).map(|b| b.key);
        let decoded = StateMessage::decode(body).and_then(|state| {
            // A board's state carries the generation its datagrams do; another one is made up
            // (and would outrank the board's real state).
            if state.generation == generation {
                Ok(state)
            } else {
                Err(ValuesError::Generation {
                    state: state.generation,
                    datagram: generation,
                })
            }
        });
        let state = match decoded {
            Ok(state) => state,
            // Nobody signs what does not decode, so for a bound name it may be anyone's: a key
            // holder's refused state must not blank the board's values.
            Err(_) if bound.is_some() => return,
            Err(why) => {
                self.table.refused(sender, why);
                return;
            }
        };
        match self.pending.state(sender, state.clone(), digest) {
            Some((state, proof)) if bound == Some(proof.key) => {
                let signer = Signer {
                    key: proof.key,
                    addr: proof.addr,
                };
                self.table.state(sender, state, Some(signer));
                self.follow_signed_addr(sender);
            }
            _ if bound.is_none() => {
                self.table.state(sender, state, None);
            }
            _ => {}
        }
    }

    /// A proof from `sender`: checked, its key bound or refused, and the state it covers shown.
    fn on_proof(&mut self, sender: &str, generation: u64, body: &[u8]) {
        let Some(proof) = StateProof::decode(body) else {
            return;
        };
        if proof.generation != generation
            || proof.since_ms > crate::plausible::latest_time(crate::plausible::wall_ms())
            || !proof.verify(sender)
        {
            return;
        }
        // A conflict already shown is not news (a key holder may repeat it every datagram).
        let claimed = crate::board_key::fingerprint(&proof.key);
        let known_conflict = self
            .bindings
            .conflicts()
            .any(|c| c.name == sender && c.claimed == claimed);
        let verdict = self.bindings.check(
            sender,
            proof.key,
            proof.since_ms,
            crate::plausible::wall_ms(),
        );
        if verdict.changed() || (matches!(verdict, Verdict::Conflict(_)) && !known_conflict) {
            self.publish_bindings();
        }
        if !verdict.accepted() {
            return;
        }
        self.opener.expect_signed(sender);
        self.opener.confirm(sender, generation);
        let signer = Signer {
            key: proof.key,
            addr: proof.addr,
        };
        if let Some(state) = self.pending.proof(sender, proof) {
            // Shown before its name was bound, or new: either way now signed.
            self.table.signed(sender, &state, signer);
            self.table.state(sender, state, Some(signer));
            self.follow_signed_addr(sender);
        }
    }

    /// Puts the membership identity of `name` at its signed address into the table (foca may
    /// have reported it before the signed state said which address is the board's).
    fn follow_signed_addr(&mut self, name: &str) {
        let Some(addr) = self.table.signed_addr(name) else {
            return;
        };
        let ids: Vec<NodeId> = self
            .foca
            .iter_members()
            .map(|m| m.id())
            .filter(|id| id.name == name && id.addr == addr)
            .cloned()
            .collect();
        for id in ids {
            self.table.up(&id);
        }
    }

    fn publish_bindings(&mut self) {
        {
            let mut shared = lock(&self.shared);
            shared.bindings = self.bindings.all().clone();
            shared.conflicts = self.bindings.conflicts().cloned().collect();
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Sends this board's state to `addr`, then the proof that it signed it.
    async fn send_state(&mut self, addr: SocketAddr) {
        let (version, values) = {
            let shared = lock(&self.shared);
            (shared.version, shared.values.clone())
        };
        if self.signed.as_ref().map(|s| s.0) != Some(version) {
            let state = StateMessage {
                generation: self.generation,
                version,
                values,
            }
            .encode();
            let proof = StateProof::sign(
                &self.board_key,
                &self.name,
                self.addr,
                self.generation,
                version,
                &state,
            )
            .encode();
            self.signed = Some((version, state, proof));
        }
        if let Some((_, state, proof)) = self.signed.clone() {
            self.send(addr, &state).await;
            if self.proofs {
                self.send(addr, &proof).await;
            }
        }
    }

    async fn send(&mut self, addr: SocketAddr, payload: &[u8]) {
        // Sizes are checked when state is set and foca respects max_packet_size, so sealing
        // succeeds; a lost datagram is something gossip tolerates anyway.
        if let Ok(datagram) = self.sealer.seal(payload) {
            let _ = self.socket.send_to(&datagram, addr).await;
        }
    }

    /// Sends, arms and applies what foca produced, then publishes the table.
    async fn flush(&mut self) {
        while let Some((to, packet)) = self.runtime.to_send() {
            self.send(to.addr, &wire::foca_payload(&packet)).await;
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.arm(after, timer);
        }
        let mut greet = Vec::new();
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                OwnedNotification::MemberUp(id) | OwnedNotification::Rename(_, id) => {
                    // A member new to the table gets our state straight away.
                    greet.extend(self.table.up(&id).then_some(id.addr));
                }
                OwnedNotification::MemberDown(id) => {
                    self.table.down(&id);
                }
                _ => {}
            }
        }
        for addr in greet {
            self.send_state(addr).await;
        }
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
