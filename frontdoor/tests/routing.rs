//! Routing on loopback: which instance a request reaches, what it sees, and the front door's
//! own answers (404, 400, 429, 431, 503, 308).

mod common;

use common::*;

use baton_frontdoor::config::{Auth, Hold};
use http::Request;

#[tokio::test]
async fn requests_go_by_host_then_longest_prefix_and_unknown_ones_get_a_404_naming_them() {
    let (a, _a) = echo("shop").await;
    let (b, _b) = echo("api").await;
    let (c, _c) = echo("apps").await;
    let door = Door::start(snapshot(
        vec![
            route("shop", Some("shop.lan"), "/"),
            route("api", Some("shop.lan"), "/api"),
            route("apps", Some("*.apps.lan"), "/"),
        ],
        None,
    ))
    .await;
    door.instances("shop", &[("s1", a, true)]);
    door.instances("api", &[("p1", b, true)]);
    door.instances("apps", &[("w1", c, true)]);
    let cases = [
        ("shop.lan", "/", "shop GET /"),
        ("SHOP.lan.", "/x", "shop GET /x"),
        ("shop.lan:8080", "/api", "api GET /api"),
        ("shop.lan", "/api/v1?q=1", "api GET /api/v1?q=1"),
        ("shop.lan", "/apix", "shop GET /apix"),
        ("shop.lan", "/pub/../api/x", "api GET /api/x"),
        ("shop.lan", "//api", "api GET /api"),
        ("one.apps.lan", "/", "apps GET /"),
    ];
    for (host, path, first_line) in cases {
        let got = get(door.addr, host, path).await;
        assert_eq!(got.status, 200, "{host} {path}: {got:?}");
        assert_eq!(got.body.lines().next(), Some(first_line), "{host} {path}");
    }
    for (host, path) in [
        ("two.one.apps.lan", "/"),
        ("apps.lan", "/"),
        ("other.lan", "/"),
    ] {
        let got = get(door.addr, host, path).await;
        assert_eq!(got.status, 404, "{host}: {got:?}");
        assert!(got.body.contains(host), "{got:?}");
    }
    // The connections to the instances were kept for the next requests, not closed.
    assert!(door.state.pool.idle_count() >= 1, "no connection kept");
    // An access line for each routed request (none for the 404s), naming what answered.
    let (lines, dropped) = door.state.access.take(100).expect("access lines");
    assert_eq!((lines.len(), dropped), (cases.len(), 0), "{lines:?}");
    let api = lines
        .iter()
        .find(|l| l.path == "/api/v1")
        .expect("the /api/v1 line");
    assert_eq!(
        (api.route.as_str(), api.status, api.instance.as_deref()),
        ("api", 200, Some("p1"))
    );
    assert_eq!(api.method, "GET");
}

#[tokio::test]
async fn the_instance_learns_who_called_and_cannot_be_lied_to() {
    let (a, _a) = echo("shop").await;
    let door = Door::start(snapshot(vec![route("shop", None, "/")], None)).await;
    door.instances("shop", &[("s1", a, true)]);
    let req = Request::get("/headers")
        .header("host", "shop.lan")
        .header("x-forwarded-for", "10.9.9.9")
        .header("x-forwarded-user", "root")
        .header("x-request-id", "trace-42")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "hop")
        .body(text(""))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 200, "{got:?}");
    let seen = got.body.to_ascii_lowercase();
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-forwarded-host: shop.lan\n"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(seen.contains("x-request-id: trace-42\n"), "{seen}");
    assert!(!seen.contains("x-forwarded-user"), "{seen}");
    assert!(!seen.contains("x-secret"), "{seen}");
    assert_eq!(got.headers["x-request-id"], "trace-42");
    // Without one, the front door makes an id and gives it to both sides.
    let got = get(door.addr, "shop.lan", "/").await;
    let id = got.headers["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert_eq!(id.len(), 32);
    assert!(
        got.body.contains(&format!("x-request-id: {id}\n")),
        "{got:?}"
    );
}

