//! A holder of the cluster key against the receive path: datagrams sealed with the right key, so
//! their envelope opens, as every kind the gossip uses (foca packet, state, proof, and kinds no
//! release sends) with arbitrary or structured-but-wrong content, under any sender name and
//! generation, fed one after another to a real endpoint ([`Driver::on_datagram`]).
//!
//! Nothing is sent: the endpoint's flush (which would send to addresses the datagrams name) is
//! never run; what foca and the endpoint hold is checked directly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use foca::{Codec, Header, Member, Message, PostcardCodec};
use proptest::prelude::*;
use tokio::sync::watch;

use super::super::bindings::{Binding, Bindings};
use super::super::proof::StateProof;
use super::super::sanitize::{sanitize, Sanitized};
use super::super::values::BoardValues;
use super::super::wire::{self, StateMessage};
use super::{lock, Driver, NodeId, Parts, Roster, Timing};
use crate::board_key::BoardKey;
use crate::plausible::{highest_generation, wall_ms};
use crate::sealed::{DropCounts, Opener, SealKey, Sealer};

const KEY: &str = "driver-proptest-key-0123456789abcdef012345";
/// The board whose name this endpoint bound to key B (settled long ago).
const BOUND: &str = "pi-b";
const KEY_B: [u8; 32] = [0xb; 32];
/// The endpoint's own name.
const ME: &str = "me";

/// The endpoint's identity as it advertises it (not where its socket is: nothing is sent), fixed
/// so that packets can be addressed to it (foca ignores the others).
pub(in crate::gossip) fn me() -> NodeId {
    NodeId {
        name: ME.into(),
        addr: ([192, 0, 2, 1], 7946).into(),
        generation: 5,
    }
}

/// An endpoint named [`ME`] that bound [`BOUND`] to [`KEY_B`], on a socket it never sends from.
fn endpoint() -> Driver {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_nonblocking(true).expect("nonblocking");
    let socket = tokio::net::UdpSocket::from_std(socket).expect("socket");
    let key = SealKey::derive(KEY).expect("key");
    let binding = Binding {
        key: KEY_B,
        since_ms: 0,
        bound_at_ms: 0,
        pinned_generation: None,
    };
    let mut opener = Opener::new(key.clone());
    opener.expect_signed(BOUND);
    Driver::new(Parts {
        id: me(),
        timing: Timing::fast(),
        seeds: Vec::new(),
        socket,
        sealer: Sealer::new(key, ME, 5).expect("sealer"),
        opener,
        shared: Arc::new(Mutex::new(Roster::default())),
        changes: watch::channel(0).0,
        board_key: BoardKey::from_seed([0xe; 32], 1),
        bindings: Bindings::new(BTreeMap::from([(BOUND.to_string(), binding)])),
    })
}

fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(BOUND.to_string()),
        Just(ME.to_string()),
        Just("pi-x".to_string()),
        "[a-z0-9-]{1,63}",
    ]
}

/// Mostly plausible generations (so that more datagrams and identities get past the bound).
fn generation() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 1..100u64, 1 => any::<u64>()]
}

fn node_id() -> impl Strategy<Value = NodeId> {
    (
        prop_oneof![name_like(), Just(String::new())],
        any::<SocketAddr>(),
        generation(),
    )
        .prop_map(|(name, addr, generation)| NodeId {
            name,
            addr,
            generation,
        })
}

/// Where a packet goes: mostly this endpoint (or the stand-in for it as a seed).
fn destination() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        4 => Just(me()),
        1 => Just(NodeId::seed(me().addr)),
        1 => node_id(),
    ]
}

fn message() -> impl Strategy<Value = Message<NodeId>> {
    prop_oneof![
        any::<u8>().prop_map(Message::Ping),
        any::<u8>().prop_map(Message::Ack),
        (node_id(), any::<u8>()).prop_map(|(target, probe_number)| Message::PingReq {
            target,
            probe_number
        }),
        (node_id(), any::<u8>()).prop_map(|(origin, probe_number)| Message::IndirectPing {
            origin,
            probe_number
        }),
        Just(Message::Announce),
        Just(Message::Feed),
        Just(Message::Gossip),
        Just(Message::TurnUndead),
        Just(Message::Broadcast),
    ]
}

