//! The identity provider link on loopback (docs/design/front-door.md section 5.2): a provider
//! over HTTPS with a test CA (the snapshot's `ca_pem`), its key set fetched from `jwks_url`.
//! A token whose key only the URL's set has passes; with the provider stopped after a first
//! fetch, tokens still pass, and so they do in a new front door given only the set the init
//! cached; a rotated key is picked up by one refetch; a flood of random `kid`s costs at most
//! one fetch; a body too large, too many keys, no answer and a redirect are refused with a
//! reason and the last good set stays. Also the discovery document, and the client's form post.

mod common;
mod common_idp;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_frontdoor::config::model::OidcSettings;
use baton_frontdoor::config::Auth;
use baton_frontdoor::control::protocol::{Fetched, ToInit};
use baton_frontdoor::identity::b64::encode;
use baton_frontdoor::idp::{Origin, Timing};
use baton_frontdoor::outbound::{Client, Why};
use common::*;
use common_idp::{Jwks, Provider};
use http::Request;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const AUDIENCE: &str = "urn:baton";

fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

/// The public JWK of the test key `name` under `kid`.
fn jwk(name: &str, kid: &str) -> Value {
    let path = format!("{}/{name}.jwk.json", keys_dir());
    let mut key: Value = serde_json::from_slice(&std::fs::read(&path).expect("key")).expect("jwk");
    key["kid"] = json!(kid);
    key
}

fn set(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

/// A token for `issuer` signed by the P-256 test key (`p256`, ES256) or the P-384 one.
fn token(issuer: &str, key: &str, kid: &str) -> String {
    let (alg, signing): (&str, &'static EcdsaSigningAlgorithm) = match key {
        "p256" => ("ES256", &ECDSA_P256_SHA256_FIXED_SIGNING),
        _ => ("ES384", &ECDSA_P384_SHA384_FIXED_SIGNING),
    };
    let pk8 = std::fs::read(format!("{}/{key}.pk8", keys_dir())).expect("pk8");
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(signing, &pk8, &rng).expect("key");
    let header = json!({ "alg": alg, "typ": "JWT", "kid": kid });
    let claims = json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "ann", "exp": now() + 300, "iat": now() - 10
    });
    let signed = format!(
        "{}.{}",
        encode(header.to_string().as_bytes()),
        encode(claims.to_string().as_bytes())
    );
    let signature = pair.sign(&rng, signed.as_bytes()).expect("sign");
    format!("{signed}.{}", encode(signature.as_ref()))
}

/// Timing for tests: refreshes every `refresh`, short waits.
fn timing(refresh: Duration) -> Timing {
    Timing {
        refresh,
        retry: refresh,
        wait: Duration::from_secs(10),
        fetch_timeout: Duration::from_millis(500),
    }
}

/// A front door with one `oidc` route whose keys come from `provider`'s `/jwks` (none on the
/// card), the init's cached set `cached`, and its fetcher running; `Fetched` reports go to the
/// receiver.
struct Link {
    door: Door,
    reports: mpsc::Receiver<ToInit>,
    issuer: String,
    _upstream: tokio::task::JoinHandle<()>,
    _fetcher: tokio::task::JoinHandle<()>,
}

impl Link {
    async fn start(provider: &Provider, cached: Option<String>, refresh: Duration) -> Link {
        let (addr, upstream) = echo("private").await;
        let mut private = route("private", Some("private.lan"), "/");
        private.auth = Auth::Oidc;
        let mut snap = snapshot(vec![private], None);
        snap.settings.per_client_rate = 1_000_000;
        snap.settings.per_client_burst = 1_000_000;
        snap.oidc = Some(OidcSettings {
            issuer: provider.base(),
            audience: AUDIENCE.into(),
            leeway_s: 30,
            jwks: String::new(),
            jwks_url: Some(provider.url("/jwks")),
            jwks_cached: cached,
            ca_pem: Some(provider.ca_pem.clone()),
            discover: false,
            discovery: None,
        });
        let door = Door::start(snap).await;
        door.instances("private", &[("p1", addr, true)]);
        door.state.idp.set_timing(timing(refresh));
        let (tx, reports) = mpsc::channel(64);
        let fetcher = baton_frontdoor::idp::fetch::spawn(Arc::clone(&door.state.idp), tx);
        Link {
            door,
            reports,
            issuer: provider.base(),
            _upstream: upstream,
            _fetcher: fetcher,
        }
    }

    async fn ask(&self, token: &str) -> Got {
        let req = Request::get("/headers")
            .header("host", "private.lan")
            .header("authorization", format!("Bearer {token}"))
            .body(text(""))
            .expect("request");
        send(self.door.addr, req).await
    }

