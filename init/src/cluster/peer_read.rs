//! What a board needs to read its peers' events and log lines (see
//! `docs/design/observability.md`, section 2, "Fan-out"): which peers, at which address, with
//! which credential.
//!
//! The credential is a bearer key derived from the cluster key (HKDF-SHA256, info [`INFO`]),
//! the same on every board and accepted only on the read-only `/v1/peer/` routes. The API
//! token would do too, but nothing makes it equal on every board; and a holder of the cluster
//! key is a member already, which may read what members read.

use std::net::SocketAddr;
use std::sync::Arc;

use baton_cluster::gossip::MemberState;
use hkdf::Hkdf;
use sha2::Sha256;

use super::Node;

/// The HKDF info of the peer read key; a new version of the key gets a new info.
pub const INFO: &[u8] = b"baton peer read v1";

/// A peer whose API this board reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerApi {
    /// Its name.
    pub name: String,
    /// Its API's address.
    pub addr: SocketAddr,
}

/// The peer read key of a cluster whose key is `cluster_key`, in hex.
pub fn key(cluster_key: &str) -> String {
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit (255 blocks): expand cannot fail.
    let _ = Hkdf::<Sha256>::new(None, cluster_key.as_bytes()).expand(INFO, &mut okm);
    okm.iter().map(|b| format!("{b:02x}")).collect()
}

/// The peers a board reads, and how.
pub trait Peers: Send + Sync + 'static {
    /// The key peers present on the `/v1/peer/` routes.
    fn read_key(&self) -> String;
    /// How to reach the peers' APIs: TLS trusting the cluster CA, or `None` for plain HTTP (a
    /// card without a CA).
    fn tls(&self) -> Option<Arc<rustls::ClientConfig>>;
    /// The peers to read now.
    fn readable(&self) -> Vec<PeerApi>;
}

/// Whether `name` reads as a host name: 1 to 63 letters, digits, `-`, `_` or `.`.
pub fn host_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Peers for Node {
    fn read_key(&self) -> String {
        key(&self.settings.key)
    }

    fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.settings.tls.clone()
    }

    /// The alive peers that announce an API on the address their gossip comes from, under a
    /// host name. An API announced elsewhere is not asked: a board reads its peers, not an
    /// address a datagram names; and a peer's name goes into what readers see, so a name
    /// that is not a host name (a line break, say) is not read at all.
    fn readable(&self) -> Vec<PeerApi> {
        self.gossip
            .members()
            .into_iter()
            .filter(|p| p.state == MemberState::Alive && host_name(&p.name))
            .filter_map(|p| {
                let api = p.values.api?;
                (std::net::IpAddr::V4(*api.ip()) == p.addr.ip()).then_some(PeerApi {
                    name: p.name,
                    addr: SocketAddr::V4(api),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_host_name_is_read() {
        assert!(host_name("baton-ba0001"));
        assert!(host_name("pi.lan"));
        for bad in ["", "x\nfake-1@pi-a out", "a b", "é", &"a".repeat(64)] {
            assert!(!host_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_key_is_the_same_for_the_same_cluster_key_and_only_for_it() {
        let a = key("cluster key one");
        assert_eq!(a, key("cluster key one"));
        assert_ne!(a, key("cluster key two"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        // Not the assertion key's derivation: another info gives another key.
        let mut other = [0u8; 32];
        Hkdf::<Sha256>::new(None, b"cluster key one")
            .expand(crate::frontdoor::identity::INFO, &mut other)
            .expect("expand");
        let other: String = other.iter().map(|b| format!("{b:02x}")).collect();
        assert_ne!(a, other);
    }
}
