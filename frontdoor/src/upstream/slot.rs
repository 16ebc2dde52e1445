//! The counters of one instance (requests in flight, their integral over time, outcomes), the
//! in-flight guard that keeps them right, and the retry budget over all instances.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::health::Health;

/// Locks a mutex; a panic elsewhere while holding it left plain counters, still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What lives as long as the instance's id stays in its service.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Requests in flight; read without a lock by `pick`, changed under `stats`' lock so the
    /// integral sees every change.
    pub(crate) inflight: AtomicU32,
    /// A copy of `health.ejected()`, so `pick` skips the lock for instances that are in.
    pub(crate) ejected: AtomicBool,
    pub(crate) health: Mutex<Health>,
    stats: Mutex<Stats>,
}

/// The counters of the current load period.
#[derive(Debug, Default)]
struct Stats {
    /// When the in-flight count last changed or the period last started.
    last: Option<Instant>,
    /// In-flight requests summed over time, in request-nanoseconds. What is under a
    /// millisecond at a report is carried to the next period, so nothing is lost to rounding.
    sum_ns: u128,
    completed: u64,
    failed: u64,
}

impl Stats {
    /// Adds what was in flight from the last change to `now`. A `now` before the last change
    /// (two callers' clocks read in another order) adds nothing and keeps the later time.
    fn advance(&mut self, inflight: u32, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_nanos();
            self.sum_ns = self.sum_ns.saturating_add(elapsed * u128::from(inflight));
            if now > last {
                self.last = Some(now);
            }
        } else {
            self.last = Some(now);
        }
    }
}

/// One instance's report for a period (see `control::protocol::InstanceLoad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) inflight_now: u64,
    pub(crate) inflight_ms: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
}

impl Report {
    pub(crate) fn idle(&self) -> bool {
        *self
            == Report {
                inflight_now: 0,
                inflight_ms: 0,
                completed: 0,
                failed: 0,
            }
    }
}

impl Slot {
    fn enter(&self, now: Instant) {
        let mut stats = lock(&self.stats);
        stats.advance(self.inflight.load(Ordering::Relaxed), now);
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    fn leave(&self, now: Instant) {
        let mut stats = lock(&self.stats);
        let inflight = self.inflight.load(Ordering::Relaxed);
        stats.advance(inflight, now);
        self.inflight
            .store(inflight.saturating_sub(1), Ordering::Relaxed);
    }

    pub(crate) fn count(&self, completed: bool) {
        let mut stats = lock(&self.stats);
        if completed {
            stats.completed = stats.completed.saturating_add(1);
        } else {
            stats.failed = stats.failed.saturating_add(1);
        }
    }

    /// The period's report up to `now`; with `reset`, a new period starts.
    pub(crate) fn report(&self, now: Instant, reset: bool) -> Report {
        let mut stats = lock(&self.stats);
        let inflight = self.inflight.load(Ordering::Relaxed);
        stats.advance(inflight, now);
        let report = Report {
            inflight_now: u64::from(inflight),
            inflight_ms: u64::try_from(stats.sum_ns / 1_000_000).unwrap_or(u64::MAX),
            completed: stats.completed,
            failed: stats.failed,
        };
        if reset {
            stats.sum_ns %= 1_000_000;
            stats.completed = 0;
            stats.failed = 0;
        }
        report
    }
}

/// The requests in flight over all instances, and the retries among them.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) inflight: AtomicU32,
    pub(crate) retries: AtomicU32,
}

/// Share of the requests in flight that may be retries, as 1 in this many.
pub const RETRY_SHARE: u32 = 5;

impl Totals {
    /// A retry permit if the retries in flight stay within the budget: at most one in
    /// [`RETRY_SHARE`] of the requests in flight, counting the one asking (whose failed attempt
    /// the caller has already reported), and always at least one.
    pub(crate) fn retry_permit(self: &Arc<Self>) -> Option<RetryPermit> {
        let inflight = self.inflight.load(Ordering::Relaxed).saturating_add(1);
        let allowed = (inflight / RETRY_SHARE).max(1);
        self.retries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |retries| {
                (retries < allowed).then_some(retries + 1)
            })
            .ok()?;
        Some(RetryPermit {
            totals: Arc::clone(self),
        })
    }
}

/// The right to retry a request once; held for the retry's duration, released on drop.
#[derive(Debug)]
pub struct RetryPermit {
    totals: Arc<Totals>,
}

impl Drop for RetryPermit {
    fn drop(&mut self) {
        self.totals.retries.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request in flight to an instance: counted from the pick until [`InFlight::end`] or drop
/// (a response body wrapper holds it until the end of the stream). Ends exactly once; the
/// counters it holds stay valid if the instance leaves its service meanwhile.
#[derive(Debug)]
pub struct InFlight {
    slot: Arc<Slot>,
    totals: Arc<Totals>,
    ended: bool,
}

impl InFlight {
    pub(crate) fn start(slot: Arc<Slot>, totals: Arc<Totals>, now: Instant) -> InFlight {
        slot.enter(now);
        totals.inflight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            slot,
            totals,
            ended: false,
        }
    }

    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// Ends the request at `now` (dropping ends it at the real clock's now).
    pub fn end(mut self, now: Instant) {
        self.finish(now);
    }

    fn finish(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.slot.leave(now);
        self.totals.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finish(Instant::now());
    }
}