    /// The next `Fetched` report.
    async fn fetched(&mut self) -> (Fetched, String, String) {
        let wait = tokio::time::timeout(Duration::from_secs(20), self.reports.recv());
        match wait.await.expect("a report in time").expect("open") {
            ToInit::Fetched { kind, url, body } => (kind, url, body),
            other => panic!("not a Fetched: {other:?}"),
        }
    }

    /// Waits until the last fetch failed with a reason containing `what`.
    async fn failed_with(&self, what: &str) -> String {
        let idp = &self.door.state.idp;
        until(&format!("a fetch refused with {what:?}"), || {
            idp.last_error().is_some_and(|e| e.contains(what))
        })
        .await;
        idp.last_error().expect("an error")
    }
}

#[tokio::test]
async fn a_key_only_the_url_has_passes_and_the_set_goes_to_the_init() {
    let provider = Provider::start(Jwks::Serve(set(&[jwk("p256", "k1")]))).await;
    let mut link = Link::start(&provider, None, Duration::from_secs(600)).await;
    let (kind, url, body) = link.fetched().await;
    assert_eq!(kind, Fetched::Jwks);
    assert_eq!(url, provider.url("/jwks"));
    assert!(body.contains("\"k1\""), "{body}");
    let got = link.ask(&token(&link.issuer, "p256", "k1")).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.contains("x-forwarded-user: ann\n"), "{}", got.body);
    assert_eq!(link.door.state.idp.fetched_origin(), Some(Origin::Fetch));
}

#[tokio::test]
async fn with_the_provider_stopped_after_a_first_fetch_tokens_still_pass() {
    let provider = Provider::start(Jwks::Serve(set(&[jwk("p256", "k1")]))).await;
    let mut link = Link::start(&provider, None, Duration::from_millis(200)).await;
    let (_, _, body) = link.fetched().await;
    provider.stop();
    // Refreshes now fail; the set fetched before stays in force.
    link.failed_with("cannot connect").await;
    let good = token(&link.issuer, "p256", "k1");
    assert_eq!(link.ask(&good).await.status, 200);
    // A new front door (a restart, or the board after a reboot) with only the init's copy.
    let again = Link::start(&provider, Some(body), Duration::from_millis(200)).await;
    assert_eq!(again.door.state.idp.fetched_origin(), Some(Origin::Cache));
    let got = again.ask(&good).await;
    assert_eq!(got.status, 200, "{got:?}");
    again.failed_with("cannot connect").await;
    assert_eq!(again.ask(&good).await.status, 200);
    // Without that copy, the same token has no key to be checked with.
    let bare = Link::start(&provider, None, Duration::from_millis(200)).await;
    assert_eq!(bare.ask(&good).await.status, 401);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_one_refetch() {
    let provider = Provider::start(Jwks::Serve(set(&[jwk("p256", "k1")]))).await;
    let mut link = Link::start(&provider, None, Duration::from_secs(600)).await;
    link.fetched().await;
    assert_eq!(provider.jwks_hits(), 1);
    provider.set_jwks(Jwks::Serve(set(&[jwk("p384", "k2")])));
    let got = link.ask(&token(&link.issuer, "p384", "k2")).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(provider.jwks_hits(), 2);
    // The next unknown kid in the same minute: refused at once, nothing fetched.
    let got = link.ask(&token(&link.issuer, "p384", "k3")).await;
    assert_eq!(got.status, 401, "{got:?}");
    assert_eq!(provider.jwks_hits(), 2);
}

#[tokio::test]
async fn a_flood_of_random_kids_costs_at_most_one_fetch() {
    let provider = Provider::start(Jwks::Serve(set(&[jwk("p256", "k1")]))).await;
    let mut link = Link::start(&provider, None, Duration::from_secs(600)).await;
    link.fetched().await;
    let link = Arc::new(link);
    let mut asks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let link = Arc::clone(&link);
        asks.spawn(async move {
            let kid = format!("random-{i}-{}", now());
            link.ask(&token(&link.issuer, "p256", &kid)).await.status
        });
    }
    while let Some(status) = asks.join_next().await {
        assert_eq!(status.expect("ask"), 401);
    }
    // The fetch at start and one refetch, which the concurrent requests joined.
    assert_eq!(provider.jwks_hits(), 2);
    // Later in the same minute, one after the other: refused at once, nothing fetched.
    for i in 0..16 {
        let kid = format!("later-{i}");
        let got = link.ask(&token(&link.issuer, "p256", &kid)).await;
        assert_eq!(got.status, 401, "{got:?}");
    }
    assert_eq!(provider.jwks_hits(), 2);
    // The known key still passes.
    assert_eq!(
        link.ask(&token(&link.issuer, "p256", "k1")).await.status,
        200
    );
}

