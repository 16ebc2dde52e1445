//! The held connections' bookkeeping: per-service and total bounds, the counts the load
//! report reads, and the wake rate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Counts, Hold};

/// At most one wake per service in this time.
const WAKE_EVERY: Duration = Duration::from_secs(1);

/// The connections held and proxied, by service.
#[derive(Debug)]
pub(super) struct Queue {
    max_held: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    counts: BTreeMap<String, Counts>,
    held: usize,
    holds: BTreeMap<String, Hold>,
    woken: BTreeMap<String, Instant>,
}

/// Why a connection is not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// The service's queue (`scale.hold_queue`).
    Service,
    /// The activator's total.
    Total,
}

impl Queue {
    /// A queue holding at most `max_held` connections in all.
    pub(super) fn new(max_held: usize) -> Queue {
        Queue {
            max_held,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the services' holding inputs; a service not named gets [`Hold::default`].
    pub(super) fn set_holds(&self, holds: BTreeMap<String, Hold>) {
        self.lock().holds = holds;
    }

    /// The holding inputs of `service`.
    pub(super) fn hold_of(&self, service: &str) -> Hold {
        self.lock().holds.get(service).copied().unwrap_or_default()
    }

    /// Registers a held connection for `service`, within its queue and the total.
    pub(super) fn hold(self: &Arc<Self>, service: &str) -> Result<Ticket, Full> {
        let mut state = self.lock();
        let limit = state.holds.get(service).copied().unwrap_or_default().queue;
        if state.held >= self.max_held {
            return Err(Full::Total);
        }
        let counts = state.counts.entry(service.to_string()).or_default();
        if counts.held >= limit {
            if *counts == Counts::default() {
                state.counts.remove(service);
            }
            return Err(Full::Service);
        }
        counts.held += 1;
        state.held += 1;
        Ok(Ticket {
            queue: Arc::clone(self),
            service: service.to_string(),
            proxied: false,
        })
    }

    /// True at most once per [`WAKE_EVERY`] for each service: whether to send a wake now.
    pub(super) fn wake_due(&self, service: &str, now: Instant) -> bool {
        let mut state = self.lock();
        // Forget the old ones: the map stays as small as the services woken within a second.
        state
            .woken
            .retain(|_, at| now.saturating_duration_since(*at) < WAKE_EVERY);
        if state.woken.contains_key(service) {
            return false;
        }
        state.woken.insert(service.to_string(), now);
        true
    }

    /// The counts of the services with a connection held or proxied.
    pub(super) fn counts(&self) -> BTreeMap<String, Counts> {
        self.lock().counts.clone()
    }
}

/// One held connection's place; moved to the proxied count at hand-over, released on drop.
#[derive(Debug)]
pub(super) struct Ticket {
    queue: Arc<Queue>,
    service: String,
    proxied: bool,
}

impl Ticket {
    /// The connection was handed to an instance: it no longer takes a place in the queue.
    pub(super) fn proxying(&mut self) {
        if self.proxied {
            return;
        }
        self.proxied = true;
        let mut state = self.queue.lock();
        state.held = state.held.saturating_sub(1);
        let counts = state.counts.entry(self.service.clone()).or_default();
        counts.held = counts.held.saturating_sub(1);
        counts.proxied += 1;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        if !self.proxied {
            state.held = state.held.saturating_sub(1);
        }
        let Some(counts) = state.counts.get_mut(&self.service) else {
            return;
        };
        if self.proxied {
            counts.proxied = counts.proxied.saturating_sub(1);
        } else {
            counts.held = counts.held.saturating_sub(1);
        }
        if *counts == Counts::default() {
            state.counts.remove(&self.service);
        }
    }
}
