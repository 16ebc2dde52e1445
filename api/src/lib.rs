//! The contract of a board's HTTP API (TCP port 7070): every body the board's init sends and
//! receives, and that the `baton` command (and any other client) reads back.
//!
//! The init serialises these types and the `baton` command deserialises into them, so both
//! sides agree on one definition. The JSON is what scripts see: field names, nesting and which
//! optional fields are omitted or `null` are part of the contract and are pinned by the tests of
//! each module; a change to them is a change of the API.
//!
//! | method | path                             | body sent back |
//! |--------|----------------------------------|----------------|
//! | GET    | `/v1/health`                     | [`Health`] |
//! | GET    | `/v1/status`                     | [`StatusReport`] |
//! | POST   | `/v1/reboot`, `/v1/halt`, `/v1/poweroff` | [`PowerAccepted`] |
//! | GET    | `/v1/services`                   | [`ServiceList`] |
//! | GET    | `/v1/services/{name}`            | [`Service`] |
//! | PUT    | `/v1/services/{name}`            | [`Applied`] (the request body is the spec's TOML) |
//! | DELETE | `/v1/services/{name}`            | [`Removed`] |
//! | POST   | `/v1/services/{name}/restart`    | [`Restarting`] |
//! | GET    | `/v1/services/{name}/logs`       | text; the query is [`LogsQuery`] |
//! | GET    | `/v1/cluster`                    | [`ClusterView`] |
//! | GET    | `/v1/boards`                     | [`BoardList`]: every board's load and version |
//! | GET    | `/v1/network`                    | [`NetworkReport`] |
//! | GET    | `/v1/console`                    | text: the console's recent lines; the query is [`ConsoleQuery`] |
//! | GET    | `/v1/events`                     | [`EventList`], or server-sent [`Event`]s with `follow=1`; the query is [`EventsQuery`] |
//! | GET    | `/v1/session`                    | [`SessionState`] (the dashboard's sign-in; no token needed) |
//! | POST   | `/v1/session`                    | [`SessionState`] and a session cookie (the request body is a [`SignIn`]) |
//! | POST   | `/v1/session/logout`             | [`SessionState`], the cookie cleared |
//!
//! Every refusal is an [`ApiError`]. Clients read leniently, as boards of several versions may
//! answer: unknown fields are ignored, and the fields that boards added over time read as their
//! defaults when missing. The crate depends on `serde` only, so any client can use it.

pub mod boards;
pub mod cluster;
pub mod console;
pub mod error;
pub mod events;
pub mod network;
pub mod routes;
pub mod scaling;
pub mod services;
pub mod session;
pub mod status;

pub use boards::{BoardList, BoardView};
pub use cluster::{
    BoardForgotten, Capacity, ClusterView, Conflict, MemberStatus, MemberView, NameConflictView,
    SpecVersion,
};
pub use console::ConsoleQuery;
pub use error::{ApiError, ConfigError};
pub use events::{Event, EventList, EventsQuery, What};
pub use network::{MeshPeerView, MeshView, NetworkReport, NetworkService, NetworkView};
pub use routes::{FrontDoorStatus, RouteInstance, RouteView, RoutesReport};
pub use services::{
    Applied, ExitStatus, InstancePhase, InstanceView, LocalInstance, LogsQuery, RemoteInstance,
    Removed, Restarting, Service, ServiceInstance, ServiceList, ServiceState, ServiceView, Usage,
};
pub use session::{SessionState, SignIn};
pub use status::{
    Address, AddressSource, ApiTls, BoardInfo, BoardLoad, BootStep, CardRepair, ClockStatus,
    DataPartition, Health, Memory, PowerAccepted, PowerAction, StatusReport, UserNamespaces,
};
