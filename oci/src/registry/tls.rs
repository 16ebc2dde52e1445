//! HTTPS for registries: which registries are spoken to in plain HTTP, the trust roots (Mozilla's,
//! plus a registry's own CA), and readable messages for TLS failures.

use super::{is_loopback_host, RegistryCa, RegistryError, RegistryOptions};
use rustls::{CertificateError, Error as TlsError};
use std::sync::Arc;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Whether `registry` is spoken to in plain HTTP: when it is marked insecure, or when it is a
/// loopback host with no CA configured (a CA means the registry speaks HTTPS, even on loopback).
pub fn plain_http(registry: &str, options: &RegistryOptions) -> bool {
    options.insecure || (is_loopback_host(registry) && options.ca.is_none())
}

/// The TLS settings for `registry`: Mozilla's roots, plus the registry's own CA when configured.
pub(crate) fn config(
    registry: &str,
    options: &RegistryOptions,
) -> Result<TlsConfig, RegistryError> {
    let roots = match &options.ca {
        None => RootCerts::WebPki,
        Some(ca) => {
            let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                .collect();
            roots.extend(ca_certificates(registry, ca)?);
            RootCerts::Specific(Arc::new(roots))
        }
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// The certificates in a CA file; an error names the registry and the file.
fn ca_certificates(
    registry: &str,
    ca: &RegistryCa,
) -> Result<Vec<Certificate<'static>>, RegistryError> {
    let error = |reason: String| RegistryError::Ca {
        registry: registry.to_owned(),
        file: ca.file.display().to_string(),
        reason,
    };
    let pem = ca.pem.as_ref().map_err(|e| error(e.clone()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(e) => return Err(error(format!("not a valid PEM file: {e}"))),
        }
    }
    if certificates.is_empty() {
        return Err(error(
            "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    // Parse each one now, so a corrupt certificate is reported here and not as an unknown issuer.
    for certificate in &certificates {
        let der = rustls::pki_types::CertificateDer::from(certificate.der());
        let mut store = rustls::RootCertStore::empty();
        store
            .add(der)
            .map_err(|e| error(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(certificates)
}

/// A readable reason for a failed request, or `None` when it was not a TLS failure.
pub(crate) fn describe(
    error: &ureq::Error,
    registry: &str,
    options: &RegistryOptions,
) -> Option<String> {
    let tls = match error {
        ureq::Error::Rustls(e) => e,
        ureq::Error::Io(e) => e.get_ref()?.downcast_ref::<TlsError>()?,
        _ => return None,
    };
    let ca_hint = match &options.ca {
        Some(ca) => format!(
            "; neither Mozilla's roots nor the CA in {} signed it",
            ca.file.display()
        ),
        None => format!(
            "; if the registry uses its own CA, set [registries.\"{registry}\"] ca = \"certs/….pem\" in cluster.toml"
        ),
    };
    let host = host_name(registry);
    Some(match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("its certificate is signed by an unknown issuer (not a trusted CA){ca_hint}")
        }
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("its certificate is not valid for the name {host:?}"),
        TlsError::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "its certificate has expired (or the clock is wrong)".to_owned(),
        TlsError::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "its certificate is not valid yet (is the clock set?)".to_owned(),
        TlsError::InvalidCertificate(CertificateError::BadSignature) => format!(
            "its certificate's signature does not verify (signed by another CA with the same name?){ca_hint}"
        ),
        TlsError::InvalidCertificate(CertificateError::BadEncoding) => {
            "its certificate is malformed".to_owned()
        }
        TlsError::InvalidCertificate(other) => format!("its certificate was rejected ({other})"),
        TlsError::InvalidMessage(_) | TlsError::InappropriateHandshakeMessage { .. } => {
            "it did not answer in TLS (a plain HTTP registry? then set insecure = true)".to_owned()
        }
        other => format!("TLS failed: {other}"),
    })
}

/// The host of `host[:port]` (`[v6]:port` keeps its brackets off).
fn host_name(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}
