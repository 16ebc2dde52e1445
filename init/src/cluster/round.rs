//! One round of the cluster loop (see the module docs of [`super`]), and the loop itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_cluster::desired::Record;
use baton_cluster::gossip::{Member as GossipMember, MemberState};
use baton_cluster::placement::{self, Assignment, Constraints, Input, Member, Resources, Service};
use baton_spec::ServiceSpec;

use super::{fabric, keys, local, lock, now_ms, Node, ROUND_PERIOD};
use crate::board::status::State;
use crate::containers::supervisor::Remote;
use crate::svcnet::subnet::{self, Verdict};

/// A peer is asked for its records at most this often.
const SYNC_EVERY: Duration = Duration::from_secs(3);

/// Runs rounds until the board stops.
pub async fn run(node: Arc<Node>, state: Arc<State>) {
    let mut changes = node.gossip.watch();
    loop {
        node.round(&state).await;
        tokio::select! {
            _ = changes.changed() => {}
            () = node.poke.notified() => {}
            () = tokio::time::sleep(ROUND_PERIOD) => {}
        }
    }
}

/// `(name, slot, phase)` of the instances in a board's `run` value.
pub fn parse_instances(value: &str) -> Vec<(String, u32, String)> {
    super::fabric::parse_run(value)
        .into_iter()
        .map(|i| (i.service, i.slot, i.phase))
        .collect()
}

/// `<cpu millis> <memory bytes>`.
pub fn parse_capacity(value: &str) -> Option<Resources> {
    let (cpu, memory) = value.split_once(' ')?;
    Some(Resources {
        cpu_millis: cpu.parse().ok()?,
        memory_bytes: memory.parse().ok()?,
    })
}

