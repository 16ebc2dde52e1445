//! Rate limits on what the endpoint sends of its own accord: renewals of its identity, and proofs
//! sent to introduce itself (a key holder can provoke both, so neither may grow with its traffic).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Renewals of the membership identity: a burst of 4, then one a second. Each raises the member
/// generation by one, and a board without a data partition starts from its clock in seconds, so
/// at this rate a key holder forcing renewals cannot push the generation far past the clock
/// (where receivers would no longer decode the identity).
pub(crate) const RENEWALS: Bucket = Bucket::full(4.0, 1.0);
/// Unsolicited proofs (replies and introductions) per second, all destinations together.
const INTRODUCTIONS_PER_SECOND: f64 = 32.0;
/// Destinations remembered for the once-per-period rule.
const MAX_ADDRS: usize = 1024;

/// A token bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Option<Instant>,
}

impl Bucket {
    pub(crate) const fn full(burst: f64, per_second: f64) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            per_second,
            at: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.at = Some(now);
    }

    /// When tokens were last counted (`None`: never).
    pub(crate) fn counted_at(&self) -> Option<Instant> {
        self.at
    }

    /// Takes a token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = (1.0 - self.tokens).max(0.0);
        now + Duration::from_secs_f64(missing / self.per_second)
    }
}

/// Where this node's proof went last, and how many unsolicited ones it may still send.
#[derive(Debug)]
pub(crate) struct Introductions {
    last: HashMap<SocketAddr, Instant>,
    period: Duration,
    bucket: Bucket,
}

impl Introductions {
    /// At most one unsolicited proof per destination per `period`.
    pub(crate) fn new(period: Duration) -> Introductions {
        Introductions {
            last: HashMap::new(),
            period,
            bucket: Bucket::full(INTRODUCTIONS_PER_SECOND, INTRODUCTIONS_PER_SECOND),
        }
    }

    /// A proof went to `addr` (with a state, or on its own). Returns false if there was no room
    /// to remember it.
    pub(crate) fn sent(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if self.last.len() >= MAX_ADDRS && !self.last.contains_key(&addr) {
            let period = self.period;
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < period);
            if self.last.len() >= MAX_ADDRS {
                return false;
            }
        }
        self.last.insert(addr, now);
        true
    }

    /// Whether an unsolicited proof may go to `addr` now (none went there within the period,
    /// and the overall rate allows); if so, it counts as sent.
    pub(crate) fn allow(&mut self, addr: SocketAddr, now: Instant) -> bool {
        let recent = self
            .last
            .get(&addr)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.period);
        if recent || !self.bucket.take(now) {
            return false;
        }
        self.sent(addr, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_come_in_a_burst_then_one_a_second() {
        let mut bucket = RENEWALS;
        let t0 = Instant::now();
        assert!((0..4).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0));
        let next = bucket.ready_at(t0);
        assert!(next > t0 && next <= t0 + Duration::from_secs(1));
        assert!(bucket.take(t0 + Duration::from_secs(1)));
        assert!(!bucket.take(t0 + Duration::from_secs(1)));
        let taken = (1..=100)
            .filter(|i| bucket.take(t0 + Duration::from_millis(1_000 + 10 * i)))
            .count();
        assert_eq!(taken, 1, "one more second, one more renewal");
    }

    #[test]
    fn one_introduction_per_destination_per_period_and_a_cap_overall() {
        let period = Duration::from_secs(5);
        let mut intro = Introductions::new(period);
        let t0 = Instant::now();
        let addr = |i: u16| SocketAddr::from(([192, 0, 2, 1], i));
        assert!(intro.allow(addr(1), t0));
        assert!(!intro.allow(addr(1), t0 + Duration::from_secs(1)));
        assert!(intro.allow(addr(1), t0 + period));
        intro.sent(addr(2), t0);
        assert!(!intro.allow(addr(2), t0), "a greeting went there just now");
        let burst = (100..200)
            .filter(|&i| intro.allow(addr(i), t0 + period))
            .count();
        assert_eq!(burst as f64, INTRODUCTIONS_PER_SECOND - 1.0);
        for i in 0..MAX_ADDRS as u16 + 10 {
            intro.sent(addr(1000 + i), t0);
        }
        assert!(intro.last.len() <= MAX_ADDRS);
    }
}
