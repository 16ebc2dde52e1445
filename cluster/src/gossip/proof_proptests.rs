//! Properties of signed board state: a proof is the signing key's word on exactly the bytes it
//! carries, and a name bound to one key never takes another key's word (proofs, bindings and the
//! identities they vouch for, [`super::vouches`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use proptest::prelude::*;

use super::super::bindings::{Binding, Bindings, Verdict, SETTLE_MS};
use super::super::identity::NodeId;
use super::super::vouches::{Gate, Vouches};
use super::*;

/// Any proof field values, signed by the key made of `seed`.
#[derive(Debug, Clone)]
struct Fields {
    seed: [u8; 32],
    since_ms: u64,
    addr: SocketAddr,
    generations: (u64, u64),
    version: u64,
    payload: Vec<u8>,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<SocketAddr>(),
        any::<(u64, u64)>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(seed, since_ms, addr, generations, version, payload)| Fields {
                seed,
                since_ms,
                addr,
                generations,
                version,
                payload,
            },
        )
}

fn sign(f: &Fields, name: &str) -> StateProof {
    let key = BoardKey::from_seed(f.seed, f.since_ms);
    StateProof::sign(&key, name, f.addr, f.generations, f.version, &f.payload)
}

/// Bindings where `name` is bound to `key`, claimed at `since_ms` and bound at `bound_at_ms`.
fn bound(name: &str, key: [u8; 32], since_ms: u64, bound_at_ms: u64) -> Bindings {
    let binding = Binding {
        key,
        since_ms,
        bound_at_ms,
        pinned_generation: None,
    };
    Bindings::new(BTreeMap::from([(name.to_string(), binding)]))
}

fn name_like() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,63}"
}

/// A quarter of the cases (`PROPTEST_CASES`, 256 by default), at least 8: signing and
/// verifying are slow in test builds.
fn signing() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / 4).max(8),
        ..base
    }
}

proptest! {
    #![proptest_config(signing())]

    /// Any change of any one byte of a proof (key, time, address, generations, version, digest
    /// or signature), or of the name it is checked for, makes it fail to verify.
    #[test]
    fn a_proof_with_any_byte_changed_does_not_verify(
        f in fields(),
        name in name_like(),
        other in name_like(),
        at in 0..PROOF_LEN,
        flip in 1..=255u8,
    ) {
        let proof = sign(&f, &name);
        let mut bytes = proof.encode();
        prop_assert_eq!(bytes.len(), 1 + PROOF_LEN);
        let read = StateProof::decode(&bytes[1..]).expect("a proof decodes");
        prop_assert!(read.verify(&name));
        if other != name {
            prop_assert!(!read.verify(&other), "signed for {name:?}, taken for {other:?}");
        }
        bytes[1 + at] ^= flip;
        let bent = StateProof::decode(&bytes[1..]).expect("same length decodes");
        prop_assert!(!bent.verify(&name), "byte {at} changed by {flip:#x} still verifies");
    }

    /// Arbitrary bytes of any length decode only at [`PROOF_LEN`], and never verify (a key
    /// holder without a board key cannot make a proof).
    #[test]
    fn arbitrary_bytes_never_make_a_proof(
        bytes in proptest::collection::vec(any::<u8>(), 0..2 * PROOF_LEN),
        name in name_like(),
    ) {
        match StateProof::decode(&bytes) {
            Some(proof) => {
                prop_assert_eq!(bytes.len(), PROOF_LEN);
                prop_assert!(!proof.verify(&name));
            }
            None => prop_assert_ne!(bytes.len(), PROOF_LEN),
        }
    }

    /// A proof signed by key A that names key B (to pass for B's) does not verify; one that
    /// names A verifies, but never binds a name settled on B, whatever claim time it gives;
    /// and the identity it vouches for is never let in for that name.
    #[test]
    fn key_a_never_speaks_for_a_name_bound_to_key_b(
        a in fields(),
        b_seed in any::<[u8; 32]>(),
        b_since in any::<u64>(),
        name in name_like(),
        settled_for in 0..10 * SETTLE_MS,
        claimed_gen in any::<u64>(),
    ) {
        let key_b = BoardKey::from_seed(b_seed, b_since).public();
        let key_a = BoardKey::from_seed(a.seed, a.since_ms).public();
        prop_assume!(key_a != key_b);
        let mut proof = sign(&a, &name);
        prop_assert!(proof.verify(&name));
        let mut posing = proof.clone();
        posing.key = key_b;
        prop_assert!(!posing.verify(&name), "A's signature passes for B's");

        let now = b_since.saturating_add(SETTLE_MS).saturating_add(settled_for);
        let mut bindings = bound(&name, key_b, b_since, now - SETTLE_MS - settled_for);
        let verdict = bindings.check(&name, proof.key, proof.since_ms, now);
        prop_assert!(matches!(verdict, Verdict::Conflict(_)), "{verdict:?}");
        prop_assert_eq!(bindings.get(&name).map(|b| b.key), Some(key_b));

        // A's proof is not accepted, so nothing raises a vouch for it: no identity of the name
        // but this node's vouched one (none here) gets in, whatever generation it claims.
        proof.member_generation = claimed_gen;
        let me = NodeId { name: "me".into(), addr: a.addr, generation: 1 };
        let vouches = Vouches::default();
        let gate = Gate { me: &me, bindings: &bindings, vouches: &vouches };
        let claimed = NodeId { name: name.clone(), addr: proof.addr, generation: claimed_gen };
        prop_assert!(name == "me" || !gate.admits(&claimed));
    }

}

