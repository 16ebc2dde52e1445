//! HTTPS: a certificate per host chosen by the name the client asks for (SNI), TLS 1.2 and 1.3
//! through rustls on ring, HTTP/2 or HTTP/1.1 by ALPN. The certificates come with each snapshot
//! and are swapped whole ([`certs::HostMap`]), so a new certificate serves the next handshake
//! while connections already open keep theirs. Names with an `auth = "mtls"` route also ask
//! for a client certificate ([`mtls`], [`client_cert`]).

pub mod accept;
pub mod certs;
pub mod client_cert;
pub mod mtls;

use std::sync::Arc;

/// The cryptography of every TLS config of the front door.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS versions spoken.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
