//! The TLS settings of outbound requests: Mozilla's roots as the `webpki-roots` crate carries
//! them (CDLA-Permissive-2.0 data, already in the build through the registry client), plus the
//! card's `ca` file; TLS 1.2 and 1.3 on ring, HTTP/1.1 only.

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Certificates read from a `ca` file, at most.
const MAX_CA_CERTS: usize = 64;

/// The client settings, and notes on certificates of `ca_pem` left out.
pub(super) fn config(ca_pem: Option<&str>) -> (ClientConfig, Vec<String>) {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut notes = Vec::new();
    if let Some(pem) = ca_pem {
        let mut added = 0usize;
        for (index, item) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
            if index >= MAX_CA_CERTS {
                notes.push(format!(
                    "the oidc ca file has more than {MAX_CA_CERTS} certificates; the rest are left out"
                ));
                break;
            }
            match item
                .map_err(|e| e.to_string())
                .and_then(|der| roots.add(der).map_err(|e| e.to_string()))
            {
                Ok(()) => added += 1,
                Err(e) => notes.push(format!(
                    "certificate {} of the oidc ca file is left out: {e}",
                    index + 1
                )),
            }
        }
        if added == 0 {
            notes.push(
                "the oidc ca file has no usable certificate (expected -----BEGIN CERTIFICATE-----): only Mozilla's roots are trusted".into(),
            );
        }
    }
    let config = ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(crate::tls::VERSIONS)
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    let mut config = match config {
        Ok(config) => config,
        // The ring provider speaks both versions; this cannot happen, and is loud if it does.
        Err(e) => panic!("the outbound TLS settings: {e}"),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (config, notes)
}
