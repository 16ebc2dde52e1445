//! The DHCP client state machine (RFC 2131 section 4.4), with no sockets and no clock.
//!
//! The interface task feeds [`Event`]s with the current time into [`Client::step`], performs
//! the returned [`Action`]s in order and delivers [`Event::Timer`] at [`Client::deadline`].
//!
//! INIT/SELECTING: DISCOVER broadcast, retransmitted with randomised exponential backoff (4 s,
//! 8 s, ... 64 s, each ±1 s). REQUESTING: REQUEST broadcast for the first OFFER; four tries, then
//! back to DISCOVER. BOUND until T1; RENEWING: REQUEST unicast to the server, retransmitted at
//! half the time left to T2 (at least 60 s); REBINDING from T2: REQUEST broadcast, until the
//! lease expires, which unbinds and starts again. A NAK unbinds and starts again. Stopping a
//! bound client sends RELEASE.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::Message;

use super::message::{self, Identity, Reply, ReplyKind};
use crate::uplink::rng::Rng;

/// REQUEST tries in REQUESTING before starting over.
const REQUEST_TRIES: u32 = 4;
/// Minimum retransmission interval in RENEWING and REBINDING (RFC 2131 4.4.5).
const MIN_EXTEND_RETRY: Duration = Duration::from_secs(60);
/// Lease time assumed when an ACK carries none.
const DEFAULT_LEASE: u32 = 3600;

/// Where to send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:67 on the interface.
    Broadcast,
    /// The server's address, port 67.
    Server(Ipv4Addr),
}

/// A lease as the client holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Leased address.
    pub address: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// The server that granted it.
    pub server: Ipv4Addr,
    /// Routers, preferred first.
    pub routers: Vec<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// NTP servers.
    pub ntp: Vec<Ipv4Addr>,
    /// Domain name for resolv.conf's search line.
    pub domain: Option<String>,
    /// When to start RENEWING.
    pub t1: Instant,
    /// When to start REBINDING.
    pub t2: Instant,
    /// When the lease runs out.
    pub expiry: Instant,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// [`Client::deadline`] passed.
    Timer,
    /// A DHCP message arrived on port 68.
    Received(Message),
    /// Shutdown: release the lease and stop.
    Stop,
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message.
    Send(Message, Destination),
    /// Configure (or refresh) this lease on the interface. A new address replaces the old one.
    Bind(Lease),
    /// Remove this lease's address and routes from the interface.
    Unbind(Lease),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Selecting { tries: u32 },
    Requesting { offer: Reply, tries: u32 },
    Bound(Lease),
    Renewing(Lease),
    Rebinding(Lease),
    Stopped,
}

/// One interface's DHCP client.
#[derive(Debug)]
pub struct Client {
    id: Identity,
    phase: Phase,
    xid: u32,
    started: Instant,
    deadline: Option<Instant>,
    rng: Rng,
}

impl Client {
    /// A client that has just broadcast its first DISCOVER (returned with it).
    pub fn start(id: Identity, now: Instant, rng: Rng) -> (Client, Vec<Action>) {
        let mut c = Client {
            id,
            phase: Phase::Stopped,
            xid: 0,
            started: now,
            deadline: None,
            rng,
        };
        let actions = c.restart(now);
        (c, actions)
    }

