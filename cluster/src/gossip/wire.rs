//! What travels inside a sealed datagram: a foca packet, or a node's key/value state.
//!
//! The first payload byte says which. A state message is JSON
//! `{"generation":…,"version":…,"values":{…}}`; its owner is the authenticated sender of the datagram,
//! so no node can publish state in another's name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Payload kind: a foca (SWIM) packet.
pub(crate) const KIND_FOCA: u8 = 0;
/// Payload kind: a [`StateMessage`].
pub(crate) const KIND_STATE: u8 = 1;

/// A node's published key/values, versioned so that newer state replaces older.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateMessage {
    /// The sender's boot generation.
    pub(crate) generation: u64,
    /// Grows with every change within a generation.
    pub(crate) version: u64,
    /// The key/values.
    pub(crate) values: BTreeMap<String, String>,
}

impl StateMessage {
    /// Whether this state is newer than state stamped `(generation, version)`.
    pub(crate) fn newer_than(&self, generation: u64, version: u64) -> bool {
        (self.generation, self.version) > (generation, version)
    }

    /// The payload bytes: kind byte, then JSON.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![KIND_STATE];
        // Serializing a struct of integers and string maps to a Vec cannot fail.
        if serde_json::to_writer(&mut out, self).is_err() {
            out.truncate(1);
        }
        out
    }

    /// Parses the JSON after the kind byte; `None` if it is not a state message.
    pub(crate) fn decode(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
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
        let state = StateMessage {
            generation: 2,
            version: 1,
            values: BTreeMap::from([("api".to_owned(), "10.0.0.1:80".to_owned())]),
        };
        let bytes = state.encode();
        assert_eq!(bytes[0], KIND_STATE);
        assert_eq!(StateMessage::decode(&bytes[1..]), Some(state.clone()));
        assert!(state.newer_than(1, 99));
        assert!(state.newer_than(2, 0));
        assert!(!state.newer_than(2, 1));
        assert_eq!(StateMessage::decode(b"{\"nope\":1}"), None);
    }
}
