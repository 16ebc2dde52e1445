//! Valid tokens of every accepted alg pass, with and without `kid`, and say who is calling.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

const EVERY_ALG: [(&str, &str, &str); 9] = [
    ("RS256", "rsa2048", "rsa"),
    ("RS384", "rsa2048", "rsa"),
    ("RS512", "rsa2048", "rsa"),
    ("PS256", "rsa2048", "rsa"),
    ("PS384", "rsa2048", "rsa"),
    ("PS512", "rsa2048", "rsa"),
    ("ES256", "p256", "p256"),
    ("ES384", "p384", "p384"),
    ("EdDSA", "ed25519", "ed"),
];

#[test]
fn every_alg_passes_with_its_kid() {
    for (alg, key, kid) in EVERY_ALG {
        let t = token(
            json!({ "alg": alg, "typ": "at+jwt", "kid": kid }),
            good_claims(),
            key,
        );
        let who = run(&t).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        assert_eq!(who.sub, "alice");
        assert_eq!(who.email.as_deref(), Some("alice@example.org"));
        assert_eq!(who.groups, ["admins", "staff"]);
        assert_eq!(who.claims.get("iss"), Some(&json!(ISSUER)));
    }
}

#[test]
fn every_alg_passes_without_kid() {
    for (alg, key, _) in EVERY_ALG {
        let t = token(json!({ "alg": alg }), good_claims(), key);
        assert!(run(&t).is_ok(), "{alg}");
    }
}

#[test]
fn a_token_signed_by_another_key_of_the_same_type_fails() {
    // ES256 signed by a fresh P-256 key under the kid of the test key.
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("key");
    let other = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der.as_ref(),
        &rng,
    )
    .expect("key");
    let input = format!(
        "{}.{}",
        encode(
            json!({ "alg": "ES256", "kid": "p256" })
                .to_string()
                .as_bytes()
        ),
        encode(good_claims().to_string().as_bytes())
    );
    let sig = other.sign(&rng, input.as_bytes()).expect("sign");
    assert_invalid(
        &format!("{input}.{}", encode(sig.as_ref())),
        "bad signature",
    );
}

/// The JWK of a fresh P-256 key.
fn fresh_p256() -> Value {
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("key");
    let pair = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der.as_ref(),
        &rng,
    )
    .expect("key");
    let point = pair.public_key().as_ref();
    json!({ "kty": "EC", "crv": "P-256", "x": encode(&point[1..33]), "y": encode(&point[33..]) })
}

#[test]
fn without_kid_at_most_four_keys_are_tried() {
    let t = token(json!({ "alg": "ES256" }), good_claims(), "p256");
    let none = BTreeMap::new();
    let mut set: Vec<Value> = (0..3).map(|_| fresh_p256()).collect();
    set.push(jwk("p256", None, json!({})));
    assert!(
        run_with(&t, &jwks(set.clone()), &none).is_ok(),
        "the 4th key is tried"
    );
    set.insert(0, fresh_p256());
    assert_eq!(
        run_with(&t, &jwks(set), &none),
        Err(Denied::Invalid("bad signature".into())),
        "the 5th is not"
    );
}

#[test]
fn require_is_met_by_arrays_and_space_separated_strings() {
    let t = token(
        json!({ "alg": "ES256", "kid": "p256" }),
        claims_with(json!({ "scope": "read write", "role": "admin" })),
        "p256",
    );
    let require = BTreeMap::from([
        (
            "groups".to_string(),
            vec!["admins".to_string(), "staff".to_string()],
        ),
        ("scope".to_string(), vec!["write".to_string()]),
        ("role".to_string(), vec!["admin".to_string()]),
    ]);
    assert!(run_with(&t, &all_keys(), &require).is_ok());
    let require = BTreeMap::from([("scope".to_string(), vec!["rea".to_string()])]);
    assert!(matches!(
        run_with(&t, &all_keys(), &require),
        Err(Denied::Insufficient(_))
    ));
}
