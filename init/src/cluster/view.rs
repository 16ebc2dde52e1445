//! What `GET /v1/cluster` shows, and the cluster-wide catalog of instances for
//! `GET /v1/services`.

use std::collections::BTreeMap;
use std::time::Instant;

use baton_cluster::desired::Conflict;
use baton_cluster::gossip::MemberState;
use baton_cluster::placement::{ServiceAssignment, Unplaced};
use serde::Serialize;

use super::round::{parse_capacity, parse_instances};
use super::{keys, lock, Node};

/// One board as `GET /v1/cluster` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// Host name.
    pub name: String,
    /// `self`, `alive` or `dead`.
    pub state: &'static str,
    /// Addresses it is reached at.
    pub addresses: Vec<String>,
    /// Its API, `http://ip:port`, once known.
    pub api: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// What it offers to services.
    pub capacity: Option<Capacity>,
    /// Milliseconds since it was last heard from; `None` for the board itself.
    pub last_heard_ms: Option<u64>,
    /// Its generation (grows with every boot).
    pub generation: u64,
}

/// CPU and memory offered to services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// Thousandths of a core.
    pub cpu_millis: u64,
    /// Bytes.
    pub memory_bytes: u64,
}

/// One instance somewhere in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteInstance {
    /// `web-2`.
    pub id: String,
    /// The board running it.
    pub board: String,
    /// Its phase as that board reports it.
    pub state: String,
}

/// `GET /v1/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// Cluster name.
    pub cluster: String,
    /// This board.
    pub board: String,
    /// This board's generation.
    pub generation: u64,
    /// Every board, this one first, then by name.
    pub members: Vec<MemberView>,
    /// Local spec changes that lost to newer versions from other boards.
    pub conflicts: Vec<Conflict>,
    /// Specs in force cluster-wide that do not validate on this board, by file.
    pub spec_errors: BTreeMap<String, String>,
    /// Instances that placement could not put anywhere, with the reason, by service.
    pub unplaced: BTreeMap<String, Vec<String>>,
    /// Digest of the cluster's specs as this board holds them.
    pub specs_digest: String,
}

impl Node {
    /// The cluster as this board sees it.
    pub fn view(&self) -> ClusterView {
        let now = Instant::now();
        let (cpu, memory) = self.capacity;
        let mut members = vec![MemberView {
            name: self.settings.board.clone(),
            state: "self",
            addresses: vec![self.address.to_string()],
            api: Some(format!(
                "http://{}:{}",
                self.address, self.settings.api_port
            )),
            labels: self.settings.labels.clone(),
            capacity: Some(Capacity {
                cpu_millis: cpu,
                memory_bytes: memory,
            }),
            last_heard_ms: None,
            generation: self.settings.generation,
        }];
        for peer in self.gossip.members() {
            members.push(MemberView {
                name: peer.name.clone(),
                state: match peer.state {
                    MemberState::Alive => "alive",
                    MemberState::Dead => "dead",
                },
                addresses: vec![peer.addr.ip().to_string()],
                api: peer.values.get(keys::API).map(|a| format!("http://{a}")),
                labels: peer
                    .values
                    .get(keys::LABELS)
                    .and_then(|v| serde_json::from_str(v).ok())
                    .unwrap_or_default(),
                capacity: peer
                    .values
                    .get(keys::CAPACITY)
                    .and_then(|v| parse_capacity(v))
                    .map(|r| Capacity {
                        cpu_millis: r.cpu_millis,
                        memory_bytes: r.memory_bytes,
                    }),
                last_heard_ms: peer
                    .last_heard
                    .map(|t| now.duration_since(t).as_millis() as u64),
                generation: peer.generation,
            });
        }
        let inner = lock(&self.inner);
        let unplaced = inner
            .assignment
            .services
            .iter()
            .filter(|(_, s)| !s.unplaced.is_empty())
            .map(|(name, s)| (name.clone(), reasons(s)))
            .collect();
        ClusterView {
            cluster: self.settings.cluster.clone(),
            board: self.settings.board.clone(),
            generation: self.settings.generation,
            members,
            conflicts: inner.conflicts.values().cloned().collect(),
            spec_errors: inner.spec_errors.clone(),
            unplaced,
            specs_digest: super::specs_digest(&inner.desired),
        }
    }

    /// Instances of every service on the other alive boards, by service.
    pub fn remote_instances(&self) -> BTreeMap<String, Vec<RemoteInstance>> {
        let mut out: BTreeMap<String, Vec<RemoteInstance>> = BTreeMap::new();
        for peer in self.gossip.members() {
            if peer.state != MemberState::Alive {
                continue;
            }
            let Some(value) = peer.values.get(keys::INSTANCES) else {
                continue;
            };
            for (service, slot, state) in parse_instances(value) {
                out.entry(service.clone())
                    .or_default()
                    .push(RemoteInstance {
                        id: format!("{service}-{slot}"),
                        board: peer.name.clone(),
                        state,
                    });
            }
        }
        out
    }

    /// How many instances of `service` the cluster wants, and why those that are not placed
    /// are not; `None` before placement has seen the service.
    pub fn placement_of(&self, service: &str) -> Option<(u32, Vec<String>)> {
        let inner = lock(&self.inner);
        let s = inner.assignment.services.get(service)?;
        Some(((s.instances.len() + s.unplaced.len()) as u32, reasons(s)))
    }
}

/// `instance N: why` for every instance of a service that placement could not put anywhere.
fn reasons(s: &ServiceAssignment) -> Vec<String> {
    s.unplaced
        .iter()
        .map(|(index, why): (&u32, &Unplaced)| format!("instance {}: {why}", index + 1))
        .collect()
}
