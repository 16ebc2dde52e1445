//! Pulling images from registries over the OCI distribution API v2.
//!
//! [`Store::pull`](crate::Store::pull) fetches the manifest (OCI or Docker schema 2, image or index /
//! manifest list) named by a tag or digest, picks the store's platform from an index, and streams the
//! config and layers into the store, each verified against its digest and size while it is written.
//! Authentication: anonymous, HTTP basic, and bearer tokens (a `401` with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends the client to the token endpoint, with
//! basic credentials when configured).
//!
//! Only plain HTTP is spoken, so only registries on `localhost`/`127.0.0.1`/`[::1]` and registries
//! configured as insecure can be used; any other registry is refused with
//! [`RegistryError::HttpsUnsupported`] before a byte is sent.

mod auth;
mod client;
mod pull;

pub use pull::PullRequest;

use std::fmt;

/// User name and password for a registry (basic auth, or to obtain a bearer token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"…")
            .finish()
    }
}

/// How to talk to one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Credentials, if the registry needs them.
    pub credentials: Option<Credentials>,
    /// Talk plain HTTP to it (always the case for loopback hosts).
    pub insecure: bool,
}

/// Errors from talking to a registry. Every message names the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry needs HTTPS, which this build does not speak.
    #[error("registry {registry}: HTTPS is not supported yet; only localhost and registries marked `insecure = true` in cluster.toml (plain HTTP) can be used")]
    HttpsUnsupported {
        /// The registry host.
        registry: String,
    },
    /// No connection, or the connection broke.
    #[error("registry {registry} is unreachable ({url}): {reason}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The registry refused the credentials (or there were none).
    #[error("registry {registry}: 401 unauthorized for {url}{hint}")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The URL requested.
        url: String,
        /// A hint about credentials.
        hint: &'static str,
    },
    /// The registry answered 403.
    #[error("registry {registry}: 403 access denied to {url}")]
    Denied {
        /// The registry host.
        registry: String,
        /// The URL requested.
        url: String,
    },
    /// The manifest or blob does not exist.
    #[error("registry {registry}: {what} unknown (404)")]
    NotFound {
        /// The registry host.
        registry: String,
        /// What was asked for, for example `manifest hello:1`.
        what: String,
    },
    /// Any other unexpected status.
    #[error("registry {registry}: {url} answered {status}: {body}")]
    Status {
        /// The registry host.
        registry: String,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A `WWW-Authenticate` challenge or the token endpoint's answer could not be used.
    #[error("registry {registry}: authentication: {reason}")]
    Auth {
        /// The registry host.
        registry: String,
        /// What was wrong.
        reason: String,
    },
    /// The manifest is not a type baton understands.
    #[error("registry {registry}: {what} has media type {media_type:?}, not an OCI or Docker v2 manifest or index")]
    MediaType {
        /// The registry host.
        registry: String,
        /// What was fetched.
        what: String,
        /// Its media type.
        media_type: String,
    },
}

/// Whether `host` (with optional port) is a loopback name baton always talks plain HTTP to.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
