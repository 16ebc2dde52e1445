//! What `GET /v1/cluster` shows, and the cluster-wide catalog of instances for
//! `GET /v1/services`.

use std::collections::BTreeMap;
use std::time::Instant;

use baton_cluster::desired::Conflict;
use baton_cluster::gossip::MemberState;
use baton_cluster::placement::{ServiceAssignment, Unplaced};
use serde::Serialize;

use super::round::parse_capacity;
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
    /// Its container address (on that board's subnet).
    pub address: Option<String>,
    /// Whether it takes new connections.
    pub ready: bool,
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
            for item in super::fabric::parse_run(value) {
                out.entry(item.service.clone())
                    .or_default()
                    .push(RemoteInstance {
                        id: format!("{}-{}", item.service, item.slot),
                        board: peer.name.clone(),
                        state: item.phase,
                        address: item.address.map(|a| a.to_string()),
                        ready: item.ready,
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

/// A board at the other end of the mesh, as `GET /v1/network` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeshPeerView {
    /// The board's name.
    pub board: String,
    /// Its container subnet.
    pub subnet: String,
    /// Where its WireGuard endpoint is.
    pub endpoint: String,
    /// Its public key.
    pub key: String,
    /// Age of the last handshake in ms (`None`: never).
    pub handshake_age_ms: Option<u64>,
    /// Bytes received from it over the mesh.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
}

/// This board's side of the mesh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeshView {
    /// This board's container subnet.
    pub subnet: String,
    /// Whether the mesh link is up (without it, no instance on another board is reachable).
    pub up: bool,
    /// The peers, with what the kernel says of them.
    pub peers: Vec<MeshPeerView>,
    /// The last problem with the mesh or the subnet.
    pub error: Option<String>,
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
