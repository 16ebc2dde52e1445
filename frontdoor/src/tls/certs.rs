//! The certificates by host: exact names first, then one wildcard level (`*.apps.lan` covers
//! `a.apps.lan`, not `b.a.apps.lan`), then the default. Built once per snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::Cert;
use crate::state::State;

/// Certificates by host name.
#[derive(Debug, Default)]
pub struct HostMap {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl HostMap {
    /// The map of `certs`; a certificate that cannot be used is left out and named in the
    /// returned notes (the init checked them all before, so a note here is a bug to report,
    /// and the other hosts keep working).
    pub fn build(certs: &[Cert]) -> (HostMap, Vec<String>) {
        let mut map = HostMap::default();
        let mut notes = Vec::new();
        for cert in certs {
            let key = match load(cert) {
                Ok(key) => Arc::new(key),
                Err(e) => {
                    notes.push(format!("certificate for {:?} left out: {e}", cert.hosts));
                    continue;
                }
            };
            if cert.hosts.is_empty() {
                map.default = Some(Arc::clone(&key));
            }
            for host in &cert.hosts {
                match host.strip_prefix("*.") {
                    Some(suffix) => map.wildcard.insert(suffix.to_string(), Arc::clone(&key)),
                    None => map.exact.insert(host.clone(), Arc::clone(&key)),
                };
            }
        }
        (map, notes)
    }

    /// The certificate for a client that asked for `name` (or for none).
    pub fn resolve(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(key) = self.exact.get(&name) {
                return Some(Arc::clone(key));
            }
            if let Some((_, suffix)) = name.split_once('.') {
                if let Some(key) = self.wildcard.get(suffix) {
                    return Some(Arc::clone(key));
                }
            }
        }
        self.default.clone()
    }

    /// Whether the map has any certificate.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.default.is_none()
    }
}

/// A certificate chain and its key, checked to belong together.
pub fn load(cert: &Cert) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the chain is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the chain holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .map_err(|e| format!("the key is not PEM: {e}"))?;
    CertifiedKey::from_der(chain, key, &super::provider())
        .map_err(|e| format!("the key does not fit the certificate: {e}"))
}

/// The resolver rustls asks during each handshake: the map in force at that moment.
#[derive(Debug)]
pub struct Resolver(pub Arc<State>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.certs().resolve(hello.server_name())
    }
}