#[tokio::test]
async fn paths_with_another_spelling_are_refused_with_a_400() {
    let (a, _a) = echo("shop").await;
    let door = Door::start(snapshot(vec![route("shop", None, "/")], None)).await;
    door.instances("shop", &[("s1", a, true)]);
    for path in ["/a%2Fb", "/a%5cb", "/a%00", "/../etc", "/pub/..;/admin"] {
        let got = get(door.addr, "shop.lan", path).await;
        assert_eq!(got.status, 400, "{path}: {got:?}");
    }
}

#[tokio::test]
async fn a_client_above_its_request_rate_gets_429_and_others_do_not() {
    let (a, _a) = echo("shop").await;
    let mut snap = snapshot(vec![route("shop", None, "/")], None);
    snap.settings.per_client_rate = 1;
    snap.settings.per_client_burst = 3;
    let door = Door::start(snap).await;
    door.instances("shop", &[("s1", a, true)]);
    let mut client = Client::connect(door.addr).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(client.get("shop.lan", "/").await.status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let got = client.get("shop.lan", "/").await;
    if got.status == 429 {
        assert!(got.headers.contains_key("retry-after"));
    }
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let (a, _a) = echo("shop").await;
    let door = Door::start(snapshot(vec![route("shop", None, "/")], None)).await;
    door.instances("shop", &[("s1", a, true)]);
    let req = Request::get("/")
        .header("host", "shop.lan")
        .header("x-big", "x".repeat(20 * 1024))
        .body(text(""))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 431, "{got:?}");
}

#[tokio::test]
async fn no_ready_instance_gets_503_with_retry_after() {
    let (a, _a) = echo("shop").await;
    let door = Door::start(snapshot(vec![route("shop", None, "/")], None)).await;
    let got = get(door.addr, "shop.lan", "/").await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.headers.contains_key("retry-after"));
    door.instances("shop", &[("s1", a, false)]);
    assert_eq!(get(door.addr, "shop.lan", "/").await.status, 503);
    door.instances("shop", &[("s1", a, true)]);
    assert_eq!(get(door.addr, "shop.lan", "/").await.status, 200);
}

#[tokio::test]
async fn held_requests_are_served_when_an_instance_becomes_ready_and_time_out_into_503() {
    let (a, _a) = echo("shop").await;
    let hold = Hold {
        queue: 8,
        timeout_ms: 20_000,
    };
    let mut door = Door::start(snapshot(vec![route("shop", None, "/")], Some(hold))).await;
    let addr = door.addr;
    let waiting: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { get(addr, "shop.lan", "/").await }))
        .collect();
    // One wake-up for all of them.
    let woken = door.wakes.recv().await.expect("a wake-up");
    assert_eq!(woken, "shop");
    door.instances("shop", &[("s1", a, true)]);
    for w in waiting {
        let got = w.await.expect("task");
        assert_eq!(got.status, 200, "{got:?}");
    }
    assert!(door.wakes.try_recv().is_err(), "more than one wake-up");

    let short = Hold {
        queue: 1,
        timeout_ms: 300,
    };
    let door = Door::start(snapshot(vec![route("shop", None, "/")], Some(short))).await;
    let got = get(door.addr, "shop.lan", "/").await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn routes_that_need_an_identity_fail_closed_and_plain_http_redirects_them() {
    let (a, _a) = echo("shop").await;
    let mut private = route("shop", Some("private.lan"), "/");
    private.auth = Auth::Oidc;
    let mut snap = snapshot(vec![route("shop", Some("open.lan"), "/"), private], None);
    let door = Door::start(snap.clone()).await;
    door.instances("shop", &[("s1", a, true)]);
    assert_eq!(get(door.addr, "open.lan", "/").await.status, 200);
    let got = get(door.addr, "private.lan", "/").await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(
        !got.body.contains("shop GET"),
        "passed on unchecked: {got:?}"
    );

    snap.settings.redirect_http = true;
    snap.settings.https_port = 8443;
    let door = Door::start(snap).await;
    door.instances("shop", &[("s1", a, true)]);
    let got = get(door.addr, "private.lan", "/p?q=1").await;
    assert_eq!(got.status, 308, "{got:?}");
    assert_eq!(got.headers["location"], "https://private.lan:8443/p?q=1");
    assert_eq!(get(door.addr, "open.lan", "/").await.status, 200);
}
