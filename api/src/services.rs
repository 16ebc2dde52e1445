//! `/v1/services`: services, their instances, and the answers to changing them.
//!
//! A board's supervisor keeps a [`ServiceView`] of each of its services. The API shows each as a
//! [`Service`]: on a board without a cluster that is the view as it is; in a cluster the board
//! adds where each of its instances runs, the other boards' instances, the cluster-wide counts,
//! and why instances are not placed.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What an instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstancePhase {
    /// Being created and started (`starting`).
    Starting,
    /// Its process runs (`running`).
    Running,
    /// SIGTERM sent, waiting for it to exit (`stopping`).
    Stopping,
    /// Waiting before a restart (`backoff`).
    Backoff,
    /// Waiting before a restart after many quick failures (`crash-loop`).
    CrashLoop,
    /// Exited and not restarted: its policy, or a requested stop (`stopped`).
    Stopped,
    /// Running but frozen (`cgroup.freeze`): keeps its memory and its slot, takes no requests
    /// and is thawed in milliseconds when load comes back (`frozen`).
    Frozen,
    /// A word this build does not know, from a board of another version (boards of this
    /// version never send it; shown as `unknown`).
    #[serde(other)]
    Unknown,
}

impl InstancePhase {
    /// The name the API shows (`running`, `crash-loop`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            InstancePhase::Starting => "starting",
            InstancePhase::Running => "running",
            InstancePhase::Stopping => "stopping",
            InstancePhase::Backoff => "backoff",
            InstancePhase::CrashLoop => "crash-loop",
            InstancePhase::Stopped => "stopped",
            InstancePhase::Frozen => "frozen",
            InstancePhase::Unknown => "unknown",
        }
    }
}

/// How an instance's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code, if it exited (`null` if a signal ended it).
    pub code: Option<i32>,
    /// Signal, if one ended it (`null` if it exited).
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
}

/// A service's state in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// As many instances ready as wanted (`running`).
    Running,
    /// Instances are on their way up (`starting`).
    Starting,
    /// Some instance waits before a restart (`degraded`).
    Degraded,
    /// Some instance fails again and again (`crash-loop`).
    CrashLoop,
    /// Every instance has stopped, or none is wanted here (`stopped`).
    Stopped,
    /// Its spec is gone and its instances are being stopped (`removing`).
    Removing,
    /// A word this build does not know, from a board of another version (boards of this
    /// version never send it; shown as `unknown`).
    #[serde(other)]
    Unknown,
}

impl ServiceState {
    /// The name the API shows (`running`, `crash-loop`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Running => "running",
            ServiceState::Starting => "starting",
            ServiceState::Degraded => "degraded",
            ServiceState::CrashLoop => "crash-loop",
            ServiceState::Stopped => "stopped",
            ServiceState::Removing => "removing",
            ServiceState::Unknown => "unknown",
        }
    }
}

/// One instance on this board, as its supervisor sees it. Read back, only `id`, `state` and
/// `restarts` are required (they tell it from a [`RemoteInstance`]); the rest default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Container id: the service's name and the instance's 1-based slot (`web-1`).
    pub id: String,
    /// What it is doing.
    pub state: InstancePhase,
    /// Address on the board bridge (`null` while it has none).
    pub address: Option<String>,
    /// When the current run started (ms since the Unix epoch).
    pub started_at_ms: Option<u64>,
    /// How long the last start took, from launch to a running container (image preparation,
    /// network, create and start), in ms.
    pub start_ms: Option<u64>,
    /// Restarts so far.
    pub restarts: u32,
    /// How the last run ended (`null` before the first end).
    pub last_exit: Option<ExitStatus>,
    /// Why the last start failed.
    pub last_error: Option<String>,
    /// OOM kills so far.
    #[serde(default)]
    pub oom_kills: u32,
    /// Health: `null` until known or without a health check.
    pub healthy: Option<bool>,
    /// Whether it takes new connections (running, and healthy if the spec checks health).
    #[serde(default)]
    pub ready: bool,
    /// What its cgroup has used, read when asked (`null` from an older board, or while it has
    /// no cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// An instance's use of the board, from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// CPU time since it started, in ms.
    pub cpu_ms: u64,
    /// Memory it uses now (`memory.current`), in bytes.
    pub memory_bytes: u64,
}

/// One service on this board, as its supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// Summary of its instances.
    pub state: ServiceState,
    /// The spec's image (an archive on the config partition or a registry reference).
    pub image: String,
    /// Instances wanted.
    pub desired: u32,
    /// Instances running and ready.
    pub running: u32,
    /// The published board port, if any.
    pub publish: Option<u16>,
    /// Every instance.
    pub instances: Vec<InstanceView>,
    /// A problem with the service as a whole (for example its published port is taken).
    pub error: Option<String>,
    /// Lines of its containers' output dropped by the log's rate limit since the service came
    /// to this board.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_log_lines: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One service as `GET /v1/services` and `GET /v1/services/{name}` show it. Counts, image and
