//! The attack corpus (issue 12, "Bad input"): each token with the answer it must get.

use std::collections::BTreeMap;

use ring::hmac;
use serde_json::json;

use super::*;

fn rs256() -> Value {
    json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa" })
}

/// The parts of a valid RS256 token.
fn parts() -> (String, String, String) {
    let t = token(rs256(), good_claims(), "rsa2048");
    let mut it = t.split('.').map(str::to_string);
    let (Some(h), Some(p), Some(s)) = (it.next(), it.next(), it.next()) else {
        panic!("three parts")
    };
    (h, p, s)
}

#[test]
fn alg_none_is_refused_with_and_without_a_signature() {
    for alg in ["none", "None", "NONE"] {
        let header = encode(json!({ "alg": alg, "kid": "rsa" }).to_string().as_bytes());
        let payload = encode(good_claims().to_string().as_bytes());
        assert_invalid(&format!("{header}.{payload}."), "empty signature");
        let (_, _, sig) = parts();
        assert_invalid(&format!("{header}.{payload}.{sig}"), "alg not accepted");
    }
}

#[test]
fn hs256_with_the_rsa_public_key_as_secret_is_refused() {
    // The key confusion attack: a verifier that lets the header pick HMAC would use the
    // public key it holds as the secret, which everyone knows.
    let secret = read("rsa2048.pub.pem");
    for kid in [Some("rsa"), None] {
        let mut header = json!({ "alg": "HS256", "typ": "JWT" });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let input = format!(
            "{}.{}",
            encode(header.to_string().as_bytes()),
            encode(good_claims().to_string().as_bytes())
        );
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        assert_invalid(
            &format!("{input}.{}", encode(tag.as_ref())),
            "alg not accepted",
        );
    }
}

#[test]
fn times_outside_the_leeway_are_refused_and_inside_it_pass() {
    let t = |changes: Value| token(rs256(), claims_with(changes), "rsa2048");
    assert_invalid(&t(json!({ "exp": NOW - LEEWAY - 1 })), "expired");
    assert_invalid(&t(json!({ "exp": NOW - LEEWAY })), "expired");
    assert!(run(&t(json!({ "exp": NOW - LEEWAY + 1 }))).is_ok());
    assert_invalid(&t(json!({ "nbf": NOW + LEEWAY + 1 })), "not yet valid");
    assert!(run(&t(json!({ "nbf": NOW + LEEWAY }))).is_ok());
    assert_invalid(
        &t(json!({ "iat": NOW + LEEWAY + 1 })),
        "issued in the future",
    );
    assert!(run(&t(json!({ "iat": NOW + LEEWAY }))).is_ok());
    assert_invalid(&t(json!({ "exp": null })), "no exp");
    assert_invalid(&t(json!({ "exp": "tomorrow" })), "exp is not a number");
    assert_invalid(&t(json!({ "exp": -1 })), "expired");
    assert!(run(&t(json!({ "exp": 1e300 }))).is_ok());
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let t = |changes: Value| token(rs256(), claims_with(changes), "rsa2048");
    assert_invalid(&t(json!({ "iss": "https://evil.example" })), "wrong issuer");
    assert_invalid(&t(json!({ "iss": null })), "no iss");
    assert_invalid(&t(json!({ "aud": "urn:other" })), "wrong audience");
    assert_invalid(&t(json!({ "aud": ["urn:a", "urn:b"] })), "wrong audience");
    assert_invalid(&t(json!({ "aud": [] })), "wrong audience");
    assert_invalid(&t(json!({ "aud": null })), "no aud");
    assert_invalid(&t(json!({ "aud": [AUDIENCE, 7] })), "aud is not a string");
    assert!(run(&t(json!({ "aud": ["urn:a", AUDIENCE] }))).is_ok());
    assert_invalid(&t(json!({ "sub": null })), "no sub");
}

#[test]
fn one_flipped_bit_breaks_the_signature() {
    let (h, p, s) = parts();
    let mut sig = crate::identity::b64::decode(&s, 4096).expect("sig");
    sig[10] ^= 0x01;
    assert_invalid(&format!("{h}.{p}.{}", encode(&sig)), "bad signature");
    // A changed payload with the old signature.
    let forged = encode(claims_with(json!({ "sub": "root" })).to_string().as_bytes());
    assert_invalid(&format!("{h}.{forged}.{s}"), "bad signature");
}

#[test]
fn a_token_of_the_wrong_shape_is_refused() {
    let (h, p, s) = parts();
    assert_invalid(
        &format!("{h}.{p}"),
        "a compact JWS has 3 parts, this token has 2",
    );
    assert_invalid(
        &format!("{h}.{p}.{s}.{s}"),
        "a compact JWS has 3 parts, this token has 4",
    );
    assert_invalid(&format!("{h}.{p}."), "empty signature");
    assert_invalid(&format!(".{p}.{s}"), "header is not a JSON object");
    assert_invalid(&format!("{h}..{s}"), "bad signature");
}

