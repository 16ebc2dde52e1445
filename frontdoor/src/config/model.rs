//! The snapshot: everything the front door needs besides the instance lists, as the init
//! sends it in a sealed memfd. The init builds it from `cluster.toml` and the specs (already
//! validated there); the front door checks it again on arrival ([`Snapshot::check`]), since a
//! snapshot it cannot use must be refused whole rather than half applied.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use super::identity::{AssertionKey, MtlsSettings};

/// Routes in one snapshot.
pub const MAX_ROUTES: usize = 4096;
/// Services in one snapshot.
pub const MAX_SERVICES: usize = 4096;
/// Trusted proxy blocks.
pub const MAX_TRUSTED: usize = 64;
/// Bytes of a host, a path, a service name.
pub const MAX_NAME: usize = 1024;
/// Certificates in one snapshot.
pub const MAX_CERTS: usize = 4096;
/// Host names one certificate is given for.
pub const MAX_CERT_HOSTS: usize = 64;
/// Bytes of a certificate chain or a key, PEM.
pub const MAX_PEM: usize = 64 * 1024;
/// Claims in one route's `require`.
pub const MAX_REQUIRE_CLAIMS: usize = 16;
/// Values of one claim in `require`.
pub const MAX_REQUIRE_VALUES: usize = 32;
/// Bytes of a claim name or value in `require`.
pub const MAX_REQUIRE_TEXT: usize = 256;
/// Seconds of leeway on token times, at most.
pub const MAX_LEEWAY_S: u64 = 600;

/// How a route checks who is calling (the spec's `route.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// No check.
    None,
    /// An OIDC bearer token.
    Oidc,
    /// A browser sign-in.
    Login,
    /// A TLS client certificate.
    Mtls,
    /// An auth service asked first.
    Forward,
}

/// One route: requests for `host` (exact, `*.suffix`, or any host when `None`) under the path
/// prefix `path` go to `service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The service requests go to.
    pub service: String,
    /// Normalised host (lowercase, no final dot), `*.suffix`, or `None` for any host.
    pub host: Option<String>,
    /// Normalised path prefix: starts with `/`, no trailing `/` except the root itself.
    pub path: String,
    /// The identity check.
    pub auth: Auth,
    /// Milliseconds the upstream may take until its response head.
    pub timeout_ms: u64,
    /// Claims a token must carry (`oidc` and `login`): each listed claim must contain each value.
    #[serde(default)]
    pub require: BTreeMap<String, Vec<String>>,
    /// The auth service of `auth = "forward"` (a forward route without one answers 503).
    #[serde(default)]
    pub forward: Option<super::ForwardAuth>,
}

/// The identity provider of `oidc` routes (the `[front_door.oidc]` table).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// A token's `iss` must equal it.
    pub issuer: String,
    /// A token's `aud` must contain it.
    pub audience: String,
    /// Seconds of clock difference allowed on `exp`, `nbf` and `iat`.
    pub leeway_s: u64,
    /// The key set (JWKS JSON) of the card's `jwks` file; empty when there is none.
    pub jwks: String,
    /// `jwks_url`: the key set the front door fetches (section 5.2), `https://` only.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The last key set fetched from `jwks_url`, as the init keeps it on `/data`: used until
    /// this front door fetches one itself.
    #[serde(default)]
    pub jwks_cached: Option<String>,
    /// The card's `ca` file (PEM): trusted besides Mozilla's roots for the provider's URLs.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// Fetch the discovery document (a browser sign-in is configured: `client_id`).
    #[serde(default)]
    pub discover: bool,
    /// The last discovery document fetched, as the init keeps it on `/data`.
    #[serde(default)]
    pub discovery: Option<crate::idp::Discovery>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key set is long and says little in a log line.
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_s", &self.leeway_s)
            .field("jwks_bytes", &self.jwks.len())
            .field("jwks_url", &self.jwks_url)
            .field(
                "jwks_cached_bytes",
                &self.jwks_cached.as_ref().map(String::len),
            )
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(String::len))
            .field("discover", &self.discover)
            .field("discovery", &self.discovery)
            .finish()
    }
}

