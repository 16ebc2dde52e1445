//! One scrape's [`Snapshot`], read from where the figures live. The kernel's files are read
//! off the runtime thread, within [`READ_LIMIT`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::snapshot::{Board, Instance, Listener, Mesh, MeshPeer, Service, Snapshot};
use super::sources;
use crate::board::status::BoardStatus;
use crate::cluster::Node;
use crate::containers::supervisor::Supervisor;
use crate::scaling::Scaler;

/// How long the file reads of one scrape may take.
pub const READ_LIMIT: Duration = Duration::from_secs(2);

/// Where the kernel's files are (a test points them elsewhere).
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys/class/thermal`.
    pub thermal: PathBuf,
    /// The containers' cgroups (`/sys/fs/cgroup/baton`).
    pub cgroups: PathBuf,
    /// The data partition's mount point.
    pub data: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            proc: PathBuf::from("/proc"),
            thermal: PathBuf::from("/sys/class/thermal"),
            cgroups: PathBuf::from(crate::board::cgroups::ROOT)
                .join(crate::board::cgroups::CONTAINERS),
            data: PathBuf::from("/data"),
        }
    }
}

/// What a scrape reads from.
#[derive(Clone)]
pub struct Inputs {
    /// The board's state (its boot steps).
    pub state: Arc<BoardStatus>,
    /// The supervisor, once it runs.
    pub supervisor: Option<Supervisor>,
    /// The board's side of scaling, once it runs.
    pub scaler: Option<Arc<Scaler>>,
    /// The cluster member, once it has joined.
    pub cluster: Option<Arc<Node>>,
    /// The front door's request totals by service.
    pub front_door: Vec<baton_frontdoor::tally::ServiceTally>,
    /// Where the kernel's files are.
    pub paths: Paths,
}

/// The file reads did not finish within [`READ_LIMIT`].
#[derive(Debug, thiserror::Error)]
#[error("reading the kernel's figures took longer than {READ_LIMIT:?}")]
pub struct TooSlow;

/// Reads one scrape's figures.
pub async fn collect(inputs: Inputs) -> Result<Snapshot, TooSlow> {
    let views = inputs
        .supervisor
        .as_ref()
        .map(Supervisor::services)
        .unwrap_or_default();
    let ids: Vec<(String, String)> = views
        .iter()
        .flat_map(|s| s.instances.iter().map(|i| (s.name.clone(), i.id.clone())))
        .collect();
    let paths = inputs.paths.clone();
    let read = tokio::task::spawn_blocking(move || read_files(&paths, &ids));
    let (mut board, cgroups) = match tokio::time::timeout(READ_LIMIT, read).await {
        Ok(Ok(read)) => read,
        // The read task panicked: report what does not need the files.
        Ok(Err(_)) => (Board::default(), Vec::new()),
        Err(_) => return Err(TooSlow),
    };
    board.version = env!("CARGO_PKG_VERSION").to_string();
    board.boot_steps = inputs
        .state
        .boot_steps()
        .into_iter()
        .map(|s| (s.step, s.ms as f64 / 1000.0))
        .collect();
    let instances = views
        .iter()
        .flat_map(|s| s.instances.iter().map(move |i| (s, i)))
        .map(|(s, i)| Instance {
            service: s.name.clone(),
            id: i.id.clone(),
            cgroup: cgroups
                .iter()
                .find(|(id, _)| *id == i.id)
                .and_then(|(_, c)| *c),
            restarts: u64::from(i.restarts),
            oom_kills: u64::from(i.oom_kills),
            ready: i.ready,
        })
        .collect();
    let services = views
        .iter()
        .map(|v| {
            let shown = inputs.scaler.as_ref().and_then(|s| s.shown(&v.name));
            match shown {
                Some(s) => Service {
                    name: v.name.clone(),
                    desired: u64::from(s.desired),
                    running: u64::from(v.running),
                    ready: u64::from(s.ready),
                    frozen: u64::from(s.frozen),
                    in_flight: u64::from(s.in_flight),
                    max: (u64::from(s.max), s.max_why),
                    held: s.held.iter().map(|h| u64::from(h.count)).sum(),
                },
                None => Service {
                    name: v.name.clone(),
                    desired: u64::from(v.desired),
                    running: u64::from(v.running),
                    ..Service::default()
                },
            }
        })
        .collect();
    let (members, gossip_drops) = match &inputs.cluster {
        Some(node) => (
            node.member_counts(),
            node.drops()
                .by_reason()
                .iter()
                .map(|(reason, n)| (reason.to_string(), *n))
                .collect(),
        ),
        None => Default::default(),
    };
    let network_generation = inputs
        .supervisor
        .as_ref()
        .map(|s| s.network().generation)
        .filter(|g| *g > 0);
    // The mesh's lock may be held by a round for a while: the scrape does not wait past the
    // same limit, and leaves the mesh out instead.
    let mesh = match &inputs.cluster {
        Some(node) => tokio::time::timeout(READ_LIMIT, mesh(node)).await.ok(),
        None => None,
    };
    Ok(Snapshot {
        board,
        instances,
        services,
        members,
        gossip_drops,
        network_generation,
        mesh,
        listeners: vec![listener("api", &inputs.state.api_listener())],
        front_door: inputs.front_door,
    })
}

/// The mesh as the kernel has it (the cluster's view of it).
async fn mesh(node: &Node) -> Mesh {
    let view = node.mesh_view().await;
    Mesh {
        up: view.up,
        peers: view
            .peers
            .into_iter()
            .map(|p| {
                // Nothing from the kernel for this peer (or the status read failed): no byte
                // counts, rather than zeros a scraper would take for a counter reset.
                let known = p.handshake_age_ms.is_some() || p.rx_bytes > 0 || p.tx_bytes > 0;
                MeshPeer {
                    board: p.board,
                    handshake_age_seconds: p.handshake_age_ms.map(|ms| ms as f64 / 1000.0),
                    bytes: known.then_some((p.rx_bytes, p.tx_bytes)),
                }
            })
            .collect(),
    }
}

/// A listener's counters, named.
fn listener(name: &str, stats: &baton_listen::Stats) -> Listener {
    let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Listener {
        name: name.to_string(),
        open: read(&stats.open),
        refused: [
            ("full", &stats.refused_full),
            ("per_source", &stats.refused_per_source),
            ("rate", &stats.refused_rate),
        ]
        .iter()
        .map(|(reason, c)| (reason.to_string(), read(c)))
        .collect(),
        accept_errors: read(&stats.accept_errors),
    }
}

/// The board's files and each instance's cgroup (by instance id), blocking.
type CgroupsRead = Vec<(String, Option<super::snapshot::CgroupStats>)>;

fn read_files(paths: &Paths, ids: &[(String, String)]) -> (Board, CgroupsRead) {
    let proc = |name: &str| sources::read_bounded(&paths.proc.join(name)).ok();
    let board = Board {
        cpu_seconds: proc("stat")
            .map(|s| sources::cpu_modes(&s, sources::ticks_per_second()))
            .unwrap_or_default(),
        memory: proc("meminfo").and_then(|m| sources::memory(&m)),
        data: sources::space(&paths.data),
        temperatures: sources::temperatures(&paths.thermal),
        uptime_seconds: proc("uptime").and_then(|t| t.split_whitespace().next()?.parse().ok()),
        init_resident_bytes: proc("self/status")
            .and_then(|s| crate::board::procfs::kib_field(&s, "VmRSS:")),
        ..Board::default()
    };
    let cgroups = ids
        .iter()
        .map(|(_, id)| (id.clone(), sources::cgroup(&paths.cgroups.join(id))))
        .collect();
    (board, cgroups)
}
