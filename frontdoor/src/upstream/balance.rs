//! Least outstanding requests over a service's instances, with passive health and the retry
//! budget (docs/design/front-door.md, section 3).
//!
//! The map of services and each service's list are swapped whole by [`Balancer::set`]; a pick
//! takes two read locks just long enough to clone two `Arc`s, then scans the list with atomic
//! loads only (a health lock is taken for ejected instances alone). Counters and health live
//! in a per-id slot that a new list reuses for the ids it keeps, so a list update neither
//! resets a busy instance nor forgives a failing one.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::control::protocol::{Instance, InstanceLoad, MAX_INSTANCES, MAX_LOAD_INSTANCES};

use super::health::Admit;
use super::pick::{Pick, Trial};
use super::slot::{lock, InFlight, RetryPermit, Slot, Totals};

/// Services the balancer keeps at most; [`Balancer::set`] refuses a new one beyond.
pub const MAX_SERVICES: usize = 4096;
/// Instances of a service kept at most (the control channel's own bound); beyond, a list is
/// cut to its first [`MAX_INSTANCES`].
pub const MAX_SERVICE_INSTANCES: usize = MAX_INSTANCES;
/// Picks tried at most when another request takes an instance's trial between the scan and
/// the claim.
const PICK_ATTEMPTS: usize = 4;

/// Why [`Balancer::set`] refused a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// The balancer has [`MAX_SERVICES`] services and this one is new.
    #[error(
        "service {service:?} is refused: the front door balances {MAX_SERVICES} services at most"
    )]
    TooManyServices {
        /// The service refused.
        service: String,
    },
}

/// One instance in a service's current list.
#[derive(Debug)]
struct Entry {
    id: Arc<str>,
    addr: SocketAddr,
    board: Arc<str>,
    ready: bool,
    slot: Arc<Slot>,
}

impl Entry {
    fn admit(&self, now: Instant) -> Admit {
        if !self.slot.ejected.load(Ordering::Relaxed) {
            return Admit::Yes;
        }
        lock(&self.slot.health).admit(now)
    }
}

/// One service: its current list, and the lock that serialises ejection decisions so two
/// instances failing at once cannot both leave (the last one must stay).
#[derive(Debug, Default)]
pub(super) struct Service {
    entries: RwLock<Arc<[Entry]>>,
    eject: Mutex<()>,
}