#[test]
fn a_huge_token_is_refused_by_its_size_before_decoding() {
    // A valid header, so a verifier that decoded first would get further than the size.
    let (h, _, s) = parts();
    let huge = format!("{h}.{}.{s}", "A".repeat(1 << 20));
    assert_invalid(&huge, "token longer than 8192 bytes");
    let just_over = format!("{h}.{}.{s}", "A".repeat(8192 - h.len() - s.len() - 1));
    assert_eq!(just_over.len(), 8193);
    assert_invalid(&just_over, "token longer than 8192 bytes");
}

#[test]
fn an_unknown_kid_asks_for_a_refetch() {
    let t = token(
        json!({ "alg": "RS256", "kid": "rotated" }),
        good_claims(),
        "rsa2048",
    );
    assert_eq!(
        run(&t),
        Err(Denied::UnknownKey {
            kid: "rotated".into()
        })
    );
}

#[test]
fn headers_that_name_a_key_or_crit_are_refused() {
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", jwk("rsa2048", None, json!({}))),
        ("x5c", json!(["MIIB"])),
        ("jku", Value::Null),
    ] {
        let mut header = rs256();
        header[name] = value;
        // Validly signed by the right key: the header alone is the reason.
        assert_invalid(
            &token(header, good_claims(), "rsa2048"),
            "header names its own key",
        );
    }
    let mut header = rs256();
    header["crit"] = json!(["exp"]);
    assert_invalid(
        &token(header, good_claims(), "rsa2048"),
        "crit header present",
    );
}

#[test]
fn a_header_alg_the_kid_key_does_not_fit_is_refused() {
    // RS256 naming the EC key: key type confusion.
    let t = token(
        json!({ "alg": "RS256", "kid": "p256" }),
        good_claims(),
        "rsa2048",
    );
    assert_invalid(&t, "the key of this kid (EC) does not fit RS256");
    // ES256 naming the P-384 key.
    let t = token(
        json!({ "alg": "ES256", "kid": "p384" }),
        good_claims(),
        "p256",
    );
    assert_invalid(&t, "the key of this kid (EC) does not fit ES256");
    let t = token(
        json!({ "alg": "EdDSA", "kid": "rsa" }),
        good_claims(),
        "ed25519",
    );
    assert_invalid(&t, "the key of this kid (RSA) does not fit EdDSA");
}

#[test]
fn a_1024_bit_rsa_key_is_skipped_and_its_tokens_refused() {
    let keys = all_keys();
    assert_eq!(keys.skipped.len(), 1);
    assert_eq!(keys.skipped[0].kid.as_deref(), Some("rsa1024"));
    assert!(
        keys.skipped[0].why.contains("1024 bits"),
        "{:?}",
        keys.skipped[0]
    );
    // ring cannot sign with it (it refuses keys under 2048 bits), and no signature is looked at.
    let input = format!(
        "{}.{}",
        encode(
            json!({ "alg": "RS256", "kid": "rsa1024" })
                .to_string()
                .as_bytes()
        ),
        encode(good_claims().to_string().as_bytes())
    );
    let t = format!("{input}.{}", encode(&[7u8; 128]));
    assert_invalid(
        &t,
        "the key of this kid is unusable: an RSA modulus of 1024 bits",
    );
}

#[test]
fn a_key_for_encryption_or_for_another_alg_is_not_used() {
    let keys = jwks(vec![
        jwk("rsa2048", Some("enc"), json!({ "use": "enc" })),
        jwk(
            "rsa2048",
            Some("rs512"),
            json!({ "alg": "RS512", "use": "sig" }),
        ),
    ]);
    let none = BTreeMap::new();
    let t = token(
        json!({ "alg": "RS256", "kid": "enc" }),
        good_claims(),
        "rsa2048",
    );
    assert_eq!(
        run_with(&t, &keys, &none),
        Err(Denied::Invalid(
            "the key of this kid is not for signatures".into()
        ))
    );
    let t = token(
        json!({ "alg": "RS256", "kid": "rs512" }),
        good_claims(),
        "rsa2048",
    );
    assert_eq!(
        run_with(&t, &keys, &none),
        Err(Denied::Invalid(
            "the key of this kid is for another alg than RS256".into()
        ))
    );
    // Without a kid neither is tried for RS256.
    let t = token(json!({ "alg": "RS256" }), good_claims(), "rsa2048");
    assert_eq!(
        run_with(&t, &keys, &none),
        Err(Denied::Invalid("no key of the set fits RS256".into()))
    );
    // The same key marked for signatures and RS512 passes RS512.
    let t = token(
        json!({ "alg": "RS512", "kid": "rs512" }),
        good_claims(),
        "rsa2048",
    );
    assert!(run_with(&t, &keys, &none).is_ok());
}