/// What happens to requests for a service with no ready instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// Requests waiting at most, beyond which they get 503.
    pub queue: u32,
    /// Milliseconds a request waits at most.
    pub timeout_ms: u64,
}

/// A service the routes lead to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `None`: 503 at once while no instance is ready; otherwise requests wait.
    pub hold: Option<Hold>,
}

/// The listeners' and the proxy's settings (the `[front_door]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Plain HTTP answers a redirect to HTTPS, except on routes with `auth = "none"`.
    pub redirect_http: bool,
    /// The HTTPS port, for the redirect's URL (0: HTTPS is off, so no redirect).
    pub https_port: u16,
    /// Milliseconds a body or an upgraded stream may be idle, in each direction.
    pub idle_timeout_ms: u64,
    /// Client connections at once.
    pub max_connections: u32,
    /// Connections at once from one client address.
    pub per_client_connections: u32,
    /// Requests a second one client address may make on average.
    pub per_client_rate: u32,
    /// Requests one client address may make at once above the rate.
    pub per_client_burst: u32,
    /// Peers whose `X-Forwarded-*` headers are believed, as (address, prefix length).
    pub trusted_proxies: Vec<(IpAddr, u8)>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            redirect_http: false,
            https_port: 0,
            idle_timeout_ms: 300_000,
            max_connections: 4096,
            per_client_connections: 256,
            per_client_rate: 100,
            per_client_burst: 200,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A certificate chain and its key, answered for `hosts` (exact names or `*.suffix`); with no
/// hosts, the default: for clients that name no host or one no certificate covers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cert {
    /// Normalised host names.
    pub hosts: Vec<String>,
    /// The chain, leaf first, PEM.
    pub chain_pem: String,
    /// The private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key_pem: String,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Cert")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// One configuration of the front door.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The settings.
    pub settings: Settings,
    /// The routes, in no particular order (the table sorts them).
    pub routes: Vec<Route>,
    /// The services routes lead to, by name.
    pub services: BTreeMap<String, Service>,
    /// Certificates for HTTPS.
    #[serde(default)]
    pub certs: Vec<Cert>,
    /// The identity provider, when any route has `auth = "oidc"`.
    #[serde(default)]
    pub oidc: Option<OidcSettings>,
    /// The instances of the services when the snapshot was made (later changes come as
    /// `Instances` messages), so that a new front door serves from its first request.
    #[serde(default)]
    pub instances: BTreeMap<String, Vec<crate::control::protocol::Instance>>,
    /// The key `X-Baton-Identity` is signed with (a board in a cluster); without it no
    /// assertion is set and the key set endpoint answers 404.
    #[serde(default)]
    pub assertion: Option<AssertionKey>,
    /// The client CA of `auth = "mtls"` routes (`[front_door.mtls]`).
    #[serde(default)]
    pub mtls: Option<MtlsSettings>,
    /// Browser sign-in, when any route has `auth = "login"` and `[front_door.oidc]` has a
    /// client id (see [`crate::identity::login`]).
    #[serde(default)]
    pub login: Option<crate::identity::login::LoginSettings>,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A list is longer than its bound.
    #[error("the snapshot has {got} {what}, at most {max} are allowed")]
    TooMany {
        /// What.
        what: &'static str,
        /// How many.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// A route is not usable as it is.
    #[error("route {index} ({service}): {why}")]
    Route {
        /// Its place in the list.
        index: usize,
        /// Its service.
        service: String,
        /// What is wrong.
        why: String,
    },
    /// A setting is out of range.
    #[error("setting {0}")]
    Setting(String),
}

