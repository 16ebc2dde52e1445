//! The instance chosen for one request and the report of its outcome.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::balance::Service;
use super::slot::{lock, InFlight, Slot};

/// The instance chosen for one request, counted in flight until its outcome is reported or it
/// is dropped. Report exactly one outcome: [`Pick::success`] or [`Pick::local_failure`]; a pick
/// dropped without one (the client went away) counts as neither and frees its trial.
#[derive(Debug)]
pub struct Pick {
    pub(super) id: Arc<str>,
    pub(super) addr: SocketAddr,
    pub(super) board: Arc<str>,
    pub(super) service: Arc<Service>,
    /// Set when this request is the instance's trial after an ejection.
    pub(super) trial: Option<Trial>,
    pub(super) guard: InFlight,
}

/// An instance's trial, taken by one request; given back if that request ends without an
/// outcome, so that another may try.
#[derive(Debug)]
pub(super) struct Trial {
    pub(super) slot: Arc<Slot>,
    pub(super) decided: bool,
}

impl Drop for Trial {
    fn drop(&mut self) {
        if !self.decided {
            lock(&self.slot.health).abandon_trial();
        }
    }
}

impl Pick {
    /// The instance's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The board the instance runs on.
    pub fn board(&self) -> &str {
        &self.board
    }

    /// Whether this request is the instance's one trial after an ejection.
    pub fn is_trial(&self) -> bool {
        self.trial.is_some()
    }

    /// Takes the trial out, marked decided: the outcome about to be reported settles it.
    fn decide_trial(&mut self) -> bool {
        match self.trial.as_mut() {
            Some(trial) => {
                trial.decided = true;
                true
            }
            None => false,
        }
    }

    /// The instance answered (a response head arrived; an upstream 5xx is an answer too: it
    /// counts for the stats, not for health). Returns the in-flight guard, to be held until
    /// the response's body ends.
    pub fn success(mut self, now: Instant) -> InFlight {
        let trial = self.decide_trial();
        let slot = self.guard.slot();
        slot.count(true);
        let mut health = lock(&slot.health);
        health.success(now, trial);
        slot.ejected.store(health.ejected(), Ordering::Relaxed);
        drop(health);
        self.guard
    }

    /// The instance failed locally: connect refused or timed out, or reset before the
    /// response head. The request is no longer in flight there.
    pub fn local_failure(mut self, now: Instant) {
        let trial = self.decide_trial();
        let slot = self.guard.slot();
        slot.count(false);
        self.service.failed(slot, now, trial);
        self.guard.end(now);
    }
}
