//! Certificates for the front door's route hosts, issued from the cluster CA and marked so that
//! they never pass for a board's.
//!
//! The clients of the cluster (the CLI, the sync exchange between boards) check that a server's
//! certificate chains to the cluster CA and skip the name ([`super::verify::ChainOnly`]). The
//! front door parses hostile input and holds the keys of its certificates; if one leaks, its
//! holder must not be able to pose as a board (the CLI would hand it the API token). So these
//! certificates carry a mark, the subject's organisational unit [`MARKER`], and `ChainOnly`
//! refuses a leaf that carries it ([`refuse_marked`]). Browsers ignore it.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::ca::{random_serial, Ca, Leaf};
use super::Error;

/// The subject's organisational unit (OU) of every front-door certificate.
pub const MARKER: &str = "baton front door";

/// The longest validity a front-door certificate may have, in days. Apple platforms refuse TLS
/// server certificates valid for more than 398 days, even from a private CA.
pub const MAX_DAYS: u32 = 397;

/// The most names one certificate may carry (it grows with each, and every handshake sends it).
pub const MAX_HOSTS: usize = 100;

/// The longest common name X.509 allows (ub-common-name); longer first hosts get none.
const MAX_COMMON_NAME: usize = 64;

impl Ca {
    /// Issues a front-door certificate (marked with [`MARKER`]) for `hosts`: each a host name
    /// (`app.lan`), a wildcard one label deep (`*.apps.lan`) or an IP address. The key is a new
    /// ECDSA P-256 key. It is valid from `not_before` (callers pass now less
    /// [`super::ca::BACKDATE`]) for `days` (1 to [`MAX_DAYS`]), and never past the CA's own end.
    pub fn issue_for_hosts(
        &self,
        hosts: &[String],
        not_before: OffsetDateTime,
        days: u32,
    ) -> Result<Leaf, Error> {
        let bad = |message: String| Error::Certificate {
            what: "a front-door certificate",
            message,
        };
        if hosts.is_empty() || hosts.len() > MAX_HOSTS {
            return Err(bad(format!(
                "needs 1 to {MAX_HOSTS} hosts, got {}",
                hosts.len()
            )));
        }
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(bad(format!(
                "validity of {days} days is outside 1 to {MAX_DAYS}"
            )));
        }
        let not_after = (not_before + Duration::days(i64::from(days))).min(self.not_after);
        if not_after <= not_before {
            return Err(bad(format!(
                "the CA expires ({}) before the certificate would start ({not_before})",
                self.not_after
            )));
        }
        let mut names: Vec<SanType> = Vec::new();
        for host in hosts {
            let name = san(host).map_err(|why| bad(format!("host {host:?}: {why}")))?;
            if !names.contains(&name) {
                names.push(name);
            }
        }

        let mut params = CertificateParams::default();
        if hosts[0].len() <= MAX_COMMON_NAME {
            params
                .distinguished_name
                .push(DnType::CommonName, hosts[0].as_str());
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, "baton");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, MARKER);
        params.subject_alt_names = names;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(Error::certificate("generating a front-door key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(Error::certificate("signing a front-door certificate"))?;
        Ok(Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The subject alternative name for `host`, or why it cannot be one.
fn san(host: &str) -> Result<SanType, &'static str> {
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(addr));
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if !is_host_name(name) {
        return Err("not a lowercase host name, `*.` and one, or an IP address");
    }
    let name = host
        .to_string()
        .try_into()
        .map_err(|_| "not an ASCII name")?;
    Ok(SanType::DnsName(name))
}

/// Lowercase labels of `a-z`, `0-9` and `-` (not at either end) joined by `.`, at most 253
/// characters: the route hosts the spec accepts.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(baton_spec::service::is_service_name)
}

/// Whether the certificate `der` carries the front-door [`MARKER`]; an error when it cannot
/// be parsed.
pub fn is_marked(der: &[u8]) -> Result<bool, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    let marked = cert.subject().iter_organizational_unit().any(|unit| {
        unit.as_str()
            .is_ok_and(|s| s.trim().eq_ignore_ascii_case(MARKER))
    });
    Ok(marked)
}

/// Refuses `leaf` when it is a front-door certificate, or cannot be parsed to tell: such a
/// certificate names route hosts, not a board of the cluster.
pub fn refuse_marked(leaf: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    let refuse = |why: String| {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(NotABoard(why)),
        )))
    };
    match is_marked(leaf) {
        Ok(false) => Ok(()),
        Ok(true) => Err(refuse(format!(
            "a front-door certificate (OU={MARKER}) is not a board's, though the cluster CA \
             issued it"
        ))),
        Err(why) => Err(refuse(why)),
    }
}

/// Why a certificate from the cluster CA was not taken for a board's. Its `Debug` is the
/// sentence too, since rustls shows this error with `{:?}`.
struct NotABoard(String);

impl std::fmt::Display for NotABoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for NotABoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotABoard {}
