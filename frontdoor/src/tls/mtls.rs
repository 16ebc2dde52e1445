//! Client certificates for `auth = "mtls"` routes (docs/design/front-door.md section 4): the
//! verifier of the configured client CA, and which server names ask for a certificate. Only
//! names with an mTLS route do, so a browser visiting any other host never shows a
//! certificate prompt. A client may still connect without one (`allow_unauthenticated`): the
//! route answers 401 with a page, which says more than a failed handshake.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::{Auth, Route};
use crate::state::State;

/// Certificates in a client CA file, at most.
pub const MAX_CA_CERTS: usize = 64;

/// The client-certificate side of the configuration in force.
#[derive(Debug)]
pub struct Mtls {
    /// Checks the chain a client presents against the client CA.
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// The server names that ask for a certificate.
    pub hosts: Hosts,
}

/// The names of mTLS routes.
#[derive(Debug, Default)]
pub struct Hosts {
    any: bool,
    exact: HashSet<String>,
    wildcard: HashSet<String>,
}

impl Hosts {
    /// The names of the routes with `auth = "mtls"` (a route for any host makes every name
    /// ask, and connections that name none).
    pub fn of(routes: &[Route]) -> Hosts {
        let mut hosts = Hosts::default();
        for route in routes.iter().filter(|r| r.auth == Auth::Mtls) {
            match route.host.as_deref() {
                None => hosts.any = true,
                Some(h) => {
                    match h.strip_prefix("*.") {
                        Some(suffix) => hosts.wildcard.insert(suffix.to_string()),
                        None => hosts.exact.insert(h.to_string()),
                    };
                }
            }
        }
        hosts
    }

    /// Whether any route needs a client certificate.
    pub fn is_empty(&self) -> bool {
        !self.any && self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// Whether a handshake for `sni` asks for a client certificate.
    pub fn wants(&self, sni: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let Some(name) = sni else {
            return false;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.exact.contains(&name)
            || name
                .split_once('.')
                .is_some_and(|(_, suffix)| self.wildcard.contains(suffix))
    }
}

/// The verifier of client certificates chaining to the CA certificates in `ca_pem`.
pub fn verifier(ca_pem: &str) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(ca_pem.as_bytes()).enumerate() {
        if n >= MAX_CA_CERTS {
            return Err(format!("more than {MAX_CA_CERTS} certificates"));
        }
        let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("certificate {}: {e}", n + 1))?;
    }
    if roots.is_empty() {
        return Err("no certificate".into());
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| e.to_string())
}

/// The server configs of one listener: the one every handshake gets, and the one that asks
/// for a client certificate, built again for each configuration generation.
#[derive(Debug)]
pub struct Configs {
    base: Arc<ServerConfig>,
    mtls: Mutex<Option<(u64, Arc<ServerConfig>)>>,
}

impl Configs {
    /// Configs around `base`.
    pub fn new(base: Arc<ServerConfig>) -> Configs {
        Configs {
            base,
            mtls: Mutex::new(None),
        }
    }

    /// The config for a handshake that names `sni`.
    pub fn pick(&self, state: &Arc<State>, sni: Option<&str>) -> Arc<ServerConfig> {
        let active = state.active();
        let Some(mtls) = active.mtls.as_ref().filter(|m| m.hosts.wants(sni)) else {
            return Arc::clone(&self.base);
        };
        let mut built = self.mtls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((generation, config)) = built.as_ref() {
            if *generation == active.generation {
                return Arc::clone(config);
            }
        }
        match self.build(state, Arc::clone(&mtls.verifier)) {
            Ok(config) => {
                *built = Some((active.generation, Arc::clone(&config)));
                config
            }
            // Not expected (the same builder as the base config); the route then sees no
            // certificate and answers 401, never passing unchecked.
            Err(_) => Arc::clone(&self.base),
        }
    }

    fn build(
        &self,
        state: &Arc<State>,
        verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(super::provider())
            .with_protocol_versions(super::VERSIONS)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(super::certs::Resolver(Arc::clone(state))));
        config.alpn_protocols = self.base.alpn_protocols.clone();
        // Resumption as the base config has it, with tickets and a session cache of its own: a
        // session made without a client certificate must not resume here, nor the other way.
        if self.base.ticketer.enabled() {
            config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        }
        if !self.base.session_storage.can_cache() {
            config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        }
        config.send_tls13_tickets = self.base.send_tls13_tickets;
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: Option<&str>, auth: Auth) -> Route {
        Route {
            service: "s".into(),
            host: host.map(str::to_string),
            path: "/".into(),
            auth,
            timeout_ms: 1000,
            require: Default::default(),
            forward: None,
        }
    }

    #[test]
    fn only_names_of_mtls_routes_ask_exact_and_one_wildcard_level() {
        let hosts = Hosts::of(&[
            route(Some("secure.lan"), Auth::Mtls),
            route(Some("*.apps.lan"), Auth::Mtls),
            route(Some("open.lan"), Auth::None),
            route(None, Auth::Oidc),
        ]);
        assert!(hosts.wants(Some("secure.lan")));
        assert!(hosts.wants(Some("SECURE.lan.")));
        assert!(hosts.wants(Some("a.apps.lan")));
        assert!(!hosts.wants(Some("b.a.apps.lan")));
        assert!(!hosts.wants(Some("apps.lan")));
        assert!(!hosts.wants(Some("open.lan")));
        assert!(!hosts.wants(None));
    }

    #[test]
    fn an_mtls_route_for_any_host_makes_every_handshake_ask() {
        let hosts = Hosts::of(&[route(None, Auth::Mtls)]);
        assert!(hosts.wants(None) && hosts.wants(Some("anything.lan")));
        assert!(Hosts::of(&[route(Some("x.lan"), Auth::None)]).is_empty());
    }

    #[test]
    fn a_client_ca_must_hold_a_certificate() {
        assert!(verifier("").is_err());
        assert!(
            verifier("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }
}
