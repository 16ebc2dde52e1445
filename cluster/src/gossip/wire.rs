//! What travels inside a sealed datagram: a foca packet, or a node's published state.
//!
//! The first payload byte says which (or a proof: [`KIND_PROOF`]). A state message is the sender's generation and version
//! (postcard varints), then its [`BoardValues`] with their own version byte; its owner is the
//! authenticated sender of the datagram, so no node can publish state in another's name.

use super::values::{BoardValues, ValuesError};
use crate::sealed::{MAX_DATAGRAM, MAX_NAME_LEN, OVERHEAD};

/// Payload kind: a foca (SWIM) packet.
pub(crate) const KIND_FOCA: u8 = 0;
/// Payload kind: a [`StateMessage`].
pub(crate) const KIND_STATE: u8 = 1;
/// Payload kind: a [`super::proof::StateProof`] of the state sent just before it. The previous
/// release skips this kind, and so keeps reading the state itself.
pub(crate) const KIND_PROOF: u8 = 2;

/// The largest foca packet, sent or received, on every board: what one sealed datagram holds for
/// a sender of the longest name ([`MAX_NAME_LEN`] bytes), less the kind byte. foca has one limit
/// for both ways; one that followed each board's own name would let a board with a short name
/// send packets that a board with a long name refuses whole. A board of the previous release
/// still sends up to its own name's limit: the sanitizer leaves updates out of such a packet
/// until it fits ([`super::sanitize`]).
pub(crate) const MAX_FOCA_PACKET: usize = MAX_DATAGRAM - OVERHEAD - MAX_NAME_LEN - 1;

/// A node's published values, versioned so that newer state replaces older.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateMessage {
    /// The sender's boot generation.
    pub(crate) generation: u64,
    /// Grows with every change within a generation.
    pub(crate) version: u64,
    /// The values.
    pub(crate) values: BoardValues,
}

impl StateMessage {
    /// Whether this state is newer than state stamped `(generation, version)`.
    pub(crate) fn newer_than(&self, generation: u64, version: u64) -> bool {
        (self.generation, self.version) > (generation, version)
    }

    /// The payload bytes: kind byte, stamp, values.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Two integers always serialize.
        let mut out = postcard::to_extend(&(self.generation, self.version), vec![KIND_STATE])
            .unwrap_or_else(|_| vec![KIND_STATE]);
        out.extend_from_slice(&self.values.encode());
        out
    }

    /// Reads the bytes after the kind byte.
    pub(crate) fn decode(body: &[u8]) -> Result<Self, ValuesError> {
        let ((generation, version), rest) = postcard::take_from_bytes::<(u64, u64)>(body)?;
        Ok(StateMessage {
            generation,
            version,
            values: BoardValues::decode(rest)?,
        })
    }
}

/// Prefixes a foca packet with its kind byte.
pub(crate) fn foca_payload(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.len() + 1);
    out.push(KIND_FOCA);
    out.extend_from_slice(packet);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_orders_by_generation_then_version() {
        let values = BoardValues {
            api: Some("10.0.0.1:80".parse().unwrap()),
            ..BoardValues::default()
        };
        let state = StateMessage {
            generation: 2,
            version: 1,
            values,
        };
        let bytes = state.encode();
        assert_eq!(bytes[0], KIND_STATE);
        assert_eq!(StateMessage::decode(&bytes[1..]), Ok(state.clone()));
        assert!(state.newer_than(1, 99));
        assert!(state.newer_than(2, 0));
        assert!(!state.newer_than(2, 1));
        assert!(StateMessage::decode(b"{\"nope\":1}").is_err());
        assert!(StateMessage::decode(&[]).is_err());
    }
}
