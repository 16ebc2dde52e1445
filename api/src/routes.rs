//! The front door: its process's state (in `GET /v1/status`) and the routes it serves
//! (`GET /v1/routes`).

use serde::{Deserialize, Serialize};

/// The front door process of a board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontDoorStatus {
    /// `off` (both ports 0), `starting`, `serving` or `restarting`.
    pub state: String,
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// How many times it was started again (crashes, hangs, restarts on request).
    pub restarts: u64,
    /// Why the last one ended.
    pub last_exit: Option<String>,
    /// The HTTP port (0: off).
    pub http: u16,
    /// The HTTPS port (0: off).
    pub https: u16,
    /// What it had to say: ports that could not be bound, routes left out, certificates missing.
    pub notes: Vec<String>,
}

/// `GET /v1/routes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesReport {
    /// The board answering.
    pub board: String,
    /// Its front door.
    pub front_door: FrontDoorStatus,
    /// Every route of the cluster, by service.
    pub routes: Vec<RouteView>,
}

/// One route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// The service it leads to.
    pub service: String,
    /// The host (exact or `*.suffix`); `None` for any host.
    pub host: Option<String>,
    /// The path prefix.
    pub path: String,
    /// The identity check.
    pub auth: String,
    /// Where the host's certificate comes from on this board (`card`, `issued until ...`, or
    /// why there is none).
    pub certificate: Option<String>,
    /// Requests answered through this board's front door since it started.
    pub requests: u64,
    /// Requests that got no answer from an instance.
    pub errors: u64,
    /// The instances, on every board.
    pub instances: Vec<RouteInstance>,
}

/// One instance behind a route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInstance {
    /// Its id.
    pub id: String,
    /// The board it runs on.
    pub board: String,
    /// Its address and port.
    pub address: String,
    /// Whether it takes requests.
    pub ready: bool,
    /// Requests in flight to it from this board's front door.
    pub inflight: u64,
    /// Requests it answered.
    pub completed: u64,
    /// Requests it failed.
    pub failed: u64,
}
