//! The cache of verified signatures: it spares the signature check only; expiry and a route's
//! requirements are checked on every request, and only tokens that verified are kept, within
//! its bounds.

use std::collections::BTreeMap;

use serde_json::json;

use super::super::check_with;
use super::super::verified::{Verified, MAX_ENTRIES};
use super::*;

fn cached(
    token: &str,
    cache: &Verified,
    require: &BTreeMap<String, Vec<String>>,
    now: u64,
) -> Result<Identity, Denied> {
    let settings = Settings {
        issuer: ISSUER,
        audience: AUDIENCE,
        leeway_s: LEEWAY,
        require,
    };
    check_with(
        Some(&format!("Bearer {token}")),
        &all_keys(),
        Some(cache),
        &settings,
        now,
    )
}

fn ed_token(sub: &str) -> String {
    token(
        json!({ "alg": "EdDSA", "kid": "ed" }),
        claims_with(json!({ "sub": sub })),
        "ed25519",
    )
}

#[test]
fn a_cached_token_is_still_checked_for_expiry_and_requirements() {
    let cache = Verified::new();
    let t = ed_token("alice");
    let none = BTreeMap::new();
    assert_eq!(cached(&t, &cache, &none, NOW).expect("valid").sub, "alice");
    assert_eq!(cache.len(), 1);
    // From the cache: the same answer.
    assert_eq!(cached(&t, &cache, &none, NOW).expect("valid").sub, "alice");
    assert_eq!(cache.len(), 1);
    // Past its exp (plus leeway), the cached signature does not make it pass.
    match cached(&t, &cache, &none, NOW + 300 + LEEWAY + 1) {
        Err(Denied::Invalid(why)) => assert!(why.contains("expired"), "{why}"),
        other => panic!("an expired token passed from the cache: {other:?}"),
    }
    // A route's requirement is checked on the cached claims too.
    let require = BTreeMap::from([("groups".to_string(), vec!["nobody".to_string()])]);
    assert!(matches!(
        cached(&t, &cache, &require, NOW),
        Err(Denied::Insufficient(_))
    ));
}

#[test]
fn only_tokens_that_verify_are_kept() {
    let cache = Verified::new();
    let good = ed_token("alice");
    // The same header and claims with another token's signature.
    let other = ed_token("bob");
    let forged = format!(
        "{}.{}",
        &good[..good.rfind('.').expect("dots")],
        &other[other.rfind('.').expect("dots") + 1..]
    );
    let none = BTreeMap::new();
    for _ in 0..3 {
        assert!(matches!(
            cached(&forged, &cache, &none, NOW),
            Err(Denied::Invalid(_))
        ));
    }
    assert!(cache.is_empty());
    // A token seen valid once does not make a forged twin pass.
    cached(&good, &cache, &none, NOW).expect("valid");
    assert!(cached(&forged, &cache, &none, NOW).is_err());
    assert_eq!(cache.len(), 1);
}

#[test]
fn the_cache_stays_within_its_bounds() {
    let cache = Verified::new();
    let none = BTreeMap::new();
    for n in 0..MAX_ENTRIES + 10 {
        cached(&ed_token(&format!("user-{n}")), &cache, &none, NOW).expect("valid");
        assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
    }
    assert!(!cache.is_empty());
}