#[tokio::test]
async fn bad_answers_are_refused_with_a_reason_and_the_last_good_set_stays() {
    let provider = Provider::start(Jwks::Serve(set(&[jwk("p256", "k1")]))).await;
    let mut link = Link::start(&provider, None, Duration::from_millis(100)).await;
    link.fetched().await;
    let good = token(&link.issuer, "p256", "k1");
    let padding = "x".repeat(70 * 1024);
    let too_big = json!({ "keys": [jwk("p256", "k1")], "pad": padding }).to_string();
    let many: Vec<Value> = (0..33).map(|i| jwk("p256", &format!("k{i}"))).collect();
    let cases = [
        (Jwks::Serve(too_big), "longer than 65536 bytes"),
        (Jwks::Serve(set(&many)), "33 keys, at most 32"),
        (Jwks::Serve("{\"keys\":".into()), "not a JWKS"),
        (Jwks::Hang, "no complete answer within"),
        (
            Jwks::Redirect("https://evil.lan/jwks".into()),
            "a redirect to \"https://evil.lan/jwks\"), which is not followed",
        ),
    ];
    for (answer, why) in cases {
        provider.set_jwks(answer);
        let line = link.failed_with(why).await;
        assert!(line.contains("the last good set is kept"), "{line}");
        assert!(line.contains(&provider.url("/jwks")), "{line}");
        let got = link.ask(&good).await;
        assert_eq!(got.status, 200, "{why}: {got:?}");
        // Put the good set back, so the next case starts from a good fetch.
        provider.set_jwks(Jwks::Serve(set(&[jwk("p256", "k1")])));
        until("a good fetch again", || {
            link.door.state.idp.last_error().is_none()
        })
        .await;
    }
}

#[tokio::test]
async fn the_discovery_document_is_fetched_checked_and_reported() {
    let provider = Provider::start(Jwks::Serve(set(&[jwk("p256", "k1")]))).await;
    let doc = |issuer: &str| {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "end_session_endpoint": format!("{issuer}/session/end"),
            "jwks_uri": format!("{issuer}/jwks"),
        })
        .to_string()
    };
    provider.set_discovery(doc("https://other.lan"));
    let mut link = Link::start(&provider, None, Duration::from_millis(100)).await;
    let mut snap = snapshot(vec![], None);
    snap.oidc = Some(OidcSettings {
        issuer: provider.base(),
        audience: AUDIENCE.into(),
        jwks_url: Some(provider.url("/jwks")),
        ca_pem: Some(provider.ca_pem.clone()),
        discover: true,
        ..Default::default()
    });
    link.door.state.apply(2, snap).expect("snapshot");
    let line = link
        .failed_with("is for issuer \"https://other.lan\"")
        .await;
    assert!(
        line.contains("the discovery document was not fetched"),
        "{line}"
    );
    assert!(link.door.state.idp.discovery().is_none());
    provider.set_discovery(doc(&provider.base()));
    let found = loop {
        let (kind, url, body) = link.fetched().await;
        if kind == Fetched::Discovery {
            assert_eq!(url, provider.url("/.well-known/openid-configuration"));
            break body;
        }
    };
    assert!(found.contains("/token"), "{found}");
    let discovery = link.door.state.idp.discovery().expect("in force");
    assert_eq!(discovery.token_endpoint, provider.url("/token"));
    assert_eq!(
        discovery.end_session_endpoint.as_deref(),
        Some(provider.url("/session/end").as_str())
    );
}

#[tokio::test]
async fn post_form_sends_the_fields_and_basic_credentials_and_returns_any_status() {
    let provider = Provider::start(Jwks::Serve(set(&[]))).await;
    let (client, notes) = Client::new(Some(&provider.ca_pem));
    assert!(notes.is_empty(), "{notes:?}");
    let answer = client
        .post_form(
            &provider.url("/token"),
            Some(("baton", "s3cret:x")),
            &[("grant_type", "authorization_code"), ("code", "a b&c")],
        )
        .await
        .expect("an answer");
    // A token endpoint's refusal is an answer the caller reads.
    assert_eq!(answer.status, 400);
    let echo: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(echo["body"], "grant_type=authorization_code&code=a+b%26c");
    // "baton:s3cret%3Ax" in base64.
    assert_eq!(echo["authorization"], "Basic YmF0b246czNjcmV0JTNBeA==");
    // GET takes only a 200; plain HTTP and an unknown CA are refused.
    let err = client
        .get_json(&provider.url("/nothing"))
        .await
        .expect_err("404");
    assert_eq!(err.why, Why::Status(404));
    let plain = provider.url("/jwks").replacen("https", "http", 1);
    let err = client.get_json(&plain).await.expect_err("http");
    assert!(matches!(err.why, Why::Url(_)), "{err}");
    let (mozilla_only, _) = Client::new(None);
    let err = mozilla_only
        .get_json(&provider.url("/jwks"))
        .await
        .expect_err("unknown issuer");
    assert!(matches!(err.why, Why::Tls(_)), "{err}");
}
