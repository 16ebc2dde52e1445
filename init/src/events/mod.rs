//! The board's events (see `docs/design/observability.md`, section 2): a ring of the last
//! [`RING`] events, numbered from 1 at boot, and a broadcast to the readers that follow them.
//!
//! Raising never waits: the ring drops its oldest event, and a reader more than [`CHANNEL`]
//! events behind is told how many it missed (a `lagged` event) rather than slowing the board.
//! Events are raised and numbered under one lock, so the broadcast's order is the numbers'
//! order, and a reader that takes the past and subscribes under that lock sees no gap and no
//! event twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use baton_api::events::{Event, What, RING};
use tokio::sync::broadcast;

/// How far a following reader may fall behind before it is told it lagged.
pub const CHANNEL: usize = 1024;
/// How many readers may follow at once.
pub const MAX_STREAMS: usize = 32;

/// The kept events and the next number.
#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Arc<Event>>,
    next: u64,
}

/// The board's event bus; share it in an [`Arc`].
#[derive(Debug)]
pub struct Bus {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<Event>>,
    board: OnceLock<String>,
    boot: u64,
    streams: AtomicUsize,
}

/// A following reader's place among [`MAX_STREAMS`]; given back on drop.
#[derive(Debug)]
pub struct StreamSlot(Arc<Bus>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Bus {
    /// A bus for this boot: the kernel's boot id tells boots apart (the clock cannot, on a board
    /// without a battery-backed clock that has not synced yet).
    fn default() -> Bus {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|id| {
                let hex = id.trim().replace('-', "");
                u64::from_str_radix(hex.get(..16)?, 16).ok()
            })
            .unwrap_or_else(now_ms);
        Bus::new(boot)
    }
}

impl Bus {
    /// A bus for the boot `boot` tells apart from the board's others (its events' ids carry it,
    /// since numbers start again at every boot).
    pub fn new(boot: u64) -> Bus {
        Bus {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(RING),
                next: 1,
            }),
            tx: broadcast::channel(CHANNEL).0,
            board: OnceLock::new(),
            boot,
            streams: AtomicUsize::new(0),
        }
    }

    /// Names the board its events come from, once it is known (later calls change nothing).
    pub fn set_board(&self, name: &str) {
        let _ = self.board.set(name.to_string());
    }

    /// The board's name (empty until it is known).
    pub fn board(&self) -> &str {
        self.board.get().map(String::as_str).unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises `what` now.
    pub fn raise(&self, mut what: What) {
        what.cut_texts();
        let mut ring = self.lock();
        let event = Arc::new(Event {
            seq: ring.next,
            at_ms: now_ms(),
            board: self.board.get().cloned().unwrap_or_default(),
            what,
        });
        ring.next += 1;
        if ring.events.len() >= RING {
            ring.events.pop_front();
        }
        ring.events.push_back(Arc::clone(&event));
        // No reader is not an error.
        let _ = self.tx.send(event);
    }

    /// The last `tail` events after number `after` (all kept ones without it), oldest first.
    pub fn recent(&self, after: Option<u64>, tail: usize) -> Vec<Arc<Event>> {
        let ring = self.lock();
        Self::past(&ring, after, tail)
    }

    fn past(ring: &Ring, after: Option<u64>, tail: usize) -> Vec<Arc<Event>> {
        let newer: Vec<&Arc<Event>> = ring
            .events
            .iter()
            .filter(|e| after.is_none_or(|a| e.seq > a))
            .collect();
        let skip = newer.len().saturating_sub(tail);
        newer.into_iter().skip(skip).cloned().collect()
    }

    /// For a reader that follows: the past as [`Bus::recent`] gives it, how many events after
    /// `after` the ring no longer holds, and a receiver of every event after those.
    pub fn follow(
        &self,
        after: Option<u64>,
        tail: usize,
    ) -> (Vec<Arc<Event>>, u64, broadcast::Receiver<Arc<Event>>) {
        let ring = self.lock();
        let past = Self::past(&ring, after, tail);
        let oldest = ring.events.front().map_or(ring.next, |e| e.seq);
        let missed = after.map_or(0, |a| oldest.saturating_sub(a.saturating_add(1)));
        (past, missed, self.tx.subscribe())
    }

    /// A place for one more following reader, unless [`MAX_STREAMS`] follow already.
    pub fn stream(self: &Arc<Self>) -> Option<StreamSlot> {
        let taken = self
            .streams
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            });
        taken.ok().map(|_| StreamSlot(Arc::clone(self)))
    }

    /// The id a server-sent event carries: the board, its boot and the number
    /// (`pi-a:13712948114301123642.42`).
    pub fn id(&self, seq: u64) -> String {
        format!(
            "{}:{}.{seq}",
            self.board.get().map(String::as_str).unwrap_or_default(),
            self.boot
        )
    }

    /// The number after which a reader that last saw `last_event_id` goes on: `None` for an
    /// id of another board or boot, or one that does not read (it then gets the last ones).
    pub fn after(&self, last_event_id: &str) -> Option<u64> {
        let board = self.board.get()?;
        last_event_id.split(',').find_map(|id| {
            let (name, rest) = id.trim().rsplit_once(':')?;
            let (boot, seq) = rest.split_once('.')?;
            (name == board && boot.parse::<u64>().ok()? == self.boot)
                .then(|| seq.parse().ok())
                .flatten()
        })
    }
}

/// Milliseconds since the Unix epoch, by the board's clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
