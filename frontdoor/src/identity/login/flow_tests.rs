use super::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

fn settings() -> LoginSettings {
    LoginSettings {
        client_id: "baton".into(),
        client_secret: "s3cret".into(),
        scopes: vec!["groups".into()],
        callback_path: "/.baton/auth/callback".into(),
        session_ttl_s: 3600,
        session_key: [7; 32],
    }
}

fn endpoints() -> Discovery {
    Discovery {
        issuer: "https://idp.lan".into(),
        authorization_endpoint: "https://idp.lan/auth".into(),
        token_endpoint: "https://idp.lan/token".into(),
        end_session_endpoint: None,
        jwks_uri: None,
    }
}

fn begin(sealer: &Sealer) -> (Start, Vec<(String, String)>, String) {
    let start = start(
        &settings(),
        &endpoints(),
        sealer,
        "https://app.lan/.baton/auth/callback",
        "/page?x=1",
        1000,
    )
    .expect("start");
    let (base, query) = start.location.split_once('?').expect("query");
    assert_eq!(base, "https://idp.lan/auth");
    let params = parse_query(query).expect("query");
    let value = start
        .set_cookie
        .split_once('=')
        .expect("pair")
        .1
        .split(';')
        .next()
        .expect("value")
        .to_string();
    (start, params, value)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    &params.iter().find(|(k, _)| k == name).expect(name).1
}

#[test]
fn a_sign_in_asks_for_the_code_with_pkce_and_keeps_its_secrets_in_the_cookie() {
    let sealer = Sealer::new(&[7; 32]);
    let (start, params, cookie) = begin(&sealer);
    assert_eq!(param(&params, "response_type"), "code");
    assert_eq!(param(&params, "client_id"), "baton");
    assert_eq!(param(&params, "scope"), "openid email profile groups");
    assert_eq!(param(&params, "code_challenge_method"), "S256");
    assert!(start.set_cookie.starts_with("__Host-baton_login="));
    assert!(start
        .set_cookie
        .contains("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"));
    let pending: Pending = sealer.open(LOGIN_COOKIE, &cookie).expect("opens");
    assert_eq!(param(&params, "state"), pending.state);
    assert_eq!(param(&params, "nonce"), pending.nonce);
    assert_eq!(
        param(&params, "code_challenge"),
        challenge(&pending.verifier)
    );
    assert_eq!(pending.ret, "/page?x=1");
    // The verifier itself never leaves in the URL.
    assert!(!start.location.contains(&pending.verifier));
}

#[test]
fn the_callback_needs_the_cookie_and_its_state() {
    let sealer = Sealer::new(&[7; 32]);
    let (_, params, cookie) = begin(&sealer);
    let state = param(&params, "state").to_string();
    let good = format!("code=abc&state={state}");
    let ok = callback(&sealer, Some(&cookie), &good, 1001).expect("good");
    assert_eq!(ok.code, "abc");
    let bad_request = |r: Result<Returned, Refusal>| matches!(r, Err(Refusal::BadRequest(_)));
    assert!(bad_request(callback(&sealer, None, &good, 1001)));
    assert!(bad_request(callback(
        &sealer,
        Some(&cookie),
        "code=abc&state=other",
        1001
    )));
    assert!(bad_request(callback(
        &sealer,
        Some(&cookie),
        "code=abc",
        1001
    )));
    assert!(bad_request(callback(
        &sealer,
        Some(&cookie),
        &format!("state={state}"),
        1001
    )));
    // Ten minutes later the cookie no longer counts.
    assert!(bad_request(callback(
        &sealer,
        Some(&cookie),
        &good,
        1000 + LOGIN_TTL_S
    )));
    let mut altered = cookie.clone();
    altered.replace_range(20..21, if &cookie[20..21] == "A" { "B" } else { "A" });
    assert!(bad_request(callback(&sealer, Some(&altered), &good, 1001)));
    // The issuer's refusal, with the right state: 401.
    let no = callback(
        &sealer,
        Some(&cookie),
        &format!("error=access_denied&state={state}"),
        1001,
    );
    assert!(matches!(no, Err(Refusal::Denied(_))), "{no:?}");
}

#[test]
fn return_paths_stay_on_this_host() {
    assert_eq!(return_path("/a?b=c"), "/a?b=c");
    for bad in [
        "//evil.lan/x",
        "/\\evil.lan",
        "https://evil.lan/",
        "",
        "/a b",
    ] {
        assert_eq!(return_path(bad), "/", "{bad}");
    }
}

fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

fn id_token(claims: serde_json::Value) -> String {
    let pk8 = std::fs::read(format!("{}/p256.pk8", keys_dir())).expect("pk8");
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pk8, &rng).expect("key");
    let header = json!({ "alg": "ES256", "kid": "k1" });
    let signing = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = key.sign(&rng, signing.as_bytes()).expect("sign");
    format!("{signing}.{}", b64::encode(sig.as_ref()))
}

