//! The assertion signer: PyJWT (Debian's python3-jwt) verifies what it signs against the key
//! set it serves, the key id is the RFC 7638 thumbprint, assertions are reused for their
//! window only, and the cache stays bounded.

use std::process::Command;

use serde_json::Value;

use super::*;

/// The private scalar of `tests/keys/p256.pem` (from `openssl pkey -text`); its public half
/// is taken from `p256.jwk.json`, so a key that did not match would fail `Signer::new`.
const D_HEX: &str = "c7ea4ca74758fc588d5f1364975259965613ada60ca13ad071d0382e5108619b";

fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

fn test_key() -> AssertionKey {
    let hex: String = D_HEX.chars().filter(|c| !c.is_whitespace()).collect();
    let d: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let jwk: Value = serde_json::from_slice(
        &std::fs::read(format!("{}/p256.jwk.json", keys_dir())).expect("jwk"),
    )
    .expect("json");
    let mut public = vec![4u8];
    for c in ["x", "y"] {
        public.extend(b64::decode(jwk[c].as_str().expect("coordinate"), 32).expect("b64"));
    }
    AssertionKey {
        issuer: "baton:lab".into(),
        d: b64::encode(&d),
        public: b64::encode(&public),
    }
}

fn ann() -> Who {
    Who {
        sub: "ann".into(),
        email: Some("ann@lan".into()),
        groups: vec!["staff".into()],
        auth: "oidc",
    }
}

const PYTHON: &str = "/usr/bin/python3";

/// Verifies `token` with PyJWT against `jwks` for audience `aud` and issuer `iss`, and prints
/// the claims as JSON; the key is picked by the token's `kid`, as a service would.
const VERIFIER: &str = r#"
import json, sys, jwt
jwks, token, aud, iss = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
kid = jwt.get_unverified_header(token)["kid"]
key = [k for k in jwks["keys"] if k["kid"] == kid][0]
claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["ES256"], audience=aud, issuer=iss,
                    options={"require": ["exp", "iat", "sub"]})
print(json.dumps(claims))
"#;

fn pyjwt_verify(jwks: &str, token: &str, aud: &str) -> Result<Value, String> {
    let out = Command::new(PYTHON)
        .args(["-c", VERIFIER, jwks, token, aud, "baton:lab"])
        .output()
        .expect("run /usr/bin/python3 (this test needs Debian's python3-jwt)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("claims JSON"))
}

#[test]
fn pyjwt_verifies_the_assertion_against_the_served_key_set() {
    let signer = Signer::new(&test_key()).expect("signer");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let token = signer.assertion(&ann(), "hello", now).expect("signed");
    let claims = pyjwt_verify(signer.jwks(), &token, "hello").expect("PyJWT accepts it");
    assert_eq!(claims["sub"], "ann");
    assert_eq!(claims["email"], "ann@lan");
    assert_eq!(claims["groups"], serde_json::json!(["staff"]));
    assert_eq!(claims["auth"], "oidc");
    assert_eq!(claims["iss"], "baton:lab");
    assert_eq!(claims["exp"].as_u64(), Some(now + LIFETIME_S));
    // The same token for another service's audience is refused, so the pass above was earned.
    let wrong = pyjwt_verify(signer.jwks(), &token, "other").expect_err("wrong audience");
    assert!(
        wrong.contains("Audience") || wrong.contains("audience"),
        "{wrong}"
    );
    // And a flipped signature bit too.
    let (rest, sig) = token.rsplit_once('.').expect("three parts");
    let mut sig = b64::decode(sig, 64).expect("b64");
    sig[5] ^= 1;
    let forged = format!("{rest}.{}", b64::encode(&sig));
    assert!(pyjwt_verify(signer.jwks(), &forged, "hello").is_err());
}

#[test]
fn the_key_id_is_the_rfc_7638_thumbprint() {
    let signer = Signer::new(&test_key()).expect("signer");
    // Computed apart from the code under test: Python's hashlib over the canonical JSON of
    // the test key's JWK file.
    let script = r#"
import json, sys, hashlib, base64
k = json.load(open(sys.argv[1]))
c = json.dumps({"crv": k["crv"], "kty": k["kty"], "x": k["x"], "y": k["y"]},
               separators=(",", ":"), sort_keys=True)
print(base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).decode().rstrip("="))
"#;
    let out = Command::new(PYTHON)
        .args(["-c", script, &format!("{}/p256.jwk.json", keys_dir())])
        .output()
        .expect("python3");
    assert!(out.status.success());
    assert_eq!(signer.kid(), String::from_utf8_lossy(&out.stdout).trim());
    let jwks: Value = serde_json::from_str(signer.jwks()).expect("json");
    assert_eq!(jwks["keys"][0]["kid"], signer.kid());
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "the private key is never served"
    );
}

#[test]
fn assertions_are_reused_within_their_window_only() {
    let signer = Signer::new(&test_key()).expect("signer");
    let first = signer.assertion(&ann(), "hello", 1000).expect("signed");
    assert_eq!(
        signer.assertion(&ann(), "hello", 1000 + REUSE_S - 1),
        Some(first.clone())
    );
    assert_ne!(
        signer.assertion(&ann(), "hello", 1000 + REUSE_S),
        Some(first.clone())
    );
    // Another service or another caller is another assertion.
    assert_ne!(signer.assertion(&ann(), "other", 1000), Some(first.clone()));
    let mut bob = ann();
    bob.sub = "bob".into();
    assert_ne!(signer.assertion(&bob, "hello", 1000), Some(first.clone()));
    // A clock that went back does not serve an entry from the future.
    assert_ne!(signer.assertion(&ann(), "hello", 999), Some(first));
}

#[test]
fn the_cache_stays_bounded() {
    let signer = Signer::new(&test_key()).expect("signer");
    for n in 0..MAX_CACHED + 50 {
        let mut who = ann();
        who.sub = format!("user{n}");
        signer.assertion(&who, "hello", 5000).expect("signed");
        let len = signer.cache.lock().expect("lock").len();
        assert!(len <= MAX_CACHED, "{len} entries");
    }
}

#[test]
fn large_assertions_are_signed_each_time_and_not_kept() {
    let signer = Signer::new(&test_key()).expect("signer");
    let mut who = ann();
    who.groups = (0..200).map(|n| format!("group-{n}")).collect();
    let first = signer.assertion(&who, "hello", 7000).expect("signed");
    assert!(first.len() > MAX_CACHED_BYTES);
    assert!(signer.cache.lock().expect("lock").is_empty());
    // ECDSA signatures are randomised, so a second signing differs.
    assert_ne!(signer.assertion(&who, "hello", 7000), Some(first));
}

#[test]
fn a_key_pair_that_does_not_hold_together_is_refused() {
    let mut key = test_key();
    let mut d = b64::decode(&key.d, 32).expect("b64");
    d[31] ^= 1;
    key.d = b64::encode(&d);
    assert!(Signer::new(&key).is_err());
    let mut short = test_key();
    short.public = b64::encode(&[4u8; 33]);
    assert!(Signer::new(&short).is_err());
}

#[test]
fn debug_never_shows_the_private_key() {
    let key = test_key();
    let shown = format!("{key:?} {:?}", Signer::new(&key).expect("signer"));
    assert!(!shown.contains(&key.d), "{shown}");
}
