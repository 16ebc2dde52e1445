//! The signature a board sends with each of its gossip states ([`StateProof`]).
//!
//! A state message ([`super::wire::StateMessage`]) is followed, to the same receiver, by a proof
//! datagram: the board's public key, the time it claimed its name, its gossip address, the
//! state's generation, the generation of its current membership identity, the state's version,
//! the SHA-256 of the state's payload, and the board key's signature over all of that and the
//! board's name. The address and the membership generation make the proof a vouch for one
//! membership identity ([`super::vouches`]): foca's packets are not signed, so a receiver takes
//! a bound name's identity only as its latest proof names it. The address is signed because the mesh
//! sends to it: the membership protocol's own packets are not signed, so the address foca
//! reports for a name could be a key holder's. A receiver that has bound the name to a key
//! ([`super::bindings`]) applies a state only once a proof signed by that key covers it.
//!
//! Why a second datagram rather than a signature inside the state: the previous release reads
//! state messages and skips payload kinds it does not know, so boards of both releases keep
//! reading each other's state during a rolling update (a signature inside would make the
//! previous release refuse the state as malformed). It costs one datagram of
//! [`PROOF_LEN`] + 1 bytes of payload per state sent.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use sha2::{Digest, Sha256};

use crate::board_key::{self, BoardKey};

/// What the signature covers first, so that it can never be taken for another message's.
const DOMAIN: &[u8] = b"baton board state v2\0";
/// Length of an address in a proof: an IPv6 address (IPv4 mapped) and a port.
const ADDR_LEN: usize = 16 + 2;
/// Length of a proof after its kind byte: key, since, address, generation, member generation,
/// version, digest, signature.
pub(crate) const PROOF_LEN: usize = 32 + 8 + ADDR_LEN + 8 + 8 + 8 + 32 + 64;

/// A board's signature over one of its states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateProof {
    /// The signing board's public key.
    pub(crate) key: [u8; 32],
    /// When the board claimed its name with this key.
    pub(crate) since_ms: u64,
    /// Where the board receives gossip (and, at the port it publishes, mesh traffic).
    pub(crate) addr: SocketAddr,
    /// The state's generation (that of the datagrams carrying it): the board's boot generation.
    pub(crate) generation: u64,
    /// The generation of the board's membership identity when it signed: its boot generation,
    /// raised by one for each renewal since (never below `generation`).
    pub(crate) member_generation: u64,
    /// The state's version.
    pub(crate) version: u64,
    /// SHA-256 of the state's payload (kind byte included).
    pub(crate) digest: [u8; 32],
    /// Ed25519 over [`DOMAIN`], the name and the fields above.
    pub(crate) signature: [u8; 64],
}

/// The SHA-256 of a state payload, as a proof names it.
pub(crate) fn payload_digest(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

impl StateProof {
    /// `key`'s proof of the state payload `payload` that `name` sends in `generation`/`version`,
    /// as membership identity `name`@`addr`, generation `member_generation`.
    pub(crate) fn sign(
        key: &BoardKey,
        name: &str,
        addr: SocketAddr,
        (generation, member_generation): (u64, u64),
        version: u64,
        payload: &[u8],
    ) -> StateProof {
        let mut proof = StateProof {
            key: key.public(),
            since_ms: key.since_ms(),
            addr,
            generation,
            member_generation,
            version,
            digest: payload_digest(payload),
            signature: [0; 64],
        };
        proof.signature = key.sign(&proof.signed_bytes(name));
        proof
    }

    /// Whether the signature is the key's, for a state sent by `name`.
    pub(crate) fn verify(&self, name: &str) -> bool {
        board_key::verify(&self.key, &self.signed_bytes(name), &self.signature)
    }

    /// Whether this proof covers the state `generation`/`version` with payload digest `digest`.
    pub(crate) fn covers(&self, generation: u64, version: u64, digest: &[u8; 32]) -> bool {
        self.generation == generation && self.version == version && self.digest == *digest
    }

    fn signed_bytes(&self, name: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + 1 + name.len() + PROOF_LEN - 64);
        out.extend_from_slice(DOMAIN);
        // Names are at most 63 bytes (sealed::MAX_NAME_LEN); the length keeps fields apart.
        out.push(name.len().min(255) as u8);
        out.extend_from_slice(name.as_bytes());
        self.put_fields(&mut out);
        out
    }

    /// The payload: kind byte, then the fixed fields.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + PROOF_LEN);
        out.push(super::wire::KIND_PROOF);
        self.put_fields(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Everything but the signature, in wire order.
    fn put_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.since_ms.to_be_bytes());
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        out.extend_from_slice(&ip.octets());
        out.extend_from_slice(&self.addr.port().to_be_bytes());
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.member_generation.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.digest);
    }

    /// Reads the bytes after the kind byte: exactly [`PROOF_LEN`] of them.
    pub(crate) fn decode(body: &[u8]) -> Option<StateProof> {
        if body.len() != PROOF_LEN {
            return None;
        }
        let (key, rest) = body.split_at(32);
        let (since, rest) = rest.split_at(8);
        let (ip, rest) = rest.split_at(16);
        let (port, rest) = rest.split_at(2);
        let (generation, rest) = rest.split_at(8);
        let (member_generation, rest) = rest.split_at(8);
        let (version, rest) = rest.split_at(8);
        let (digest, signature) = rest.split_at(32);
        let u64_of = |b: &[u8]| b.try_into().ok().map(u64::from_be_bytes);
        Some(StateProof {
            key: key.try_into().ok()?,
            since_ms: u64_of(since)?,
            addr: {
                let ip = Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?);
                let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
                SocketAddr::new(ip, u16::from_be_bytes(port.try_into().ok()?))
            },
            generation: u64_of(generation)?,
            member_generation: u64_of(member_generation)?,
            version: u64_of(version)?,
            digest: digest.try_into().ok()?,
            signature: signature.try_into().ok()?,
        })
    }
}

#[cfg(test)]
#[path = "proof_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_round_trips_and_binds_name_key_and_state() {
        let key = BoardKey::from_seed([1; 32], 42);
        let payload = b"\x01state bytes";
        let addr: SocketAddr = "192.0.2.7:7946".parse().unwrap();
        let proof = StateProof::sign(&key, "pi-1", addr, (7, 9), 3, payload);
        let bytes = proof.encode();
        assert_eq!(bytes.len(), 1 + PROOF_LEN);
        assert_eq!(bytes[0], super::super::wire::KIND_PROOF);
        let read = StateProof::decode(&bytes[1..]).expect("decodes");
        assert_eq!(read, proof);
        assert_eq!(read.addr, addr, "an IPv4 address comes back as one");
        assert_eq!((read.generation, read.member_generation), (7, 9));
        assert!(read.verify("pi-1"));
        assert!(!read.verify("pi-2"), "the name is signed");
        assert!(read.covers(7, 3, &payload_digest(payload)));
        assert!(!read.covers(7, 4, &payload_digest(payload)));
        assert!(!read.covers(7, 3, &payload_digest(b"\x01other")));
        for i in 0..PROOF_LEN {
            let mut bent = bytes[1..].to_vec();
            bent[i] ^= 1;
            let bent = StateProof::decode(&bent).expect("same length decodes");
            assert!(!bent.verify("pi-1"), "byte {i} is covered by the signature");
        }
        assert_eq!(StateProof::decode(&bytes[2..]), None);
        assert_eq!(
            StateProof::decode(&[bytes[1..].to_vec(), vec![0]].concat()),
            None
        );
    }
}
