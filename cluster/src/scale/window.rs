//! What one board measures per service, and the table it gossips (design section 1, "Windows on
//! the board").
//!
//! Sources report *request-milliseconds* over a period: the integral of the requests in flight,
//! so `inflight_ms / period_ms` is the exact mean concurrency of the period. [`Windows::record`]
//! spreads a report evenly over the buckets its period covers and adds it to three fixed rings:
//! - the **stable** ring: at most 60 slots covering `window_ms` (a slot is one bucket for windows
//!   up to two minutes, several for longer ones), summing request-milliseconds;
//! - the **peak** ring: at most 33 slots covering `idle_after_ms`, each keeping the highest
//!   per-bucket sum seen in it;
//! - a **fine** ring of the last four buckets' sums, which the peak needs (a bucket's sum grows
//!   as reports come in) and which keeps an unfinished bucket out of the means.
//!
//! [`Windows::table`] at bucket `b` reads the finished buckets (those before `b`): the stable and
//! panic means, the peak, and what is held now, each quantised ([`super::quantise`]).
//!
//! Memory is fixed per service (about 1.6 kB), for at most [`MAX_SERVICES`] services, and only for
//! services that have a policy and saw load within their forget span (`idle_after`, or the window
//! if longer): the rest are dropped, as they would read as zero anyway.

use std::collections::BTreeMap;

use super::{quantise, Policy, ServiceLoad, BUCKET_MS, MAX_LOAD_ENTRIES, MAX_LOAD_VALUE};

/// The most services measured at once; reports for more are counted and dropped.
pub const MAX_SERVICES: usize = 1024;

/// The stable window is cut into at most this many slots.
const STABLE_SLOTS: u64 = 60;
const STABLE_RING: usize = 64;
/// The idle window is cut into at most this many slots (plus one, as it is not slot-aligned).
const PEAK_SLOTS: u64 = 32;
const PEAK_RING: usize = 35;
const FINE_RING: usize = 4;
/// A report spreads over at most this many buckets; older parts of a longer period are dropped.
const MAX_PERIOD_BUCKETS: u64 = 3;

/// One board's table of a bucket: what goes into its gossip values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadTable {
    /// The bucket it was computed at (`load_bucket` in the gossip).
    pub bucket: u32,
    /// Services with some non-zero value, sorted by index, at most [`MAX_LOAD_ENTRIES`].
    pub entries: Vec<ServiceLoad>,
    /// Loaded services left out for want of room (the smallest peaks), for the status.
    pub cut: usize,
}

/// Per-service measurements of this board. See the module documentation.
#[derive(Debug, Default)]
pub struct Windows {
    /// The shape of each service that had a policy at the last [`Windows::table`].
    shapes: BTreeMap<String, Shape>,
    tracks: BTreeMap<String, Track>,
    refused: u64,
}

/// How a policy cuts time into slots, in buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// Buckets per stable slot.
    width: u64,
    /// Stable slots in the window.
    slots: u64,
    /// Stable slots in the panic window: a tenth, at least one.
    panic: u64,
    /// Buckets in the idle window.
    idle: u64,
    /// Buckets per peak slot.
    peak_width: u64,
    /// Buckets without load after which the service is dropped.
    forget: u64,
    target: u32,
}

