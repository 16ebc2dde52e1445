//! Routes with `auth = "oidc"` on loopback: a token signed by the provider's key (the test
//! keys of `tests/keys/`) gets through and the instance learns who called; a missing, expired
//! or forged token gets 401 with the RFC 6750 challenge, one without the route's required
//! claims 403; a client's own identity headers never reach the instance; a board without the
//! key set fails closed.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use baton_frontdoor::config::model::OidcSettings;
use baton_frontdoor::config::Auth;
use baton_frontdoor::identity::b64::encode;
use common::*;
use http::Request;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.lan";
const AUDIENCE: &str = "urn:baton";

fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

fn jwks() -> String {
    let path = format!("{}/p256.jwk.json", keys_dir());
    let mut key: Value = serde_json::from_slice(&std::fs::read(&path).expect("key")).expect("jwk");
    key["kid"] = json!("k1");
    json!({ "keys": [key] }).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

/// An ES256 token with `claims`, signed by the test P-256 key under `kid`.
fn token(kid: &str, claims: Value) -> String {
    let pk8 = std::fs::read(format!("{}/p256.pk8", keys_dir())).expect("pk8");
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pk8, &rng).expect("key");
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
    let signing = format!(
        "{}.{}",
        encode(header.to_string().as_bytes()),
        encode(claims.to_string().as_bytes())
    );
    let signature = key.sign(&rng, signing.as_bytes()).expect("sign");
    format!("{signing}.{}", encode(signature.as_ref()))
}

fn claims(exp: u64) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "ann", "email": "ann@lan",
        "groups": ["staff"], "exp": exp, "iat": now() - 10
    })
}

async fn ask(door: &Door, bearer: Option<&str>, extra: &[(&str, &str)]) -> Got {
    let mut req = Request::get("/headers").header("host", "private.lan");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    send(door.addr, req.body(text("")).expect("request")).await
}

async fn door(with_keys: bool, require: &[(&str, &str)]) -> (Door, tokio::task::JoinHandle<()>) {
    let (a, task) = echo("private").await;
    let mut private = route("private", Some("private.lan"), "/");
    private.auth = Auth::Oidc;
    for (claim, value) in require {
        private
            .require
            .insert(claim.to_string(), vec![value.to_string()]);
    }
    let mut snap = snapshot(vec![private], None);
    if with_keys {
        snap.oidc = Some(OidcSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            leeway_s: 30,
            jwks: jwks(),
            ..Default::default()
        });
    }
    let door = Door::start(snap).await;
    door.instances("private", &[("p1", a, true)]);
    (door, task)
}

#[tokio::test]
async fn a_valid_token_passes_and_the_instance_learns_who_called() {
    let (door, _a) = door(true, &[]).await;
    let good = token("k1", claims(now() + 300));
    let got = ask(
        &door,
        Some(&good),
        &[("x-forwarded-user", "root"), ("x-baton-identity", "forged")],
    )
    .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.contains("x-forwarded-user: ann\n"), "{}", got.body);
    assert!(
        got.body.contains("x-forwarded-email: ann@lan\n"),
        "{}",
        got.body
    );
    assert!(!got.body.contains("root"), "{}", got.body);
    assert!(!got.body.contains("forged"), "{}", got.body);
}

#[tokio::test]
async fn missing_expired_forged_and_unknown_key_tokens_get_401_with_the_challenge() {
    let (door, _a) = door(true, &[]).await;
    let got = ask(&door, None, &[]).await;
    assert_eq!(got.status, 401, "{got:?}");
    assert_eq!(got.headers["www-authenticate"], "Bearer realm=\"baton\"");
    let expired = token("k1", claims(now() - 3600));
    let mut forged = token("k1", claims(now() + 300));
    // One character of the signature changed.
    let last = forged.pop().expect("a character");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let unknown = token("k2", claims(now() + 300));
    for (what, bad) in [
        ("expired", expired),
        ("forged", forged),
        ("unknown key", unknown),
    ] {
        let got = ask(&door, Some(&bad), &[]).await;
        assert_eq!(got.status, 401, "{what}: {got:?}");
        let challenge = got.headers["www-authenticate"].to_str().expect("text");
        assert!(
            challenge.starts_with("Bearer realm=\"baton\", error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert!(!got.body.contains("ann"), "{what}: passed on: {got:?}");
    }
}

#[tokio::test]
async fn a_token_without_the_required_claims_gets_403() {
    let (door, _a) = door(true, &[("groups", "admins")]).await;
    let got = ask(&door, Some(&token("k1", claims(now() + 300))), &[]).await;
    assert_eq!(got.status, 403, "{got:?}");
    let challenge = got.headers["www-authenticate"].to_str().expect("text");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
}

#[tokio::test]
async fn without_the_provider_s_keys_an_oidc_route_fails_closed() {
    let (door, _a) = door(false, &[]).await;
    let got = ask(&door, Some(&token("k1", claims(now() + 300))), &[]).await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(!got.body.contains("ann"), "{got:?}");
}