#[test]
fn a_header_that_is_not_utf8_or_not_json_is_refused() {
    let payload = good_claims().to_string();
    for header in [
        &b"\xff\xfe{\"alg\":\"RS256\"}"[..],
        b"hello",
        b"[\"RS256\"]",
        b"{\"alg\":256}",
    ] {
        let t = token_raw(header, payload.as_bytes(), "rsa2048");
        assert_invalid(&t, "header is not a JSON object");
    }
    // alg twice: serde refuses the duplicate rather than keeping one of them.
    let t = token_raw(
        br#"{"alg":"none","kid":"rsa","alg":"RS256"}"#,
        payload.as_bytes(),
        "rsa2048",
    );
    assert_invalid(&t, "header is not a JSON object");
    // A payload that is not JSON, validly signed.
    let t = token_raw(rs256().to_string().as_bytes(), b"\xff not json", "rsa2048");
    assert_invalid(&t, "payload is not a JSON object");
}

#[test]
fn base64_with_padding_or_the_standard_alphabet_is_refused() {
    let (h, p, s) = parts();
    assert_invalid(&format!("{h}=.{p}.{s}"), "header is not base64url");
    assert_invalid(&format!("{h}.{p}.{s}=="), "signature is not base64url");
    let standard: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    assert_ne!(standard, s, "a 256-byte signature has a - or _ in it");
    assert_invalid(&format!("{h}.{p}.{standard}"), "signature is not base64url");
    let with_space = format!("{h}.{p}.{} {}", &s[..10], &s[10..]);
    assert_invalid(&with_space, "signature is not base64url");
}

#[test]
fn typ_other_than_jwt_is_refused() {
    for typ in ["JOSE", "dpop+jwt", ""] {
        let t = token(
            json!({ "alg": "RS256", "kid": "rsa", "typ": typ }),
            good_claims(),
            "rsa2048",
        );
        assert_invalid(&t, "typ is not JWT or at+jwt");
    }
    for typ in ["jwt", "AT+JWT", "at+jwt"] {
        let t = token(
            json!({ "alg": "RS256", "kid": "rsa", "typ": typ }),
            good_claims(),
            "rsa2048",
        );
        assert!(run(&t).is_ok(), "{typ}");
    }
}

#[test]
fn an_unmet_require_is_insufficient_not_invalid() {
    let t = token(rs256(), good_claims(), "rsa2048");
    let keys = all_keys();
    let require = BTreeMap::from([("groups".to_string(), vec!["root".to_string()])]);
    assert_eq!(
        run_with(&t, &keys, &require),
        Err(Denied::Insufficient(
            "the token's groups claim lacks a required value".into()
        ))
    );
    let require = BTreeMap::from([("roles".to_string(), vec!["admin".to_string()])]);
    assert!(matches!(
        run_with(&t, &keys, &require),
        Err(Denied::Insufficient(_))
    ));
    // An invalid token stays invalid whatever the route requires.
    let expired = token(
        rs256(),
        claims_with(json!({ "exp": NOW - 3600 })),
        "rsa2048",
    );
    assert_eq!(
        run_with(&expired, &keys, &require),
        Err(Denied::Invalid("expired".into()))
    );
}

#[test]
fn only_a_bearer_authorization_header_counts() {
    let keys = all_keys();
    let none = BTreeMap::new();
    let settings = Settings {
        issuer: ISSUER,
        audience: AUDIENCE,
        leeway_s: LEEWAY,
        require: &none,
    };
    let t = token(rs256(), good_claims(), "rsa2048");
    let ask = |h: Option<&str>| check(h, &keys, &settings, NOW);
    assert_eq!(ask(None), Err(Denied::Missing));
    assert_eq!(ask(Some("")), Err(Denied::Missing));
    assert_eq!(ask(Some("Basic YWxpY2U6c2VjcmV0")), Err(Denied::Missing));
    assert_eq!(ask(Some(&format!("Bearerx {t}"))), Err(Denied::Missing));
    assert_eq!(
        ask(Some("Bearer")),
        Err(Denied::Invalid("empty token".into()))
    );
    assert_eq!(
        ask(Some("Bearer   ")),
        Err(Denied::Invalid("empty token".into()))
    );
    assert!(ask(Some(&format!("bearer {t}"))).is_ok());
    assert!(ask(Some(&format!("BEARER  {t} "))).is_ok());
    let huge = format!("Bearer {}", "A".repeat(1 << 20));
    assert_eq!(
        ask(Some(&huge)),
        Err(Denied::Invalid("token longer than 8192 bytes".into()))
    );
}
