//! Pulling images from registries over the OCI distribution API v2.
//!
//! [`Store::pull`](crate::Store::pull) fetches the manifest (OCI or Docker schema 2, image or index /
//! manifest list) named by a tag or digest, picks the store's platform from an index, and streams the
//! config and layers into the store, each verified against its digest and size while it is written.
//! Authentication: anonymous, HTTP basic, and bearer tokens (a `401` with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends the client to the token endpoint, with
//! basic credentials when configured).
//!
//! Transport: HTTPS (rustls with the ring provider), verified against Mozilla's roots plus the
//! registry's own CA when [`RegistryOptions::ca`] is set. Plain HTTP is spoken only to registries
//! marked insecure and to loopback hosts (`localhost`, `127.0.0.1`, `[::1]`) without a CA; see
//! [`plain_http`]. A bearer token endpoint must be HTTPS too when the registry is.

mod auth;
mod client;
mod pull;
mod tls;

pub use pull::PullRequest;
pub use tls::plain_http;

use std::fmt;
use std::path::{Path, PathBuf};

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
    /// Talk plain HTTP to it (also the case for loopback hosts without a [`ca`](Self::ca)).
    pub insecure: bool,
    /// A CA to trust for this registry besides Mozilla's roots; setting it also means HTTPS for
    /// loopback hosts.
    pub ca: Option<RegistryCa>,
}

/// A registry's own CA certificate(s), as read from a PEM file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCa {
    /// The file, for messages.
    pub file: PathBuf,
    /// The file's contents, or why it could not be read (reported when the registry is used).
    pub pem: Result<Vec<u8>, String>,
}

impl RegistryCa {
    /// Reads `file`; a failure is kept and reported by every pull from the registry.
    pub fn read(file: &Path) -> RegistryCa {
        RegistryCa {
            file: file.to_owned(),
            pem: std::fs::read(file).map_err(|e| format!("cannot read it: {e}")),
        }
    }
}

/// Errors from talking to a registry. Every message names the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry's CA file could not be read or holds no usable certificate.
    #[error("registry {registry}: CA file {file}: {reason}")]
    Ca {
        /// The registry host.
        registry: String,
        /// The CA file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake failed: unknown CA, wrong name, expired certificate, not TLS at all.
    #[error("registry {registry}: HTTPS to {url} failed: {reason}")]
    Tls {
        /// The registry host.
        registry: String,
        /// The URL requested.
        url: String,
        /// What went wrong, in words.
        reason: String,
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
