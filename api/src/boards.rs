//! `GET /v1/boards`: every board of the cluster with its load and version, as the board
//! answering gathered them from its peers (their `/v1/peer/status`) a moment ago.

use serde::{Deserialize, Serialize};

use crate::cluster::MemberStatus;
use crate::status::BoardLoad;

/// The body of `GET /v1/boards`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardList {
    /// The board answering first, then the other members by name.
    pub boards: Vec<BoardView>,
}

/// One board as it says of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardView {
    /// Its name.
    pub name: String,
    /// Its state in the membership of the board answering.
    pub state: MemberStatus,
    /// The build of baton it runs (empty when it could not be asked).
    pub version: String,
    /// Milliseconds since its kernel started.
    pub uptime_ms: u64,
    /// Its load (`null` when it could not be asked or read).
    pub load: Option<BoardLoad>,
    /// Why it could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