impl Snapshot {
    /// Whether the snapshot is usable: bounded lists, routes with normalised keys that lead to
    /// a listed service, no two routes with the same key, settings in range.
    pub fn check(&self) -> Result<(), Refused> {
        bound("routes", self.routes.len(), MAX_ROUTES)?;
        bound("services", self.services.len(), MAX_SERVICES)?;
        bound("certificates", self.certs.len(), MAX_CERTS)?;
        for (service, list) in &self.instances {
            if !self.services.contains_key(service) {
                return Err(Refused::Setting(format!(
                    "instances of {service:?}, which the snapshot does not list"
                )));
            }
            bound(
                "instances of one service",
                list.len(),
                crate::control::protocol::MAX_INSTANCES,
            )?;
        }
        for cert in &self.certs {
            bound("hosts of one certificate", cert.hosts.len(), MAX_CERT_HOSTS)?;
            if cert.chain_pem.len() > MAX_PEM || cert.key_pem.len() > MAX_PEM {
                return Err(Refused::Setting(format!(
                    "a certificate for {:?} is longer than {MAX_PEM} bytes",
                    cert.hosts
                )));
            }
            if let Some(host) = cert.hosts.iter().find(|h| !is_normal_host(h)) {
                return Err(Refused::Setting(format!(
                    "a certificate is given for {host:?}, which is not a normalised host"
                )));
            }
        }
        bound(
            "trusted proxies",
            self.settings.trusted_proxies.len(),
            MAX_TRUSTED,
        )?;
        for (name, _) in self.services.iter() {
            if name.is_empty() || name.len() > MAX_NAME {
                return Err(Refused::Setting(format!(
                    "a service name is empty or longer than {MAX_NAME} bytes"
                )));
            }
        }
        for (ip, prefix) in &self.settings.trusted_proxies {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if *prefix > max {
                return Err(Refused::Setting(format!(
                    "trusted_proxies: {ip}/{prefix} has a prefix longer than the address"
                )));
            }
        }
        if self.settings.idle_timeout_ms == 0 || self.settings.max_connections == 0 {
            return Err(Refused::Setting(
                "idle_timeout and max_connections must be above 0".into(),
            ));
        }
        if let Some(oidc) = &self.oidc {
            check_oidc(oidc)?;
        }
        if let Some(key) = &self.assertion {
            if key.issuer.is_empty()
                || key.issuer.len() > MAX_NAME
                || key.d.len() > 64
                || key.public.len() > 128
            {
                return Err(Refused::Setting(
                    "assertion: a key or issuer out of bounds".into(),
                ));
            }
        }
        if self.mtls.as_ref().is_some_and(|m| m.ca_pem.len() > MAX_PEM) {
            return Err(Refused::Setting(format!(
                "mtls: the client CA is longer than {MAX_PEM} bytes"
            )));
        }
        if let Some(login) = &self.login {
            login.check().map_err(Refused::Setting)?;
        }
        let mut keys = std::collections::BTreeSet::new();
        for (index, r) in self.routes.iter().enumerate() {
            let refuse = |why: String| Refused::Route {
                index,
                service: r.service.clone(),
                why,
            };
            if !self.services.contains_key(&r.service) {
                return Err(refuse(
                    "leads to a service the snapshot does not list".into(),
                ));
            }
            if !is_normal_path(&r.path) {
                return Err(refuse(format!("path {:?} is not normalised", r.path)));
            }
            if let Some(host) = &r.host {
                if !is_normal_host(host) {
                    return Err(refuse(format!("host {host:?} is not normalised")));
                }
            }
            if r.timeout_ms == 0 {
                return Err(refuse("has a timeout of 0".into()));
            }
            check_require(&r.require).map_err(refuse)?;
            if let Some(forward) = &r.forward {
                forward.check().map_err(refuse)?;
            }
            if !keys.insert((r.host.as_deref(), r.path.as_str())) {
                return Err(refuse("has the host and path of an earlier route".into()));
            }
        }
        Ok(())
    }
}

