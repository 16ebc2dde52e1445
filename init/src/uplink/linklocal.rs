//! IPv4 link-local addressing (RFC 3927) as a pure state machine.
//!
//! [`LinkLocal::step`] takes an [`Event`] and the current time and returns [`Action`]s; the
//! interface task sends the ARP packets, configures the address and calls back at
//! [`LinkLocal::deadline`]. Candidates come from a hash of the MAC (so a board tends to get the
//! same address every boot), in 169.254.1.0–169.254.254.255.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::arp::{ArpPacket, REQUEST};
use super::rng::Rng;

/// RFC 3927 section 9 constants.
const PROBE_WAIT: Duration = Duration::from_secs(1);
const PROBE_NUM: u32 = 3;
const PROBE_MIN: Duration = Duration::from_secs(1);
const PROBE_MAX: Duration = Duration::from_secs(2);
const ANNOUNCE_WAIT: Duration = Duration::from_secs(2);
const ANNOUNCE_NUM: u32 = 2;
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);
const MAX_CONFLICTS: u32 = 10;
const RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(60);
const DEFEND_INTERVAL: Duration = Duration::from_secs(10);

/// Number of usable link-local addresses: 169.254.1.0 up to 169.254.254.255.
const RANGE: u64 = 254 * 256;

/// The `attempt`-th candidate address for `mac`: the same MAC gives the same sequence.
pub fn candidate(mac: [u8; 6], attempt: u32) -> Ipv4Addr {
    // FNV-1a over the MAC and the attempt number.
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for b in mac.iter().copied().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let offset = (h % RANGE) as u32;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(169, 254, 1, 0)) + offset)
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The deadline returned by [`LinkLocal::deadline`] passed.
    Timer,
    /// An ARP packet arrived on the interface.
    Arp(ArpPacket),
    /// Give the address up (a DHCP lease arrived, or shutdown).
    Stop,
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Broadcast this ARP packet on the interface.
    Send(ArpPacket),
    /// Add `address`/16 to the interface.
    Configure(Ipv4Addr),
    /// Remove `address`/16 from the interface.
    Deconfigure(Ipv4Addr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending probes for the candidate; `sent` so far.
    Probing { sent: u32 },
    /// Address configured; `sent` announcements so far.
    Announcing { sent: u32 },
    /// Address configured and announced; defending it.
    Bound,
    /// Stopped; does nothing any more.
    Stopped,
}

/// The link-local state of one interface.
#[derive(Debug)]
pub struct LinkLocal {
    mac: [u8; 6],
    candidate: Ipv4Addr,
    attempt: u32,
    conflicts: u32,
    phase: Phase,
    deadline: Option<Instant>,
    last_defence: Option<Instant>,
    rng: Rng,
}

impl LinkLocal {
    /// Starts choosing an address for the interface with `mac`; the first probe is due at the
    /// returned machine's deadline.
    pub fn new(mac: [u8; 6], now: Instant, mut rng: Rng) -> LinkLocal {
        let wait = rng.between(Duration::ZERO, PROBE_WAIT);
        LinkLocal {
            mac,
            candidate: candidate(mac, 0),
            attempt: 0,
            conflicts: 0,
            phase: Phase::Probing { sent: 0 },
            deadline: Some(now + wait),
            last_defence: None,
            rng,
        }
    }

    /// When to deliver [`Event::Timer`]; `None` when nothing is scheduled.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The address in use, once claimed.
    pub fn address(&self) -> Option<Ipv4Addr> {
        match self.phase {
            Phase::Announcing { .. } | Phase::Bound => Some(self.candidate),
            Phase::Probing { .. } | Phase::Stopped => None,
        }
    }

