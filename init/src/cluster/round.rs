//! One round of the cluster loop (see the module docs of [`super`]), and the loop itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use baton_cluster::desired::Record;
use baton_cluster::gossip::{BoardValues, Member as GossipMember, MemberState, RunningInstance};
use baton_cluster::placement::{self, Assignment, Constraints, Input, Member, Resources, Service};
use baton_spec::ServiceSpec;

use super::{local, lock, now_ms, Node, ROUND_PERIOD};
use crate::board::status::BoardStatus;
use crate::scaling::plan::Plan;

/// Runs rounds until the board stops.
pub async fn run(node: Arc<Node>, state: Arc<BoardStatus>) {
    let mut changes = node.gossip.watch();
    let mut full = true;
    let mut last_full = Instant::now();
    // Once the gossip has stopped (the board shuts down), its watch is closed and would wake
    // the loop at once, every time.
    let mut watching = true;
    loop {
        if full {
            node.round(&state).await;
            last_full = Instant::now();
        }
        full = true;
        tokio::select! {
            changed = changes.changed(), if watching => watching = changed.is_ok(),
            () = node.poke.notified() => {}
            () = node.settings.scaler.changed() => {
                // A wake or a new load table: publish it and place at once, without waiting
                // for the card and the peers' specs (a held request waits on this); a full
                // round still runs every period.
                if last_full.elapsed() < ROUND_PERIOD {
                    node.place_and_publish();
                    full = false;
                }
            }
            () = tokio::time::sleep(ROUND_PERIOD) => {}
        }
    }
}

/// The placement input from what the gossip says of every board (the board itself included as
/// `me`), and the valid specs. The previous assignment is what boards report running: every
/// board sees the same reports, so every board computes the same placement.
pub fn placement_input(
    me: (&str, &BoardValues),
    peers: &[GossipMember],
    specs: &[ServiceSpec],
    plan: &Plan,
) -> Input {
    let mut boards: Vec<(&str, bool, &BoardValues)> = vec![(me.0, true, me.1)];
    for p in peers {
        boards.push((&p.name, p.state == MemberState::Alive, &p.values));
    }
    let mut members = Vec::new();
    let mut previous = Assignment::default();
    for (name, alive, values) in &boards {
        let capacity = values.capacity.map(|c| Resources {
            cpu_millis: c.cpu_millis,
            memory_bytes: c.memory_bytes,
        });
        let labels = values.labels.clone();
        members.push(Member {
            name: name.to_string(),
            // A board whose capacity is not known yet takes nothing.
            alive: *alive && capacity.is_some(),
            capacity: capacity.unwrap_or(Resources {
                cpu_millis: 0,
                memory_bytes: 0,
            }),
            labels,
        });
        if !alive {
            continue;
        }
        let running = values
            .instances
            .iter()
            .flat_map(|(service, list)| list.iter().map(move |i| (service, i.slot)));
        for (service, slot) in running {
            let Some(index) = slot.checked_sub(1) else {
                continue;
            };
            let entry = previous.services.entry(service.clone()).or_default();
            // Two boards claiming one instance: the smaller name keeps it, on every board alike.
            match entry.instances.get(&index) {
                Some(owner) if owner.as_str() <= *name => {}
                _ => {
                    entry.instances.insert(index, name.to_string());
                }
            }
        }
    }
    let services = specs
        .iter()
        .map(|spec| Service {
            name: spec.name.clone(),
            // The count decided for the load (every board decides alike); `scale.min` for a
            // service the decision has not seen yet.
            instances: plan
                .counts
                .get(&spec.name)
                .copied()
                .unwrap_or(spec.scale.min),
            resources: Resources {
                cpu_millis: u64::from(spec.resources.cpu_millis.unwrap_or(0)),
                memory_bytes: spec.resources.memory_bytes,
            },
            constraints: Constraints {
                boards: spec.placement.boards.clone(),
                labels: spec.placement.labels.clone(),
                spread: true,
            },
            prefer: plan.prefer.get(&spec.name).cloned(),
        })
        .collect();
    Input {
        members,
        services,
        previous,
    }
}

