//! The messages of the control channel and their bounds.
//!
//! Both ends are the same binary (the front door is the init run again), but the channel is
//! versioned all the same: [`PROTOCOL`] is in the first message each way, and a peer of
//! another version is refused by name rather than by a parse error. Messages are strict (no
//! unknown message, no unknown field): a message that does not parse ends the connection.
//!
//! The frame size bounds every message as a whole; the counts below bound what the receiver
//! builds from one (tables, queues, log lines), each checked by [`Message::check`] on both the
//! sending and the receiving side.

use std::net::Ipv4Addr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the messages below. Raised on any change to them.
pub const PROTOCOL: u32 = 2;

/// Listeners a `Hello` hands over: HTTP and HTTPS.
pub const MAX_LISTENERS: usize = 2;
/// Instances of one service in an `Instances` message.
pub const MAX_INSTANCES: usize = 1024;
/// Instances in a `Load` report (of every service together).
pub const MAX_LOAD_INSTANCES: usize = 4096;
/// Services with held requests in a `Load` report.
pub const MAX_HELD: usize = 1024;
/// Services in one `Requests` report (more go in several).
pub const MAX_TALLIES: usize = 64;
/// Access lines in an `Access` batch.
pub const MAX_ACCESS_LINES: usize = 256;
/// Bytes of the path in an access line (the front door cuts longer paths).
pub const MAX_ACCESS_PATH: usize = 256;
/// Bytes of a fetched JWKS or discovery document.
pub const MAX_FETCHED_BODY: usize = 64 * 1024;
/// Lines in a `Ready` message's notes.
pub const MAX_NOTES: usize = 64;
/// Bytes of a name, an id, a note, a build string or another short text.
pub const MAX_TEXT: usize = 1024;
/// Bytes of a URL.
pub const MAX_URL: usize = 4096;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The peer speaks another version of the protocol.
    #[error("the peer speaks control protocol {got}, this side speaks {PROTOCOL}")]
    Protocol {
        /// The peer's version.
        got: u32,
    },
    /// The message came with the wrong number of descriptors.
    #[error("{what} came with {got} descriptors, expected {expected}")]
    Descriptors {
        /// The message.
        what: &'static str,
        /// Descriptors attached.
        got: usize,
        /// Descriptors it carries.
        expected: usize,
    },
    /// A list is longer than its bound.
    #[error("{what} has {got} entries, at most {max} are allowed")]
    TooMany {
        /// The list.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// A text is longer than its bound.
    #[error("{what} is {got} bytes long, at most {max} are allowed")]
    TooLong {
        /// The text.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// The same listener is handed over twice.
    #[error("Hello names the {0:?} listener twice")]
    DuplicateListener(Listener),
}

/// A message of the channel: it knows its bounds and the descriptors it carries.
pub trait Message: Serialize + DeserializeOwned {
    /// Whether the message is within its bounds and came with `fds` descriptors.
    fn check(&self, fds: usize) -> Result<(), Invalid>;
    /// The protocol version of a first message that did not parse, if it names one: a peer of
    /// another version may have changed the message around it.
    fn announced_protocol(bytes: &[u8]) -> Option<u32>;
}

/// A listening socket the init hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Listener {
    /// Plain HTTP (port 80 by default).
    Http,
    /// HTTPS (port 443 by default).
    Https,
}

/// One instance of a service, as the init sees it (its own and the other boards').
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// The instance's id.
    pub id: String,
    /// Its address on the board's container network or across the mesh.
    pub addr: Ipv4Addr,
    /// The port the route's requests go to.
    pub port: u16,
    /// The board it runs on.
    pub board: String,
    /// Whether it passes its readiness check.
    pub ready: bool,
}

/// What the init sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ToFrontDoor {
    /// The first message, with the listening sockets attached in the order of `listeners`.
    Hello {
        /// [`PROTOCOL`].
        protocol: u32,
        /// The init's build, for the front door's log lines.
        build: String,
        /// What each attached descriptor is, in order (none when both ports are off).
        listeners: Vec<Listener>,
    },
    /// A new configuration, in the sealed memfd attached ([`super::snapshot`]).
    Snapshot {
        /// Raised with every snapshot; `Instances` name the snapshot they belong to.
        generation: u64,
    },
    /// The full list of one service's instances; it replaces the one sent before.
    Instances {
        /// The snapshot the service is in.
        generation: u64,
        /// The service.
        service: String,
        /// Its instances, at most [`MAX_INSTANCES`].
        instances: Vec<Instance>,
    },
    /// Shutting down: stop accepting, finish what is in flight within this time, then exit.
    Drain {
        /// The time given, in milliseconds.
        within_ms: u64,
    },
}

/// Requests to one instance over the last report's period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceLoad {
    /// The instance's id.
    pub id: String,
    /// Requests in flight at the report.
    pub inflight_now: u64,
    /// Requests in flight summed over the period, in request-milliseconds: divided by the
    /// period, the mean concurrency.
    pub inflight_ms: u64,
    /// Requests completed in the period.
    pub completed: u64,
    /// Requests failed in the period (no answer, or the instance refused them).
    pub failed: u64,
}

/// Requests held for a service that has no ready instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// The service.
    pub service: String,
    /// Requests waiting.
    pub count: u64,
    /// How long the oldest has waited, in milliseconds.
    pub oldest_ms: u64,
}

/// One request, for the service's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLine {
    /// The route (its host and path as configured).
    pub route: String,
    /// The request's method.
    pub method: String,
    /// The host asked for.
    pub host: String,
    /// The path asked for, at most [`MAX_ACCESS_PATH`] bytes.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Milliseconds from the request to the end of the answer's head.
    pub ms: u64,
    /// Who the caller proved to be, if the route checks.
    pub identity: Option<String>,
    /// The instance that answered, if one did.
    pub instance: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: String,
}

/// What a fetched document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fetched {
    /// An identity provider's keys.
    Jwks,
    /// An identity provider's discovery document.
    Discovery,
}

/// What the front door sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ToInit {
    /// The answer to `Hello`: the front door serves.
    Ready {
        /// [`PROTOCOL`].
        protocol: u32,
        /// What the front door noticed starting (one line each).
        notes: Vec<String>,
    },
    /// The requests of the last second; also the heartbeat.
    Load {
        /// Per instance.
        instances: Vec<InstanceLoad>,
        /// Per service with held requests.
        held: Vec<Held>,
    },
    /// Requests by service since the front door started (only the services whose counts
    /// changed since the last report), at most [`MAX_TALLIES`].
    Requests {
        /// The services' totals.
        services: Vec<crate::tally::ServiceTally>,
    },
    /// A service with requests held and no ready instance: start one.
    Wake {
        /// The service.
        service: String,
    },
    /// Access lines; `dropped` counts those lost to a full queue since the last batch.
    Access {
        /// At most [`MAX_ACCESS_LINES`].
        lines: Vec<AccessLine>,
        /// Lines dropped.
        dropped: u64,
    },
    /// A document fetched for the init to keep on the card's data partition.
    Fetched {
        /// What it is.
        kind: Fetched,
        /// Where it came from.
        url: String,
        /// Its body, at most [`MAX_FETCHED_BODY`] bytes.
        body: String,
    },
}
