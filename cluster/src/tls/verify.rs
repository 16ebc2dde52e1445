//! Both ends of a TLS connection to a board: the server configuration a board serves with, and
//! the client configuration that trusts the cluster CA.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use super::ca::Leaf;
use super::{provider, Error, VERSIONS};

/// A server configuration for `leaf`: TLS 1.2 and 1.3 with ring, no client certificates, HTTP/1.1.
pub fn server_config(leaf: Leaf) -> Result<Arc<ServerConfig>, Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that trusts a server whose certificate chains to the CA in `ca_pem`
/// (or to any of the certificates, when it holds several), whatever name it was reached by
/// (see [`ChainOnly`]).
pub fn client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, Error> {
    let verifier = ChainOnly::with_roots(pem_certificates(ca_pem)?)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Verifies that a server's certificate chains to the cluster CA (signatures, validity dates,
/// key usage for a TLS server), that it is not a front-door certificate, and that the server
/// holds its key (the handshake signature), but not that the certificate names the host the
/// client connected to.
///
/// The name check is left out on purpose. The cluster CA signs nothing but the cluster's own
/// boards and the front door's route certificates, and the latter carry a mark this verifier
/// refuses ([`super::front_door`]): their keys live in a process that parses hostile input,
/// and a leaked one must not pass for a board (the CLI would send it the API token). So a
/// certificate that chains to the CA and is not marked says "a board of this cluster", which is
/// what a client of the cluster asks. A board is often reached by a name or address its
/// certificate cannot know: a port forward (`127.0.0.1:17070` under QEMU), an address behind
/// NAT, or a name from the user's own DNS. Boards still put their host name and addresses in
/// their certificates, for browsers and other clients that check names.
#[derive(Debug)]
pub struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ChainOnly {
    /// A verifier that trusts certificates issued by `ca` (DER).
    pub fn new(ca: CertificateDer<'static>) -> Result<ChainOnly, Error> {
        ChainOnly::with_roots(vec![ca])
    }

    /// A verifier that trusts certificates issued by any of `cas` (DER).
    pub fn with_roots(cas: Vec<CertificateDer<'static>>) -> Result<ChainOnly, Error> {
        let mut roots = RootCertStore::empty();
        for ca in cas {
            roots.add(ca)?;
        }
        Ok(ChainOnly {
            roots: Arc::new(roots),
            algorithms: provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        super::front_door::refuse_marked(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Every certificate in `pem`; at least one.
fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    let bad = |message: String| Error::Pem {
        what: super::CA_CERT_FILE,
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{e:?}")))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate".to_string()));
    }
    Ok(certs)
}
