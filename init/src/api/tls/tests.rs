//! The API over TLS in-process: a client that trusts the cluster CA gets through whatever name
//! it used, one that trusts another CA does not, and plain HTTP on the port gets only the health
//! check and redirects (never the token-protected endpoints).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_cluster::tls::ca::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::api::{serve, Handles};
use crate::board::sys::Action;

const TOKEN: &str = "test-token-0123456789";

struct Board {
    addr: SocketAddr,
    power: mpsc::Receiver<Action>,
    state: Arc<BoardStatus>,
    _config: tempfile::TempDir,
}

/// A board whose config partition holds `ca` (or no CA), serving on 127.0.0.1.
async fn board(ca: Option<&Ca>) -> Board {
    let config = tempfile::tempdir().unwrap();
    if let Some(ca) = ca {
        std::fs::write(config.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(config.path().join("ca.key"), ca.key_pem()).unwrap();
    }
    let state = Arc::new(BoardStatus::default());
    state.set_token(Some(TOKEN.to_string()));
    state.set_info(baton_api::BoardInfo {
        hostname: "pi-a".into(),
        ..Default::default()
    });
    let console = Arc::new(Console::quiet(100));
    let tls = setup(config.path(), &state, &console);
    let (power, rx) = mpsc::channel(1);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handles = Handles::alone(
        Arc::clone(&state),
        console,
        power,
        PathBuf::from("/nonexistent/services"),
        tls,
    );
    tokio::spawn(serve(listener, handles));
    Board {
        addr,
        power: rx,
        state,
        _config: config,
    }
}

/// `GET url` with the token through a client that trusts `ca`; (status, body) or the error.
async fn get_tls(ca: &Ca, url: String) -> Result<(u16, String), String> {
    let tls = baton_cluster::tls::verify::client_config(ca.cert_pem()).unwrap();
    tokio::task::spawn_blocking(move || {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        let agent = baton_cluster::tls::connector::agent(config, tls);
        let response = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .map_err(|e| e.to_string())?;
        let code = response.status().as_u16();
        let body = response
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((code, body))
    })
    .await
    .unwrap()
}

/// One plain HTTP/1.1 request; the whole answer as text.
async fn plain(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: pi-a.local:7070\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer before the deadline")
        .unwrap();
    String::from_utf8(raw).unwrap()
}

#[tokio::test]
async fn a_client_of_the_cluster_ca_gets_through_by_any_name() {
    let ca = Ca::generate("home").unwrap();
    let b = board(Some(&ca)).await;
    assert!(b.state.api_tls().enabled);
    // "localhost" is not in the certificate (pi-a, pi-a.local, 127.0.0.1 are): no name check.
    let url = format!("https://localhost:{}/v1/status", b.addr.port());
    let (code, body) = get_tls(&ca, url).await.unwrap();
    assert_eq!(code, 200, "{body}");
    let report: baton_api::StatusReport = serde_json::from_str(&body).unwrap();
    assert!(report.api_tls.enabled);
    assert_eq!(report.hostname, "pi-a");
}

#[tokio::test]
async fn a_client_of_another_ca_is_refused() {
    let ca = Ca::generate("home").unwrap();
    let b = board(Some(&ca)).await;
    let stranger = Ca::generate("home").unwrap();
    let url = format!("https://127.0.0.1:{}/v1/status", b.addr.port());
    let err = get_tls(&stranger, url).await.unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test]
async fn plain_http_gets_the_health_check_and_redirects_only() {
    let ca = Ca::generate("home").unwrap();
    let mut b = board(Some(&ca)).await;
    let health = plain(b.addr, "GET", "/v1/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#"{"ok":true}"#), "{health}");

    // The token is right, yet nothing protected answers over plain HTTP.
    let status = plain(b.addr, "GET", "/v1/status?x=1").await;
    assert!(status.starts_with("HTTP/1.1 308"), "{status}");
    assert!(
        status
            .to_lowercase()
            .contains("location: https://pi-a.local:7070/v1/status?x=1"),
        "{status}"
    );
    assert!(!status.contains("hostname"), "{status}");
    let reboot = plain(b.addr, "POST", "/v1/reboot").await;
    assert!(reboot.starts_with("HTTP/1.1 308"), "{reboot}");
    assert!(b.power.try_recv().is_err(), "a plain request reached power");
}

#[tokio::test]
async fn a_host_header_that_is_not_a_host_gets_no_redirect() {
    let ca = Ca::generate("home").unwrap();
    let b = board(Some(&ca)).await;
    let mut stream = TcpStream::connect(b.addr).await.unwrap();
    stream
        .write_all(
            b"GET /v1/status HTTP/1.1\r\nHost: evil.example/<x>\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(!text.to_lowercase().contains("location:"), "{text}");
}

#[tokio::test]
async fn a_card_without_a_ca_serves_plain_http_and_says_why() {
    let b = board(None).await;
    let tls = b.state.api_tls();
    assert!(!tls.enabled);
    assert!(tls.reason.unwrap().contains("no ca.pem"));
    let status = plain(b.addr, "GET", "/v1/status").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains(r#""api_tls":{"enabled":false"#), "{status}");
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    tokio::time::pause();
    let ca = Ca::generate("home").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(
        baton_cluster::tls::verify::server_config(ca.issue_server("b", &[]).unwrap()).unwrap(),
    );
    let client = TcpStream::connect(addr).await.unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let err = accept(stream, &acceptor).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    drop(client);
}

#[tokio::test]
async fn over_tls_the_session_cookie_is_host_only_and_secure() {
    let ca = Ca::generate("home").unwrap();
    let b = board(Some(&ca)).await;
    let url = format!("https://127.0.0.1:{}/v1/session", b.addr.port());
    let tls = baton_cluster::tls::verify::client_config(ca.cert_pem()).unwrap();
    let (code, cookie, body) = tokio::task::spawn_blocking(move || {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        let agent = baton_cluster::tls::connector::agent(config, tls);
        let response = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(format!("{{\"token\": \"{TOKEN}\"}}"))
            .unwrap();
        let code = response.status().as_u16();
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (code, cookie, response.into_body().read_to_string().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(cookie.starts_with("__Host-baton_dash="), "{cookie}");
    for attribute in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert!(body.contains(r#""encrypted":true"#), "{body}");
    // Plain HTTP on the port gets no page and no sign-in: it is sent to https.
    for (method, path) in [("GET", "/"), ("POST", "/v1/session")] {
        let answer = plain(b.addr, method, path).await;
        assert!(
            answer.starts_with("HTTP/1.1 308"),
            "{method} {path}: {answer}"
        );
    }
}
