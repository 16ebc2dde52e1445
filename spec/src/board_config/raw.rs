//! `cluster.toml` as the user writes it: every section and key optional, no unknown keys. The
//! JSON Schema for editors is generated from these types ([`super::schema`]), so their doc
//! comments are what an editor shows.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// A baton board's settings: `cluster.toml` on the BATON-CFG partition. Every section and key is optional except `[cluster] key` and `[api] token`, which `baton image build` generates.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "baton cluster.toml")]
pub(super) struct RawClusterFile {
    /// The cluster this board belongs to.
    #[serde(default)]
    pub(super) cluster: RawCluster,
    /// The board's HTTP API.
    #[serde(default)]
    pub(super) api: RawApi,
    /// This board.
    #[serde(default)]
    pub(super) board: RawBoard,
    /// The wired uplink.
    #[serde(default)]
    pub(super) network: RawNetwork,
    /// Clock synchronisation.
    #[serde(default)]
    pub(super) time: RawTime,
    /// Registries services pull images from, one table per host[:port] as in image references (`[registries.\"reg.lan:5000\"]`; Docker Hub is `docker.io`).
    #[serde(default)]
    pub(super) registries: BTreeMap<String, RawRegistry>,
    /// The front door: every board's HTTP(S) entry for the services' routes (docs/front-door.md).
    #[serde(default)]
    pub(super) front_door: Option<crate::front_door::RawFrontDoor>,
}

/// `[cluster]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    /// Name of the cluster; boards only join peers with the same name and key.
    pub(super) name: Option<String>,
    /// Shared secret of the cluster, at least 32 characters.
    pub(super) key: Option<String>,
    /// Network interface the boards of the cluster meet on.
    pub(super) interface: Option<String>,
    /// Time zone of the IANA database the surge calendar's dates are read in, for example "Europe/Berlin". Default "UTC".
    #[schemars(length(min = 1, max = 64))]
    pub(super) timezone: Option<String>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    /// Bearer token every API request must carry.
    pub(super) token: Option<String>,
    /// A second bearer token that opens `GET /metrics` and nothing else, for a Prometheus whose
    /// configuration other people can read (same rules as `token`, and not the same value).
    pub(super) metrics_token: Option<String>,
}

/// `[board]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBoard {
    /// Host name of this board (an RFC 1123 label).
    pub(super) hostname: Option<String>,
    /// Free-form labels used by placement constraints.
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
}

/// `[network]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    /// `"dhcp"` (default) or `"static"`.
    pub(super) mode: Option<String>,
    /// Static address with prefix length, `a.b.c.d/n`.
    pub(super) address: Option<String>,
    /// Static default gateway.
    pub(super) gateway: Option<String>,
    /// DNS servers; with DHCP they are added to the ones the server offers.
    pub(super) dns: Option<Vec<String>>,
    /// Whether to fall back to an IPv4 link-local address when DHCP gets no answer.
    pub(super) link_local: Option<bool>,
}

/// `[time]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTime {
    /// SNTP servers (host names or addresses, optional `:port`), tried in order.
    pub(super) servers: Option<Vec<String>>,
}

/// One registry.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    /// User name for basic auth or the token endpoint.
    pub(super) username: Option<String>,
    /// Password or access token; required with `username`.
    pub(super) password: Option<String>,
    /// Talk plain HTTP to this registry.
    pub(super) insecure: Option<bool>,
    /// PEM file of CA certificates, relative to the config partition.
    pub(super) ca: Option<String>,
}
