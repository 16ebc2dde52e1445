//! What one scrape read: plain numbers, by family.

use std::collections::BTreeMap;

/// Everything a scrape shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The board.
    pub board: Board,
    /// This board's instances (other boards export their own).
    pub instances: Vec<Instance>,
    /// The services as every board decides them.
    pub services: Vec<Service>,
    /// Cluster members by state (`self`, `alive`, `dead`); empty on a board alone.
    pub members: BTreeMap<String, u64>,
    /// Gossip datagrams dropped, by reason; empty on a board alone.
    pub gossip_drops: Vec<(String, u64)>,
    /// The generation of the rule set in force, if the services' network is up.
    pub network_generation: Option<u64>,
    /// The WireGuard mesh to the other boards, while this board is in a cluster.
    pub mesh: Option<Mesh>,
    /// The board's own listeners' counters.
    pub listeners: Vec<Listener>,
    /// The front door's requests by service, since the board started; empty without it.
    pub front_door: Vec<baton_frontdoor::tally::ServiceTally>,
}

/// The mesh as the kernel has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mesh {
    /// Whether the link is up.
    pub up: bool,
    /// One per other board.
    pub peers: Vec<MeshPeer>,
}

/// Another board at the other end of the mesh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeshPeer {
    /// Its name.
    pub board: String,
    /// Seconds since the last handshake (`None`: never).
    pub handshake_age_seconds: Option<f64>,
    /// Bytes received from it and sent to it (`None`: the kernel said nothing of it).
    pub bytes: Option<(u64, u64)>,
}

/// One listener's connection counters (see `baton_listen::Stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    /// Which (`api`).
    pub name: String,
    /// Connections open now.
    pub open: u64,
    /// Connections refused, by reason (`full`, `per_source`, `rate`).
    pub refused: Vec<(String, u64)>,
    /// Failed `accept` calls.
    pub accept_errors: u64,
}

/// The board's own figures; `None` where a source could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    /// The build's version.
    pub version: String,
    /// CPU seconds by mode (`user`, `system`, `idle`, ...), summed over the CPUs.
    pub cpu_seconds: Vec<(String, f64)>,
    /// `MemTotal` and `MemAvailable`, in bytes.
    pub memory: Option<Memory>,
    /// `/data`'s used and free bytes.
    pub data: Option<Space>,
    /// Degrees Celsius by thermal zone (none on a board without one, such as QEMU's `virt`).
    pub temperatures: Vec<(String, f64)>,
    /// Seconds since boot.
    pub uptime_seconds: Option<f64>,
    /// The init's resident set, in bytes.
    pub init_resident_bytes: Option<u64>,
    /// Each boot step and the seconds it took.
    pub boot_steps: Vec<(String, f64)>,
}

/// Memory figures in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`.
    pub available: u64,
}

/// A file system's space in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    /// In use.
    pub used: u64,
    /// Free for unprivileged writers.
    pub free: u64,
}

/// One instance on this board.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    /// Its service.
    pub service: String,
    /// Its id (`web-2`).
    pub id: String,
    /// Its cgroup's figures, while it has one.
    pub cgroup: Option<CgroupStats>,
    /// Restarts since its slot was filled.
    pub restarts: u64,
    /// OOM kills since its slot was filled.
    pub oom_kills: u64,
    /// Whether it takes requests.
    pub ready: bool,
}

/// What an instance's cgroup says.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupStats {
    /// `cpu.stat` `usage_usec`, in seconds.
    pub cpu_seconds: f64,
    /// `cpu.stat` `throttled_usec`, in seconds.
    pub throttled_seconds: f64,
    /// `memory.current`.
    pub memory_bytes: u64,
}

/// One service's counts, as decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// Instances wanted, cluster-wide.
    pub desired: u64,
    /// Instances that run (frozen ones excluded).
    pub running: u64,
    /// Instances that take requests.
    pub ready: u64,
    /// Instances frozen.
    pub frozen: u64,
    /// Requests or calls in flight, cluster-wide.
    pub in_flight: u64,
    /// The most instances allowed today, and why (`scale.max` or `surge DATE`).
    pub max: (u64, String),
    /// Requests held for want of a ready instance, cluster-wide.
    pub held: u64,
}
