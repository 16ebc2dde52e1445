//! The last scaling decisions of each service, with their reasons, for the API (`GET
//! /v1/services`, `baton ps`). Bounded: a few entries per service, a cap on services.

use std::collections::{BTreeMap, VecDeque};

/// Decisions kept per service.
pub const PER_SERVICE: usize = 16;
/// Services whose decisions are kept (the spec store's own cap is lower).
const MAX_SERVICES: usize = 1024;

/// One decision that changed a service's count (or froze or thawed its last instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    /// The count decided.
    pub count: u32,
    /// Of those, frozen.
    pub frozen: u32,
    /// Why: "2 -> 3: 31 in flight, target 10".
    pub reason: String,
}

/// The decisions of every service.
#[derive(Debug, Default)]
pub struct History {
    services: BTreeMap<String, VecDeque<Entry>>,
}

impl History {
    /// Notes a decision: kept when its count (or how many of them are frozen) differs from the
    /// last one of the service, or is its first, so that the ring holds the changes, not the
    /// steady states. `true` when kept.
    pub fn note(
        &mut self,
        service: &str,
        at_ms: u64,
        (count, frozen): (u32, u32),
        reason: &str,
    ) -> bool {
        if !self.services.contains_key(service) && self.services.len() >= MAX_SERVICES {
            return false;
        }
        let ring = self.services.entry(service.to_string()).or_default();
        if ring
            .back()
            .is_some_and(|last| (last.count, last.frozen) == (count, frozen))
        {
            return false;
        }
        if ring.len() >= PER_SERVICE {
            ring.pop_front();
        }
        ring.push_back(Entry {
            at_ms,
            count,
            frozen,
            reason: reason.to_string(),
        });
        true
    }

    /// The decisions of `service`, oldest first.
    pub fn of(&self, service: &str) -> Vec<Entry> {
        self.services
            .get(service)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets services that are gone.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.services.retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_state_adds_nothing_and_the_ring_is_bounded() {
        let mut h = History::default();
        assert!(h.note("web", 1, (1, 0), "held at 1: scale.min"));
        assert!(!h.note("web", 2, (1, 0), "at 1: peak 3 over 5m, target 10"));
        assert_eq!(h.of("web").len(), 1);
        assert!(h.note("web", 3, (1, 1), "1 -> 0 (frozen): peak 0 over 5m"));
        assert_eq!(h.of("web").len(), 2);
        for i in 0..40u32 {
            h.note("web", 10 + u64::from(i), (i, 0), &format!("step {i}"));
        }
        let kept = h.of("web");
        assert_eq!(kept.len(), PER_SERVICE);
        assert_eq!(kept.last().map(|e| e.count), Some(39));
        h.retain(|n| n != "web");
        assert!(h.of("web").is_empty());
    }
}