    /// Advances the machine.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match (self.phase, event) {
            (Phase::Stopped, _) => Vec::new(),
            (_, Event::Stop) => {
                let held = self.address();
                self.phase = Phase::Stopped;
                self.deadline = None;
                held.map(Action::Deconfigure).into_iter().collect()
            }
            (Phase::Probing { sent }, Event::Timer) if sent < PROBE_NUM => {
                self.phase = Phase::Probing { sent: sent + 1 };
                self.deadline = Some(if sent + 1 < PROBE_NUM {
                    now + self.rng.between(PROBE_MIN, PROBE_MAX)
                } else {
                    now + ANNOUNCE_WAIT
                });
                vec![Action::Send(ArpPacket::probe(self.mac, self.candidate))]
            }
            (Phase::Probing { .. }, Event::Timer) => {
                self.phase = Phase::Announcing { sent: 1 };
                self.deadline = Some(now + ANNOUNCE_INTERVAL);
                vec![
                    Action::Configure(self.candidate),
                    Action::Send(ArpPacket::announcement(self.mac, self.candidate)),
                ]
            }
            (Phase::Announcing { sent }, Event::Timer) => {
                if sent + 1 >= ANNOUNCE_NUM {
                    self.phase = Phase::Bound;
                    self.deadline = None;
                } else {
                    self.phase = Phase::Announcing { sent: sent + 1 };
                    self.deadline = Some(now + ANNOUNCE_INTERVAL);
                }
                vec![Action::Send(ArpPacket::announcement(
                    self.mac,
                    self.candidate,
                ))]
            }
            (Phase::Bound, Event::Timer) => Vec::new(),
            (Phase::Probing { .. }, Event::Arp(p)) => {
                if self.probe_conflict(&p) {
                    self.next_candidate(now);
                }
                Vec::new()
            }
            (Phase::Announcing { .. } | Phase::Bound, Event::Arp(p)) => {
                if p.sender_ip != self.candidate || p.sender_mac == self.mac {
                    return Vec::new();
                }
                let recently = self
                    .last_defence
                    .is_some_and(|t| now.saturating_duration_since(t) < DEFEND_INTERVAL);
                if recently {
                    // Second conflict within DEFEND_INTERVAL: give the address up (RFC 3927 2.5 b).
                    let old = self.candidate;
                    self.next_candidate(now);
                    vec![Action::Deconfigure(old)]
                } else {
                    self.last_defence = Some(now);
                    vec![Action::Send(ArpPacket::announcement(
                        self.mac,
                        self.candidate,
                    ))]
                }
            }
        }
    }

    /// While probing, a conflict is another host using the candidate, or probing for it too.
    fn probe_conflict(&self, p: &ArpPacket) -> bool {
        if p.sender_mac == self.mac {
            return false;
        }
        let uses = p.sender_ip == self.candidate;
        let probes = p.op == REQUEST
            && p.sender_ip == Ipv4Addr::UNSPECIFIED
            && p.target_ip == self.candidate;
        uses || probes
    }

    /// Picks the next candidate and starts probing again, rate-limited after many conflicts.
    fn next_candidate(&mut self, now: Instant) {
        self.conflicts += 1;
        self.attempt += 1;
        self.candidate = candidate(self.mac, self.attempt);
        self.phase = Phase::Probing { sent: 0 };
        self.last_defence = None;
        let wait = if self.conflicts >= MAX_CONFLICTS {
            RATE_LIMIT_INTERVAL
        } else {
            self.rng.between(Duration::ZERO, PROBE_WAIT)
        };
        self.deadline = Some(now + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::super::arp::REPLY;
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const OTHER: [u8; 6] = [0x52, 0x54, 0, 0x99, 0x99, 0x99];

    fn in_range(a: Ipv4Addr) -> bool {
        let o = a.octets();
        o[0] == 169 && o[1] == 254 && (1..=254).contains(&o[2])
    }

    /// Runs timers until the machine has no deadline, collecting actions.
    fn run_timers(ll: &mut LinkLocal, now: &mut Instant) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(d) = ll.deadline() {
            *now = d;
            out.extend(ll.step(Event::Timer, *now));
        }
        out
    }

    #[test]
    fn candidates_are_stable_in_range_and_differ_per_attempt_and_mac() {
        assert_eq!(candidate(MAC, 0), candidate(MAC, 0));
        assert_ne!(candidate(MAC, 0), candidate(MAC, 1));
        assert_ne!(candidate(MAC, 0), candidate(OTHER, 0));
        for attempt in 0..2000 {
            assert!(
                in_range(candidate(MAC, attempt)),
                "{}",
                candidate(MAC, attempt)
            );
        }
    }

    #[test]
    fn probes_three_times_then_claims_and_announces_twice() {
        let mut now = Instant::now();
        let start = now;
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(1));
        let want = candidate(MAC, 0);
        let actions = run_timers(&mut ll, &mut now);
        let probe = Action::Send(ArpPacket::probe(MAC, want));
        let announce = Action::Send(ArpPacket::announcement(MAC, want));
        assert_eq!(
            actions,
            vec![
                probe.clone(),
                probe.clone(),
                probe,
                Action::Configure(want),
                announce.clone(),
                announce
            ]
        );
        assert_eq!(ll.address(), Some(want));
        // Probes at most 1 s + 2 * 2 s apart, then ANNOUNCE_WAIT and one ANNOUNCE_INTERVAL.
        assert!(now - start <= Duration::from_secs(9));
        assert!(now - start >= Duration::from_secs(6));
    }

    #[test]
    fn conflict_while_probing_moves_to_the_next_candidate() {
        let mut now = Instant::now();
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(2));
        now = ll.deadline().expect("probe scheduled");
        ll.step(Event::Timer, now);
        // Someone answers: they already have our candidate.
        let reply = ArpPacket {
            op: REPLY,
            sender_mac: OTHER,
            sender_ip: candidate(MAC, 0),
            target_mac: MAC,
            target_ip: Ipv4Addr::UNSPECIFIED,
        };
        assert!(ll.step(Event::Arp(reply), now).is_empty());
        let actions = run_timers(&mut ll, &mut now);
        assert!(actions.contains(&Action::Configure(candidate(MAC, 1))));
        assert!(!actions.contains(&Action::Configure(candidate(MAC, 0))));
    }

    #[test]
    fn simultaneous_probe_by_another_host_is_a_conflict_but_our_own_echo_is_not() {
        let now = Instant::now();
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(3));
        ll.step(Event::Arp(ArpPacket::probe(MAC, candidate(MAC, 0))), now);
        assert_eq!(ll.candidate, candidate(MAC, 0));
        ll.step(Event::Arp(ArpPacket::probe(OTHER, candidate(MAC, 0))), now);
        assert_eq!(ll.candidate, candidate(MAC, 1));
    }

    #[test]
    fn many_conflicts_rate_limit_probing() {
        let now = Instant::now();
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(4));
        for _ in 0..MAX_CONFLICTS {
            let c = ll.candidate;
            ll.step(Event::Arp(ArpPacket::announcement(OTHER, c)), now);
        }
        assert_eq!(ll.deadline(), Some(now + RATE_LIMIT_INTERVAL));
    }

    #[test]
    fn bound_address_is_defended_once_then_given_up() {
        let mut now = Instant::now();
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(5));
        run_timers(&mut ll, &mut now);
        let ours = candidate(MAC, 0);
        let intruder = ArpPacket::announcement(OTHER, ours);
        assert_eq!(
            ll.step(Event::Arp(intruder), now),
            vec![Action::Send(ArpPacket::announcement(MAC, ours))]
        );
        now += Duration::from_secs(3);
        assert_eq!(
            ll.step(Event::Arp(intruder), now),
            vec![Action::Deconfigure(ours)]
        );
        assert_eq!(ll.address(), None);
        let actions = run_timers(&mut ll, &mut now);
        assert!(actions.contains(&Action::Configure(candidate(MAC, 1))));
    }

    #[test]
    fn stop_releases_a_claimed_address_only() {
        let mut now = Instant::now();
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(6));
        assert!(ll.step(Event::Stop, now).is_empty());
        let mut ll = LinkLocal::new(MAC, now, Rng::seeded(6));
        run_timers(&mut ll, &mut now);
        assert_eq!(
            ll.step(Event::Stop, now),
            vec![Action::Deconfigure(candidate(MAC, 0))]
        );
        assert_eq!(ll.deadline(), None);
        assert!(ll.step(Event::Timer, now).is_empty());
    }
}