impl Node {
    /// One round: local changes, merge, sync, placement, supervisor, publish.
    pub(super) async fn round(self: &Arc<Self>, state: &Arc<BoardStatus>) {
        // The card is read, written and synced (a FAT file system: syncfs) off the runtime
        // thread, which keeps the watchdog fed.
        let (node, status) = (Arc::clone(self), Arc::clone(state));
        if let Err(e) = tokio::task::spawn_blocking(move || node.scan_local(&status)).await {
            self.settings
                .console
                .line(format_args!("cluster: reading the config partition: {e}"));
        }
        self.sync_with_peers().await;
        let peers = self.gossip.members();
        self.note_members(&peers);
        self.note_refused(&peers);
        self.note_receive_errors();
        self.note_bindings_full();
        self.update_fabric(&peers).await;
        self.place_and_publish();
    }

    /// Decides the counts, places, hands this board's share to the supervisor, and publishes
    /// this board's values (its instances and its load table).
    fn place_and_publish(&self) {
        let specs = self.valid_specs();
        self.settings.scaler.set_specs(now_ms(), &specs);
        let peers = self.gossip.members();
        let instances = self.instances_value();
        if self.holding(&peers) {
            self.publish(&instances);
            return;
        }
        let own_values = self.own_values(&instances);
        let plan = self.plan(&own_values, &peers);
        let input = placement_input((&self.settings.board, &own_values), &peers, &specs, &plan);
        let assignment = match placement::place(&input) {
            Ok(a) => a,
            Err(e) => {
                self.settings
                    .console
                    .line(format_args!("cluster: placement: {e}"));
                return;
            }
        };
        self.apply(&specs, &assignment);
        self.freeze(&specs, &assignment, &plan);
        self.note_placement(assignment);
        self.publish(&self.instances_value());
    }

    /// Whether placement waits for peers still (see [`super::HOLD`]): until the hold time has
    /// passed, or peers are alive and every one has published its capacity. Also saves the number
    /// of alive peers when it changed.
    fn holding(&self, peers: &[GossipMember]) -> bool {
        let alive: Vec<&GossipMember> = peers
            .iter()
            .filter(|p| p.state == MemberState::Alive)
            .collect();
        let mut inner = lock(&self.inner);
        if inner.peers_saved != Some(alive.len()) {
            if let Some(dir) = &self.settings.state_dir {
                if let Err(e) = local::Files::under(dir).save_peers(alive.len()) {
                    self.settings
                        .console
                        .line(format_args!("cluster: saving the peer count: {e}"));
                }
            }
            inner.peers_saved = Some(alive.len());
        }
        let Some(until) = inner.hold_until else {
            return false;
        };
        let peers_known = !alive.is_empty() && alive.iter().all(|p| p.values.capacity.is_some());
        if peers_known || Instant::now() >= until {
            inner.hold_until = None;
            return false;
        }
        true
    }

    /// What this board publishes, as peers see it (for its own placement input).
    fn own_values(&self, instances: &Instances) -> BoardValues {
        BoardValues {
            capacity: Some(self.capacity),
            labels: self.settings.labels.clone(),
            instances: instances.clone(),
            ..BoardValues::default()
        }
    }

