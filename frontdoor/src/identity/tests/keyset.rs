//! Reading key sets, and the answers the client gets.

use serde_json::json;

use super::*;
use crate::identity::jwk::{JwksError, MAX_JWKS, MAX_KEYS};

#[test]
fn a_set_is_refused_whole_only_when_not_json_or_too_big() {
    assert!(matches!(
        Keys::parse("not json"),
        Err(JwksError::NotJwks(_))
    ));
    assert!(matches!(Keys::parse("[1,2]"), Err(JwksError::NotJwks(_))));
    assert!(matches!(
        Keys::parse(r#"{"keys":{}}"#),
        Err(JwksError::NotJwks(_))
    ));
    let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, " ".repeat(MAX_JWKS));
    assert_eq!(Keys::parse(&big), Err(JwksError::TooBig(big.len())));
    let many = json!({ "keys": vec![jwk("p256", None, json!({})); MAX_KEYS + 1] }).to_string();
    assert_eq!(
        Keys::parse(&many),
        Err(JwksError::TooManyKeys(MAX_KEYS + 1))
    );
    let most = json!({ "keys": vec![jwk("p256", None, json!({})); MAX_KEYS] }).to_string();
    assert_eq!(Keys::parse(&most).map(|k| k.keys.len()), Ok(MAX_KEYS));
}

#[test]
fn unusable_keys_are_skipped_with_a_reason_and_the_others_kept() {
    let set = json!({ "keys": [
        { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
        { "kty": "OKP", "crv": "X25519", "kid": "x", "x": "AAAA" },
        { "kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA" },
        { "kty": "RSA", "kid": "no-n", "e": "AQAB" },
        { "kty": "RSA", "kid": "even-e", "n": jwk("rsa2048", None, json!({}))["n"], "e": "Ag" },
        { "kty": "EC", "crv": "P-256", "kid": "short", "x": "AAAA", "y": "AAAA" },
        { "kty": "EC", "crv": "P-256", "kid": 7 },
        "not an object",
        { "kid": "no-kty" },
        jwk("ed25519", Some("ed"), json!({})),
    ]})
    .to_string();
    let keys = Keys::parse(&set).expect("the set is read");
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].kid.as_deref(), Some("ed"));
    let why: Vec<(usize, Option<&str>, &str)> = keys
        .skipped
        .iter()
        .map(|s| (s.index, s.kid.as_deref(), s.why.as_str()))
        .collect();
    assert_eq!(why.len(), 9, "{why:?}");
    assert_eq!(
        why[0],
        (0, Some("hmac"), "key type \"oct\" is not supported")
    );
    assert_eq!(why[1].2, "curve Some(\"X25519\") is not supported");
    assert_eq!(why[3].2, "no \"n\" string");
    assert!(why[4].2.starts_with("an RSA exponent"), "{why:?}");
    assert_eq!(why[5].2, "EC coordinates must be 32 bytes each");
    assert_eq!(why[6], (6, None, "\"kid\" is not a string"));
    assert_eq!(why[7].2, "not an object");
}

#[test]
fn the_answers_carry_safe_reasons() {
    assert_eq!(Denied::Missing.www_authenticate(), "Bearer realm=\"baton\"");
    assert_eq!(Denied::Missing.status(), 401);
    let bad = Denied::Invalid("evil \"kid\"\r\nSet-Cookie: x=\u{e9}\\".into());
    assert_eq!(
        bad.www_authenticate(),
        "Bearer realm=\"baton\", error=\"invalid_token\", \
         error_description=\"evil ?kid???Set-Cookie: x=??\""
    );
    assert_eq!(bad.status(), 401);
    let unknown = Denied::UnknownKey {
        kid: "\"x\"".into(),
    };
    assert_eq!(
        unknown.www_authenticate(),
        "Bearer realm=\"baton\", error=\"invalid_token\", error_description=\"unknown key\""
    );
    let short = Denied::Insufficient("lacks".into());
    assert_eq!(short.status(), 403);
    assert!(short
        .www_authenticate()
        .contains("error=\"insufficient_scope\""));
    let long = Denied::Invalid("x".repeat(10_000)).www_authenticate();
    assert!(long.len() < 300, "{}", long.len());
}
