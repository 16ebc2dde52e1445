//! Keeps identities that no proof vouches for out of foca: every foca packet passes here first.
//!
//! A foca packet (both releases of baton send nothing else) is a header, then, for every message
//! but Announce, TurnUndead and Broadcast and when room was left, a big-endian `u16` count and that
//! many membership updates; foca's custom broadcasts would follow, but baton sends none. The
//! sender of a packet is applied as alive and its updates as they say, so:
//! - a packet whose sender is not admissible ([`super::vouches::Gate`]) is dropped whole;
//! - an update about an identity that is not admissible is stripped, the others are copied byte
//!   for byte and the count rewritten;
//! - updates that would make the packet larger than [`MAX_FOCA_PACKET`] are left out (only a board
//!   of the previous release, whose limit followed its name's length, sends such packets; foca
//!   would refuse them whole, the probe or answer they carry included);
//! - an Announce to a seed stand-in (no name, this node's address: the sender did not know the
//!   name yet) is readdressed to this node's identity, because foca, keyed by name, would
//!   otherwise ignore it;
//! - bytes after the updates, a custom broadcast, or anything that does not decode drop the
//!   packet (foca would refuse the last, and neither release sends the others).
//!
//! Identities inside a message (a PingReq's target and the like) only make foca send to them;
//! they are left as they are.

use foca::{Codec, Header, Member, Message, PostcardCodec};

use super::identity::NodeId;
use super::wire::MAX_FOCA_PACKET;

/// What became of a packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sanitized {
    /// Hand these bytes to foca. `stripped` are the updates' identities taken out, `trimmed`
    /// the number of updates left out for want of room.
    Keep {
        packet: Vec<u8>,
        stripped: Vec<NodeId>,
        trimmed: u64,
    },
    /// The sender's identity is not admissible.
    Sender(NodeId),
    /// Not a packet baton sends.
    Malformed,
}

/// What the sanitizer dropped so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    /// Packets from a sender whose identity is not admissible.
    pub(crate) senders: u64,
    /// Updates stripped.
    pub(crate) updates: u64,
    /// Packets that baton does not send.
    pub(crate) malformed: u64,
    /// Updates left out of packets larger than [`MAX_FOCA_PACKET`].
    pub(crate) trimmed: u64,
}

impl Counts {
    /// Counts what `outcome` dropped.
    pub(crate) fn count(&mut self, outcome: &Sanitized) {
        let (slot, n) = match outcome {
            Sanitized::Keep {
                stripped, trimmed, ..
            } => {
                self.trimmed = self.trimmed.saturating_add(*trimmed);
                (&mut self.updates, stripped.len() as u64)
            }
            Sanitized::Sender(_) => (&mut self.senders, 1),
            Sanitized::Malformed => (&mut self.malformed, 1),
        };
        *slot = slot.saturating_add(n);
    }
}

/// Sanitizes `packet` for the node `me`, admitting the identities `admits` accepts.
pub(crate) fn sanitize(packet: &[u8], me: &NodeId, admits: impl Fn(&NodeId) -> bool) -> Sanitized {
    let mut rest = packet;
    let Ok(mut header) = decode_header(&mut rest) else {
        return Sanitized::Malformed;
    };
    let header_len = packet.len() - rest.len();
    if !admits(&header.src) {
        return Sanitized::Sender(header.src);
    }
    if matches!(header.message, Message::Broadcast)
        || rest.len() == 1
        || (matches!(header.message, Message::Announce) && !rest.is_empty())
    {
        return Sanitized::Malformed;
    }
    let mut out = if header.message == Message::Announce
        && header.dst.name.is_empty()
        && header.dst.addr == me.addr
    {
        header.dst = me.clone();
        let mut out = Vec::with_capacity(packet.len() + me.name.len());
        if PostcardCodec.encode_header(&header, &mut out).is_err() {
            return Sanitized::Malformed;
        }
        out
    } else {
        packet.get(..header_len).unwrap_or_default().to_vec()
    };
    let mut stripped = Vec::new();
    let Some((count, mut members)) = rest.split_first_chunk::<2>() else {
        // No room was left for updates (a Ping in a full buffer), or there are none to send.
        return Sanitized::Keep {
            packet: out,
            stripped,
            trimmed: 0,
        };
    };
    let count_at = out.len();
    out.extend_from_slice(&[0, 0]);
    let mut kept: u16 = 0;
    let mut trimmed = 0;
    for _ in 0..u16::from_be_bytes(*count) {
        let before = members;
        let Ok(member) = decode_member(&mut members) else {
            return Sanitized::Malformed;
        };
        let len = before.len() - members.len();
        if !admits(member.id()) {
            stripped.push(member.id().clone());
        } else if out.len() + len > MAX_FOCA_PACKET {
            trimmed += 1;
        } else {
            out.extend_from_slice(before.get(..len).unwrap_or_default());
            kept += 1;
        }
    }
    if !members.is_empty() {
        return Sanitized::Malformed;
    }
    if let Some(slot) = out.get_mut(count_at..count_at + 2) {
        slot.copy_from_slice(&kept.to_be_bytes());
    }
    Sanitized::Keep {
        packet: out,
        stripped,
        trimmed,
    }
}

fn decode_header(buf: &mut &[u8]) -> Result<Header<NodeId>, postcard::Error> {
    <PostcardCodec as Codec<NodeId>>::decode_header(&mut PostcardCodec, buf)
}

fn decode_member(buf: &mut &[u8]) -> Result<Member<NodeId>, postcard::Error> {
    <PostcardCodec as Codec<NodeId>>::decode_member(&mut PostcardCodec, buf)
}

#[cfg(test)]
#[path = "sanitize_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "sanitize_proptests.rs"]
mod proptests;
