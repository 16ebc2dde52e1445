//! The board's TLS identity: the cluster CA read from the config partition, and the server
//! certificate the board issues itself from it for its host name and addresses.
//!
//! The certificate's key lives in memory only; a new one is made at every start. The
//! certificate follows the board: when its host name or addresses change (DHCP may answer
//! after the API has started), the next handshake gets a certificate issued for the new ones.
//! The API serves with it now; the front door will too.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use baton_cluster::tls::ca::Ca;
use baton_cluster::tls::{CA_CERT_FILE, CA_KEY_FILE};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::status::BoardStatus;

/// Largest `ca.pem` or `ca.key` read (a P-256 CA is under 1 KiB).
pub const MAX_PEM_BYTES: u64 = 64 << 10;

/// At most this many addresses go into the certificate.
const MAX_ADDRESSES: usize = 32;

/// Reads the CA from the config partition mounted at `config_dir`: `Ok(None)` when it has none
/// (a card written before the CA existed), an error naming the file when it is half there or
/// does not read.
pub fn load_ca(config_dir: &Path) -> Result<Option<Ca>, String> {
    let cert = read_bounded(&config_dir.join(CA_CERT_FILE))?;
    let key = read_bounded(&config_dir.join(CA_KEY_FILE))?;
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ca::from_pem(&cert, &key)
            .map(Some)
            .map_err(|e| format!("{}: {e}", config_dir.display())),
        (Some(_), None) => Err(format!("{CA_CERT_FILE} without {CA_KEY_FILE}")),
        (None, Some(_)) => Err(format!("{CA_KEY_FILE} without {CA_CERT_FILE}")),
    }
}

/// A regular file's text, at most [`MAX_PEM_BYTES`]; `None` when it does not exist.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut text = String::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{}: larger than {MAX_PEM_BYTES} bytes",
            path.display()
        ));
    }
    Ok(Some(text))
}

/// Host name and addresses a certificate was issued for.
type Names = (String, Vec<IpAddr>);

/// The board's server certificate, issued from the CA for the host name and addresses in the
/// board state, and issued again when they change.
pub struct BoardCert {
    ca: Ca,
    state: Arc<BoardStatus>,
    current: Mutex<(Names, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for BoardCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardCert").finish_non_exhaustive()
    }
}

impl BoardCert {
    /// Issues the first certificate for what `state` says now.
    pub fn new(ca: Ca, state: Arc<BoardStatus>) -> Result<Arc<BoardCert>, String> {
        let names = wanted(&state);
        let key = issue(&ca, &names)?;
        Ok(Arc::new(BoardCert {
            ca,
            state,
            current: Mutex::new((names, key)),
        }))
    }

    /// The CA the certificate is issued from.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The certificate for the board's present names: the last one if they have not changed,
    /// else a new one (the last one if that fails).
    pub fn certified(&self) -> Arc<CertifiedKey> {
        let names = wanted(&self.state);
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0 != names {
            if let Ok(key) = issue(&self.ca, &names) {
                *current = (names, key);
            }
        }
        Arc::clone(&current.1)
    }
}

impl ResolvesServerCert for BoardCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified())
    }
}

/// A server configuration with the board's certificate: TLS 1.2 and 1.3, HTTP/1.1.
pub fn server_config(cert: Arc<BoardCert>) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(baton_cluster::tls::provider())
        .with_protocol_versions(baton_cluster::tls::VERSIONS)
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The host name (`baton` before one is set) and the addresses, with 127.0.0.1, from `state`.
fn wanted(state: &BoardStatus) -> Names {
    let host = Some(state.info().hostname)
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "baton".to_string());
    let mut addrs: Vec<IpAddr> = state
        .addresses()
        .iter()
        .filter_map(|a| a.address.split('/').next()?.parse().ok())
        .take(MAX_ADDRESSES)
        .collect();
    addrs.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    addrs.sort();
    addrs.dedup();
    (host, addrs)
}

fn issue(ca: &Ca, (host, addrs): &Names) -> Result<Arc<CertifiedKey>, String> {
    let leaf = ca
        .issue_server(host, addrs)
        .map_err(|e| format!("issuing the board's certificate: {e}"))?;
    let key = rustls::crypto::ring::sign::any_ecdsa_type(&leaf.key)
        .map_err(|e| format!("the board's key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(leaf.chain, key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::{Address, AddressSource, BoardInfo};

    fn state(host: &str, addr: &str) -> Arc<BoardStatus> {
        let state = Arc::new(BoardStatus::default());
        state.set_info(BoardInfo {
            hostname: host.into(),
            ..BoardInfo::default()
        });
        state.set_addresses(
            "eth0",
            vec![Address {
                interface: "eth0".into(),
                address: addr.into(),
                source: AddressSource::Dhcp,
            }],
        );
        state
    }

    #[test]
    fn no_ca_on_the_card_is_none_and_half_a_ca_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_ca(dir.path()).unwrap().is_none());
        let ca = Ca::generate("home").unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        assert!(load_ca(dir.path()).unwrap_err().contains("without ca.key"));
        std::fs::write(dir.path().join("ca.key"), ca.key_pem()).unwrap();
        let loaded = load_ca(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        // A huge file is refused before it is read in full.
        std::fs::write(dir.path().join("ca.key"), vec![b'A'; 1 << 20]).unwrap();
        assert!(load_ca(dir.path()).unwrap_err().contains("larger than"));
    }

    #[test]
    fn the_certificate_follows_the_board_names() {
        let state = state("pi-a", "192.168.1.20/24");
        let cert = BoardCert::new(Ca::generate("home").unwrap(), Arc::clone(&state)).unwrap();
        let first = cert.certified();
        assert!(
            Arc::ptr_eq(&first, &cert.certified()),
            "reissued for nothing"
        );
        state.set_addresses(
            "eth0",
            vec![Address {
                interface: "eth0".into(),
                address: "192.168.1.77/24".into(),
                source: AddressSource::Dhcp,
            }],
        );
        let second = cert.certified();
        assert!(!Arc::ptr_eq(&first, &second));
        let der = second.cert[0].as_ref();
        let wanted = [192u8, 168, 1, 77];
        assert!(der.windows(4).any(|w| w == wanted), "new address missing");
    }
}