fn check_oidc(oidc: &OidcSettings) -> Result<(), Refused> {
    use crate::identity::jwk::MAX_JWKS;
    if oidc.jwks.len() > MAX_JWKS {
        return Err(Refused::Setting(format!(
            "oidc: the key set is longer than {MAX_JWKS} bytes"
        )));
    }
    if oidc.issuer.is_empty() || oidc.issuer.len() > MAX_NAME {
        return Err(Refused::Setting(format!(
            "oidc: the issuer is empty or longer than {MAX_NAME} bytes"
        )));
    }
    if oidc.audience.is_empty() || oidc.audience.len() > MAX_NAME {
        return Err(Refused::Setting(format!(
            "oidc: the audience is empty or longer than {MAX_NAME} bytes"
        )));
    }
    check_fetched(oidc)?;
    if oidc.leeway_s > MAX_LEEWAY_S {
        return Err(Refused::Setting(format!(
            "oidc: a leeway of {} s, at most {MAX_LEEWAY_S} s is allowed",
            oidc.leeway_s
        )));
    }
    Ok(())
}

/// The bounds of what the provider link brings (`jwks_url`, the init's cached documents, the
/// `ca` file).
fn check_fetched(oidc: &OidcSettings) -> Result<(), Refused> {
    use crate::control::protocol::MAX_URL;
    use crate::identity::jwk::MAX_JWKS;
    if let Some(url) = &oidc.jwks_url {
        if url.len() > MAX_URL {
            return Err(Refused::Setting(format!(
                "oidc: jwks_url is longer than {MAX_URL} bytes"
            )));
        }
    }
    if oidc
        .jwks_cached
        .as_ref()
        .is_some_and(|c| c.len() > MAX_JWKS)
    {
        return Err(Refused::Setting(format!(
            "oidc: the cached key set is longer than {MAX_JWKS} bytes"
        )));
    }
    if oidc.ca_pem.as_ref().is_some_and(|c| c.len() > MAX_PEM) {
        return Err(Refused::Setting(format!(
            "oidc: the ca file is longer than {MAX_PEM} bytes"
        )));
    }
    if let Some(found) = &oidc.discovery {
        found
            .check(&oidc.issuer)
            .map_err(|e| Refused::Setting(format!("oidc: {e}")))?;
    }
    Ok(())
}

/// The spec's bounds on `route.require`, checked again (the same as baton-spec's).
fn check_require(require: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    if require.len() > MAX_REQUIRE_CLAIMS {
        return Err(format!(
            "require names {} claims, at most {MAX_REQUIRE_CLAIMS}",
            require.len()
        ));
    }
    let fits = |t: &str| !t.is_empty() && t.len() <= MAX_REQUIRE_TEXT;
    for (claim, values) in require {
        if !fits(claim) || values.is_empty() || values.len() > MAX_REQUIRE_VALUES {
            return Err(format!(
                "require: a claim name of 1 to {MAX_REQUIRE_TEXT} bytes with 1 to \
                 {MAX_REQUIRE_VALUES} values"
            ));
        }
        if !values.iter().all(|v| fits(v)) {
            return Err(format!(
                "require.{claim}: values are 1 to {MAX_REQUIRE_TEXT} bytes"
            ));
        }
    }
    Ok(())
}

fn bound(what: &'static str, got: usize, max: usize) -> Result<(), Refused> {
    if got > max {
        return Err(Refused::TooMany { what, got, max });
    }
    Ok(())
}

/// A path prefix as the spec normalises it: `/`, or `/` and segments of visible ASCII with no
/// empty, `.` or `..` segment, no trailing `/`, none of `?#\%;`.
pub fn is_normal_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    path.len() <= MAX_NAME
        && path.starts_with('/')
        && path[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && !"?#\\%;".contains(c))
}

/// A host as the spec normalises it: lowercase labels of letters, digits and `-`, joined by
/// `.`, optionally behind `*.`.
pub fn is_normal_host(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    host.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
