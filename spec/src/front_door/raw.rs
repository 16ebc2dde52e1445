//! `[front_door]` as written: every key optional, no unknown keys. The cluster.toml schema is
//! generated from these types, so their doc comments are what an editor shows.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::service::raw::{RawDuration, RawQuantity};

/// The front door: every board's HTTP(S) entry for the services' routes.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFrontDoor {
    /// TCP port of plain HTTP; 0 switches it off. Default 80.
    #[schemars(range(min = 0, max = 65535))]
    pub http: Option<i64>,
    /// TCP port of HTTPS; 0 switches it off. Default 443.
    #[schemars(range(min = 0, max = 65535))]
    pub https: Option<i64>,
    /// Plain HTTP answers a redirect to HTTPS, except for routes with auth = "none". Default true.
    pub redirect_http: Option<bool>,
    /// Memory limit of the front door's process, 16Mi to 4Gi. Default "64Mi".
    pub memory: Option<RawQuantity>,
    /// Idle time after which a body or upgraded stream (WebSocket, server-sent events) is closed, in each direction, 1s to 1h. Default "5m".
    pub idle_timeout: Option<RawDuration>,
    /// Most client connections at once, 1 to 65536. Default 1024.
    #[schemars(range(min = 1, max = 65536))]
    pub max_connections: Option<i64>,
    /// Most connections at once from one client address, 1 to `max_connections`. Default 64.
    #[schemars(range(min = 1, max = 65536))]
    pub per_client_connections: Option<i64>,
    /// Requests a second one client address may make on average, 1 to 100000; more get 429. Default 100.
    #[schemars(range(min = 1, max = 100000))]
    pub per_client_rate: Option<i64>,
    /// Requests one client address may make at once above the rate, 1 to 100000. Default 200.
    #[schemars(range(min = 1, max = 100000))]
    pub per_client_burst: Option<i64>,
    /// Address blocks ("192.168.1.2/32", "fd00::/8") of proxies whose X-Forwarded-* and Forwarded headers are believed; at most 64. Default none.
    pub trusted_proxies: Option<Vec<String>>,
    /// The OIDC issuer that routes with auth = "oidc" or "login" use.
    pub oidc: Option<RawOidc>,
    /// The client CA that routes with auth = "mtls" use.
    pub mtls: Option<RawMtls>,
}

/// The OIDC issuer of the cluster.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    /// The issuer's https:// URL, equal to the `iss` of its tokens. Required.
    pub issuer: Option<String>,
    /// The `aud` bearer tokens must carry. Required.
    pub audience: Option<String>,
    /// A JWKS file on the config partition, such as "certs/idp-jwks.json" (works offline). At least one of `jwks` and `jwks_url`.
    pub jwks: Option<String>,
    /// An https:// URL of the issuer's JWKS, fetched and cached on the data partition.
    pub jwks_url: Option<String>,
    /// A PEM file of CA certificates on the config partition, trusted besides Mozilla's roots for the issuer's URLs.
    pub ca: Option<String>,
    /// Client id for browser sign-in (auth = "login"); goes with `client_secret`.
    pub client_id: Option<String>,
    /// Client secret for browser sign-in; goes with `client_id`.
    pub client_secret: Option<String>,
    /// Scopes asked for at sign-in besides "openid email profile" (at most 16).
    pub scopes: Option<Vec<String>>,
    /// Clock skew allowed on exp, nbf and iat, up to 5m. Default "30s".
    pub leeway: Option<RawDuration>,
    /// How long a sign-in session lasts, 5m to 7 days. Default "8h".
    pub session_ttl: Option<RawDuration>,
    /// Where the issuer sends the browser back after sign-in, under "/.baton/". Default "/.baton/auth/callback".
    pub callback_path: Option<String>,
}

/// Client certificates for routes with auth = "mtls".
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMtls {
    /// A PEM file of CA certificates on the config partition, such as "certs/clients.pem", that client certificates must chain to. Required.
    pub ca: Option<String>,
}
