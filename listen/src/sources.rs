//! Per-source bookkeeping for the accept loop: how many connections each source holds and a
//! token bucket of new connections, in a map of bounded size.

use std::collections::HashMap;
use std::net::IpAddr;
use tokio::time::Instant;

/// How fast one source may open connections: a bucket of `burst` tokens refilled at
/// `per_second`; each new connection takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Connections a source may open at once after a quiet spell.
    pub burst: u32,
    /// Connections per second a source may keep opening.
    pub per_second: u32,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source holds its share of connections already.
    PerSource,
    /// The source opens connections faster than its rate.
    Rate,
}

#[derive(Debug)]
struct Entry {
    active: usize,
    tokens: f64,
    refilled: Instant,
    seen: Instant,
}

/// The sources seen recently. At most `capacity` entries: when a new source arrives at a full
/// map, the least recently seen source without open connections is forgotten. As long as
/// `capacity` is larger than the connection cap there always is one.
#[derive(Debug)]
pub struct Sources {
    entries: HashMap<IpAddr, Entry>,
    capacity: usize,
    per_source: usize,
    rate: Rate,
}

/// The key a peer is counted under: its IPv4 address, or the /64 of an IPv6 address (one
/// host usually holds a whole /64, so counting single v6 addresses would count nothing).
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl Sources {
    /// An empty map of at most `capacity` sources.
    pub fn new(capacity: usize, per_source: usize, rate: Rate) -> Sources {
        Sources {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            per_source: per_source.max(1),
            rate,
        }
    }

    /// Admits one new connection from `source` (a [`key`]) at `now`, or says why not.
    pub fn admit(&mut self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        if !self.entries.contains_key(&source) && self.entries.len() >= self.capacity {
            self.evict_one();
        }
        let burst = f64::from(self.rate.burst.max(1));
        let entry = self.entries.entry(source).or_insert(Entry {
            active: 0,
            tokens: burst,
            refilled: now,
            seen: now,
        });
        entry.seen = now;
        let elapsed = now.saturating_duration_since(entry.refilled);
        entry.tokens =
            (entry.tokens + elapsed.as_secs_f64() * f64::from(self.rate.per_second)).min(burst);
        entry.refilled = now;
        if entry.active >= self.per_source {
            return Err(Refusal::PerSource);
        }
        if entry.tokens < 1.0 {
            return Err(Refusal::Rate);
        }
        entry.tokens -= 1.0;
        entry.active += 1;
        Ok(())
    }

    /// A connection from `source` closed.
    pub fn release(&mut self, source: IpAddr) {
        if let Some(entry) = self.entries.get_mut(&source) {
            entry.active = entry.active.saturating_sub(1);
        }
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Forgets the least recently seen source that holds no connection.
    fn evict_one(&mut self) {
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.active == 0)
            .min_by_key(|(_, e)| e.seen)
            .map(|(ip, _)| *ip);
        if let Some(ip) = oldest {
            self.entries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    const RATE: Rate = Rate {
        burst: 3,
        per_second: 1,
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn a_source_is_held_to_its_share_and_its_rate() {
        let now = Instant::now();
        let mut s = Sources::new(8, 2, RATE);
        assert_eq!(s.admit(ip(1), now), Ok(()));
        assert_eq!(s.admit(ip(1), now), Ok(()));
        assert_eq!(s.admit(ip(1), now), Err(Refusal::PerSource));
        assert_eq!(
            s.admit(ip(2), now),
            Ok(()),
            "another source is not affected"
        );
        s.release(ip(1));
        assert_eq!(s.admit(ip(1), now), Ok(()), "the third token");
        s.release(ip(1));
        assert_eq!(s.admit(ip(1), now), Err(Refusal::Rate), "bucket empty");
        let later = now + Duration::from_millis(1100);
        assert_eq!(s.admit(ip(1), later), Ok(()), "refilled at one per second");
    }

    #[test]
    fn the_map_stays_bounded_and_keeps_sources_with_connections() {
        let now = Instant::now();
        let mut s = Sources::new(4, 1, RATE);
        assert_eq!(s.admit(ip(1), now), Ok(())); // holds a connection
        for n in 2..=200 {
            let _ = s.admit(ip(n), now + Duration::from_millis(u64::from(n)));
            s.release(ip(n));
            assert!(s.tracked() <= 4, "{} sources tracked", s.tracked());
        }
        assert_eq!(
            s.admit(ip(1), now),
            Err(Refusal::PerSource),
            "the busy source was not forgotten"
        );
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(key(a.into()), key(b.into()));
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped.into()), ip(1));
    }
}