impl Service {
    fn entries(&self) -> Arc<[Entry]> {
        Arc::clone(&self.entries.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A local failure of `slot`'s instance; ejects it if that leaves another eligible ready
    /// instance in the service.
    pub(super) fn failed(&self, slot: &Arc<Slot>, now: Instant, trial: bool) {
        let _serial = lock(&self.eject);
        if !lock(&slot.health).failure(trial) {
            return;
        }
        let others = self.entries().iter().any(|entry| {
            entry.ready && !Arc::ptr_eq(&entry.slot, slot) && entry.admit(now) != Admit::No
        });
        let mut health = lock(&slot.health);
        if others {
            health.eject(now);
        } else {
            health.keep();
        }
        slot.ejected.store(health.ejected(), Ordering::Relaxed);
    }
}

/// The instances of every service, shared by all connection tasks (`Send + Sync`).
#[derive(Debug)]
pub struct Balancer {
    services: RwLock<HashMap<String, Arc<Service>>>,
    totals: Arc<Totals>,
    /// The state of a SplitMix64 sequence (seeded from the OS), for tie-breaks.
    seed: AtomicU64,
}

impl Default for Balancer {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer {
    /// An empty balancer.
    pub fn new() -> Balancer {
        // A fixed seed would still balance; the OS's only spreads several front doors apart.
        let seed = getrandom::u64().unwrap_or(0x2545_f491_4f6c_dd1d);
        Balancer {
            services: RwLock::new(HashMap::new()),
            totals: Arc::default(),
            seed: AtomicU64::new(seed),
        }
    }

    fn service(&self, name: &str) -> Option<Arc<Service>> {
        let services = self.services.read().unwrap_or_else(|e| e.into_inner());
        services.get(name).cloned()
    }

    /// Replaces `service`'s instances. Ids that stay keep their counters and health, new ids
    /// start clean, gone ids are dropped (their requests in flight end safely). A repeated id
    /// keeps its first entry; a list beyond [`MAX_SERVICE_INSTANCES`] is cut there. Refused
    /// only for a new service beyond [`MAX_SERVICES`]. The caller then tells the requests held
    /// for the service (`hold::Holds::notify`); the balancer does not know them.
    pub fn set(&self, service: &str, instances: Vec<Instance>) -> Result<(), SetError> {
        let cell = {
            let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
            match services.get(service) {
                Some(cell) => Arc::clone(cell),
                None if services.len() >= MAX_SERVICES => {
                    return Err(SetError::TooManyServices {
                        service: service.to_owned(),
                    })
                }
                None => {
                    let cell = Arc::<Service>::default();
                    services.insert(service.to_owned(), Arc::clone(&cell));
                    cell
                }
            }
        };
        let mut current = cell.entries.write().unwrap_or_else(|e| e.into_inner());
        let old: HashMap<&str, &Arc<Slot>> = current.iter().map(|e| (&*e.id, &e.slot)).collect();
        let mut seen = HashSet::new();
        let entries: Vec<Entry> = instances
            .into_iter()
            .filter(|instance| seen.insert(instance.id.clone()))
            .take(MAX_SERVICE_INSTANCES)
            .map(|instance| Entry {
                slot: old
                    .get(instance.id.as_str())
                    .map(|slot| Arc::clone(slot))
                    .unwrap_or_default(),
                addr: SocketAddr::V4(SocketAddrV4::new(instance.addr, instance.port)),
                board: instance.board.into(),
                ready: instance.ready,
                id: instance.id.into(),
            })
            .collect();
        drop(old);
        *current = entries.into();
        Ok(())
    }

    /// Drops the services not in `names` (those gone from the snapshot).
    pub fn retain_services<I, S>(&self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keep: HashSet<String> = names.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
        services.retain(|name, _| keep.contains(name));
    }

    /// Whether `service` has a ready instance (ejected or not).
    pub fn has_ready(&self, service: &str) -> bool {
        self.ready_count(service) > 0
    }

    /// `service`'s ready instances (ejected or not).
    pub fn ready_count(&self, service: &str) -> usize {
        self.service(service)
            .map_or(0, |cell| cell.entries().iter().filter(|e| e.ready).count())
    }

    /// An instance of `service` for one request: among the ready instances that are in (or
    /// whose ejection is over and whose one trial is free), other than `avoid`, one with the
    /// fewest requests in flight, ties broken at random. If every ready instance is ejected
    /// (readiness changed after the ejections), one of them is taken all the same ("panic
    /// mode"): a service is never left with nothing while something is ready. `None`: no ready
    /// instance other than `avoid`, or only ejected ones besides an eligible `avoid`.
    pub fn pick(&self, service: &str, avoid: Option<&str>, now: Instant) -> Option<Pick> {
        let cell = self.service(service)?;
        let entries = cell.entries();
        for _ in 0..PICK_ATTEMPTS {
            let (index, admit) = self.choose(&entries, avoid, now)?;
            let entry = &entries[index];
            let trial = admit == Admit::Trial;
            if trial && !lock(&entry.slot.health).claim_trial(now) {
                continue;
            }
            let trial = trial.then(|| Trial {
                slot: Arc::clone(&entry.slot),
                decided: false,
            });
            return Some(Pick {
                id: Arc::clone(&entry.id),
                addr: entry.addr,
                board: Arc::clone(&entry.board),
                service: Arc::clone(&cell),
                trial,
                guard: InFlight::start(Arc::clone(&entry.slot), Arc::clone(&self.totals), now),
            });
        }
        None
    }

    /// The scan behind [`Balancer::pick`]: one pass, reservoir sampling over the ties; a
    /// second pass that ignores health if no ready instance at all (`avoid` included) is in.
    fn choose(
        &self,
        entries: &[Entry],
        avoid: Option<&str>,
        now: Instant,
    ) -> Option<(usize, Admit)> {
        let mut rng = Rng(self.seed.fetch_add(Rng::GAMMA, Ordering::Relaxed));
        let mut any_in = false;
        for panic in [false, true] {
            if panic && any_in {
                return None;
            }
            let mut best: Option<(usize, Admit, u32)> = None;
            let mut ties = 0u64;
            for (index, entry) in entries.iter().enumerate() {
                if !entry.ready {
                    continue;
                }
                let admit = if panic { Admit::Yes } else { entry.admit(now) };
                if admit == Admit::No {
                    continue;
                }
                any_in = true;
                if avoid == Some(&*entry.id) {
                    continue;
                }
                let load = entry.slot.inflight.load(Ordering::Relaxed);
                match best {
                    Some((_, _, least)) if load > least => continue,
                    Some((_, _, least)) if load == least => {
                        ties += 1;
                        if rng.below(ties) != 0 {
                            continue;
                        }
                    }
                    _ => ties = 1,
                }
                best = Some((index, admit, load));
            }
            if let Some((index, admit, _)) = best {
                return Some((index, admit));
            }
        }
        None
    }

    /// A permit for one retry, if the retry budget allows it (see [`RetryPermit`]): retries in
    /// flight stay at most one in five of the requests in flight, counting the request asking
    /// (call it after reporting the failed attempt), and one is always allowed.
    pub fn retry_permit(&self) -> Option<RetryPermit> {
        self.totals.retry_permit()
    }

    /// Requests in flight over every instance.
    pub fn inflight(&self) -> u32 {
        self.totals.inflight.load(Ordering::Relaxed)
    }

    /// The load report of every instance since the last call (whose counts it resets), at most
    /// [`MAX_LOAD_INSTANCES`]: instances with something to report first; those that do not fit
    /// keep their counts for a later report.
    pub fn loads(&self, now: Instant) -> Vec<InstanceLoad> {
        let cells: Vec<Arc<Service>> = {
            let services = self.services.read().unwrap_or_else(|e| e.into_inner());
            services.values().cloned().collect()
        };
        let mut busy = Vec::new();
        let mut idle = Vec::new();
        'services: for cell in cells {
            for entry in cell.entries().iter() {
                if busy.len() >= MAX_LOAD_INSTANCES {
                    break 'services;
                }
                let report = entry.slot.report(now, true);
                let load = InstanceLoad {
                    id: entry.id.to_string(),
                    inflight_now: report.inflight_now,
                    inflight_ms: report.inflight_ms,
                    completed: report.completed,
                    failed: report.failed,
                };
                if !report.idle() {
                    busy.push(load);
                } else if busy.len() + idle.len() < MAX_LOAD_INSTANCES {
                    idle.push(load);
                }
            }
        }
        let room = MAX_LOAD_INSTANCES - busy.len();
        busy.extend(idle.into_iter().take(room));
        busy
    }
}

/// SplitMix64: a cheap, well-spread sequence; tie-breaks need nothing stronger.
struct Rng(u64);

impl Rng {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}