/// A foca packet of the shape baton sends: a header, a count and membership updates (the count
/// may disagree with them, and bytes may trail).
pub(in crate::gossip) fn foca_packet() -> impl Strategy<Value = Vec<u8>> {
    let update = (node_id(), any::<u16>(), 0..3usize).prop_map(|(id, incarnation, pick)| {
        let states = [foca::State::Alive, foca::State::Suspect, foca::State::Down];
        Member::new(id, incarnation, states[pick])
    });
    (
        node_id(),
        any::<u16>(),
        destination(),
        message(),
        proptest::collection::vec(update, 0..6),
        // Mostly a count that agrees and no trailing bytes, so that many packets pass.
        prop_oneof![4 => Just(None), 1 => any::<u16>().prop_map(Some)],
        prop_oneof![4 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..3)],
    )
        .prop_map(|(src, inc, dst, message, updates, count, tail)| {
            let header = Header {
                src,
                src_incarnation: inc,
                dst,
                message,
            };
            let mut out = Vec::new();
            let _ = PostcardCodec.encode_header(&header, &mut out);
            // An Announce carries no updates (unless a count was chosen: then it is malformed).
            if header.message == Message::Announce && count.is_none() {
                return out;
            }
            let count = count.unwrap_or(updates.len() as u16);
            out.extend_from_slice(&count.to_be_bytes());
            for update in &updates {
                let _ = PostcardCodec.encode_member(update, &mut out);
            }
            out.extend_from_slice(&tail);
            out
        })
}

/// What a key holder seals (or, for [`Content::Raw`], sends unsealed).
#[derive(Debug, Clone)]
enum Content {
    /// Bytes sent as they are, without the cluster key.
    Raw(Vec<u8>),
    /// A kind byte and arbitrary bytes after it.
    Kind(u8, Vec<u8>),
    /// A foca packet of baton's shape.
    Foca(Vec<u8>),
    /// A state message; its generation may differ from the datagram's.
    State {
        generation: Option<u64>,
        version: u64,
    },
    /// A proof signed by the key holder's own key, for the state of this version.
    Proof {
        seed: [u8; 32],
        since_ms: u64,
        addr: SocketAddr,
        /// The member generation: the datagram's plus this, or (`false`) this itself.
        member_generation: (bool, u64),
        version: u64,
    },
    /// A datagram sealed right, then one byte of it changed.
    Tampered(usize, u8),
}

fn content() -> impl Strategy<Value = Content> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        1 => bytes().prop_map(Content::Raw),
        2 => (prop_oneof![0..4u8, any::<u8>()], bytes()).prop_map(|(k, b)| Content::Kind(k, b)),
        4 => foca_packet().prop_map(Content::Foca),
        2 => (prop::option::of(generation()), any::<u64>())
            .prop_map(|(generation, version)| Content::State { generation, version }),
        2 => (
            // The key holder's own board keys: mostly the same few, so that proofs repeat.
            prop_oneof![Just([1; 32]), Just([2; 32]), any::<[u8; 32]>()],
            prop_oneof![3 => 0..1_800_000_000_000u64, 1 => any::<u64>()],
            any::<SocketAddr>(),
            prop_oneof![3 => (Just(true), 0..3u64), 1 => (Just(false), any::<u64>())],
            0..4u64,
        )
            .prop_map(
            |(seed, since_ms, addr, member_generation, version)| Content::Proof {
                seed,
                since_ms,
                addr,
                member_generation,
                version,
            }
        ),
        1 => (any::<usize>(), 1..=255u8).prop_map(|(at, flip)| Content::Tampered(at, flip)),
    ]
}

/// The payload (kind byte first) of `content` from `sender` in `generation`.
fn payload(content: &Content, sender: &str, generation: u64) -> Vec<u8> {
    let state = |version| StateMessage {
        generation,
        version,
        values: BoardValues::default(),
    };
    match content {
        // Raw bytes go out as they are; a tampered datagram starts as a state.
        Content::Raw(_) | Content::Tampered(..) => state(0).encode(),
        Content::Kind(kind, bytes) => [&[*kind][..], bytes].concat(),
        Content::Foca(packet) => wire::foca_payload(packet),
        Content::State {
            generation: other,
            version,
        } => StateMessage {
            generation: other.unwrap_or(generation),
            ..state(*version)
        }
        .encode(),
        Content::Proof {
            seed,
            since_ms,
            addr,
            member_generation,
            version,
        } => {
            let key = BoardKey::from_seed(*seed, *since_ms);
            let covered = state(*version).encode();
            let gens = match *member_generation {
                (true, above) => (generation, generation.saturating_add(above)),
                (false, exactly) => (generation, exactly),
            };
            StateProof::sign(&key, sender, *addr, gens, *version, &covered).encode()
        }
    }
}

/// Drops the envelope (the opener) counted.
fn envelope(d: &DropCounts) -> u64 {
    d.malformed
        + d.unauthenticated
        + d.bad_header
        + d.replayed
        + d.stale_generation
        + d.implausible_generation
}

/// What must hold after every datagram, whatever came before.
fn holds(driver: &Driver) -> Result<(), TestCaseError> {
    let bound = driver.bindings.get(BOUND).map(|b| b.key);
    prop_assert_eq!(bound, Some(KEY_B), "the bound name changed keys");
    prop_assert_eq!(
        driver.vouches.identity(BOUND),
        None,
        "a vouch without key B"
    );
    let highest = highest_generation(wall_ms());
    for member in driver.foca.iter_membership_state() {
        let id = member.id();
        prop_assert!(id.name != BOUND, "foca took {:?} unvouched", id);
        prop_assert!(id.name != ME, "foca took {:?} in this node's name", id);
        prop_assert!(id.generation <= highest, "foca took {:?}", id);
    }
    Ok(())
}