    /// Reads the card, turns its changes into records, merges, mirrors and saves.
    fn scan_local(&self, state: &BoardStatus) {
        let files = self.settings.card.files();
        let loaded = baton_spec::service::load_services_with(&files, &self.settings.front_door);
        let valid: BTreeMap<String, String> = loaded
            .specs
            .iter()
            .filter_map(|spec| {
                let file = format!("{}.toml", spec.name);
                files
                    .iter()
                    .find(|(f, _)| *f == file)
                    .map(|(_, text)| (spec.name.clone(), text.clone()))
            })
            .collect();
        let present = local::present(&files);
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        if inner.local_errors.as_ref() != Some(&errors) {
            for e in &errors {
                self.settings
                    .console
                    .line(format_args!("config error: {e}"));
            }
            state.replace_config_errors("services/", loaded.errors.clone());
            inner.local_errors = Some(errors);
        }
        let records = local::changes(
            &inner.book,
            &valid,
            &present,
            &mut inner.clock,
            now_ms(),
            &self.settings.board,
        );
        let mine: BTreeMap<String, Record> = records
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect();
        let changes = inner.desired.merge(records, &mut inner.clock, now_ms());
        super::refused::report(&self.settings.console, inner, "the card", &changes);
        // A change of this card that lost to a newer one elsewhere is a conflict.
        for (name, record) in &mine {
            match inner.desired.get(name) {
                Some(winner) if winner.version != record.version => {
                    inner.conflicts.insert(
                        name.clone(),
                        baton_cluster::desired::Conflict {
                            name: name.clone(),
                            board: self.settings.board.clone(),
                            local: record.version.clone(),
                            winner: winner.version.clone(),
                        },
                    );
                }
                _ => {
                    inner.conflicts.remove(name);
                }
            }
        }
        // Bring the card in line with every record whose file differs from it.
        let stale: Vec<String> = inner
            .desired
            .records()
            .filter(|r| {
                let entry = inner.book.entries.get(&r.name);
                entry.is_none_or(|e| e.version != r.version)
            })
            .map(|r| r.name.clone())
            .chain(changes.changed)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if stale.is_empty() {
            return;
        }
        // The writes happen without the lock, so that nobody waits for the card; only rounds
        // change the book, and they run one at a time.
        let mut book = inner.book.clone();
        let desired = inner.desired.clone();
        drop(guard);
        for problem in local::mirror(&self.settings.card, &mut book, &desired, &stale, &files) {
            self.settings.console.line(format_args!(
                "cluster: writing the config partition: {problem}"
            ));
        }
        if let Some(dir) = &self.settings.state_dir {
            // The records in force now, not those mirrored: an API deletion may have saved newer.
            let _turn = lock(&self.saving);
            let desired = lock(&self.inner).desired.clone();
            if let Err(e) = local::Files::under(dir).save(&book, &desired) {
                self.settings
                    .console
                    .line(format_args!("cluster: saving {}: {e}", dir.display()));
            }
        }
        lock(&self.inner).book = book;
    }

    /// The specs in force that validate; errors of the others are kept for the API.
    fn valid_specs(&self) -> Vec<ServiceSpec> {
        let inner = lock(&self.inner);
        let files: Vec<(String, String)> = inner
            .desired
            .specs()
            .map(|(name, text)| (format!("{name}.toml"), text.to_string()))
            .collect();
        drop(inner);
        let loaded = baton_spec::service::load_services(&files);
        let mut inner = lock(&self.inner);
        inner.spec_errors = loaded
            .errors
            .iter()
            .map(|e| (e.file.clone(), e.to_string()))
            .collect();
        loaded.specs
    }

    /// Hands the supervisor the specs and this board's share of the instances.
    fn apply(&self, specs: &[ServiceSpec], assignment: &Assignment) {
        let supervisor = &self.supervisor;
        let mut inner = lock(&self.inner);
        let names: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let gone: Vec<String> = inner
            .applied
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            supervisor.remove(&name);
            inner.applied.remove(&name);
        }
        for spec in specs {
            let slots: BTreeSet<u32> = assignment
                .services
                .get(&spec.name)
                .map(|s| {
                    s.instances
                        .iter()
                        .filter(|(_, board)| **board == self.settings.board)
                        .map(|(index, _)| index + 1)
                        .collect()
                })
                .unwrap_or_default();
            supervisor.assign(&spec.name, Some(slots));
            if inner.applied.get(&spec.name) != Some(spec) {
                supervisor.apply(spec.clone());
                inner.applied.insert(spec.name.clone(), spec.clone());
            }
        }
    }

    /// The instances the supervisor has on this board, as the gossip carries them.
    pub(super) fn instances_value(&self) -> Instances {
        crate::scaling::plan::instances(&self.supervisor)
    }

    /// Publishes the instances this board runs (`instances`) and its spec digest.
    fn publish(&self, instances: &Instances) {
        let digest = super::specs_digest(&lock(&self.inner).desired);
        let (load_bucket, load) = self.settings.scaler.table();
        let published = self.gossip.update(|values| {
            values.instances = instances.clone();
            values.digest = Some(digest);
            values.load_bucket = load_bucket;
            values.load = load;
        });
        // Said once until it changes: while the board shuts down, its gossip endpoint has left
        // and every round would say so again.
        let error = published.err().map(|e| e.to_string());
        let mut inner = lock(&self.inner);
        if let Some(e) = error
            .as_ref()
            .filter(|e| inner.publish_error.as_ref() != Some(*e))
        {
            self.settings
                .console
                .line(format_args!("cluster: publishing instances: {e}"));
        }
        inner.publish_error = error;
    }
}