/// The placement input from what the gossip says of every board (the board itself included as
/// `me`), and the valid specs. The previous assignment is what boards report running: every
/// board sees the same reports, so every board computes the same placement.
pub fn placement_input(
    me: (&str, &BTreeMap<String, String>),
    peers: &[GossipMember],
    specs: &[ServiceSpec],
) -> Input {
    let mut boards: Vec<(&str, bool, &BTreeMap<String, String>)> = vec![(me.0, true, me.1)];
    for p in peers {
        boards.push((&p.name, p.state == MemberState::Alive, &p.values));
    }
    let mut members = Vec::new();
    let mut previous = Assignment::default();
    for (name, alive, values) in &boards {
        let capacity = values.get(keys::CAPACITY).and_then(|v| parse_capacity(v));
        let labels = values
            .get(keys::LABELS)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
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
        for (service, slot, _) in values
            .get(keys::INSTANCES)
            .map(|v| parse_instances(v))
            .unwrap_or_default()
        {
            let Some(index) = slot.checked_sub(1) else {
                continue;
            };
            let entry = previous.services.entry(service).or_default();
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
            instances: spec.scale.min,
            resources: Resources {
                cpu_millis: u64::from(spec.resources.cpu_millis.unwrap_or(0)),
                memory_bytes: spec.resources.memory_bytes,
            },
            constraints: Constraints {
                boards: spec.placement.boards.clone(),
                labels: spec.placement.labels.clone(),
                spread: true,
            },
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
    pub(super) async fn round(self: &Arc<Self>, state: &State) {
        self.scan_local(state);
        self.sync_with_peers().await;
        let specs = self.valid_specs();
        let peers = self.gossip.members();
        self.update_fabric(&peers).await;
        let instances = self.instances_value();
        if self.holding(&peers) {
            self.publish(&instances);
            return;
        }
        let own_values = self.own_values(&instances);
        let input = placement_input((&self.settings.board, &own_values), &peers, &specs);
        let assignment = match placement::place(&input) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("baton: cluster: placement: {e}");
                return;
            }
        };
        self.apply(&specs, &assignment);
        lock(&self.inner).assignment = assignment;
        self.publish(&self.instances_value());
    }

    /// Keeps the board's subnet its own (moving and restarting when a board with a smaller name
    /// has it), points the mesh at the other boards and tells the supervisor about their
    /// instances.
    async fn update_fabric(&self, peers: &[GossipMember]) {
        let me = &self.settings.board;
        let mine = self.settings.subnet;
        let claims = fabric::claims(peers);
        let verdict = subnet::verdict(me, mine, claims.iter().map(|(n, s)| (n.as_str(), *s)));
        match verdict {
            Verdict::Keep => {}
            Verdict::Move(next) if lock(&self.inner).moving_to.is_none() => {
                lock(&self.inner).moving_to = Some(next);
                let owner = claims
                    .iter()
                    .filter(|(_, s)| *s == mine)
                    .map(|(n, _)| n.as_str())
                    .min()
                    .unwrap_or("?");
                let note = match &self.settings.state_dir {
                    Some(dir) => match subnet::save(dir, next) {
                        Ok(()) => {
                            let note = format!(
                                "board {owner} has container subnet {mine} too; this board takes {next} and restarts"
                            );
                            if self
                                .settings
                                .power
                                .try_send(crate::board::sys::Action::Reboot)
                                .is_err()
                            {
                                eprintln!("baton: cluster: cannot ask for the restart");
                            }
                            note
                        }
                        Err(e) => format!(
                            "board {owner} has container subnet {mine} too; saving {next} failed ({e}), so this board's instances cannot be reached from other boards"
                        ),
                    },
                    None => format!(
                        "board {owner} has container subnet {mine} too and without a data partition this board cannot move; its instances cannot be reached from other boards"
                    ),
                };
                self.mesh_note(note);
            }
            Verdict::Move(_) => {}
            Verdict::Full => self.mesh_note(format!(
                "board subnet {mine} is taken and no other is free; this board's instances cannot be reached from other boards"
            )),
        }
        let boards = fabric::boards(me, mine, peers);
        let mut mesh = self.mesh.lock().await;
        let Some(link) = mesh.as_mut() else {
            self.supervisor.set_remote(Remote::default());
            return;
        };
        let changed = lock(&self.inner).mesh_boards.as_ref() != Some(&boards);
        if changed {
            let wanted: Vec<_> = boards.iter().map(fabric::Board::peer).collect();
            match link.set_peers(&wanted).await {
                Ok(()) => {
                    let names: Vec<String> = boards
                        .iter()
                        .map(|b| format!("{} {}", b.name, b.subnet))
                        .collect();
                    println!("baton: cluster: mesh peers: {}", names.join(", "));
                    lock(&self.inner).mesh_boards = Some(boards.clone());
                }
                Err(e) => self.mesh_note(format!("configuring the mesh: {e}")),
            }
        }
        let configured = lock(&self.inner).mesh_boards.clone().unwrap_or_default();
        self.supervisor.set_remote(Remote {
            mesh: Some(crate::svcnet::mesh::LINK.to_string()),
            subnets: configured.iter().map(|b| b.subnet).collect(),
            instances: fabric::remote_instances(&configured, peers),
        });
    }

    /// Prints a mesh or subnet problem once (until a different one comes up).
    fn mesh_note(&self, note: String) {
        let mut inner = lock(&self.inner);
        if inner.mesh_note.as_ref() != Some(&note) {
            eprintln!("baton: cluster: {note}");
            inner.mesh_note = Some(note);
        }
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
                    eprintln!("baton: cluster: saving the peer count: {e}");
                }
            }
            inner.peers_saved = Some(alive.len());
        }
        let Some(until) = inner.hold_until else {
            return false;
        };
        let peers_known =
            !alive.is_empty() && alive.iter().all(|p| p.values.contains_key(keys::CAPACITY));
        if peers_known || Instant::now() >= until {
            inner.hold_until = None;
            return false;
        }
        true
    }

    /// What this board publishes, as peers see it (for its own placement input).
    fn own_values(&self, instances: &str) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        let (cpu, memory) = self.capacity;
        values.insert(keys::CAPACITY.to_string(), format!("{cpu} {memory}"));
        values.insert(
            keys::LABELS.to_string(),
            serde_json::to_string(&self.settings.labels).unwrap_or_default(),
        );
        values.insert(keys::INSTANCES.to_string(), instances.to_string());
        values
    }

    /// Reads the card, turns its changes into records, merges, mirrors and saves.
    fn scan_local(&self, state: &State) {
        let files = local::read_files(&self.settings.services_dir);
        let loaded = baton_spec::service::load_services(&files);
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
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        if inner.local_errors.as_ref() != Some(&errors) {
            for e in &errors {
                println!("baton: config error: {e}");
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
        let changes = inner.desired.merge(records, &mut inner.clock);
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
        for problem in local::mirror(
            &self.settings.services_dir,
            &mut inner.book,
            &inner.desired,
            &stale,
        ) {
            eprintln!("baton: cluster: writing the config partition: {problem}");
        }
        if let Some(dir) = &self.settings.state_dir {
            if let Err(e) = local::Files::under(dir).save(&inner.book, &inner.desired) {
                eprintln!("baton: cluster: saving {}: {e}", dir.display());
            }
        }
    }

    /// Asks every alive peer whose digest differs (at most every few seconds each) for its
    /// records, sending ours, and merges the answers.
    async fn sync_with_peers(self: &Arc<Self>) {
        let (digest, due) = {
            let mut inner = lock(&self.inner);
            let digest = inner.desired.digest();
            let short = super::specs_digest(&inner.desired);
            let now = Instant::now();
            let mut due = Vec::new();
            for peer in self.gossip.members() {
                let differs = peer.values.get(keys::SPECS).is_some_and(|d| *d != short);
                let recent = inner
                    .synced
                    .get(&peer.name)
                    .is_some_and(|at| now.duration_since(*at) < SYNC_EVERY);
                if peer.state == MemberState::Alive && differs && !recent {
                    if let Some(api) = peer.values.get(keys::API) {
                        inner.synced.insert(peer.name.clone(), now);
                        due.push((peer.name.clone(), api.clone()));
                    }
                }
            }
            (digest, due)
        };
        for (peer, api) in due {
            let records: Vec<Record> = lock(&self.inner).desired.records().cloned().collect();
            let (challenge, body) = self
                .sync_key
                .request(&self.settings.board, &digest, records);
            let url = format!("http://{api}/v1/cluster/sync");
            let answer = tokio::task::spawn_blocking(move || post(&url, &body)).await;
            let answer = match answer {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => {
                    eprintln!("baton: cluster: sync with {peer}: {e}");
                    continue;
                }
                Err(_) => continue,
            };
            match self.sync_key.open_response(&answer, &challenge) {
                Ok(response) => {
                    let mut inner = lock(&self.inner);
                    let inner = &mut *inner;
                    inner.desired.merge(response.records, &mut inner.clock);
                }
                Err(e) => eprintln!("baton: cluster: sync with {peer}: {e}"),
            }
        }
        // Whatever arrived reaches the card and the disk in the next scan.
        let mut inner = lock(&self.inner);
        inner.desired.expire(now_ms());
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

    /// The `run` value for the instances the supervisor has on this board.
    pub(super) fn instances_value(&self) -> String {
        let mut items = Vec::new();
        for service in self.supervisor.services() {
            for instance in service.instances {
                let Some(slot) = instance
                    .id
                    .rsplit_once('-')
                    .and_then(|(_, s)| s.parse().ok())
                else {
                    continue;
                };
                let phase = serde_json::to_value(instance.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                if phase != "stopped" {
                    let item = super::fabric::RunItem {
                        service: service.name.clone(),
                        slot,
                        phase,
                        address: instance.address.as_deref().and_then(|a| a.parse().ok()),
                        ready: instance.ready,
                    };
                    items.push(item.to_string());
                }
            }
        }
        items.join(" ")
    }

    /// Publishes the instances this board runs (`instances`) and its spec digest.
    fn publish(&self, instances: &str) {
        if let Err(e) = self.gossip.set(keys::INSTANCES, instances) {
            eprintln!("baton: cluster: publishing instances: {e}");
        }
        let digest = super::specs_digest(&lock(&self.inner).desired);
        let _ = self.gossip.set(keys::SPECS, &digest);
    }
}

/// POSTs `body` and returns the answer's bytes (at most the sync exchange's largest body).
fn post(url: &str, body: &[u8]) -> Result<Vec<u8>, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(true)
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/octet-stream")
        .send(body)?;
    response
        .body_mut()
        .with_config()
        .limit(baton_cluster::sync::MAX_BODY as u64)
        .read_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, alive: bool, values: &[(&str, &str)]) -> GossipMember {
        let addr = "169.254.0.2:7946".parse().expect("addr");
        super::super::fabric::gossip_member(name, addr, alive, values)
    }

    fn spec(text: &str) -> ServiceSpec {
        ServiceSpec::parse("services/web.toml", text).expect("valid spec")
    }

    #[test]
    fn the_placement_input_follows_what_boards_report() {
        let me: BTreeMap<String, String> = [
            (keys::CAPACITY.to_string(), "2000 1000000000".to_string()),
            (
                keys::INSTANCES.to_string(),
                "web/1:running web/2:starting".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let peers = [
            // Claims web/2 too: the smaller name (pi-a, this board) keeps it.
            peer(
                "pi-b",
                true,
                &[
                    (keys::CAPACITY, "4000 2000000000"),
                    (keys::LABELS, "{\"disk\":\"ssd\"}"),
                    (keys::INSTANCES, "web/2:running web/3:running"),
                ],
            ),
            // Dead: its instances are not kept anywhere.
            peer(
                "pi-c",
                false,
                &[
                    (keys::CAPACITY, "4000 1"),
                    (keys::INSTANCES, "web/4:running"),
                ],
            ),
            // Alive but its capacity has not arrived: it takes nothing yet.
            peer("pi-d", true, &[]),
        ];
        let specs = [spec(
            "name = \"web\"\nimage = \"x.lan/web:1\"\nscale = { min = 4 }\nresources = { cpu = 0.5, memory = \"64Mi\" }\nplacement = { labels = { disk = \"ssd\" } }\n",
        )];
        let input = placement_input(("pi-a", &me), &peers, &specs);
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
    fn instance_lists_and_capacities_parse_and_junk_is_skipped() {
        assert_eq!(
            parse_instances("web/1:running web/2:starting bad x/y:z a-b/3:crash-loop"),
            [
                ("web".into(), 1, "running".into()),
                ("web".into(), 2, "starting".into()),
                ("a-b".into(), 3, "crash-loop".into())
            ]
        );
        assert_eq!(
            parse_capacity("4000 805306368"),
            Some(Resources {
                cpu_millis: 4000,
                memory_bytes: 805306368
            })
        );
        assert_eq!(parse_capacity("4000"), None);
        assert_eq!(parse_capacity("x y"), None);
    }
}
