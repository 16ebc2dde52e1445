//! Routes with `auth = "forward"` on loopback, against an auth service written for the test: it
//! lets in a caller with the cookie `session=good` (naming the user in `Remote-User` and
//! `Remote-Email`, groups and a token in headers to copy), answers 200 without a user to
//! `X-Test-Key: anon`, sends browsers to a sign-in page (302) when asked for HTML, and answers
//! 401 with a challenge otherwise; `/big` answers more than 64 KiB, `/slow` never answers.
//!
//! Checked: a caller let in reaches the instance with the identity and the copied headers, and
//! client-forged copies of those never do; a refusal reaches the client as the auth service
//! gave it and the instance never sees the request; an auth service that is down, too slow or
//! too talkative fails closed; the auth service named by its service name is reached through
//! the balancer; and curl as the client sees the same.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use baton_frontdoor::config::{Auth, ForwardAuth, Route};
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

/// What the auth service was asked, one text per question.
type Asked = Arc<Mutex<Vec<String>>>;

fn dump(req: &Request<Incoming>) -> String {
    let mut seen = format!("{} {}\n", req.method(), req.uri());
    for (k, v) in req.headers() {
        seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
    }
    seen
}

async fn auth_service() -> (SocketAddr, tokio::task::JoinHandle<()>, Asked) {
    let asked: Asked = Arc::default();
    let log = Arc::clone(&asked);
    let (addr, task) = upstream(move |req: Request<Incoming>| {
        let log = Arc::clone(&log);
        async move {
            log.lock().expect("log").push(dump(&req));
            let header = |n: &str| {
                req.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            match req.uri().path() {
                "/big" => return Response::new(text(vec![b'x'; 100 * 1024])),
                "/chunked" => return Response::new(Frames(100).boxed_unsync()),
                "/slow" => std::future::pending::<()>().await,
                _ => {}
            }
            if header("cookie")
                .split(';')
                .any(|c| c.trim() == "session=good")
            {
                return Response::builder()
                    .header("remote-user", "ann")
                    .header("remote-email", "ann@lan")
                    .header("remote-groups", "admins")
                    .header("x-token", "t1")
                    .header("x-not-copied", "secret")
                    .body(text("ok"))
                    .expect("response");
            }
            if header("x-test-key") == "anon" {
                return Response::new(text("ok"));
            }
            if header("accept").contains("text/html") {
                let back = header("x-original-url");
                return Response::builder()
                    .status(StatusCode::FOUND)
                    .header("location", format!("http://auth.lan/login?rd={back}"))
                    .header("set-cookie", "auth_state=s1; HttpOnly")
                    .body(text("sign in first"))
                    .expect("response");
            }
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Basic realm=\"test\"")
                .body(text("who are you?"))
                .expect("response")
        }
    })
    .await;
    (addr, task, asked)
}

/// A body of `n` frames of 1 KiB with no length given (sent chunked).
struct Frames(usize);

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = baton_frontdoor::http::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        let frame = http_body::Frame::data(bytes::Bytes::from(vec![b'y'; 1024]));
        std::task::Poll::Ready(Some(Ok(frame)))
    }
}

/// An instance that counts the requests it gets and echoes their headers.
async fn counted() -> (SocketAddr, tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let (addr, task) = upstream(move |req: Request<Incoming>| {
        c.fetch_add(1, Ordering::SeqCst);
        let seen = dump(&req);
        async move { Response::new(text(format!("app {seen}"))) }
    })
    .await;
    (addr, task, count)
}

fn forward_route(service: &str, host: &str, url: String) -> Route {
    let mut r = route(service, Some(host), "/");
    r.auth = Auth::Forward;
    r.forward = Some(ForwardAuth {
        url,
        copy_headers: vec!["Remote-Groups".into(), "X-Token".into()],
        user_header: "Remote-User".into(),
        email_header: "Remote-Email".into(),
    });
    r
}

