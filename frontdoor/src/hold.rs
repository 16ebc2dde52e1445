//! Requests held for a service that has no ready instance (docs/design/front-door.md,
//! section 6, "Holding").
//!
//! With a [`Hold`] policy, a request that finds no ready instance waits in its service's
//! bounded queue until one is ready or its time is up; the proxy then answers 503. The first
//! waiter of a service asks the init to start an instance (`Wake`), and while requests wait
//! the oldest of them asks again at most once per [`WAKE_EVERY`]: many waiters, one wake-up.
//! That holds across requests that wait one after another too: an emptied queue keeps the
//! time of its last `Wake` for a second.
//!
//! Who tells the waiters: the proxy calls [`Holds::notify`] after every
//! [`Balancer::set`] of the service (the balancer knows nothing of the queues). Waiters are
//! woken in the order they came and each checks the balancer itself, so a spurious notify
//! costs a look and nothing more.

use std::collections::{HashMap, VecDeque};
use std::future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep_until, Instant};

use crate::config::model::Hold;
use crate::control::protocol::{Held, MAX_HELD};
use crate::upstream::balance::Balancer;
use crate::upstream::slot::lock;

/// Services with requests held at once; a request for another service beyond is refused
/// as if its queue were full.
pub const MAX_HELD_SERVICES: usize = MAX_HELD;
/// Requests one service's queue holds at most, whatever the policy says (leaving the queue
/// costs a scan of it).
pub const MAX_QUEUE: u32 = 4096;
/// A `Wake` is sent again at most this often while requests of the service wait.
pub const WAKE_EVERY: Duration = Duration::from_secs(1);
/// The longest wait, whatever the policy says (a far deadline that cannot overflow a clock).
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Why a held request gives up (the proxy answers 503 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    /// The service's queue is full (or too many services have requests held).
    #[error("the queue of requests waiting for the service is full")]
    Full,
    /// No instance was ready within the policy's timeout.
    #[error("no instance of the service became ready in time")]
    Timeout,
}

/// The queues of every service, shared by all connection tasks.
#[derive(Debug)]
pub struct Holds {
    services: Mutex<HashMap<String, Queue>>,
    wake: mpsc::Sender<String>,
    tickets: AtomicU64,
}

/// One service's waiters, oldest first.
#[derive(Debug)]
struct Queue {
    waiters: VecDeque<Waiter>,
    /// When the last `Wake` went. An emptied queue is kept while this is recent, so that
    /// requests waiting one after another do not send a `Wake` each.
    last_wake: Option<Instant>,
}

#[derive(Debug)]
struct Waiter {
    ticket: u64,
    since: Instant,
    notify: Arc<Notify>,
}

impl Holds {
    /// Queues that send `Wake`s through `wake` (with `try_send`: a full channel drops the
    /// wake-up, and the next one comes a second later while requests still wait).
    pub fn new(wake: mpsc::Sender<String>) -> Holds {
        Holds {
            services: Mutex::new(HashMap::new()),
            wake,
            tickets: AtomicU64::new(0),
        }
    }

    /// Waits until `service` has a ready instance in `balancer`, within `hold`'s queue and
    /// timeout. Returns at once if one is ready. Cancel-safe: dropping the future leaves the
    /// queue as if the request had never waited.
    pub async fn wait(
        &self,
        service: &str,
        hold: Hold,
        balancer: &Balancer,
    ) -> Result<(), HoldError> {
        if balancer.has_ready(service) {
            return Ok(());
        }
        let now = Instant::now();
        let timeout = Duration::from_millis(hold.timeout_ms).min(LONGEST_WAIT);
        let deadline = now + timeout;
        let place = self.enqueue(service, hold.queue, now)?;
        loop {
            // Checked after enqueueing: a notify from here on leaves a permit on `notify`.
            if balancer.has_ready(service) {
                return Ok(());
            }
            let resend = self.resend_at(service, place.ticket);
            let again = async {
                match resend {
                    Some(at) => sleep_until(at).await,
                    None => future::pending().await,
                }
            };
            tokio::select! {
                () = place.notify.notified() => {}
                () = sleep_until(deadline) => return Err(HoldError::Timeout),
                () = again => self.wake_again(service),
            }
        }
    }

