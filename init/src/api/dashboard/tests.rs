use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::assets::{ASSETS, BUDGET};
use super::session::NAME_PLAIN;
use super::signin::BURST;
use super::*;
use crate::api::serve;
use crate::board::console::Console;
use crate::board::status::BoardStatus;

const TOKEN: &str = "test-token-0123456789";

/// A board's API on plain HTTP (a card without a CA), its token `TOKEN`; the address and the
/// receiver of its power requests.
async fn start() -> (
    SocketAddr,
    Arc<BoardStatus>,
    mpsc::Receiver<crate::board::sys::Action>,
) {
    let state = Arc::new(BoardStatus::default());
    state.set_token(Some(TOKEN.to_string()));
    let (tx, rx) = mpsc::channel(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handles = Handles::alone(
        Arc::clone(&state),
        Arc::new(Console::quiet(100)),
        tx,
        PathBuf::from("/nonexistent/services"),
        None,
    );
    tokio::spawn(serve(listener, handles));
    (addr, state, rx)
}

/// An answer: status, headers (names lowercased), body.
struct Answer {
    code: u16,
    head: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request with `headers` (each `Name: value`) and `body` over a fresh connection.
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let code = lines.next().unwrap_or("")[9..12].parse().unwrap();
    let head = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        code,
        head,
        body: body.to_string(),
    }
}

