//! The front door's request totals by service, as `/metrics` shows them: what the running
//! process reported ([`baton_frontdoor::control::protocol::ToInit::Requests`]), added to what
//! the processes before it counted, so that a restarted front door does not reset the
//! counters a scraper reads.

use std::collections::BTreeMap;
use std::sync::Mutex;

use baton_frontdoor::tally::{ServiceTally, MAX_SERVICES, OTHER};

/// The totals of the process running now and of those before it.
#[derive(Debug, Default)]
pub struct Tallies {
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// The processes that ended, summed.
    before: BTreeMap<String, ServiceTally>,
    /// The running process, as last reported.
    now: BTreeMap<String, ServiceTally>,
}

impl Tallies {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the running process's report of the services whose totals changed. A service
    /// beyond [`MAX_SERVICES`] is not kept (the process folds those into [`OTHER`] already,
    /// which is always kept).
    pub fn report(&self, services: Vec<ServiceTally>) {
        let mut kept = self.lock();
        for t in services {
            if kept.now.len() < MAX_SERVICES
                || kept.now.contains_key(&t.service)
                || t.service == OTHER
            {
                kept.now.insert(t.service.clone(), t);
            }
        }
    }

    /// The process ended: what it counted is kept with the earlier ones'.
    pub fn ended(&self) {
        let kept = &mut *self.lock();
        for (service, t) in std::mem::take(&mut kept.now) {
            if kept.before.len() < MAX_SERVICES
                || kept.before.contains_key(&service)
                || service == OTHER
            {
                kept.before.entry(service).or_default().merge(&t);
            }
        }
    }

    /// Every service's totals since the board started, by service.
    pub fn totals(&self) -> Vec<ServiceTally> {
        let kept = self.lock();
        let mut all = kept.before.clone();
        for (service, t) in &kept.now {
            let sum = all.entry(service.clone()).or_default();
            sum.merge(t);
        }
        all.into_iter()
            .map(|(service, t)| ServiceTally { service, ..t })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(service: &str, ok: u64) -> ServiceTally {
        let mut t = ServiceTally {
            service: service.to_string(),
            ..ServiceTally::default()
        };
        for _ in 0..ok {
            t.add(200, 2);
        }
        t
    }

    #[test]
    fn a_restarted_front_door_adds_to_what_the_ended_one_counted() {
        let tallies = Tallies::default();
        tallies.report(vec![tally("web", 3)]);
        tallies.report(vec![tally("web", 5)]);
        assert_eq!(tallies.totals()[0].count(), 5, "a report replaces the last");
        tallies.ended();
        tallies.report(vec![tally("web", 2), tally("api", 1)]);
        let totals = tallies.totals();
        let of = |s: &str| {
            totals
                .iter()
                .find(|t| t.service == s)
                .map(ServiceTally::count)
        };
        assert_eq!(of("web"), Some(7));
        assert_eq!(of("api"), Some(1));
    }
}
