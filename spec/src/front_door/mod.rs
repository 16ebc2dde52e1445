//! `[front_door]` of `cluster.toml`: the board's HTTP(S) entry for the services' routes, and the
//! identity settings routes refer to (`[front_door.oidc]`, `[front_door.mtls]`).
//!
//! ```toml
//! [front_door]
//! http = 80                     # 0 switches plain HTTP off
//! https = 443                   # 0 switches HTTPS off
//! redirect_http = true          # plain HTTP answers a redirect, except for auth = "none"
//! trusted_proxies = ["192.168.1.2/32"]
//!
//! [front_door.oidc]
//! issuer = "https://idp.lan"
//! audience = "baton"
//! jwks = "certs/idp-jwks.json"  # on the config partition, and/or
//! jwks_url = "https://idp.lan/jwks"
//!
//! [front_door.mtls]
//! ca = "certs/clients.pem"
//! ```
//!
//! Every default and bound is in [`defaults`]; `docs/front-door.md` lists them too. The board
//! checks each service spec against its own `[front_door]` with [`FrontDoor::check_service`]:
//! a route needing an identity setting this board lacks, or a `publish` of the front door's
//! ports, is refused there.

pub mod defaults;
mod raw;
mod services;
mod validate;

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

pub(crate) use raw::RawFrontDoor;
pub(crate) use validate::validate;

/// The validated `[front_door]`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrontDoor {
    /// TCP port of plain HTTP; 0 when off.
    pub http: u16,
    /// TCP port of HTTPS; 0 when off.
    pub https: u16,
    /// Whether plain HTTP answers a redirect to HTTPS (routes with `auth = "none"` excepted).
    pub redirect_http: bool,
    /// Memory limit of the front door's process, in bytes.
    pub memory_bytes: u64,
    /// Idle time after which a body or an upgraded stream is closed, in each direction.
    pub idle_timeout: Duration,
    /// Most client connections at once.
    pub max_connections: u32,
    /// Most connections at once from one client address.
    pub per_client_connections: u32,
    /// Requests a second one client address may make on average.
    pub per_client_rate: u32,
    /// Requests one client address may make at once above the rate.
    pub per_client_burst: u32,
    /// Peers whose `X-Forwarded-*` and `Forwarded` headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The OIDC issuer routes with `auth = "oidc"` or `"login"` use.
    pub oidc: Option<Oidc>,
    /// The client CA routes with `auth = "mtls"` use.
    pub mtls: Option<Mtls>,
}

/// `[front_door.oidc]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Oidc {
    /// The issuer's URL (`https://`), equal to the `iss` of its tokens.
    pub issuer: String,
    /// The `aud` bearer tokens must carry.
    pub audience: String,
    /// A JWKS file on the config partition (works offline).
    pub jwks: Option<String>,
    /// A JWKS URL (`https://`), fetched and cached.
    pub jwks_url: Option<String>,
    /// A PEM file of CA certificates on the config partition, trusted besides Mozilla's roots
    /// for `jwks_url` and the issuer's endpoints.
    pub ca: Option<String>,
    /// Client id of browser sign-in (`auth = "login"`).
    pub client_id: Option<String>,
    /// Client secret of browser sign-in; present exactly when `client_id` is.
    #[serde(skip)]
    pub client_secret: Option<String>,
    /// Scopes asked for at sign-in besides `openid email profile`.
    pub scopes: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// How long a sign-in session lasts.
    pub session_ttl: Duration,
    /// The path the issuer redirects back to after sign-in, under `/.baton/`.
    pub callback_path: String,
}

/// `[front_door.mtls]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mtls {
    /// A PEM file of CA certificates on the config partition that client certificates must
    /// chain to.
    pub ca: String,
}

/// An address block, `a.b.c.d/n` or `v6/n`, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cidr {
    /// The first address of the block.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the block. A prefix longer than the address (a block not made by the
    /// parser) contains nothing.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let prefix = u32::from(self.prefix);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => 32u32.checked_sub(prefix).is_some_and(|host| {
                let mask = u32::MAX.checked_shl(host).unwrap_or(0);
                u32::from(net) == u32::from(ip) & mask
            }),
            (IpAddr::V6(net), IpAddr::V6(ip)) => 128u32.checked_sub(prefix).is_some_and(|host| {
                let mask = u128::MAX.checked_shl(host).unwrap_or(0);
                u128::from(net) == u128::from(ip) & mask
            }),
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Default for FrontDoor {
    fn default() -> FrontDoor {
        use defaults as d;
        FrontDoor {
            http: d::HTTP,
            https: d::HTTPS,
            redirect_http: d::REDIRECT_HTTP,
            memory_bytes: d::MEMORY_BYTES,
            idle_timeout: d::IDLE_TIMEOUT,
            max_connections: d::MAX_CONNECTIONS,
            per_client_connections: d::PER_CLIENT_CONNECTIONS,
            per_client_rate: d::PER_CLIENT_RATE,
            per_client_burst: d::PER_CLIENT_BURST,
            trusted_proxies: Vec::new(),
            oidc: None,
            mtls: None,
        }
    }
}

#[cfg(test)]
mod tests;