/// Signs in with `TOKEN`: the `Cookie` header to send back and the CSRF value.
async fn sign_in(addr: SocketAddr) -> (String, String) {
    let answer = send(
        addr,
        "POST",
        "/v1/session",
        &["Content-Type: application/json"],
        &format!("{{\"token\": \"{TOKEN}\"}}"),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let set = answer.header("set-cookie").expect("a cookie").to_string();
    assert!(set.starts_with(&format!("{NAME_PLAIN}=")), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    // A plain-HTTP board cannot set a Secure cookie, and says the page is not encrypted.
    assert!(!set.contains("Secure"), "{set}");
    assert_eq!(answer.json()["encrypted"], false);
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = answer.json()["csrf"].as_str().expect("csrf").to_string();
    (format!("Cookie: {cookie}"), csrf)
}

#[tokio::test]
async fn the_page_is_served_with_its_policy_and_revalidated_by_etag() {
    let (addr, _, _) = start().await;
    let page = send(addr, "GET", "/", &[], "").await;
    assert_eq!(page.code, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("<!doctype html>"), "{}", page.body);
    assert_eq!(page.header("content-security-policy"), Some(CSP));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let etag = page.header("etag").expect("an etag").to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    // The same ETag again: 304 without a body, with the policy still.
    let again = send(addr, "GET", "/", &[&format!("If-None-Match: {etag}")], "").await;
    assert_eq!(again.code, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("content-security-policy"), Some(CSP));
    // Another ETag: the whole file.
    let other = send(addr, "GET", "/", &["If-None-Match: \"0\""], "").await;
    assert_eq!(other.code, 200);
    for asset in ASSETS {
        let answer = send(addr, "GET", asset.path, &[], "").await;
        assert_eq!(answer.code, 200, "{}", asset.path);
        assert_eq!(answer.header("content-type"), Some(asset.content_type));
        assert_eq!(answer.header("content-security-policy"), Some(CSP));
    }
    // No inline script or style anywhere in the page.
    let html = String::from_utf8_lossy(ASSETS[0].body);
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(!html.contains("<style"), "{html}");
}

#[test]
fn the_files_fit_the_budget() {
    let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
    assert!(
        total <= BUDGET,
        "the dashboard weighs {total} bytes, over {BUDGET}"
    );
}

#[test]
fn etags_match_by_weak_comparison() {
    assert!(assets::matches("\"a\"", "\"a\""));
    assert!(assets::matches("\"b\", W/\"a\"", "\"a\""));
    assert!(assets::matches("*", "\"a\""));
    assert!(!assets::matches("\"b\"", "\"a\""));
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_right_one_gives_a_session() {
    let (addr, _, _) = start().await;
    let wrong = send(addr, "POST", "/v1/session", &[], "{\"token\": \"nope\"}").await;
    assert_eq!(wrong.code, 401);
    assert_eq!(wrong.json()["error"], "wrong API token");
    assert!(wrong.header("set-cookie").is_none());
    let state = send(addr, "GET", "/v1/session", &[], "").await;
    assert_eq!(state.json()["signed_in"], false);
    assert_eq!(state.json()["csrf"], serde_json::Value::Null);
    // Not JSON, or too long: refused before any token is compared.
    let bad = send(addr, "POST", "/v1/session", &[], "token=x").await;
    assert_eq!(bad.code, 400);
    let long = format!("{{\"token\": \"{}\"}}", "x".repeat(5000));
    let big = send(addr, "POST", "/v1/session", &[], &long).await;
    assert_eq!(big.code, 413);

    let (cookie, csrf) = sign_in(addr).await;
    let state = send(addr, "GET", "/v1/session", &[&cookie], "").await;
    assert_eq!(state.json()["signed_in"], true, "{}", state.body);
    assert_eq!(state.json()["csrf"], csrf.as_str());
    assert_eq!(state.header("cache-control"), Some("no-store"));
    // The cookie opens the authenticated routes, as the token does.
    let status = send(addr, "GET", "/v1/status", &[&cookie], "").await;
    assert_eq!(status.code, 200, "{}", status.body);
    let events = send(addr, "GET", "/v1/events", &[&cookie], "").await;
    assert_eq!(events.code, 200, "{}", events.body);
    // Sign-out clears it.
    let out = send(addr, "POST", "/v1/session/logout", &[&cookie], "").await;
    assert_eq!(out.code, 200);
    let cleared = out.header("set-cookie").expect("cleared");
    assert!(cleared.starts_with(&format!("{NAME_PLAIN}=;")) && cleared.contains("Max-Age=0"));
}

#[tokio::test]
async fn a_forged_or_stale_cookie_is_refused() {
    let (addr, state, _) = start().await;
    let (cookie, _) = sign_in(addr).await;
    let forged = format!("Cookie: {NAME_PLAIN}=AAAA{}", &cookie[cookie.len() - 20..]);
    let answer = send(addr, "GET", "/v1/status", &[&forged], "").await;
    assert_eq!(answer.code, 401);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{}",
        answer.body
    );
    // A new token ends the session.
    state.set_token(Some("another-token-0123456789".into()));
    let answer = send(addr, "GET", "/v1/status", &[&cookie], "").await;
    assert_eq!(answer.code, 401);
    let session = send(addr, "GET", "/v1/session", &[&cookie], "").await;
    assert_eq!(session.json()["signed_in"], false);
    // Bearer requests are unchanged.
    let bearer = send(
        addr,
        "GET",
        "/v1/status",
        &["Authorization: Bearer another-token-0123456789"],
        "",
    )
    .await;
    assert_eq!(bearer.code, 200);
}

#[tokio::test]
async fn changes_by_cookie_need_the_csrf_value_and_the_board_s_origin() {
    let (addr, _, mut power) = start().await;
    let (cookie, csrf) = sign_in(addr).await;
    let own = format!("Origin: http://{addr}");
    let token = format!("X-Baton-CSRF: {csrf}");
    let refusals: [(&[&str], &str); 5] = [
        (&[&cookie, &own], "needs the X-Baton-CSRF header"),
        (&[&cookie, &own, "X-Baton-CSRF: wrong"], "does not match"),
        (&[&cookie, &token], "needs an Origin header"),
        (
            &[&cookie, &token, "Origin: http://evil.example"],
            "is not this board's",
        ),
        (
            &[&cookie, &token, &format!("Origin: https://{addr}")],
            "is not this board's",
        ),
    ];
    for (headers, why) in refusals {
        let answer = send(addr, "POST", "/v1/reboot", headers, "").await;
        assert_eq!(answer.code, 403, "{headers:?}: {}", answer.body);
        let error = answer.json()["error"].as_str().unwrap_or("").to_string();
        assert!(error.contains(why), "{headers:?}: {error}");
        assert!(power.try_recv().is_err(), "a refused change went through");
    }
    // With both: accepted.
    let answer = send(addr, "POST", "/v1/reboot", &[&cookie, &own, &token], "").await;
    assert_eq!(answer.code, 202, "{}", answer.body);
    assert!(power.try_recv().is_ok());
    // Bearer requests need neither.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let answer = send(addr, "POST", "/v1/halt", &[&bearer], "").await;
    assert_eq!(answer.code, 202, "{}", answer.body);
    // A sign-in from another site is refused.
    let body = format!("{{\"token\": \"{TOKEN}\"}}");
    let answer = send(
        addr,
        "POST",
        "/v1/session",
        &["Origin: http://evil.example"],
        &body,
    )
    .await;
    assert_eq!(answer.code, 403);
}

#[tokio::test]
async fn wrong_tokens_are_bounded() {
    let (addr, _, _) = start().await;
    for _ in 0..BURST {
        let wrong = send(addr, "POST", "/v1/session", &[], "{\"token\": \"nope\"}").await;
        assert_eq!(wrong.code, 401);
    }
    let limited = send(addr, "POST", "/v1/session", &[], "{\"token\": \"nope\"}").await;
    assert_eq!(limited.code, 429, "{}", limited.body);
    assert!(limited.header("retry-after").is_some());
    assert!(limited.json()["error"]
        .as_str()
        .unwrap()
        .contains("try again in"));
    // The right token waits too while the bound holds (else the bound would not bound).
    let body = format!("{{\"token\": \"{TOKEN}\"}}");
    let right = send(addr, "POST", "/v1/session", &[], &body).await;
    assert_eq!(right.code, 429);
}

#[test]
fn the_bucket_refills_and_right_tokens_cost_nothing() {
    let attempts = signin::Attempts::default();
    let start = std::time::Instant::now();
    for _ in 0..BURST {
        attempts.take(start).expect("within the burst");
    }
    let wait = attempts.take(start).expect_err("over the burst");
    assert_eq!(wait, signin::REFILL.as_secs());
    attempts
        .take(start + signin::REFILL)
        .expect("one more after the refill");
    attempts.give_back();
    attempts
        .take(start + signin::REFILL)
        .expect("a right token was given back");
}