    /// When to deliver [`Event::Timer`].
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The lease held, in BOUND, RENEWING or REBINDING.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.phase {
            Phase::Bound(l) | Phase::Renewing(l) | Phase::Rebinding(l) => Some(l),
            _ => None,
        }
    }

    /// Advances the machine.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::Stop => self.stop(),
            Event::Timer => {
                if self.deadline.is_some_and(|d| d <= now) {
                    self.timer(now)
                } else {
                    Vec::new()
                }
            }
            Event::Received(m) => match message::parse_reply(&m, self.id.mac) {
                Some(r) if r.xid == self.xid => self.reply(r, now),
                _ => Vec::new(),
            },
        }
    }

    fn secs(&self, now: Instant) -> u16 {
        u16::try_from(now.saturating_duration_since(self.started).as_secs()).unwrap_or(u16::MAX)
    }

    /// Back to INIT: new transaction, DISCOVER now.
    fn restart(&mut self, now: Instant) -> Vec<Action> {
        self.xid = self.rng.next_u32();
        self.started = now;
        self.phase = Phase::Selecting { tries: 1 };
        self.deadline = Some(now + self.backoff(0));
        vec![Action::Send(
            message::discover(&self.id, self.xid, 0),
            Destination::Broadcast,
        )]
    }

    /// Retransmission delay after `tries` earlier tries: 4 s doubling to 64 s, ±1 s.
    fn backoff(&mut self, tries: u32) -> Duration {
        let base = Duration::from_secs(4u64 << tries.min(4));
        self.rng
            .between(base - Duration::from_secs(1), base + Duration::from_secs(1))
    }

    fn timer(&mut self, now: Instant) -> Vec<Action> {
        match std::mem::replace(&mut self.phase, Phase::Stopped) {
            Phase::Stopped => {
                self.deadline = None;
                Vec::new()
            }
            Phase::Selecting { tries } => {
                self.phase = Phase::Selecting { tries: tries + 1 };
                self.deadline = Some(now + self.backoff(tries));
                let m = message::discover(&self.id, self.xid, self.secs(now));
                vec![Action::Send(m, Destination::Broadcast)]
            }
            Phase::Requesting { offer, tries } => {
                if tries >= REQUEST_TRIES {
                    return self.restart(now);
                }
                let m = message::request_selecting(
                    &self.id,
                    self.xid,
                    self.secs(now),
                    offer.address,
                    offer.server,
                );
                self.deadline = Some(now + self.backoff(tries));
                self.phase = Phase::Requesting {
                    offer,
                    tries: tries + 1,
                };
                vec![Action::Send(m, Destination::Broadcast)]
            }
            Phase::Bound(lease) => self.extend(lease, now, true),
            Phase::Renewing(lease) | Phase::Rebinding(lease) => self.extend(lease, now, false),
        }
    }

    /// T1, T2 or a retransmission while holding `lease`: ask to extend it, or give it up
    /// when it has expired. `fresh` starts a new transaction (entering RENEWING from BOUND).
    fn extend(&mut self, lease: Lease, now: Instant, fresh: bool) -> Vec<Action> {
        if now >= lease.expiry {
            let mut actions = vec![Action::Unbind(lease)];
            actions.extend(self.restart(now));
            return actions;
        }
        if fresh {
            self.xid = self.rng.next_u32();
            self.started = now;
        }
        let rebinding = now >= lease.t2;
        let (until, dest) = if rebinding {
            (lease.expiry, Destination::Broadcast)
        } else {
            (lease.t2, Destination::Server(lease.server))
        };
        let half = until.saturating_duration_since(now) / 2;
        self.deadline = Some((now + half.max(MIN_EXTEND_RETRY)).min(until));
        let m = message::request_extend(&self.id, self.xid, self.secs(now), lease.address);
        self.phase = if rebinding {
            Phase::Rebinding(lease)
        } else {
            Phase::Renewing(lease)
        };
        vec![Action::Send(m, dest)]
    }

    fn reply(&mut self, r: Reply, now: Instant) -> Vec<Action> {
        match (&self.phase, r.kind) {
            (Phase::Selecting { .. }, ReplyKind::Offer) if !r.address.is_unspecified() => {
                let m = message::request_selecting(
                    &self.id,
                    self.xid,
                    self.secs(now),
                    r.address,
                    r.server,
                );
                self.deadline = Some(now + self.backoff(0));
                self.phase = Phase::Requesting { offer: r, tries: 1 };
                vec![Action::Send(m, Destination::Broadcast)]
            }
            (
                Phase::Requesting { .. } | Phase::Renewing(_) | Phase::Rebinding(_),
                ReplyKind::Ack,
            ) if !r.address.is_unspecified() => {
                let lease = lease_from(r, now);
                self.deadline = Some(lease.t1);
                self.phase = Phase::Bound(lease.clone());
                vec![Action::Bind(lease)]
            }
            (Phase::Requesting { .. }, ReplyKind::Nak) => self.restart(now),
            (Phase::Renewing(l) | Phase::Rebinding(l), ReplyKind::Nak) => {
                let mut actions = vec![Action::Unbind(l.clone())];
                actions.extend(self.restart(now));
                actions
            }
            _ => Vec::new(),
        }
    }

    fn stop(&mut self) -> Vec<Action> {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.deadline = None;
        match phase {
            Phase::Bound(l) | Phase::Renewing(l) | Phase::Rebinding(l) => {
                let xid = self.rng.next_u32();
                let m = message::release(&self.id, xid, l.address, l.server);
                let to = Destination::Server(l.server);
                vec![Action::Send(m, to), Action::Unbind(l)]
            }
            _ => Vec::new(),
        }
    }
}

/// Turns an ACK into a lease with absolute times; bad or missing T1/T2 get the RFC defaults
/// (0.5 and 0.875 of the lease).
fn lease_from(r: Reply, now: Instant) -> Lease {
    let lease = r.lease_secs.unwrap_or(DEFAULT_LEASE).max(1);
    let mut t2 = r
        .t2_secs
        .filter(|t| *t < lease)
        .unwrap_or((u64::from(lease) * 7 / 8) as u32);
    let mut t1 = r.t1_secs.filter(|t| *t < t2).unwrap_or(lease / 2);
    if t1 >= t2 {
        t1 = lease / 2;
        t2 = (u64::from(lease) * 7 / 8) as u32;
    }
    let at = |s: u32| now + Duration::from_secs(u64::from(s));
    Lease {
        address: r.address,
        prefix: r.prefix,
        server: r.server,
        routers: r.routers,
        dns: r.dns,
        ntp: r.ntp,
        domain: r.domain,
        t1: at(t1),
        t2: at(t2),
        expiry: at(lease),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
