//! How a service scales, as `GET /v1/services` shows it (issue 13).

use serde::{Deserialize, Serialize};

/// A service's scaling: the count decided, the counts running, the load behind the decision,
/// the bounds in force and the last decisions with their reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    /// Instances decided for the whole cluster (or the board on its own).
    pub desired: u32,
    /// Instances ready, cluster-wide.
    pub ready: u32,
    /// Instances frozen (`scale.idle = "freeze"`), cluster-wide.
    pub frozen: u32,
    /// Requests and connections in flight, cluster-wide, over the stable window the last
    /// decision used (a mean, rounded).
    pub in_flight: u32,
    /// The lower bound in force.
    pub min: u32,
    /// The upper bound in force.
    pub max: u32,
    /// Why that upper bound: `scale.max`, or `surge 2026-11-27`.
    pub max_why: String,
    /// The calendar day the bounds are for (`2026-11-27`), in the cluster's time zone by the
    /// board's clock.
    pub today: String,
    /// Requests held per board while no instance is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
    /// How long the oldest request held on this board has waited, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_held_ms: Option<u64>,
    /// The last decisions, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    /// Whether this board's clock was synced since boot (surge dates follow the clock); `false`
    /// while it was not.
    pub clock_synced: bool,
}

/// Requests held on one board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The board.
    pub board: String,
    /// Requests and connections waiting.
    pub count: u32,
}

/// One scaling decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    /// The count decided.
    pub count: u32,
    /// Why: `2 -> 3: 31 in flight, target 10`.
    pub reason: String,
}
