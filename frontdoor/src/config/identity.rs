//! The identity parts of the snapshot that are not the OIDC provider's: the key of
//! `X-Baton-Identity` and the client CA of `mtls` routes. Their `Debug` never shows a key.

use serde::{Deserialize, Serialize};

/// The key of `X-Baton-Identity`: a P-256 key pair PID 1 derives from the cluster key (the
/// cluster key itself never reaches the front door).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionKey {
    /// The assertions' `iss`: `baton:<cluster name>`.
    pub issuer: String,
    /// The private scalar, 32 bytes big-endian, base64url.
    pub d: String,
    /// The public point, uncompressed (65 bytes), base64url.
    pub public: String,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private scalar.
        f.debug_struct("AssertionKey")
            .field("issuer", &self.issuer)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The client certificates of `auth = "mtls"` routes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsSettings {
    /// The CA certificates client certificates must chain to, PEM (the card's `ca` file).
    pub ca_pem: String,
}

impl std::fmt::Debug for MtlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsSettings")
            .field("ca_bytes", &self.ca_pem.len())
            .finish()
    }
}
