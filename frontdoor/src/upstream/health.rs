//! Passive health of one instance: consecutive local failures eject it for a while, and one
//! trial request decides whether it comes back.
//!
//! This is the state machine alone, on an explicit clock; whether an ejection may happen (it
//! may not leave a service without an eligible instance) is decided by the caller, which sees
//! the whole service.

use std::time::{Duration, Instant};

/// Consecutive local failures (connect refused or timed out, reset before the response head)
/// that eject an instance.
pub const FAILURES_TO_EJECT: u32 = 3;
/// An instance's n-th ejection lasts n times this...
pub const EJECTION_STEP: Duration = Duration::from_secs(10);
/// ...up to this.
pub const EJECTION_MAX: Duration = Duration::from_secs(300);
/// An instance back in for this long without another ejection has its ejection count
/// forgotten: its next ejection is short again. The cap is the natural scale: an instance that
/// stayed healthy for the longest ejection has earned a fresh start.
pub const FORGET_AFTER: Duration = EJECTION_MAX;

/// Whether a request may go to the instance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// It is in.
    Yes,
    /// Its ejection is over and no trial is under way: one request may try it.
    Trial,
    /// It is ejected, or its trial is under way.
    No,
}

/// The health of one instance.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Local failures in a row while in.
    consecutive: u32,
    /// Times ejected (n), forgotten after [`FORGET_AFTER`] back in.
    ejections: u32,
    /// While ejected (including its trial), when the ejection ends.
    until: Option<Instant>,
    /// A trial request is in flight.
    trial: bool,
    /// When it last came back from an ejection.
    back_since: Option<Instant>,
}

impl Health {
    /// Whether a request may go to it at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Admit {
        match self.until {
            None => Admit::Yes,
            Some(until) if until <= now && !self.trial => Admit::Trial,
            Some(_) => Admit::No,
        }
    }

    /// Whether it is ejected (its trial included).
    pub(crate) fn ejected(&self) -> bool {
        self.until.is_some()
    }

    /// Takes the trial; false if it is not available (another request took it first).
    pub(crate) fn claim_trial(&mut self, now: Instant) -> bool {
        if self.admit(now) != Admit::Trial {
            return false;
        }
        self.trial = true;
        true
    }

    /// A trial request ended with neither outcome (the caller gave up): another may try.
    pub(crate) fn abandon_trial(&mut self) {
        self.trial = false;
    }

    /// A request answered. A trial's success brings the instance back; a request sent before
    /// its ejection that answers late changes nothing (the trial decides).
    pub(crate) fn success(&mut self, now: Instant, trial: bool) {
        if trial && self.trial {
            self.until = None;
            self.trial = false;
            self.consecutive = 0;
            self.back_since = Some(now);
        } else if self.until.is_none() {
            self.consecutive = 0;
        }
    }

    /// A local failure; true if the instance should now be ejected (the caller decides, then
    /// calls [`Health::eject`] or [`Health::keep`]).
    pub(crate) fn failure(&mut self, trial: bool) -> bool {
        if trial && self.trial {
            return true;
        }
        if self.until.is_some() {
            // Sent before the ejection: the instance is already out.
            return false;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        self.consecutive >= FAILURES_TO_EJECT
    }

    /// Ejects the instance for its next backoff.
    pub(crate) fn eject(&mut self, now: Instant) {
        let forgiven = self
            .back_since
            .is_some_and(|back| now.saturating_duration_since(back) >= FORGET_AFTER);
        if forgiven {
            self.ejections = 0;
        }
        self.ejections = self.ejections.saturating_add(1);
        self.until = Some(now + backoff(self.ejections));
        self.trial = false;
        self.consecutive = 0;
        self.back_since = None;
    }

    /// The ejection was refused (it would leave the service with nothing): the instance stays
    /// in. Its failure count stays, so its next failure asks again.
    pub(crate) fn keep(&mut self) {
        if self.trial {
            self.until = None;
            self.trial = false;
        }
    }
}

/// The length of the n-th ejection.
pub fn backoff(n: u32) -> Duration {
    EJECTION_STEP.saturating_mul(n).min(EJECTION_MAX)
}
