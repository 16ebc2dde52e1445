//! Scaling with the load (see `docs/scaling.md`): what this board measures, what it publishes,
//! and the count every board decides alike for each service.
//!
//! * **Measure.** The front door reports the request-milliseconds in flight per service every
//!   second and the requests it holds; the activator reports the connections it holds for
//!   services at zero; a conntrack dump counts the calls in flight to services' virtual IPs.
//!   They add up in per-service windows ([`baton_cluster::scale::Windows`]).
//! * **Publish.** Once per bucket ([`BUCKET_MS`]) the windows become a load table, published in
//!   the board's gossip values when it changed; a wake (a request held for a service with no
//!   ready instance) is published at once.
//! * **Decide.** Every round, each board runs the same pure decision on the same gossiped
//!   tables, one bucket behind ([`plan`]), and placement spreads the counts.
//!
//! Nothing from outside runs here on its own: the inputs are counts bounded by their sources,
//! the maps are capped by the spec count, and the lock is never held across an await.

pub mod alone;
mod history;
pub mod plan;
pub mod policy;
pub mod sources;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use baton_cluster::gossip::values::ServiceLoad;
use baton_cluster::scale::{LoadHistory, LoadTable, Policy, Windows, BUCKET_MS};
use baton_spec::ServiceSpec;
use tokio::sync::Notify;

pub use history::Entry;

/// Sources of held requests, kept apart and added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Requests the front door holds.
    FrontDoor,
    /// Connections the activator holds.
    Activator,
}

/// This board's side of scaling: its measurements, its published table, the decisions.
#[derive(Debug)]
pub struct Scaler {
    timezone: baton_spec::time_zone::TimeZone,
    console: Arc<crate::board::console::Console>,
    /// The board's events: each decision that changes a count.
    bus: Arc<crate::events::Bus>,
    state: Mutex<State>,
    /// Notified when the published table changed or a wake came: the cluster round (or the
    /// board's own loop) runs at once.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    windows: Windows,
    /// Held requests by source, by service.
    held: BTreeMap<Source, BTreeMap<String, u32>>,
    /// The most held per service in this bucket and the one before (see [`State::apply_held`]).
    held_seen: BTreeMap<String, Seen>,
    /// The scaling settings of each valid spec, by name.
    policies: BTreeMap<String, Policy>,
    /// The spec names in order: a service's index in the load tables.
    names: Vec<String>,
    /// The table last computed, as published.
    table: LoadTable,
    /// Other boards' recent tables.
    boards: LoadHistory,
    /// The last decisions, for the API.
    history: history::History,
    /// The last plan's figures per service, for the API.
    shown: BTreeMap<String, baton_api::scaling::Scaling>,
}

