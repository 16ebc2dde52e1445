//! Behind a trusted proxy the auth service still judges the request the front door routes: the
//! proxy's `X-Forwarded-Host/-Uri`, `Forwarded`, `X-Forwarded-Port` and nginx-style
//! `X-Original-*` headers are replaced by the front door's own; its `X-Forwarded-For` chain is
//! kept (it names the caller) and so is its one `X-Forwarded-Proto` of `https` (a proxy that
//! ends TLS; the instance is told the same). Loopback is the trusted proxy here.

mod common;

use std::sync::{Arc, Mutex};

use baton_frontdoor::config::{Auth, ForwardAuth, Settings};
use common::*;
use http::{Request, Response};
use hyper::body::Incoming;

#[tokio::test]
async fn a_trusted_proxy_cannot_choose_what_the_auth_service_judges() {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&asked);
    let (auth, _auth_task) = upstream(move |req: Request<Incoming>| {
        let mut seen = String::new();
        for (k, v) in req.headers() {
            seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        log.lock().expect("log").push(seen);
        async move { Response::new(text("ok")) }
    })
    .await;
    let (app, _app_task) = echo("app").await;
    let mut r = route("app", Some("app.lan"), "/");
    r.auth = Auth::Forward;
    r.forward = Some(ForwardAuth {
        url: format!("http://{auth}/api/authz/auth-request"),
        copy_headers: Vec::new(),
        user_header: "Remote-User".into(),
        email_header: "Remote-Email".into(),
    });
    let mut snap = snapshot(vec![r], None);
    snap.settings = Settings {
        trusted_proxies: vec![("127.0.0.1".parse().expect("ip"), 32)],
        ..Settings::default()
    };
    let door = Door::start(snap).await;
    door.instances("app", &[("a1", app, true)]);
    let req = Request::delete("/pub/../admin?q=1")
        .header("host", "app.lan")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-host", "public.example")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "443")
        .header("x-forwarded-uri", "/public")
        .header(
            "forwarded",
            "for=203.0.113.9;host=public.example;proto=https",
        )
        .header("x-original-method", "GET")
        .header("x-original-uri", "/public")
        .header("x-original-url", "https://public.example/public")
        .body(text(""))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 200, "{got:?}");
    let asked = asked.lock().expect("log").join("---\n");
    for line in [
        "x-forwarded-for: 203.0.113.9, 127.0.0.1\n",
        "x-forwarded-host: app.lan\n",
        "x-forwarded-proto: https\n",
        "x-forwarded-method: DELETE\n",
        "x-forwarded-uri: /admin?q=1\n",
        "x-original-method: DELETE\n",
        "x-original-uri: /admin?q=1\n",
        "x-original-url: https://app.lan/admin?q=1\n",
    ] {
        assert!(asked.contains(line), "{line:?} missing: {asked}");
    }
    for gone in ["public", "forwarded:", "x-forwarded-port"] {
        assert!(
            !asked.contains(gone),
            "{gone:?} reached the auth service: {asked}"
        );
    }
}