    /// `service`'s instances changed: its waiters look again, oldest first.
    pub fn notify(&self, service: &str) {
        let services = lock(&self.services);
        if let Some(queue) = services.get(service) {
            for waiter in &queue.waiters {
                waiter.notify.notify_one();
            }
        }
    }

    /// The services with requests held at `now` (from tokio's clock, `Instant::now().into_std()`
    /// on tokio's `Instant`, which is the real clock outside paused tests).
    pub fn held(&self, now: std::time::Instant) -> Vec<Held> {
        let services = lock(&self.services);
        services
            .iter()
            .filter_map(|(service, queue)| {
                let oldest = queue.waiters.front()?.since.into_std();
                Some(Held {
                    service: service.clone(),
                    count: queue.waiters.len() as u64,
                    oldest_ms: millis(now.saturating_duration_since(oldest)),
                })
            })
            .collect()
    }

    /// Puts a waiter at the end of `service`'s queue (of `max`, at most [`MAX_QUEUE`]); the
    /// first of a service sends a `Wake`, unless one went less than [`WAKE_EVERY`] ago (then
    /// its timer sends the next).
    fn enqueue(&self, service: &str, max: u32, now: Instant) -> Result<Place<'_>, HoldError> {
        let mut services = lock(&self.services);
        if !services.contains_key(service) && services.len() >= MAX_HELD_SERVICES {
            // Forget the queues kept only for their last wake-up's time.
            services.retain(|_, queue| !queue.waiters.is_empty());
            if services.len() >= MAX_HELD_SERVICES {
                return Err(HoldError::Full);
            }
        }
        let queue = services.entry(service.to_owned()).or_insert_with(|| Queue {
            waiters: VecDeque::new(),
            last_wake: None,
        });
        if queue.waiters.len() >= max.min(MAX_QUEUE) as usize {
            if queue.waiters.is_empty() && queue.last_wake.is_none() {
                services.remove(service);
            }
            return Err(HoldError::Full);
        }
        let notify = Arc::new(Notify::new());
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        queue.waiters.push_back(Waiter {
            ticket,
            since: now,
            notify: Arc::clone(&notify),
        });
        let due = queue.last_wake.is_none_or(|at| now >= at + WAKE_EVERY);
        if queue.waiters.len() == 1 && due {
            queue.last_wake = Some(now);
            self.send_wake(service);
        }
        Ok(Place {
            holds: self,
            service: service.to_owned(),
            ticket,
            notify,
        })
    }

    /// When the waiter `ticket` should send the next `Wake`: only the oldest waiter keeps
    /// that timer.
    fn resend_at(&self, service: &str, ticket: u64) -> Option<Instant> {
        let services = lock(&self.services);
        let queue = services.get(service)?;
        let head = queue.waiters.front()?;
        let last = queue.last_wake?;
        (head.ticket == ticket).then_some(last + WAKE_EVERY)
    }

    fn wake_again(&self, service: &str) {
        let now = Instant::now();
        let mut services = lock(&self.services);
        if let Some(queue) = services.get_mut(service) {
            if queue.last_wake.is_none_or(|at| now >= at + WAKE_EVERY) {
                queue.last_wake = Some(now);
                self.send_wake(service);
            }
        }
    }

    fn send_wake(&self, service: &str) {
        // Never blocks; a full or closed channel loses this wake-up only.
        let _ = self.wake.try_send(service.to_owned());
    }
}

/// A waiter's place in its queue; leaving it (return, timeout or a dropped future) removes it.
#[derive(Debug)]
struct Place<'a> {
    holds: &'a Holds,
    service: String,
    ticket: u64,
    notify: Arc<Notify>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut services = lock(&self.holds.services);
        let Some(queue) = services.get_mut(&self.service) else {
            return;
        };
        let was_head = queue
            .waiters
            .front()
            .is_some_and(|w| w.ticket == self.ticket);
        queue.waiters.retain(|w| w.ticket != self.ticket);
        match queue.waiters.front() {
            None => {
                let now = Instant::now();
                if queue.last_wake.is_none_or(|at| now >= at + WAKE_EVERY) {
                    services.remove(&self.service);
                }
            }
            // The new oldest takes over the `Wake` timer.
            Some(next) if was_head => next.notify.notify_one(),
            Some(_) => {}
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "hold_tests.rs"]
mod tests;