impl Scaler {
    /// A scaler deciding calendar days in `timezone` (surge dates).
    pub fn new(
        timezone: baton_spec::time_zone::TimeZone,
        console: Arc<crate::board::console::Console>,
        bus: Arc<crate::events::Bus>,
    ) -> Arc<Scaler> {
        Arc::new(Scaler {
            timezone,
            console,
            bus,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The services in force (the valid specs): their scaling settings and table indexes.
    pub fn set_specs(&self, now_ms: u64, specs: &[ServiceSpec]) {
        let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
        for spec in specs {
            policies.insert(spec.name.clone(), policy::of(spec));
        }
        let mut st = self.lock();
        if st.policies == policies {
            return;
        }
        let names: Vec<String> = policies.keys().cloned().collect();
        let renumbered = st.names != names;
        st.names = names;
        st.history.retain(|n| policies.contains_key(n));
        st.shown.retain(|n, _| policies.contains_key(n));
        st.held_seen.retain(|n, _| policies.contains_key(n));
        for held in st.held.values_mut() {
            held.retain(|n, _| policies.contains_key(n));
        }
        st.policies = policies;
        // The windows measure the services of the policies they last saw: new ones from now.
        // With other names the indexes of the tables changed: this board's table is made again
        // at once (it is published with the new digest), and the other boards' tables are
        // forgotten (their next ones, under the new digest, count; until then their load is
        // unknown and nothing steps down).
        let st = &mut *st;
        let table = st.windows.table(now_ms, &st.policies, &st.names);
        // A board that has had no load since it started keeps its table of bucket 0: its
        // values stay in the version the previous release reads (see
        // `baton_cluster::gossip::values::VALUES_VERSION_NO_LOAD`).
        let never_loaded = st.table.bucket == 0 && table.entries.is_empty();
        if renumbered && !never_loaded {
            st.table = table;
        }
        if renumbered {
            st.boards = LoadHistory::new();
        }
    }

    /// Request-milliseconds in flight per service over the last `period_ms` (the front door's
    /// report, or connections to virtual IPs times the period).
    pub fn record(&self, now_ms: u64, period_ms: u64, inflight_ms: &BTreeMap<String, u64>) {
        let mut st = self.lock();
        for (service, ms) in inflight_ms {
            if st.policies.contains_key(service) {
                st.windows.record(service, now_ms, *ms, period_ms);
            }
        }
    }

    /// What `source` holds now, per service (replacing its last report). A service going from
    /// nothing held to something held is a wake: published at once.
    pub fn held(&self, source: Source, held: BTreeMap<String, u32>) {
        let woke = {
            let mut st = self.lock();
            let held: BTreeMap<String, u32> = held
                .into_iter()
                .filter(|(n, c)| *c > 0 && st.policies.contains_key(n))
                .collect();
            let before = st.held.insert(source, held).unwrap_or_default();
            let woke = st.held[&source].keys().any(|n| !before.contains_key(n));
            st.apply_held(now_ms());
            woke
        };
        if woke {
            self.wake_now();
        }
    }

    /// A request (from `source`) waits for `service`, which has no ready instance: start one
    /// now.
    pub fn wake(&self, source: Source, service: &str) {
        {
            let mut st = self.lock();
            if !st.policies.contains_key(service) {
                return;
            }
            let entry = st
                .held
                .entry(source)
                .or_default()
                .entry(service.to_string())
                .or_insert(0);
            *entry = (*entry).max(1);
            st.apply_held(now_ms());
        }
        self.wake_now();
    }

    /// Recomputes the table off-bucket (a wake must not wait for the next bucket) and tells the
    /// round.
    fn wake_now(&self) {
        self.tick(now_ms());
        self.changed.notify_one();
    }

    /// Recomputes this board's table (once per bucket, and at a wake); `true` when it changed.
    pub fn tick(&self, now_ms: u64) -> bool {
        let mut st = self.lock();
        let st = &mut *st;
        st.apply_held(now_ms);
        let table = st.windows.table(now_ms, &st.policies, &st.names);
        // An unchanged table keeps its bucket: it stays valid until superseded, and the gossip
        // sends values only when they change.
        if table.entries == st.table.entries {
            return false;
        }
        st.table = table;
        true
    }

    /// The table to publish: its bucket and entries.
    pub fn table(&self) -> (u32, Vec<ServiceLoad>) {
        let st = self.lock();
        (st.table.bucket, st.table.entries.clone())
    }

    /// Waits until the table changed or a wake came.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Recomputes the table every bucket, and tells the round when it changed.
    pub async fn run(self: Arc<Self>) {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(BUCKET_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if self.tick(now_ms()) {
                self.changed.notify_one();
            }
        }
    }

    /// The decisions of `service`, oldest first.
    pub fn decisions(&self, service: &str) -> Vec<Entry> {
        self.lock().history.of(service)
    }

    /// Says `text` on the console.
    pub fn note(&self, text: String) {
        self.console.line(format_args!("scaling: {text}"));
    }
}

/// The most requests held for a service seen in a bucket and in the one before.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    bucket: u64,
    this: u32,
    before: u32,
}

impl State {
    /// Hands the sum of every source's held requests to the windows, as the most seen in this
    /// bucket and the one before: a wait served within a bucket stays in the published table
    /// until the load it became has reached the decided tables (it must not read as no load at
    /// all, which would stop the instance just started for it).
    fn apply_held(&mut self, now_ms: u64) {
        let bucket = now_ms / BUCKET_MS;
        let mut sum: BTreeMap<&str, u32> = BTreeMap::new();
        for held in self.held.values() {
            for (name, count) in held {
                let s = sum.entry(name.as_str()).or_default();
                *s = s.saturating_add(*count);
            }
        }
        for name in &self.names {
            let count = sum.get(name.as_str()).copied().unwrap_or(0);
            let seen = self.held_seen.entry(name.clone()).or_default();
            if bucket != seen.bucket {
                seen.before = if bucket == seen.bucket + 1 {
                    seen.this
                } else {
                    0
                };
                seen.this = 0;
                seen.bucket = bucket;
            }
            seen.this = seen.this.max(count);
            let shown = count.max(seen.this).max(seen.before);
            if shown == 0 {
                self.held_seen.remove(name);
            }
            self.windows.held(name, shown);
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
