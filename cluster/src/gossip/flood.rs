//! A per-source limit on the datagrams the endpoint opens: every datagram costs a decryption on
//! the endpoint's one task, so a flood from one address is dropped unopened once that address has
//! used its share, and the other boards still get through.
//!
//! The board has a per-source limiter for TCP (`listen/src/sources.rs`), but it counts TCP
//! connections (open ones and new ones) with tokio's clock; this is the smaller thing datagrams
//! need: a token bucket per source address (IPv6 by /64, as one host holds a whole /64), in a map
//! of bounded size.
//!
//! UDP source addresses can be forged: a flood from ever new forged addresses gets a burst per
//! address it forges until the map forgets it, which is what a flood of unique sources can get
//! through any per-source limit; the sealing still drops it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::limits::Bucket;

/// Datagrams a source may send at once after a quiet spell. A board sends a few a second (probes,
/// their answers, gossip, state pushes); a burst covers a board that joins and is greeted by all.
pub(crate) const BURST: u32 = 200;
/// Datagrams a second a source may keep sending.
pub(crate) const PER_SECOND: u32 = 100;
/// Sources remembered; the least recently heard is forgotten for a new one.
const MAX_SOURCES: usize = 512;

/// Token buckets by source.
#[derive(Debug)]
pub(crate) struct Flood {
    buckets: HashMap<IpAddr, Bucket>,
    burst: u32,
    per_second: u32,
    dropped: u64,
}

/// The key a source is counted under: its IPv4 address, or the /64 of an IPv6 address.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Default for Flood {
    fn default() -> Self {
        Self::new(BURST, PER_SECOND)
    }
}

impl Flood {
    pub(crate) fn new(burst: u32, per_second: u32) -> Self {
        Self {
            buckets: HashMap::new(),
            burst: burst.max(1),
            per_second,
            dropped: 0,
        }
    }

    /// Whether a datagram from `source` arriving at `now` may be opened; counts those that may not.
    pub(crate) fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        let source = key(source);
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.counted_at())
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.buckets.remove(&ip);
            }
        }
        let (burst, per_second) = (f64::from(self.burst), f64::from(self.per_second));
        let bucket = self
            .buckets
            .entry(source)
            .or_insert(Bucket::full(burst, per_second));
        if !bucket.take(now) {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        true
    }

    /// Datagrams dropped unopened so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, n))
    }

    #[test]
    fn a_flooding_source_gets_its_burst_then_its_rate_and_others_still_get_through() {
        let mut flood = Flood::new(5, 3);
        let t0 = Instant::now();
        let admitted = (0..10_000).filter(|_| flood.admit(ip(1), t0)).count();
        assert_eq!(admitted, 5);
        assert_eq!(flood.dropped(), 9_995);
        assert!(flood.admit(ip(2), t0), "another board is not held up");
        // A second later the flooding source has three more.
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..10_000).filter(|_| flood.admit(ip(1), t1)).count();
        assert_eq!(admitted, 3);
        // A quiet spell refills at most the burst.
        let t2 = t1 + Duration::from_secs(3600);
        let admitted = (0..10_000).filter(|_| flood.admit(ip(1), t2)).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn ipv6_sources_count_by_their_64_and_the_map_stays_bounded() {
        let mut flood = Flood::new(1, 0);
        let now = Instant::now();
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2".parse().expect("ip");
        assert!(flood.admit(a, now));
        assert!(!flood.admit(b, now), "one /64 is one source");
        let mapped: IpAddr = "::ffff:192.168.1.1".parse().expect("ip");
        assert!(flood.admit(mapped, now));
        assert!(
            !flood.admit(ip(1), now),
            "a mapped address is its IPv4 address"
        );
        for n in 0..(MAX_SOURCES as u32 + 100) {
            flood.admit(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), now);
        }
        assert_eq!(flood.buckets.len(), MAX_SOURCES);
    }
}