/// The instances a board runs, by service, as the gossip carries them.
type Instances = BTreeMap<String, Vec<RunningInstance>>;

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::Capacity;
    use baton_api::InstancePhase;

    fn peer(name: &str, alive: bool, values: BoardValues) -> GossipMember {
        let addr = "169.254.0.2:7946".parse().expect("addr");
        super::super::fabric::gossip_member(name, addr, alive, values)
    }

    fn spec(text: &str) -> ServiceSpec {
        ServiceSpec::parse("services/web.toml", text).expect("valid spec")
    }

    /// Values with `capacity`, `labels` and instances `web/<slot>` in `phases`.
    fn values(
        capacity: Option<(u64, u64)>,
        labels: &[(&str, &str)],
        web: &[(u32, InstancePhase)],
    ) -> BoardValues {
        let instances: Vec<RunningInstance> = web
            .iter()
            .map(|&(slot, phase)| RunningInstance {
                slot,
                phase,
                address: None,
                ready: false,
            })
            .collect();
        BoardValues {
            capacity: capacity.map(|(cpu_millis, memory_bytes)| Capacity {
                cpu_millis,
                memory_bytes,
            }),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            instances: if instances.is_empty() {
                Instances::new()
            } else {
                Instances::from([("web".to_string(), instances)])
            },
            ..BoardValues::default()
        }
    }

    #[test]
    fn the_placement_input_follows_what_boards_report() {
        use InstancePhase::{Running, Starting};
        let me = values(
            Some((2000, 1_000_000_000)),
            &[],
            &[(1, Running), (2, Starting)],
        );
        let peers = [
            // Claims web/2 too: the smaller name (pi-a, this board) keeps it.
            peer(
                "pi-b",
                true,
                values(
                    Some((4000, 2_000_000_000)),
                    &[("disk", "ssd")],
                    &[(2, Running), (3, Running)],
                ),
            ),
            // Dead: its instances are not kept anywhere.
            peer("pi-c", false, values(Some((4000, 1)), &[], &[(4, Running)])),
            // Alive but its capacity has not arrived: it takes nothing yet.
            peer("pi-d", true, BoardValues::default()),
        ];
        let specs = [spec(
            "name = \"web\"\nimage = \"x.lan/web:1\"\nscale = { min = 4 }\nresources = { cpu = 0.5, memory = \"64Mi\" }\nplacement = { labels = { disk = \"ssd\" } }\n",
        )];
        let input = placement_input(("pi-a", &me), &peers, &specs, &Plan::default());
        let alive: Vec<(&str, bool)> = input
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.alive))
            .collect();
        assert_eq!(
            alive,
            [
                ("pi-a", true),
                ("pi-b", true),
                ("pi-c", false),
                ("pi-d", false)
            ]
        );
        assert_eq!(
            input.members[1].labels.get("disk").map(String::as_str),
            Some("ssd")
        );
        assert_eq!(input.members[1].capacity.cpu_millis, 4000);
        assert_eq!(input.members[1].capacity.memory_bytes, 2_000_000_000);
        let web = &input.previous.services["web"].instances;
        let owners: Vec<(u32, &str)> = web.iter().map(|(i, b)| (*i, b.as_str())).collect();
        assert_eq!(owners, [(0, "pi-a"), (1, "pi-a"), (2, "pi-b")]);
        let service = &input.services[0];
        assert_eq!(service.instances, 4);
        assert_eq!(service.resources.cpu_millis, 500);
        assert_eq!(service.resources.memory_bytes, 64 << 20);
        assert!(service.constraints.spread);
        assert_eq!(
            service.constraints.labels.get("disk").map(String::as_str),
            Some("ssd")
        );
    }

    #[test]
    fn a_slot_zero_claims_nothing() {
        let me = values(Some((1000, 1)), &[], &[(0, InstancePhase::Running)]);
        let input = placement_input(("pi-a", &me), &[], &[], &Plan::default());
        assert!(input.previous.services.is_empty(), "{:?}", input.previous);
    }
}