/// instances a board of another version does not send read as empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Name.
    pub name: String,
    /// Summary of this board's instances.
    pub state: ServiceState,
    /// The spec's image.
    #[serde(default)]
    pub image: String,
    /// Instances wanted: on this board, or in a cluster once placement has seen the service, in
    /// the whole cluster.
    #[serde(default)]
    pub desired: u32,
    /// Instances ready on this board; in a cluster, plus the other boards' running instances.
    #[serde(default)]
    pub running: u32,
    /// The published board port, if any.
    pub publish: Option<u16>,
    /// This board's instances, then in a cluster the other boards'.
    #[serde(default)]
    pub instances: Vec<ServiceInstance>,
    /// A problem with the service as a whole.
    pub error: Option<String>,
    /// In a cluster, `instance N: why` for each instance placement could not put on any board;
    /// absent on a board without a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplaced: Option<Vec<String>>,
    /// Lines of this board's instances' output dropped by the log's rate limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_log_lines: u64,
    /// How it scales; absent from boards of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<crate::scaling::Scaling>,
}

impl From<ServiceView> for Service {
    /// The service as a board without a cluster shows it.
    fn from(view: ServiceView) -> Service {
        Service {
            name: view.name,
            state: view.state,
            image: view.image,
            desired: view.desired,
            running: view.running,
            publish: view.publish,
            instances: view
                .instances
                .into_iter()
                .map(|instance| {
                    ServiceInstance::Local(LocalInstance {
                        instance,
                        board: None,
                    })
                })
                .collect(),
            error: view.error,
            dropped_log_lines: view.dropped_log_lines,
            scaling: None,
            unplaced: None,
        }
    }
}

/// An instance of a [`Service`]: one of this board's with all its details, or one on another
/// board of the cluster with what that board gossips of it. On the wire the two are told apart
/// by their fields (no tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceInstance {
    /// On this board.
    Local(LocalInstance),
    /// On another board.
    Remote(RemoteInstance),
}

impl ServiceInstance {
    /// Container id (`web-2`).
    pub fn id(&self) -> &str {
        match self {
            ServiceInstance::Local(l) => &l.instance.id,
            ServiceInstance::Remote(r) => &r.id,
        }
    }

    /// The board running it, when the board answering is in a cluster.
    pub fn board(&self) -> Option<&str> {
        match self {
            ServiceInstance::Local(l) => l.board.as_deref(),
            ServiceInstance::Remote(r) => Some(&r.board),
        }
    }

    /// What it is doing.
    pub fn state(&self) -> InstancePhase {
        match self {
            ServiceInstance::Local(l) => l.instance.state,
            ServiceInstance::Remote(r) => r.state,
        }
    }

    /// Its container address.
    pub fn address(&self) -> Option<&str> {
        match self {
            ServiceInstance::Local(l) => l.instance.address.as_deref(),
            ServiceInstance::Remote(r) => r.address.as_deref(),
        }
    }

    /// Whether it takes new connections.
    pub fn ready(&self) -> bool {
        match self {
            ServiceInstance::Local(l) => l.instance.ready,
            ServiceInstance::Remote(r) => r.ready,
        }
    }

    /// The supervisor's details, for an instance on the board answering.
    pub fn local(&self) -> Option<&InstanceView> {
        match self {
            ServiceInstance::Local(l) => Some(&l.instance),
            ServiceInstance::Remote(_) => None,
        }
    }
}

/// One of this board's instances in a [`Service`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalInstance {
    /// What the supervisor shows of it (its fields appear inline).
    #[serde(flatten)]
    pub instance: InstanceView,
    /// In a cluster, this board's name; absent on a board without a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
}

/// An instance on another board of the cluster, as that board gossips it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteInstance {
    /// Container id (`web-2`).
    pub id: String,
    /// The board running it.
    pub board: String,
    /// Its phase as that board reports it.
    pub state: InstancePhase,
    /// Its container address (on that board's subnet).
    pub address: Option<String>,
    /// Whether it takes new connections.
    #[serde(default)]
    pub ready: bool,
}

/// The body of `GET /v1/services`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceList {
    /// Every service, by name.
    pub services: Vec<Service>,
    /// Problems in the spec files on the config partition (`services/…`).
    pub errors: Vec<ConfigError>,
}

/// The body of an accepted `PUT /v1/services/{name}` (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The service whose spec was written and is being applied.
    pub applied: String,
    /// Set when the data partition holds the spec but the card could not be written (the
    /// board runs the spec, and a later boot writes the card): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The body of an accepted `DELETE /v1/services/{name}` (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The service whose spec was deleted and whose instances are being stopped.
    pub removed: String,
    /// As [`Applied::warning`], for the removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The body of an accepted `POST /v1/services/{name}/restart` (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restarting {
    /// The service whose instances are being restarted.
    pub restarting: String,
}

/// The query of `GET /v1/services/{name}/logs`; the answer is text, one line per log line:
/// `<instance> <out|err|acc> <text>`, or `<instance>@<board> <out|err|acc> <text>` with
/// `cluster=1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    /// How many past lines to send first (100 without it).
    pub tail: Option<usize>,
    /// Non-zero: keep the answer open and stream new lines as they come.
    pub follow: Option<u8>,
    /// Non-zero: the lines of the service's instances on every board, not only this one's
    /// (a board of an older release ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<u8>,
}

#[cfg(test)]
mod tests;
