//! `X-Baton-Identity` on loopback: an `oidc` route's instance gets an assertion that PyJWT
//! (Debian's python3-jwt, an implementation apart from ours) verifies against the key set the
//! front door serves at `/.well-known/baton/jwks.json`; client-sent copies of the identity
//! headers and baton's cookies never reach an instance, on `auth = "none"` routes too; a board
//! without the key answers 404 there and sets no assertion.

mod common;
mod common_keys;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use baton_frontdoor::config::model::OidcSettings;
use baton_frontdoor::config::Auth;
use baton_frontdoor::identity::b64;
use common::*;
use common_keys::{assertion_key, jwk, keys_dir};
use http::Request;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.lan";
const AUDIENCE: &str = "urn:baton";
const PYTHON: &str = "/usr/bin/python3";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

/// A bearer token of the identity provider (the same test key, another role).
fn token() -> String {
    let pk8 = std::fs::read(format!("{}/p256.pk8", keys_dir())).expect("pk8");
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pk8, &rng).expect("key");
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": "k1" });
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "ann", "email": "ann@lan",
        "groups": ["staff"], "exp": now() + 300, "iat": now() - 10
    });
    let signing = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let signature = key.sign(&rng, signing.as_bytes()).expect("sign");
    format!("{signing}.{}", b64::encode(signature.as_ref()))
}

async fn door(with_key: bool) -> (Door, Vec<tokio::task::JoinHandle<()>>) {
    let (a, private_task) = echo("private").await;
    let (b, public_task) = echo("public").await;
    let mut private = route("private", Some("private.lan"), "/");
    private.auth = Auth::Oidc;
    let public = route("public", Some("public.lan"), "/");
    let mut snap = snapshot(vec![private, public], None);
    let mut key = jwk();
    key["kid"] = json!("k1");
    snap.oidc = Some(OidcSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway_s: 30,
        jwks: json!({ "keys": [key] }).to_string(),
        ..OidcSettings::default()
    });
    if with_key {
        snap.assertion = Some(assertion_key());
    }
    let door = Door::start(snap).await;
    door.instances("private", &[("p1", a, true)]);
    door.instances("public", &[("q1", b, true)]);
    (door, vec![private_task, public_task])
}

/// The value of `name` as the echo instance saw it.
fn seen<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// PyJWT's verdict on `token` with `jwks` for audience `aud`: the claims, or its error.
fn pyjwt(jwks: &str, token: &str, aud: &str) -> Result<Value, String> {
    let script = r#"
import json, sys, jwt
jwks, token, aud = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
kid = jwt.get_unverified_header(token)["kid"]
key = [k for k in jwks["keys"] if k["kid"] == kid][0]
print(json.dumps(jwt.decode(token, jwt.PyJWK(key).key, algorithms=["ES256"], audience=aud,
                            issuer="baton:lab", options={"require": ["exp", "iat", "sub"]})))
"#;
    let out = Command::new(PYTHON)
        .args(["-c", script, jwks, token, aud])
        .output()
        .expect("run /usr/bin/python3 (this test needs Debian's python3-jwt)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("claims"))
}

#[tokio::test]
async fn the_instance_gets_an_assertion_pyjwt_verifies_with_the_served_key_set() {
    let (door, _tasks) = door(true).await;
    // Any host answers the key set, one without a route too.
    let jwks = get(door.addr, "nothing.lan", "/.well-known/baton/jwks.json").await;
    assert_eq!(jwks.status, 200, "{jwks:?}");
    assert_eq!(jwks.headers["content-type"], "application/json");
    let req = Request::get("/headers")
        .header("host", "private.lan")
        .header("authorization", format!("Bearer {}", token()))
        .header("x-baton-identity", "forged")
        .body(text(""))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 200, "{got:?}");
    let assertion = seen(&got.body, "x-baton-identity").expect("an assertion");
    assert_ne!(assertion, "forged");
    assert_eq!(
        got.body.matches("x-baton-identity").count(),
        1,
        "{}",
        got.body
    );
    let claims = pyjwt(&jwks.body, assertion, "private").expect("PyJWT verifies it");
    assert_eq!(claims["sub"], "ann");
    assert_eq!(claims["email"], "ann@lan");
    assert_eq!(claims["groups"], json!(["staff"]));
    assert_eq!(claims["auth"], "oidc");
    // Made for the service it was sent to: another audience is refused.
    assert!(pyjwt(&jwks.body, assertion, "public").is_err());
    // The access line names the caller.
    let (lines, _) = door.state.access.take(100).expect("access lines");
    let line = lines
        .iter()
        .find(|l| l.route == "private")
        .expect("a line of the private route");
    assert_eq!(line.identity.as_deref(), Some("ann"), "{line:?}");
}

#[tokio::test]
async fn client_sent_identity_headers_and_baton_cookies_never_reach_an_instance() {
    let (door, _tasks) = door(true).await;
    let req = Request::get("/headers")
        .header("host", "public.lan")
        .header("x-forwarded-user", "root")
        .header("x-forwarded-email", "root@lan")
        .header("x-baton-identity", "forged")
        .header("cookie", "theme=dark; __Host-baton_session=stolen")
        .body(text(""))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.starts_with("public "), "{}", got.body);
    for leaked in [
        "root",
        "forged",
        "stolen",
        "x-forwarded-user",
        "x-baton-identity",
    ] {
        assert!(!got.body.contains(leaked), "{leaked}: {}", got.body);
    }
    assert_eq!(
        seen(&got.body, "cookie"),
        Some("theme=dark"),
        "{}",
        got.body
    );
}

#[tokio::test]
async fn without_the_key_no_assertion_is_set_and_the_key_set_is_404() {
    let (door, _tasks) = door(false).await;
    let jwks = get(door.addr, "private.lan", "/.well-known/baton/jwks.json").await;
    assert_eq!(jwks.status, 404, "{jwks:?}");
    let req = Request::get("/headers")
        .header("host", "private.lan")
        .header("authorization", format!("Bearer {}", token()))
        .body(text(""))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(
        seen(&got.body, "x-forwarded-user") == Some("ann"),
        "{}",
        got.body
    );
    assert!(
        seen(&got.body, "x-baton-identity").is_none(),
        "{}",
        got.body
    );
}