/// A quarter of the cases of the others (`PROPTEST_CASES`, 256 by default): each case builds an
/// endpoint and feeds it up to 24 datagrams.
fn quarter() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / 4).max(8),
        ..base
    }
}

proptest! {
    #![proptest_config(quarter())]

    /// Every datagram is either dropped and counted or taken in; what is taken in never gives
    /// the bound name to another key, never lets an unvouched identity of it (or of this node's
    /// name, or of an implausible generation) into foca, and every foca packet's drop is counted.
    #[test]
    fn a_key_holders_datagrams_are_taken_or_dropped_counted(
        datagrams in proptest::collection::vec((name_like(), generation(), content()), 1..24),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _inside = runtime.enter();
        let mut driver = endpoint();
        let key = SealKey::derive(KEY).expect("key");
        let mut sealers: BTreeMap<(String, u64), Sealer> = BTreeMap::new();
        for (sender, generation, content) in datagrams {
            let sealer = sealers
                .entry((sender.clone(), generation))
                .or_insert_with(|| Sealer::new(key.clone(), &sender, generation).expect("sealer"));
            let payload = payload(&content, &sender, generation);
            let datagram = match &content {
                Content::Raw(bytes) => bytes.clone(),
                Content::Tampered(at, flip) => {
                    let mut sealed = sealer.seal(&payload).expect("seal");
                    let at = at % sealed.len();
                    sealed[at] ^= flip;
                    sealed
                }
                _ => match sealer.seal(&payload) {
                    Ok(sealed) => sealed,
                    Err(_) => continue,
                },
            };
            let me = driver.foca.identity().clone();
            let expected = match payload.split_first() {
                Some((&wire::KIND_FOCA, packet)) => {
                    let gate = driver.gate();
                    Some(sanitize(packet, &me, |id| gate.admits(id)))
                }
                _ => None,
            };
            let before = lock(&driver.shared).drops;
            let far_ahead = generation > highest_generation(wall_ms()).saturating_add(3600)
                && !matches!(content, Content::Raw(_) | Content::Tampered(..));
            driver.on_datagram(&datagram);
            let after = lock(&driver.shared).drops;
            let opened = envelope(&after) == envelope(&before);
            prop_assert!(envelope(&after) <= envelope(&before) + 1);
            if matches!(content, Content::Raw(_) | Content::Tampered(..)) {
                prop_assert!(!opened, "unsealed or tampered bytes were opened");
            }
            if far_ahead {
                prop_assert_eq!(after.implausible_generation, before.implausible_generation + 1);
            }
            if let (true, false, Some(expected)) = (opened, sender == ME, expected) {
                let counted = (
                    after.malformed_membership - before.malformed_membership,
                    after.unvouched_sender - before.unvouched_sender,
                    after.unvouched_update - before.unvouched_update,
                );
                let wanted = match &expected {
                    Sanitized::Malformed => (1, 0, 0),
                    Sanitized::Sender(_) => (0, 1, 0),
                    Sanitized::Keep { stripped, .. } => (0, 0, stripped.len() as u64),
                };
                prop_assert_eq!(counted, wanted, "{:?}", expected);
            }
            holds(&driver)?;
        }
    }
}

proptest! {
    /// An identity whose generation is further ahead than [`highest_generation`] never decodes,
    /// whatever its name and address; one at most that far does.
    #[test]
    fn a_generation_beyond_the_plausible_never_decodes(
        name in "[a-z0-9-]{0,63}",
        addr in any::<SocketAddr>(),
        beyond in prop_oneof![1..1000u64, any::<u64>()],
        below in any::<u64>(),
    ) {
        let highest = highest_generation(wall_ms());
        let id = |generation| NodeId { name: name.clone(), addr, generation };
        let far = id(highest.saturating_add(beyond).max(highest + 1));
        let bytes = postcard::to_extend(&far, Vec::new()).expect("encode");
        prop_assert!(postcard::from_bytes::<NodeId>(&bytes).is_err(), "{:?}", far.generation);
        let member = Member::alive(far);
        let mut update = Vec::new();
        PostcardCodec.encode_member(&member, &mut update).expect("encode");
        let decoded = <PostcardCodec as Codec<NodeId>>::decode_member(&mut PostcardCodec, &mut &update[..]);
        prop_assert!(decoded.is_err());
        let near = id(below % highest.saturating_add(1));
        let bytes = postcard::to_extend(&near, Vec::new()).expect("encode");
        // (An IPv6 address's scope and flow label do not travel; the generation does.)
        let read = postcard::from_bytes::<NodeId>(&bytes).map(|id| (id.name, id.generation));
        prop_assert_eq!(read, Ok((near.name, near.generation)));
    }
}
