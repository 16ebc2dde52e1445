//! The front door's families: requests by service and status, and the time they took as a
//! histogram, from the totals the front door reports (see `baton_frontdoor::tally`).

use baton_frontdoor::tally::{ServiceTally, BUCKETS_MS, CODES};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::render::{one, tally, Labels};
use super::Snapshot;

/// Histograms already counted, one per label set: `prometheus-client`'s own histogram only
/// observes values one by one.
#[derive(Debug, Default)]
struct Histograms(Vec<(Labels, Counted)>);

/// One histogram: its sum, its count and its buckets (`le`, count in that bucket alone: the
/// encoders add them up).
#[derive(Debug, Default)]
struct Counted {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for Histograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The largest count shown: the encoders add the buckets up without checking, and the counts
/// come from another process. Far beyond any real count (2^52 requests).
const MAX_COUNT: u64 = 1 << 52;

/// A service's totals as a histogram of seconds.
fn counted(t: &ServiceTally) -> Counted {
    let mut buckets: Vec<(f64, u64)> = BUCKETS_MS
        .iter()
        .zip(t.buckets)
        .map(|(le, n)| (*le as f64 / 1000.0, n.min(MAX_COUNT)))
        .collect();
    buckets.push((f64::INFINITY, t.slower.min(MAX_COUNT)));
    let count = buckets.iter().map(|(_, n)| n).sum::<u64>();
    Counted {
        sum: t.sum_ms as f64 / 1000.0,
        count,
        buckets,
    }
}

pub(super) fn front_door(r: &mut Registry, s: &Snapshot) {
    if s.front_door.is_empty() {
        return;
    }
    let by_code = s.front_door.iter().flat_map(|t| {
        CODES
            .iter()
            .zip(t.codes)
            .filter(|(_, n)| *n > 0)
            .map(|(code, n)| {
                (
                    vec![("service", t.service.clone()), ("code", code.to_string())],
                    n,
                )
            })
    });
    r.register(
        "frontdoor_requests",
        "Requests the front door answered for a service on this board, by status (the class, or the exact code for 401, 403, 429, 502, 503 and 504)",
        tally(by_code),
    );
    r.register(
        "frontdoor_request_duration_seconds",
        "Time from a request to the end of its answer's head at the front door, by service",
        Histograms(
            s.front_door
                .iter()
                .map(|t| (one("service", &t.service), counted(t)))
                .collect(),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_is_in_one_bucket() {
        let mut t = ServiceTally::default();
        t.add(200, 3);
        t.add(200, 40);
        t.add(200, 60_000);
        let h = counted(&t);
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets.first(), Some(&(0.005, 1)));
        assert_eq!(h.buckets[3], (0.05, 1));
        assert_eq!(h.buckets[BUCKETS_MS.len() - 1], (30.0, 0));
        assert_eq!(h.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((h.sum - 60.043).abs() < 1e-9);
    }
}
