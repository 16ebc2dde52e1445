//! What `GET /v1/cluster` shows, and the cluster-wide catalog of instances for
//! `GET /v1/services`.

use std::collections::BTreeMap;
use std::time::Instant;

use baton_api::{
    ClusterView, MemberStatus, MemberView, MeshPeerView, MeshView, RemoteInstance, SpecVersion,
};
use baton_cluster::desired::Conflict;
use baton_cluster::gossip::MemberState;
use baton_cluster::placement::{ServiceAssignment, Unplaced};

use super::{lock, Node};

impl Node {
    /// Members by state (`self`, `alive`, `dead`), for the metrics: cheaper than [`Node::view`].
    pub fn member_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::from([("self".to_string(), 1)]);
        for peer in self.gossip.members() {
            let state = match peer.state {
                MemberState::Alive => "alive",
                MemberState::Dead => "dead",
            };
            *counts.entry(state.to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// The gossip datagrams this board dropped, by reason.
    pub fn drops(&self) -> baton_cluster::sealed::DropCounts {
        self.gossip.drops()
    }

    /// The cluster as this board sees it.
    pub fn view(&self) -> ClusterView {
        let now = Instant::now();
        let scheme = if self.settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut members = vec![MemberView {
            name: self.settings.board.clone(),
            state: MemberStatus::Myself,
            addresses: vec![self.address.to_string()],
            api: Some(format!(
                "{scheme}://{}:{}",
                self.address, self.settings.api_port
            )),
            labels: self.settings.labels.clone(),
            capacity: Some(self.capacity),
            last_heard_ms: None,
            generation: self.settings.generation,
            key: Some(self.key_print.clone()),
        }];
        for peer in self.gossip.members() {
            members.push(MemberView {
                name: peer.name.clone(),
                state: match peer.state {
                    MemberState::Alive => MemberStatus::Alive,
                    MemberState::Dead => MemberStatus::Dead,
                },
                addresses: vec![peer.addr.ip().to_string()],
                api: peer.values.api.map(|a| format!("{scheme}://{a}")),
                labels: peer.values.labels.clone(),
                capacity: peer.values.capacity,
                last_heard_ms: peer
                    .last_heard
                    .map(|t| now.duration_since(t).as_millis() as u64),
                generation: peer.generation,
                key: peer.signed_by.clone(),
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
            conflicts: inner.conflicts.values().map(conflict).collect(),
            spec_errors: inner.spec_errors.clone(),
            unplaced,
            specs_digest: super::specs_digest(&inner.desired),
            name_conflicts: self
                .gossip
                .conflicts()
                .into_iter()
                .map(|c| baton_api::NameConflictView {
                    name: c.name,
                    bound: c.bound,
                    claimed: c.claimed,
                    at_ms: c.at_ms,
                })
                .collect(),
            known_boards: inner.known.names().map(str::to_string).collect(),
            sync_refused: inner.sync_refused,
        }
    }

    /// Instances of every service on the other alive boards, by service.
    pub fn remote_instances(&self) -> BTreeMap<String, Vec<RemoteInstance>> {
        let mut out: BTreeMap<String, Vec<RemoteInstance>> = BTreeMap::new();
        for peer in self.gossip.members() {
            if peer.state != MemberState::Alive {
                continue;
            }
            for (service, instances) in &peer.values.instances {
                out.entry(service.clone())
                    .or_default()
                    .extend(instances.iter().map(|i| RemoteInstance {
                        id: format!("{service}-{}", i.slot),
                        board: peer.name.clone(),
                        state: i.phase,
                        address: i.address.map(|a| a.to_string()),
                        ready: i.ready,
                    }));
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

/// A conflict as the API shows it.
fn conflict(c: &Conflict) -> baton_api::Conflict {
    let version = |v: &baton_cluster::desired::Version| SpecVersion {
        time: v.time,
        board: v.board.clone(),
    };
    baton_api::Conflict {
        name: c.name.clone(),
        board: c.board.clone(),
        local: version(&c.local),
        winner: version(&c.winner),
    }
}

/// `instance N: why` for every instance of a service that placement could not put anywhere.
fn reasons(s: &ServiceAssignment) -> Vec<String> {
    s.unplaced
        .iter()
        .map(|(index, why): (&u32, &Unplaced)| format!("instance {}: {why}", index + 1))
        .collect()
}

impl Node {
    /// The mesh as the kernel has it, with board names from the gossip.
    pub async fn mesh_view(&self) -> MeshView {
        let boards = lock(&self.inner).mesh_boards.clone().unwrap_or_default();
        let mut error = lock(&self.inner).mesh_note.clone();
        let mesh = self.mesh.lock().await;
        let status = match mesh.as_ref() {
            Some(m) => match m.status().await {
                Ok(s) => s,
                Err(e) => {
                    error = Some(e.to_string());
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let now = std::time::SystemTime::now();
        let peers = boards
            .iter()
            .map(|b| {
                let kernel = status.iter().find(|s| s.key == b.key);
                MeshPeerView {
                    board: b.name.clone(),
                    subnet: b.subnet.to_string(),
                    endpoint: b.endpoint.to_string(),
                    key: b.key.to_string(),
                    handshake_age_ms: kernel
                        .and_then(|k| k.last_handshake)
                        .and_then(|t| now.duration_since(t).ok().map(|d| d.as_millis() as u64)),
                    rx_bytes: kernel.map_or(0, |k| k.rx_bytes),
                    tx_bytes: kernel.map_or(0, |k| k.tx_bytes),
                }
            })
            .collect();
        MeshView {
            subnet: self.settings.subnet.to_string(),
            up: mesh.is_some(),
            peers,
            error,
        }
    }
}
