//! Tests of the bearer check: tokens signed here with ring by the fixed keys of
//! `frontdoor/tests/keys/`, an attack corpus each with the answer it must get, a PyJWT oracle,
//! and a property test that no header makes the check panic.

mod cached;
mod corpus;
mod keyset;
mod oracle;
mod parts;
mod prop;
mod valid;

use std::collections::BTreeMap;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

use super::b64::encode;
use super::{check, Denied, Identity, Keys, Settings};

/// The time every test runs at.
pub const NOW: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "urn:baton";
pub const LEEWAY: u64 = 30;

pub fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

fn read(file: &str) -> Vec<u8> {
    let path = format!("{}/{file}", keys_dir());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The public JWK of test key `name` with `kid` (and extra members) added.
pub fn jwk(name: &str, kid: Option<&str>, extra: Value) -> Value {
    let mut key: Value = serde_json::from_slice(&read(&format!("{name}.jwk.json"))).expect("jwk");
    let obj = key.as_object_mut().expect("object");
    if let Some(kid) = kid {
        obj.insert("kid".into(), json!(kid));
    }
    if let Value::Object(extra) = extra {
        obj.extend(extra);
    }
    key
}

pub fn jwks(keys: Vec<Value>) -> Keys {
    Keys::parse(&json!({ "keys": keys }).to_string()).expect("a key set")
}

/// Every test key under its own kid: `rsa`, `p256`, `p384`, `ed`, and the 1024-bit `rsa1024`.
pub fn all_keys() -> Keys {
    jwks(vec![
        jwk("rsa2048", Some("rsa"), json!({})),
        jwk("p256", Some("p256"), json!({})),
        jwk("p384", Some("p384"), json!({})),
        jwk("ed25519", Some("ed"), json!({})),
        jwk("rsa1024", Some("rsa1024"), json!({})),
    ])
}

/// Signs `signing_input` with test key `name` for `alg`.
pub fn signature(alg: &str, name: &str, signing_input: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    let der = read(&format!("{name}.pk8"));
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
            let pair = RsaKeyPair::from_pkcs8(&der).expect("an RSA key");
            let padding: &dyn signature::RsaEncoding = match alg {
                "RS256" => &signature::RSA_PKCS1_SHA256,
                "RS384" => &signature::RSA_PKCS1_SHA384,
                "RS512" => &signature::RSA_PKCS1_SHA512,
                "PS256" => &signature::RSA_PSS_SHA256,
                "PS384" => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(padding, &rng, signing_input, &mut sig)
                .expect("RSA signing");
            sig
        }
        "ES256" | "ES384" => {
            let curve = if alg == "ES256" {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = EcdsaKeyPair::from_pkcs8(curve, &der, &rng).expect("an EC key");
            pair.sign(&rng, signing_input)
                .expect("ECDSA")
                .as_ref()
                .to_vec()
        }
        "EdDSA" => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .expect("an Ed25519 key")
            .sign(signing_input)
            .as_ref()
            .to_vec(),
        other => panic!("no signer for {other}"),
    }
}

/// A compact JWS of `header` and `payload` (raw bytes, encoded here), signed by `key` as
/// `header.alg` says.
pub fn token_raw(header: &[u8], payload: &[u8], key: &str) -> String {
    let alg = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "RS256".into());
    let input = format!("{}.{}", encode(header), encode(payload));
    let sig = signature(&alg, key, input.as_bytes());
    format!("{input}.{}", encode(&sig))
}

/// A token of `header` and `claims`, signed by `key`.
pub fn token(header: Value, claims: Value, key: &str) -> String {
    token_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        key,
    )
}

/// Claims that pass at [`NOW`].
pub fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "email": "alice@example.org",
        "groups": ["admins", "staff"],
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 300,
    })
}

/// [`good_claims`] with `changes` applied (a `null` removes a claim).
pub fn claims_with(changes: Value) -> Value {
    let mut claims = good_claims();
    let obj = claims.as_object_mut().expect("object");
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    claims
}

/// The check of `Bearer <token>` against [`all_keys`], requiring `require`.
pub fn run_with(
    token: &str,
    keys: &Keys,
    require: &BTreeMap<String, Vec<String>>,
) -> Result<Identity, Denied> {
    let settings = Settings {
        issuer: ISSUER,
        audience: AUDIENCE,
        leeway_s: LEEWAY,
        require,
    };
    check(Some(&format!("Bearer {token}")), keys, &settings, NOW)
}

pub fn run(token: &str) -> Result<Identity, Denied> {
    run_with(token, &all_keys(), &BTreeMap::new())
}

/// Asserts `token` is refused as invalid for `why`.
#[track_caller]
pub fn assert_invalid(token: &str, why: &str) {
    match run(token) {
        Err(Denied::Invalid(got)) => {
            assert!(got.starts_with(why), "reason {got:?}, expected {why:?}")
        }
        other => panic!("expected Invalid({why:?}), got {other:?}"),
    }
}
