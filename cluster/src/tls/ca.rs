//! The cluster CA: generating it, reading it back from its PEM files, and issuing a board's
//! server certificate from it.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::Error;

/// How long a generated CA is valid: ten years.
pub const CA_VALIDITY: Duration = Duration::days(3653);

/// A generated CA's validity starts this long before "now", for clocks that are a little behind.
pub const BACKDATE: Duration = Duration::days(1);

/// The cluster CA: its certificate and the key that signs the boards' certificates.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    not_before: OffsetDateTime,
    pub(super) not_after: OffsetDateTime,
    pub(super) issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A server certificate and its key, as a TLS listener takes them.
pub struct Leaf {
    /// The certificate chain, the board's own certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The certificate's private key (kept in memory only).
    pub key: PrivateKeyDer<'static>,
    /// The certificate as PEM (for `openssl` and for showing it).
    pub cert_pem: String,
    /// The private key as PEM (PKCS#8), for a process that takes it as text (the front door's
    /// snapshot); kept in memory only, like `key`.
    pub key_pem: String,
}

/// Shows the certificate, never the key.
impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA for the cluster `cluster`: ECDSA P-256, valid [`CA_VALIDITY`] from now (less a
    /// day), allowed to sign end-entity certificates only.
    pub fn generate(cluster: &str) -> Result<Ca, Error> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("baton cluster {cluster} CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "baton");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(Error::certificate("generating the CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(Error::certificate("signing the CA certificate"))?;
        Ca::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// Reads a CA from its certificate and key (PEM). The key must be the certificate's, and the
    /// certificate a CA's.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, Error> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Pem {
            what: super::CA_KEY_FILE,
            message: e.to_string(),
        })?;
        let cert_der = pem_certificate(cert_pem)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| Error::Pem {
                what: super::CA_CERT_FILE,
                message: format!("not an X.509 certificate: {e}"),
            })?;
        if !parsed.is_ca() {
            return Err(Error::Pem {
                what: super::CA_CERT_FILE,
                message: "is not a CA certificate (no basicConstraints CA:TRUE)".to_string(),
            });
        }
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::Pem {
                what: super::CA_KEY_FILE,
                message: format!(
                    "is not the key of the certificate in {}",
                    super::CA_CERT_FILE
                ),
            });
        }
        let not_before = parsed.validity().not_before.to_datetime();
        let not_after = parsed.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| Error::Pem {
            what: super::CA_CERT_FILE,
            message: e.to_string(),
        })?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            cert_der,
            not_before,
            not_after,
            issuer,
        })
    }

    /// The certificate, PEM (the contents of `ca.pem`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM (the contents of `ca.key`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a server certificate for the board `host`: its names are `host` and `host.local`,
    /// its addresses `addrs` (callers add 127.0.0.1). The key is a new ECDSA P-256 key.
    ///
    /// The certificate is valid as long as the CA is: a board has no battery-backed clock and
    /// issues its certificate at start, often before its clock is set, so a span counted from
    /// "now" could end before the real date. A board issues a new certificate at every start.
    pub fn issue_server(&self, host: &str, addrs: &[IpAddr]) -> Result<Leaf, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, host);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "baton");
        let mut names = Vec::new();
        for name in [host.to_string(), format!("{host}.local")] {
            let name = name
                .try_into()
                .map_err(|e: rcgen::Error| Error::Certificate {
                    what: "the board's host name",
                    message: e.to_string(),
                })?;
            names.push(SanType::DnsName(name));
        }
        let mut seen = Vec::new();
        for addr in addrs {
            if !seen.contains(addr) {
                seen.push(*addr);
                names.push(SanType::IpAddress(*addr));
            }
        }
        params.subject_alt_names = names;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(Error::certificate("generating the board's key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(Error::certificate("signing the board's certificate"))?;
        Ok(Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The first certificate in `pem`, DER.
pub fn pem_certificate(pem: &str) -> Result<CertificateDer<'static>, Error> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Pem {
        what: super::CA_CERT_FILE,
        message: format!("no PEM certificate: {e:?}"),
    })
}

/// A random, positive 127-bit serial number.
pub(super) fn random_serial() -> Result<SerialNumber, Error> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Certificate {
            what: "a serial number",
            message: e.to_string(),
        })?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}