struct Setup {
    door: Door,
    asked: Asked,
    hits: Arc<AtomicUsize>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Routes `app.lan` (auth by address), `svc.lan` (auth by the service name `authsvc`, which has
/// a route of its own as a sign-in portal would), `solo.lan` (auth by the service name
/// `authonly`, which has no route), `down.lan` (nothing listens), `big.lan` and `slow.lan`.
async fn setup() -> Setup {
    let (auth, auth_task, asked) = auth_service().await;
    let (app, app_task, hits) = counted().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let routes = vec![
        forward_route("app", "app.lan", format!("http://{auth}/verify")),
        forward_route("svc", "svc.lan", "http://authsvc/verify".into()),
        forward_route("down", "down.lan", format!("http://{closed}/verify")),
        forward_route("big", "big.lan", format!("http://{auth}/big")),
        forward_route("chunked", "chunked.lan", format!("http://{auth}/chunked")),
        forward_route("slow", "slow.lan", format!("http://{auth}/slow")),
        route("authsvc", Some("auth.lan"), "/"),
        forward_route("solo", "solo.lan", "http://authonly/verify".into()),
        forward_route("tls", "tls.lan", format!("https://{auth}/verify")),
        forward_route("port", "port.lan", "http://authsvc:1/verify".into()),
    ];
    let mut snap = snapshot(routes, None);
    // An auth service with no route of its own: listed, with instances, and nothing routed to it.
    snap.services.insert(
        "authonly".into(),
        baton_frontdoor::config::Service { hold: None },
    );
    let door = Door::start(snap).await;
    door.instances("authonly", &[("auth-solo", auth, true)]);
    for service in [
        "app", "svc", "down", "big", "chunked", "slow", "solo", "tls", "port",
    ] {
        door.instances(service, &[(service, app, true)]);
    }
    door.instances("authsvc", &[("auth-1", auth, true)]);
    Setup {
        door,
        asked,
        hits,
        _tasks: vec![auth_task, app_task],
    }
}

async fn ask(s: &Setup, host: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = Request::get(path).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(s.door.addr, req.body(text("")).expect("request")).await
}

#[tokio::test]
async fn a_caller_let_in_reaches_the_instance_with_its_identity_and_copied_headers() {
    let s = setup().await;
    let got = ask(&s, "app.lan", "/x", &[("cookie", "session=good")]).await;
    assert_eq!(got.status, 200, "{got:?}");
    for line in [
        "x-forwarded-user: ann\n",
        "x-forwarded-email: ann@lan\n",
        "remote-groups: admins\n",
        "x-token: t1\n",
    ] {
        assert!(got.body.contains(line), "{line:?} missing: {}", got.body);
    }
    assert!(!got.body.contains("secret"), "{}", got.body);
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_forged_identity_and_copy_headers_never_reach_the_instance() {
    let s = setup().await;
    let forged = [
        ("remote-user", "mallory"),
        ("remote-email", "mallory@evil"),
        ("x-forwarded-user", "mallory"),
        ("x-forwarded-email", "mallory@evil"),
        ("remote-groups", "mallory-admins"),
        ("x-token", "mallory-token"),
    ];
    let mut with_session = forged.to_vec();
    with_session.push(("cookie", "session=good"));
    let got = ask(&s, "app.lan", "/", &with_session).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.contains("x-forwarded-user: ann\n"), "{}", got.body);
    assert!(!got.body.contains("mallory"), "{}", got.body);
    // Let in without a user: the instance learns no one, and still none of the client's copies.
    let mut anonymous = forged.to_vec();
    anonymous.push(("x-test-key", "anon"));
    let got = ask(&s, "app.lan", "/", &anonymous).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(!got.body.contains("mallory"), "{}", got.body);
    assert!(!got.body.contains("x-forwarded-user"), "{}", got.body);
}

#[tokio::test]
async fn the_auth_service_learns_what_the_request_was_and_gets_no_body() {
    let s = setup().await;
    let req = Request::post("/pub/../admin?q=1")
        .header("host", "app.lan")
        .header("cookie", "session=good")
        .header("x-forwarded-host", "forged.lan")
        .header("x-original-url", "http://forged.lan/")
        .body(text("a body the auth service must not get"))
        .expect("request");
    let got = send(s.door.addr, req).await;
    assert_eq!(got.status, 200, "{got:?}");
    let asked = s.asked.lock().unwrap().join("---\n");
    for line in [
        "GET /verify\n",
        "cookie: session=good\n",
        "x-forwarded-method: POST\n",
        "x-forwarded-proto: http\n",
        "x-forwarded-host: app.lan\n",
        "x-forwarded-uri: /admin?q=1\n",
        "x-forwarded-for: 127.0.0.1\n",
        "x-original-url: http://app.lan/admin?q=1\n",
    ] {
        assert!(asked.contains(line), "{line:?} missing: {asked}");
    }
    assert!(!asked.contains("forged"), "{asked}");
    assert!(!asked.contains("content-length"), "{asked}");
}

#[tokio::test]
async fn a_refusal_reaches_the_client_as_given_and_the_instance_never_sees_it() {
    let s = setup().await;
    let got = ask(&s, "app.lan", "/", &[]).await;
    assert_eq!(got.status, 401, "{got:?}");
    assert_eq!(got.headers["www-authenticate"], "Basic realm=\"test\"");
    assert_eq!(got.body, "who are you?");
    let got = ask(&s, "app.lan", "/page", &[("accept", "text/html")]).await;
    assert_eq!(got.status, 302, "{got:?}");
    assert_eq!(
        got.headers["location"],
        "http://auth.lan/login?rd=http://app.lan/page"
    );
    assert_eq!(got.headers["set-cookie"], "auth_state=s1; HttpOnly");
    assert_eq!(got.body, "sign in first");
    assert_eq!(s.hits.load(Ordering::SeqCst), 0, "the instance was asked");
}

#[tokio::test]
async fn an_auth_service_down_slow_or_too_talkative_fails_closed() {
    let s = setup().await;
    let good = [("cookie", "session=good")];
    let got = ask(&s, "down.lan", "/", &good).await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.body.contains("auth service"), "{got:?}");
    let got = ask(&s, "big.lan", "/", &good).await;
    assert_eq!(got.status, 502, "{got:?}");
    assert!(got.body.contains("64 KiB"), "{got:?}");
    let got = ask(&s, "chunked.lan", "/", &good).await;
    assert_eq!(got.status, 502, "{got:?}");
    assert!(got.body.contains("64 KiB"), "{got:?}");
    let got = ask(&s, "tls.lan", "/", &good).await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.body.contains("only http://"), "{got:?}");
    let got = ask(&s, "port.lan", "/", &good).await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.body.contains("names port 1"), "{got:?}");
    let got = ask(&s, "slow.lan", "/", &good).await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.body.contains("within 5 s"), "{got:?}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 0, "the instance was asked");
}