fn keys() -> Keys {
    let mut jwk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}/p256.jwk.json", keys_dir())).expect("jwk"),
    )
    .expect("json");
    jwk["kid"] = json!("k1");
    Keys::parse(&json!({ "keys": [jwk] }).to_string()).expect("keys")
}

#[test]
fn the_id_token_must_be_for_this_client_and_this_sign_in() {
    let expected = Expected {
        issuer: "https://idp.lan",
        client_id: "baton",
        nonce: "n1",
        leeway_s: 30,
    };
    let claims = |aud: serde_json::Value, nonce: &str| {
        json!({ "iss": "https://idp.lan", "aud": aud, "sub": "ann", "email": "ann@lan",
                "groups": ["staff", 7], "nonce": nonce, "exp": 2000, "iat": 900 })
    };
    let session = verify_id_token(
        &id_token(claims(json!("baton"), "n1")),
        &keys(),
        expected,
        60,
        1000,
    )
    .expect("good");
    assert_eq!(
        session,
        Session {
            sub: "ann".into(),
            email: Some("ann@lan".into()),
            groups: vec!["staff".into()],
            exp: 1060,
            iat: 1000,
        }
    );
    for (what, token) in [
        ("another client", id_token(claims(json!("other"), "n1"))),
        ("another nonce", id_token(claims(json!("baton"), "n2"))),
    ] {
        assert!(
            verify_id_token(&token, &keys(), expected, 60, 1000).is_err(),
            "{what}"
        );
    }
    let mut azp = claims(json!(["baton", "other"]), "n1");
    azp["azp"] = json!("other");
    assert!(verify_id_token(&id_token(azp), &keys(), expected, 60, 1000).is_err());
    // Expired.
    assert!(verify_id_token(
        &id_token(claims(json!("baton"), "n1")),
        &keys(),
        expected,
        60,
        3000
    )
    .is_err());
}

#[test]
fn a_session_cookie_is_bounded_and_expires() {
    let sealer = Sealer::new(&[7; 32]);
    let session = Session {
        sub: "ann".into(),
        email: None,
        groups: (0..MAX_GROUPS).map(|i| format!("{i:0>200}")).collect(),
        exp: 2000,
        iat: 900,
    };
    let under = SessionFor {
        issuer: "https://idp.lan",
        client_id: "baton",
        ttl_s: 1100,
    };
    // Too big for a cookie: refused as a whole, never cut down to fit.
    assert_eq!(session_cookie(&sealer, under, session.clone()), None);
    let session = Session {
        groups: session.groups[..8].to_vec(),
        ..session
    };
    let set = session_cookie(&sealer, under, session).expect("fits");
    let value = set
        .split_once('=')
        .expect("pair")
        .1
        .split(';')
        .next()
        .expect("value");
    assert!(value.len() <= MAX_SESSION_COOKIE, "{}", value.len());
    assert!(set.contains("Max-Age=1100"), "{set}");
    let read = read_session(&sealer, under, value, 1000).expect("reads");
    assert_eq!(read.groups.len(), 8);
    assert!(read_session(&sealer, under, value, 2000).is_none());
    // A login cookie is no session cookie.
    let (_, _, login) = begin(&sealer);
    assert!(read_session(&sealer, under, &login, 1000).is_none());
    // Another issuer or client id: the session does not open.
    for other in [
        SessionFor {
            issuer: "https://idp2.lan",
            ..under
        },
        SessionFor {
            client_id: "other",
            ..under
        },
    ] {
        assert!(
            read_session(&sealer, other, value, 1000).is_none(),
            "{other:?}"
        );
    }
    // A shorter session_ttl now: a session made longer ago than that ends before its exp.
    let shorter = SessionFor {
        ttl_s: 100,
        ..under
    };
    assert!(read_session(&sealer, shorter, value, 999).is_some());
    assert!(read_session(&sealer, shorter, value, 1000).is_none());
}

#[test]
fn groups_come_as_a_list_or_a_string_and_are_never_dropped_silently() {
    let expected = Expected {
        issuer: "https://idp.lan",
        client_id: "baton",
        nonce: "n1",
        leeway_s: 30,
    };
    let verify = |groups: serde_json::Value| {
        let claims = json!({ "iss": "https://idp.lan", "aud": "baton", "sub": "ann",
                             "groups": groups, "nonce": "n1", "exp": 2000, "iat": 900 });
        verify_id_token(&id_token(claims), &keys(), expected, 60, 1000)
    };
    let groups = |g: serde_json::Value| verify(g).expect("verifies").groups;
    assert_eq!(groups(json!("staff  admins")), ["staff", "admins"]);
    assert_eq!(groups(json!(["staff", "", 7])), ["staff"]);
    let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
    let too_many = verify(json!(many)).expect_err("too many groups");
    assert!(too_many.to_string().contains("groups"), "{too_many}");
    assert_eq!(groups(json!(many[..MAX_GROUPS])).len(), MAX_GROUPS);
    let long = "g".repeat(MAX_CLAIM + 1);
    assert!(verify(json!(["staff", long])).is_err());
    assert!(verify(json!(format!("staff {long}"))).is_err());
}
