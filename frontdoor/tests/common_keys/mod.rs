//! The test P-256 key of `tests/keys/` as the cluster's assertion key.

#![allow(dead_code)]

use baton_frontdoor::config::model::AssertionKey;
use baton_frontdoor::identity::b64;
use serde_json::Value;

/// The private scalar of `tests/keys/p256.pem` (`openssl pkey -text`); its public half comes
/// from `p256.jwk.json`, so a scalar that did not match would fail the signer's check.
const D_HEX: &str = "c7ea4ca74758fc588d5f1364975259965613ada60ca13ad071d0382e5108619b";

pub fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

/// The public JWK of the test key.
pub fn jwk() -> Value {
    let path = format!("{}/p256.jwk.json", keys_dir());
    serde_json::from_slice(&std::fs::read(path).expect("key")).expect("jwk")
}

/// The test key as the assertion key of the cluster `lab`.
pub fn assertion_key() -> AssertionKey {
    let d: Vec<u8> = (0..D_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&D_HEX[i..i + 2], 16).expect("hex"))
        .collect();
    let mut public = vec![4u8];
    for c in ["x", "y"] {
        public.extend(b64::decode(jwk()[c].as_str().expect("coordinate"), 32).expect("b64"));
    }
    AssertionKey {
        issuer: "baton:lab".into(),
        d: b64::encode(&d),
        public: b64::encode(&public),
    }
}

/// The claims of a JWT, unverified (the signature is checked in other tests).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&b64::decode(payload, 16 * 1024).expect("b64")).expect("json")
}
