//! The cluster's certificate authority and the TLS that rests on it.
//!
//! `baton image build` generates one CA per cluster ([`ca::Ca::generate`]): ECDSA P-256 (browsers
//! refuse Ed25519 server certificates), valid ten years, written as [`CA_CERT_FILE`] and
//! [`CA_KEY_FILE`] onto the config partition and kept in the user's own config directory. Every
//! board issues itself a server certificate from it at start ([`ca::Ca::issue_server`]), for its
//! host name and addresses. Clients trust a board whose certificate chains to the CA without
//! requiring a name match ([`verify::ChainOnly`]); the CA signs nothing but the cluster's boards
//! and the front door's certificates for route hosts ([`ca::Ca::issue_for_hosts`]), which are
//! marked and never pass for a board's ([`front_door`]).
//!
//! The API (port 7070), the sync exchange between boards and, later, the front door all use these
//! pieces: [`verify::server_config`] for a listener, [`verify::client_config`] and
//! [`connector::agent`] for a client.

pub mod ca;
pub mod connector;
pub mod front_door;
pub mod verify;

/// The CA's certificate (PEM) on the config partition and in the user's config directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's private key (PKCS#8 PEM) next to [`CA_CERT_FILE`]; mode 0600 where it is written.
pub const CA_KEY_FILE: &str = "ca.key";

/// Errors making or using the cluster's certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Generating or signing a certificate failed.
    #[error("cluster CA: {what}: {message}")]
    Certificate {
        /// What was being done.
        what: &'static str,
        /// The cause.
        message: String,
    },
    /// A PEM file does not hold what it should.
    #[error("cluster CA: {what}: {message}")]
    Pem {
        /// Which file or part.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl Error {
    fn certificate(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
        move |e| Error::Certificate {
            what,
            message: e.to_string(),
        }
    }
}

/// The crypto provider every baton TLS endpoint uses: ring, TLS 1.2 and 1.3.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions baton speaks: TLS 1.2 and 1.3.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[cfg(test)]
mod front_door_tests;
#[cfg(test)]
mod tests;
