//! The certificate of each route host: the user's own from the card (`certs/<host>.pem` and
//! `certs/<host>.key`; a wildcard `*.apps.lan` as `_.apps.lan`, since `*` cannot be in a FAT
//! name), or one issued by the cluster CA, which never leaves PID 1. Issued certificates are
//! kept in memory and issued again 30 days before they end; they last 397 days, the most
//! browsers accept. A default certificate for the board's name answers clients that name no
//! known host. Card files are read bounded and checked (the key must fit the certificate).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use baton_cluster::tls::ca::{Ca, BACKDATE};
use baton_cluster::tls::front_door::MAX_DAYS;
use baton_frontdoor::config::Cert;
use time::{Duration, OffsetDateTime};

/// The card's folder of user certificates.
pub const DIR: &str = "certs";
/// Largest certificate or key file read.
pub const MAX_FILE: u64 = 64 * 1024;
/// How long before its end an issued certificate is replaced.
pub const RENEW_BEFORE: Duration = Duration::days(30);

/// Where a host's certificate comes from, for `/v1/routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The card's files.
    Card,
    /// Issued by the cluster CA, valid until then.
    Issued(OffsetDateTime),
    /// None: HTTPS for the host fails.
    Missing(String),
}

#[derive(Debug, Clone)]
struct Issued {
    cert: Cert,
    until: OffsetDateTime,
}

/// Certificates issued so far, by host (`""`: the default).
#[derive(Debug, Default)]
pub struct Certs {
    issued: BTreeMap<String, Issued>,
}

/// What [`Certs::build`] found.
#[derive(Debug, Default)]
pub struct Built {
    /// The certificates, the default first.
    pub certs: Vec<Cert>,
    /// Where each host's came from.
    pub sources: BTreeMap<String, Source>,
    /// Problems, one line each.
    pub notes: Vec<String>,
}

impl Certs {
    /// The certificates for `hosts` and the default for `board`, from `card` (the config
    /// partition) and `ca`, at `now`.
    pub fn build(
        &mut self,
        hosts: &BTreeSet<String>,
        card: &Path,
        ca: Option<&Ca>,
        board: &str,
        now: OffsetDateTime,
    ) -> Built {
        let mut built = Built::default();
        match self.issue("", &[board.to_string()], ca, now) {
            Ok((cert, _)) => built.certs.push(Cert {
                hosts: Vec::new(),
                ..cert
            }),
            Err(why) => built.notes.push(format!("no default certificate: {why}")),
        }
        self.issued
            .retain(|host, _| host.is_empty() || hosts.contains(host));
        for host in hosts {
            match from_card(card, host) {
                Ok(Some(cert)) => {
                    built.sources.insert(host.clone(), Source::Card);
                    built.certs.push(cert);
                    continue;
                }
                Ok(None) => {}
                Err(why) => built.notes.push(why),
            }
            match self.issue(host, std::slice::from_ref(host), ca, now) {
                Ok((cert, until)) => {
                    built.sources.insert(host.clone(), Source::Issued(until));
                    built.certs.push(cert);
                }
                Err(why) => {
                    built
                        .notes
                        .push(format!("no certificate for {host}: {why}"));
                    built.sources.insert(host.clone(), Source::Missing(why));
                }
            }
        }
        built
    }

    /// The issued certificate kept for `key`, or a new one when there is none or it ends
    /// within [`RENEW_BEFORE`].
    fn issue(
        &mut self,
        key: &str,
        hosts: &[String],
        ca: Option<&Ca>,
        now: OffsetDateTime,
    ) -> Result<(Cert, OffsetDateTime), String> {
        if let Some(kept) = self.issued.get(key) {
            if kept.until - RENEW_BEFORE > now {
                return Ok((kept.cert.clone(), kept.until));
            }
        }
        let ca = ca.ok_or("the cluster has no CA on this board's card")?;
        let start = now - BACKDATE;
        let leaf = ca
            .issue_for_hosts(hosts, start, MAX_DAYS)
            .map_err(|e| e.to_string())?;
        let until = start + Duration::days(i64::from(MAX_DAYS));
        let cert = Cert {
            hosts: hosts.to_vec(),
            chain_pem: leaf.cert_pem.clone(),
            key_pem: leaf.key_pem.clone(),
        };
        self.issued.insert(
            key.to_string(),
            Issued {
                cert: cert.clone(),
                until,
            },
        );
        Ok((cert, until))
    }
}

/// The card's file name stem for `host`: `*.apps.lan` is `_.apps.lan`.
pub fn file_stem(host: &str) -> String {
    match host.strip_prefix("*.") {
        Some(suffix) => format!("_.{suffix}"),
        None => host.to_string(),
    }
}

/// The user's certificate for `host` from the card, if both files are there; an error names
/// the file and what is wrong (the host then gets an issued certificate).
fn from_card(card: &Path, host: &str) -> Result<Option<Cert>, String> {
    let stem = file_stem(host);
    let pem = card.join(DIR).join(format!("{stem}.pem"));
    let key = card.join(DIR).join(format!("{stem}.key"));
    if !pem.exists() && !key.exists() {
        return Ok(None);
    }
    let shown = |p: &Path| {
        format!(
            "{DIR}/{}",
            p.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    let chain_pem = read_text(&pem, MAX_FILE).map_err(|e| format!("{}: {e}", shown(&pem)))?;
    let key_pem = read_text(&key, MAX_FILE).map_err(|e| format!("{}: {e}", shown(&key)))?;
    let cert = Cert {
        hosts: vec![host.to_string()],
        chain_pem,
        key_pem,
    };
    baton_frontdoor::tls::certs::load(&cert)
        .map_err(|e| format!("{}: {e}; an issued certificate is used", shown(&pem)))?;
    Ok(Some(cert))
}

/// A text file of the card, at most `max` bytes (certificates, key sets, CA files).
pub fn read_text(path: &Path, max: u64) -> Result<String, String> {
    let bytes =
        crate::board::persist::read_bounded(path, max)?.ok_or_else(|| "not found".to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// A fingerprint of the card's certificate files for `hosts` (names, sizes, times), to notice
/// when they change.
pub fn card_fingerprint(card: &Path, hosts: &BTreeSet<String>) -> Vec<(String, u64, i64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    for host in hosts {
        let stem = file_stem(host);
        for ext in ["pem", "key"] {
            let name = format!("{stem}.{ext}");
            if let Ok(meta) = std::fs::metadata(card.join(DIR).join(&name)) {
                out.push((name, meta.size(), meta.mtime()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