#[tokio::test]
async fn an_auth_service_named_by_its_service_is_reached_through_the_balancer() {
    let s = setup().await;
    let got = ask(&s, "svc.lan", "/", &[("cookie", "session=good")]).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.contains("x-forwarded-user: ann\n"), "{}", got.body);
    let asked = s.asked.lock().unwrap().join("---\n");
    assert!(asked.contains("host: authsvc\n"), "{asked}");
    // With no ready instance of the auth service, the route fails closed.
    s.door
        .instances("authsvc", &[("auth-1", s.door.addr, false)]);
    let got = ask(&s, "svc.lan", "/", &[("cookie", "session=good")]).await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.body.contains("authsvc"), "{got:?}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_auth_service_without_a_route_is_reached_by_its_name_and_not_routed_to() {
    let s = setup().await;
    let got = ask(&s, "solo.lan", "/", &[("cookie", "session=good")]).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.contains("x-forwarded-user: ann\n"), "{}", got.body);
    let asked = s.asked.lock().expect("log").join("---\n");
    assert!(asked.contains("host: authonly\n"), "{asked}");
    let got = ask(&s, "authonly", "/verify", &[("cookie", "session=good")]).await;
    assert_eq!(
        got.status, 404,
        "a request was routed to the auth service: {got:?}"
    );
}

#[tokio::test]
async fn curl_as_the_client_is_let_in_or_sent_to_sign_in() {
    let s = setup().await;
    let url = format!("http://{}/hello", s.door.addr);
    let curl = move |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("curl")
                .args(["-s", "-i", "--max-time", "20"])
                .args(&args)
                .output()
                .expect("curl runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let host = "Host: app.lan".to_string();
    let ok = curl(vec![
        "-H".into(),
        host.clone(),
        "-b".into(),
        "session=good".into(),
        "-H".into(),
        "Remote-User: mallory".into(),
        url.clone(),
    ])
    .await
    .expect("curl");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("x-forwarded-user: ann"), "{ok}");
    assert!(!ok.contains("mallory"), "{ok}");
    let browser = curl(vec![
        "-H".into(),
        host,
        "-H".into(),
        "Accept: text/html".into(),
        url,
    ])
    .await
    .expect("curl");
    assert!(browser.starts_with("HTTP/1.1 302"), "{browser}");
    assert!(
        browser
            .to_ascii_lowercase()
            .contains("location: http://auth.lan/login?rd=http://app.lan/hello"),
        "{browser}"
    );
}
