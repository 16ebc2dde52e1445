//! Properties of the sanitizer on packets of baton's shape with arbitrary identities (the
//! packets of [`super::super::driver::proptests`]) and on arbitrary bytes: what it keeps holds
//! only admitted identities and passes it again unchanged.

use proptest::prelude::*;

use super::super::driver::proptests::{foca_packet, me};
use super::*;

/// An arbitrary rule of admission: by a hash of the identity, so that both outcomes happen.
fn rule(salt: u64) -> impl Fn(&NodeId) -> bool {
    move |id: &NodeId| {
        let mut h = salt ^ id.generation ^ u64::from(id.addr.port());
        for b in id.name.bytes() {
            h = h.rotate_left(5) ^ u64::from(b);
        }
        h % 3 != 0
    }
}

/// The updates of a packet the sanitizer kept, decoded.
fn updates(packet: &[u8]) -> Option<(Header<NodeId>, Vec<NodeId>)> {
    let mut rest = packet;
    let header = decode_header(&mut rest).ok()?;
    let Some((count, mut members)) = rest.split_first_chunk::<2>() else {
        return Some((header, Vec::new()));
    };
    let mut ids = Vec::new();
    for _ in 0..u16::from_be_bytes(*count) {
        ids.push(decode_member(&mut members).ok()?.id().clone());
    }
    members.is_empty().then_some((header, ids))
}

proptest! {
    /// A kept packet's sender and updates are all admitted, the stripped ones are not, and the
    /// kept packet passes again unchanged (nothing more to strip, trim or readdress).
    #[test]
    fn what_is_kept_is_admitted_and_passes_again_unchanged(
        packet in prop_oneof![foca_packet(), proptest::collection::vec(any::<u8>(), 0..200)],
        salt in any::<u64>(),
    ) {
        let me = me();
        let admits = rule(salt);
        match sanitize(&packet, &me, &admits) {
            Sanitized::Keep { packet: kept, stripped, trimmed } => {
                let (header, ids) = updates(&kept).expect("a kept packet decodes");
                prop_assert!(admits(&header.src));
                for id in &ids {
                    prop_assert!(admits(id), "{:?} kept", id);
                }
                for id in &stripped {
                    prop_assert!(!admits(id), "{:?} stripped", id);
                }
                prop_assert!(trimmed == 0 || kept.len() <= MAX_FOCA_PACKET);
                let again = sanitize(&kept, &me, &admits);
                prop_assert_eq!(again, Sanitized::Keep { packet: kept, stripped: Vec::new(), trimmed: 0 });
            }
            Sanitized::Sender(id) => prop_assert!(!admits(&id)),
            Sanitized::Malformed => {}
        }
    }
}
