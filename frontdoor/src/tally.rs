//! Requests by service, status and time taken, since the front door started: the counts behind
//! `baton_frontdoor_requests_total` and `baton_frontdoor_request_duration_seconds`. The child
//! counts every request that matched a route (the access log, which may drop lines, is not
//! where the numbers come from), and sends the totals to the init every second; the init adds
//! those of earlier front door processes, so a restart does not reset them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The upper bounds of the time buckets, in milliseconds (the last bucket, `+Inf`, is the
/// count).
pub const BUCKETS_MS: [u64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];
/// The `code` labels, in the order of [`ServiceTally::codes`]: the exact status for the six
/// that say most about a front door, the class for the others.
pub const CODES: [&str; 11] = [
    "1xx", "2xx", "3xx", "4xx", "5xx", "401", "403", "429", "502", "503", "504",
];
/// Services counted at most (a service beyond is counted under [`OTHER`]).
pub const MAX_SERVICES: usize = 1024;
/// Where requests of services beyond [`MAX_SERVICES`] are counted.
pub const OTHER: &str = "(other)";

/// One service's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTally {
    /// The service.
    pub service: String,
    /// Requests by `code` label, in the order of [`CODES`].
    pub codes: [u64; 11],
    /// Requests by time bucket (not cumulative), in the order of [`BUCKETS_MS`].
    pub buckets: [u64; 12],
    /// Requests slower than the last bucket.
    pub slower: u64,
    /// Milliseconds taken, summed.
    pub sum_ms: u64,
}

impl ServiceTally {
    /// All requests counted.
    pub fn count(&self) -> u64 {
        self.codes.iter().sum()
    }

    /// Adds one request answered `status` after `ms` milliseconds.
    pub fn add(&mut self, status: u16, ms: u64) {
        let code = match status {
            401 => 5,
            403 => 6,
            429 => 7,
            502 => 8,
            503 => 9,
            504 => 10,
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        self.codes[code] += 1;
        match BUCKETS_MS.iter().position(|&le| ms <= le) {
            Some(i) => self.buckets[i] += 1,
            None => self.slower += 1,
        }
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Adds `other`'s counts (of the same service).
    pub fn merge(&mut self, other: &ServiceTally) {
        for (a, b) in self.codes.iter_mut().zip(other.codes) {
            *a = a.saturating_add(b);
        }
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.saturating_add(b);
        }
        self.slower = self.slower.saturating_add(other.slower);
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }
}

/// The child's counts, shared by every connection.
#[derive(Debug, Default)]
pub struct Tally {
    services: Mutex<BTreeMap<String, ServiceTally>>,
}

impl Tally {
    /// Counts one request to `service`.
    pub fn add(&self, service: &str, status: u16, ms: u64) {
        let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let key = if services.contains_key(service) || services.len() < MAX_SERVICES {
            service
        } else {
            OTHER
        };
        if let Some(t) = services.get_mut(key) {
            t.add(status, ms);
            return;
        }
        let mut t = ServiceTally {
            service: key.to_string(),
            ..ServiceTally::default()
        };
        t.add(status, ms);
        services.insert(key.to_string(), t);
    }

    /// The totals so far, by service.
    pub fn totals(&self) -> Vec<ServiceTally> {
        let services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        services.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_once_by_code_and_once_by_time() {
        let tally = Tally::default();
        tally.add("web", 200, 3);
        tally.add("web", 503, 40);
        tally.add("web", 404, 60_000);
        tally.add("web", 401, 5);
        let t = &tally.totals()[0];
        assert_eq!(t.count(), 4);
        assert_eq!(
            t.codes[CODES.iter().position(|c| *c == "2xx").expect("2xx")],
            1
        );
        assert_eq!(
            t.codes[CODES.iter().position(|c| *c == "503").expect("503")],
            1
        );
        assert_eq!(
            t.codes[CODES.iter().position(|c| *c == "4xx").expect("4xx")],
            1
        );
        assert_eq!(
            t.codes[CODES.iter().position(|c| *c == "401").expect("401")],
            1
        );
        assert_eq!(t.buckets[0], 2, "3 ms and 5 ms are within 5 ms");
        assert_eq!(t.buckets[3], 1, "40 ms is within 50 ms");
        assert_eq!(t.slower, 1);
        assert_eq!(t.sum_ms, 60_048);
        assert_eq!(t.buckets.iter().sum::<u64>() + t.slower, t.count());
    }

    #[test]
    fn services_beyond_the_cap_are_counted_together() {
        let tally = Tally::default();
        for i in 0..MAX_SERVICES + 5 {
            tally.add(&format!("s{i}"), 200, 1);
        }
        let totals = tally.totals();
        assert_eq!(totals.len(), MAX_SERVICES + 1);
        let other = totals.iter().find(|t| t.service == OTHER).expect("other");
        assert_eq!(other.count(), 5);
    }

    #[test]
    fn merging_adds_every_count() {
        let mut a = ServiceTally::default();
        a.add(200, 1);
        let mut b = ServiceTally::default();
        b.add(200, 1);
        b.add(502, 20_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.sum_ms, 20_002);
    }
}