impl Shape {
    fn of(policy: &Policy) -> Shape {
        // Seven days bound both, so nothing below overflows.
        const WEEK: u64 = 7 * 86_400_000;
        let window = policy.window_ms.min(WEEK).div_ceil(BUCKET_MS).max(1);
        let slots = window.min(STABLE_SLOTS);
        let width = window.div_ceil(slots);
        let idle = policy.idle_after_ms.min(WEEK).div_ceil(BUCKET_MS).max(1);
        let peak_width = idle.div_ceil(PEAK_SLOTS);
        Shape {
            width,
            slots,
            panic: (slots / 10).max(1),
            idle,
            peak_width,
            forget: (idle + peak_width).max(slots * width + width),
            target: policy.target(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    value: u64,
}

const EMPTY: Slot = Slot {
    id: u64::MAX,
    value: 0,
};

/// The slot of `id` in `ring`, emptied if it held an older id; `None` if it holds a newer one
/// (the report is too old to keep).
fn slot(ring: &mut [Slot], id: u64) -> Option<&mut Slot> {
    let len = ring.len() as u64;
    let at = ring.get_mut((id % len) as usize)?;
    if at.id != id {
        if at.id != EMPTY.id && at.id > id {
            return None;
        }
        *at = Slot { id, value: 0 };
    }
    Some(at)
}

fn value(ring: &[Slot], id: u64) -> u64 {
    let len = ring.len() as u64;
    ring.get((id % len) as usize)
        .filter(|s| s.id == id)
        .map_or(0, |s| s.value)
}

#[derive(Debug)]
struct Track {
    shape: Shape,
    stable: [Slot; STABLE_RING],
    peak: [Slot; PEAK_RING],
    fine: [Slot; FINE_RING],
    held: u32,
    /// The newest bucket with load.
    loaded: u64,
}

impl Track {
    fn new(shape: Shape) -> Track {
        Track {
            shape,
            stable: [EMPTY; STABLE_RING],
            peak: [EMPTY; PEAK_RING],
            fine: [EMPTY; FINE_RING],
            held: 0,
            loaded: 0,
        }
    }

    fn add(&mut self, bucket: u64, request_ms: u64) {
        let Some(fine) = slot(&mut self.fine, bucket) else {
            return;
        };
        fine.value = fine.value.saturating_add(request_ms);
        let sum = fine.value;
        if let Some(s) = slot(&mut self.stable, bucket / self.shape.width) {
            s.value = s.value.saturating_add(request_ms);
        }
        if let Some(p) = slot(&mut self.peak, bucket / self.shape.peak_width) {
            p.value = p.value.max(sum);
        }
        self.loaded = self.loaded.max(bucket);
    }

    /// Request-milliseconds and duration (ms) of the last `slots` stable slots before bucket `b`.
    fn mean(&self, b: u64, slots: u64) -> (u64, u64) {
        let w = self.shape.width;
        let last = (b - 1) / w;
        let first = last.saturating_sub(slots - 1);
        let mut sum: u64 = (first..=last).map(|id| value(&self.stable, id)).sum();
        // The last slot may hold the unfinished bucket `b` (or later ones) when slots are wide.
        for f in self.fine.iter().filter(|f| f.id != EMPTY.id && f.id >= b) {
            if f.id / w == last {
                sum = sum.saturating_sub(f.value);
            }
        }
        let buckets = (last - first) * w + (b - last * w);
        (sum, buckets * BUCKET_MS)
    }

    /// The highest per-bucket sum over the idle window before bucket `b`.
    fn peak(&self, b: u64) -> u64 {
        let v = self.shape.peak_width;
        let first = b.saturating_sub(self.shape.idle) / v;
        (first..=(b - 1) / v)
            .map(|id| value(&self.peak, id))
            .max()
            .unwrap_or(0)
    }
}

impl Windows {
    /// Nothing measured yet.
    pub fn new() -> Windows {
        Windows::default()
    }

    /// Adds `inflight_ms` request-milliseconds measured over the `period_ms` before `now_ms` to
    /// `service`. Sources add up. A service with no policy at the last [`Windows::table`] is not
    /// measured (the first bucket of a new service is lost, which the window absorbs).
    pub fn record(&mut self, service: &str, now_ms: u64, inflight_ms: u64, period_ms: u64) {
        if inflight_ms == 0 || period_ms == 0 {
            return;
        }
        let Some(track) = self.track(service) else {
            return;
        };
        let span = period_ms.min(MAX_PERIOD_BUCKETS * BUCKET_MS);
        // Only the part of the period that is kept counts: the rest is older than the rings.
        let total = (u128::from(inflight_ms) * u128::from(span) / u128::from(period_ms)) as u64;
        let start = now_ms.saturating_sub(span);
        let mut given = 0;
        let mut at = start;
        while at < now_ms {
            let bucket = at / BUCKET_MS;
            let end = ((bucket + 1) * BUCKET_MS).min(now_ms);
            // The last piece takes the rounding remainder, so that the total stays exact.
            let part = if end == now_ms {
                total - given
            } else {
                (u128::from(total) * u128::from(end - at) / u128::from(span)) as u64
            };
            given += part;
            if part > 0 {
                track.add(bucket, part);
            }
            at = end;
        }
    }

    /// Sets how many requests or connections of `service` wait for an instance now (the
    /// caller sums its sources). A service that holds something is never dropped.
    pub fn held(&mut self, service: &str, count: u32) {
        if count == 0 {
            if let Some(track) = self.tracks.get_mut(service) {
                track.held = 0;
            }
            return;
        }
        if let Some(track) = self.track(service) {
            track.held = count;
        }
    }

    /// Reports dropped because [`MAX_SERVICES`] services were measured already.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// How many services are measured now.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no service is measured.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    fn track(&mut self, service: &str) -> Option<&mut Track> {
        let shape = *self.shapes.get(service)?;
        if !self.tracks.contains_key(service) {
            if self.tracks.len() >= MAX_SERVICES {
                self.refused = self.refused.saturating_add(1);
                return None;
            }
            self.tracks.insert(service.to_string(), Track::new(shape));
        }
        self.tracks.get_mut(service)
    }

    /// The table at `now_ms`: the finished buckets, for the services of `policies`. `names` are
    /// the spec's service names, sorted: an entry's index is its name's position there. Takes
    /// the policies for the reports to come, resets a service whose policy changed its shape
    /// and drops services without a policy or without load for their forget span.
    pub fn table(
        &mut self,
        now_ms: u64,
        policies: &BTreeMap<String, Policy>,
        names: &[String],
    ) -> LoadTable {
        let b = now_ms / BUCKET_MS;
        self.shapes = policies
            .iter()
            .map(|(name, policy)| (name.clone(), Shape::of(policy)))
            .collect();
        let shapes = &self.shapes;
        self.tracks.retain(|name, track| {
            let Some(shape) = shapes.get(name) else {
                return false;
            };
            if *shape != track.shape {
                let held = track.held;
                *track = Track::new(*shape);
                track.held = held;
            }
            // A clock stepped back by more than the forget span leaves `loaded` in the future:
            // that load is as stale as an old one.
            let forget = track.shape.forget;
            let recent = track.loaded.saturating_add(forget) >= b
                && track.loaded <= b.saturating_add(forget);
            track.held > 0 || recent
        });
        let mut entries = Vec::new();
        if b > 0 {
            for (index, name) in names.iter().enumerate().take(usize::from(u16::MAX) + 1) {
                let Some(track) = self.tracks.get(name) else {
                    continue;
                };
                let entry = entry(track, b, index as u16);
                if (entry.stable, entry.panic, entry.peak, entry.held) != (0, 0, 0, 0) {
                    entries.push(entry);
                }
            }
        }
        let cut = entries.len().saturating_sub(MAX_LOAD_ENTRIES);
        if cut > 0 {
            // Waits first (a wake must get through), then the largest loads.
            entries.sort_by_key(|e| (std::cmp::Reverse((e.held > 0, e.peak)), e.service));
            entries.truncate(MAX_LOAD_ENTRIES);
            entries.sort_by_key(|e| e.service);
        }
        LoadTable {
            bucket: u32::try_from(b).unwrap_or(u32::MAX),
            entries,
            cut,
        }
    }
}

fn entry(track: &Track, b: u64, service: u16) -> ServiceLoad {
    let shape = &track.shape;
    let (sum, ms) = track.mean(b, shape.slots);
    let (panic_sum, panic_ms) = track.mean(b, shape.panic);
    ServiceLoad {
        service,
        stable: quantise(sum, ms, shape.target),
        panic: quantise(panic_sum, panic_ms, shape.target),
        peak: quantise(track.peak(b), BUCKET_MS, shape.target),
        held: track.held.min(u32::from(MAX_LOAD_VALUE)) as u16,
    }
}
