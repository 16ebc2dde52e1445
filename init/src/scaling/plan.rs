//! The counts every board decides alike: from the gossiped load tables and instance reports of
//! the alive boards, one bucket behind the clock (see [`baton_cluster::scale`]).

use std::collections::BTreeMap;

use baton_api::scaling::{Held, Scaling};
use baton_api::InstancePhase;
use baton_cluster::gossip::BoardValues;
use baton_cluster::scale::{self, Counts, Decision, BUCKET_MS};

use super::Scaler;

/// One board as the gossip shows it.
#[derive(Debug, Clone, Copy)]
pub struct Board<'a> {
    /// Its name.
    pub name: &'a str,
    /// Whether it is an alive member (this board is).
    pub alive: bool,
    /// Whether its spec digest equals this board's (its table indexes name the same services).
    pub same_specs: bool,
    /// Its values (this board's own as it publishes them).
    pub values: &'a BoardValues,
}

/// What placement and the supervisor act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Instances per service, cluster-wide (a frozen one included).
    pub counts: BTreeMap<String, u32>,
    /// Services whose last instance stays frozen rather than stopped.
    pub frozen: BTreeMap<String, u32>,
    /// The board a service woken from zero starts on (the first by name of those holding
    /// requests for it).
    pub prefer: BTreeMap<String, String>,
}

impl Scaler {
    /// Decides every service's count at `now_ms` from `boards` (this board among them, under
    /// the name `me`), and notes the decisions.
    pub fn plan(&self, now_ms: u64, me: &str, boards: &[Board<'_>]) -> Plan {
        let decide_bucket = scale::decision_bucket(now_ms);
        let today = self
            .timezone
            .date_at(u64::from(decide_bucket).saturating_mul(BUCKET_MS));
        let mut guard = self.lock();
        let st = &mut *guard;
        let own = st.table.clone();
        for b in boards.iter().filter(|b| b.alive && b.same_specs) {
            if b.name == me {
                st.boards.observe(me, own.bucket, &own.entries);
            } else {
                st.boards
                    .observe(b.name, b.values.load_bucket, &b.values.load);
            }
        }
        st.boards
            .forget(|name| boards.iter().any(|b| b.name == name && b.alive));
        let alive: Vec<&str> = boards.iter().filter(|b| b.alive).map(|b| b.name).collect();
        let unknown: Vec<&str> = boards
            .iter()
            .filter(|b| b.alive && !b.same_specs)
            .map(|b| b.name)
            .collect();
        let demands = st.boards.demands(decide_bucket, &alive, &unknown);
        let mut plan = Plan::default();
        let mut notes = Vec::new();
        for (index, name) in st.names.iter().enumerate() {
            let Some(policy) = st.policies.get(name) else {
                continue;
            };
            let Ok(index) = u16::try_from(index) else {
                break;
            };
            let demand = demands.of(index);
            let counts = counts(name, boards);
            let limits = scale::limits(policy, today);
            let Decision {
                count,
                frozen,
                reason,
            } = scale::decide(policy, &limits, counts, &demand);
            if st.history.note(name, now_ms, (count, frozen), &reason) {
                // A change of count is said once (a round at most every second or two).
                notes.push((name.clone(), count, frozen, reason));
            }
            let held = held_by_board(index, me, &own.entries, boards);
            if let Some((first, _)) = held.first() {
                plan.prefer.insert(name.clone(), first.clone());
            }
            let target = u64::from(policy.target());
            st.shown.insert(
                name.clone(),
                Scaling {
                    desired: count,
                    ready: counts.ready,
                    frozen: counts.frozen,
                    in_flight: u32::try_from((u64::from(demand.stable) * target).div_ceil(8))
                        .unwrap_or(u32::MAX),
                    min: limits.min,
                    max: limits.max,
                    max_why: limits.why,
                    today: today.to_string(),
                    held: held
                        .into_iter()
                        .map(|(board, count)| Held { board, count })
                        .collect(),
                    ..Scaling::default()
                },
            );
            plan.counts.insert(name.clone(), count);
            if frozen > 0 {
                plan.frozen.insert(name.clone(), frozen);
            }
        }
        drop(guard);
        for (service, count, frozen, reason) in notes {
            self.note(format!("{service}: {reason}"));
            self.bus.raise(baton_api::events::What::ScaleDecided {
                service,
                count,
                frozen,
                reason,
            });
        }
        plan
    }

    /// The figures behind `service`'s last decision (without its history, the board's clock or
    /// the front door's waits, which the API adds).
    pub fn shown(&self, service: &str) -> Option<Scaling> {
        self.lock().shown.get(service).cloned()
    }
}

/// What the alive boards report of `service`'s instances.
fn counts(service: &str, boards: &[Board<'_>]) -> Counts {
    let mut c = Counts {
        settled: true,
        ..Counts::default()
    };
    for b in boards.iter().filter(|b| b.alive) {
        for i in b.values.instances.get(service).into_iter().flatten() {
            match i.phase {
                InstancePhase::Stopping | InstancePhase::Stopped => c.settled = false,
                InstancePhase::Frozen => c.frozen += 1,
                phase => {
                    c.current += 1;
                    c.ready += u32::from(i.ready);
                    if phase == InstancePhase::Starting {
                        c.settled = false;
                    }
                }
            }
        }
    }
    c
}

/// The boards holding requests for the service at `index` now (their newest tables), by name.
fn held_by_board(
    index: u16,
    me: &str,
    own: &[baton_cluster::gossip::values::ServiceLoad],
    boards: &[Board<'_>],
) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = boards
        .iter()
        .filter(|b| b.alive && b.same_specs)
        .filter_map(|b| {
            let entries = if b.name == me { own } else { &b.values.load };
            let held = entries.iter().find(|e| e.service == index)?.held;
            (held > 0).then(|| (b.name.to_string(), u32::from(held)))
        })
        .collect();
    out.sort();
    out
}

/// The instances the supervisor has on this board, by service, as the gossip carries them
/// (stopped ones are left out).
pub fn instances(
    supervisor: &crate::containers::supervisor::Supervisor,
) -> BTreeMap<String, Vec<baton_cluster::gossip::RunningInstance>> {
    let mut out = BTreeMap::new();
    for service in supervisor.services() {
        let running: Vec<baton_cluster::gossip::RunningInstance> = service
            .instances
            .iter()
            .filter(|i| i.state != InstancePhase::Stopped)
            .filter_map(|instance| {
                let (_, slot) = instance.id.rsplit_once('-')?;
                Some(baton_cluster::gossip::RunningInstance {
                    slot: slot.parse().ok()?,
                    phase: instance.state,
                    address: instance.address.as_deref().and_then(|a| a.parse().ok()),
                    ready: instance.ready,
                })
            })
            .collect();
        if !running.is_empty() {
            out.insert(service.name, running);
        }
    }
    out
}