proptest! {
    /// While a binding is young, a different key replaces it only with an earlier claim (the
    /// race rule); settled, never.
    #[test]
    fn another_key_replaces_a_binding_only_young_and_earlier(
        a in any::<[u8; 32]>(),
        b in any::<[u8; 32]>(),
        (a_since, b_since) in any::<(u64, u64)>(),
        bound_at in 0..u64::MAX / 2,
        after in 0..3 * SETTLE_MS,
        name in name_like(),
    ) {
        prop_assume!(a != b);
        let mut bindings = bound(&name, b, b_since, bound_at);
        let now = bound_at + after;
        let verdict = bindings.check(&name, a, a_since, now);
        let young_and_earlier = after < SETTLE_MS && (a_since, a) < (b_since, b);
        prop_assert_eq!(verdict.accepted(), young_and_earlier, "{:?}", verdict);
        let held = bindings.get(&name).map(|x| x.key);
        prop_assert_eq!(held, Some(if young_and_earlier { a } else { b }));
    }

    /// For a bound name only the vouched identity is let in; an unbound name's any identity;
    /// under this node's own name only its current identity.
    #[test]
    fn the_gate_lets_in_only_the_vouched_identity_of_a_bound_name(
        vouched in (any::<SocketAddr>(), any::<u64>(), any::<u64>()),
        claimed in (any::<SocketAddr>(), any::<u64>()),
        which in 0..3u8,
    ) {
        let (addr, generation, member_generation) = vouched;
        let me = NodeId { name: "me".into(), addr, generation: 7 };
        let bindings = bound("pi-b", [2; 32], 0, 0);
        let mut vouches = Vouches::default();
        vouches.raise("pi-b", addr, (generation, member_generation));
        let gate = Gate { me: &me, bindings: &bindings, vouches: &vouches };
        let name = ["pi-b", "pi-c", "me"][usize::from(which)];
        let id = NodeId { name: name.into(), addr: claimed.0, generation: claimed.1 };
        let expected = match name {
            "pi-b" => claimed == (addr, member_generation),
            "me" => id == me,
            _ => true,
        };
        prop_assert_eq!(gate.admits(&id), expected);
    }
}
