use super::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "test-token-0123456789";

async fn start(token: Option<&str>) -> (SocketAddr, mpsc::Receiver<Action>, Arc<BoardStatus>) {
    let (addr, rx, state, _) = start_with_console(token).await;
    (addr, rx, state)
}

async fn start_with_console(
    token: Option<&str>,
) -> (
    SocketAddr,
    mpsc::Receiver<Action>,
    Arc<BoardStatus>,
    Arc<Console>,
) {
    let state = Arc::new(BoardStatus::default());
    state.set_token(token.map(str::to_string));
    state.record_step("mounts", Duration::from_millis(3));
    let console = Arc::new(Console::quiet(1000));
    let (tx, rx) = mpsc::channel(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handles = Handles::alone(
        Arc::clone(&state),
        Arc::clone(&console),
        tx,
        PathBuf::from("/nonexistent/services"),
        None,
    );
    tokio::spawn(serve(listener, handles));
    (addr, rx, state, console)
}

/// One HTTP/1.1 request over a fresh connection; returns (status code, JSON body).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let (code, body) = request_text(addr, method, path, token).await;
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// One HTTP/1.1 request over a fresh connection; returns (status code, body text).
async fn request_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: board\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (code, body.to_string())
}

#[tokio::test]
async fn metrics_need_the_token_and_read_the_board() {
    let (addr, _, _) = start(Some(TOKEN)).await;
    assert_eq!(request_text(addr, "GET", "/metrics", None).await.0, 401);
    let (code, text) = request_text(addr, "GET", "/metrics", Some(TOKEN)).await;
    assert_eq!(code, 200, "{text}");
    for family in [
        "baton_board_info{version=",
        "baton_board_cpu_seconds_total{mode=\"user\"}",
        "baton_board_boot_step_seconds{step=\"mounts\"} 0.003",
    ] {
        assert!(text.contains(family), "no {family} in {text}");
    }
}

#[tokio::test]
async fn the_metrics_token_opens_the_metrics_and_nothing_else() {
    const SCRAPE: &str = "scrape-only-token-0123";
    let (addr, _, state) = start(Some(TOKEN)).await;
    assert_eq!(
        request_text(addr, "GET", "/metrics", Some(SCRAPE)).await.0,
        401
    );
    state.set_metrics_token(Some(SCRAPE.into()));
    let (code, text) = request_text(addr, "GET", "/metrics", Some(SCRAPE)).await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        request_text(addr, "GET", "/metrics", Some(TOKEN)).await.0,
        200
    );
    for path in ["/v1/status", "/v1/console", "/v1/services"] {
        assert_eq!(
            request_text(addr, "GET", path, Some(SCRAPE)).await.0,
            401,
            "{path}"
        );
    }
    assert_eq!(
        request_text(addr, "POST", "/v1/reboot", Some(SCRAPE))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn the_console_s_recent_lines_need_the_token_and_honour_tail() {
    let (addr, _, _, console) = start_with_console(Some(TOKEN)).await;
    for i in 1..=150 {
        console.line(format_args!("line {i}"));
    }
    let (code, _) = request_text(addr, "GET", "/v1/console", None).await;
    assert_eq!(code, 401);
    let (code, text) = request_text(addr, "GET", "/v1/console?tail=2", Some(TOKEN)).await;
    assert_eq!(
        (code, text.as_str()),
        (200, "baton: line 149\nbaton: line 150\n")
    );
    let (_, text) = request_text(addr, "GET", "/v1/console", Some(TOKEN)).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), baton_api::console::DEFAULT_TAIL);
    assert_eq!(lines.first(), Some(&"baton: line 51"));
    let (_, text) = request_text(addr, "GET", "/v1/console?tail=100000", Some(TOKEN)).await;
    assert_eq!(text.lines().count(), 150);
    let (code, body) = request(addr, "GET", "/v1/console?tail=many", Some(TOKEN)).await;
    assert_eq!(
        (code, &body["error"]),
        (400, &serde_json::json!("tail must be a number of lines"))
    );
}

#[tokio::test]
async fn health_needs_no_token() {
    let (addr, _, _) = start(Some(TOKEN)).await;
    let (code, body) = request(addr, "GET", "/v1/health", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["ok"], true);
}

#[tokio::test]
async fn status_needs_the_right_token() {
    let (addr, _, state) = start(Some(TOKEN)).await;
    state.add_error("cluster.toml:3: network.mode: bad");
    assert_eq!(request(addr, "GET", "/v1/status", None).await.0, 401);
    assert_eq!(
        request(addr, "GET", "/v1/status", Some("wrong-token-0123456789"))
            .await
            .0,
        401
    );
    assert_eq!(
        request(addr, "GET", "/v1/status", Some("test-token-012345678"))
            .await
            .0,
        401
    );
    let (code, body) = request(addr, "GET", "/v1/status", Some(TOKEN)).await;
    assert_eq!(code, 200);
    assert_eq!(body["boot"][0]["step"], "mounts");
    assert_eq!(body["boot"][0]["ms"], 3);
    assert_eq!(body["errors"][0], "cluster.toml:3: network.mode: bad");
    assert!(body["memory"]["init_rss_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn no_configured_token_refuses_everything_but_health() {
    let (addr, _, _) = start(None).await;
    assert_eq!(request(addr, "GET", "/v1/status", Some(TOKEN)).await.0, 401);
    assert_eq!(
        request(addr, "POST", "/v1/reboot", Some(TOKEN)).await.0,
        401
    );
    assert_eq!(request(addr, "GET", "/v1/health", None).await.0, 200);
}

#[tokio::test]
async fn power_requests_reach_the_channel_once() {
    let (addr, mut rx, _) = start(Some(TOKEN)).await;
    assert_eq!(request(addr, "POST", "/v1/reboot", None).await.0, 401);
    assert!(
        rx.try_recv().is_err(),
        "an unauthenticated reboot must not get through"
    );
    assert_eq!(
        request(addr, "POST", "/v1/poweroff", Some(TOKEN)).await.0,
        202
    );
    assert_eq!(rx.recv().await, Some(Action::Poweroff));
    assert_eq!(request(addr, "GET", "/v1/reboot", Some(TOKEN)).await.0, 405);
    assert_eq!(
        request(addr, "GET", "/v1/nothing", Some(TOKEN)).await.0,
        404
    );
}

#[tokio::test]
async fn a_service_name_that_is_a_path_is_refused() {
    let (addr, _, _) = start(Some(TOKEN)).await;
    for path in [
        "/v1/services/..%2F..%2Fetc%2Fpasswd",
        "/v1/services/Web",
        "/v1/services/a.b",
    ] {
        let (code, body) = request(addr, "PUT", path, Some(TOKEN)).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a service name")),
            "{body}"
        );
    }
    // Without a running supervisor, a valid name gets "not ready", not a write.
    assert_eq!(
        request(addr, "PUT", "/v1/services/web", Some(TOKEN))
            .await
            .0,
        503
    );
}

#[test]
fn parses_proc_figures() {
    assert_eq!(proc_files::parse_uptime_ms("12.34 20.00\n"), Some(12340));
    let meminfo = "MemTotal:        1000 kB\nMemFree:  10 kB\nMemAvailable:     400 kB\n";
    assert_eq!(proc_files::parse_used(meminfo), Some(600 * 1024));
    assert_eq!(proc_files::parse_used("MemTotal: 1 kB\n"), None);
}

#[tokio::test]
async fn forgetting_a_board_needs_the_token_and_a_cluster() {
    let (addr, _, _, _) = start_with_console(Some(TOKEN)).await;
    let path = "/v1/cluster/boards/pi-gone";
    let (code, _) = request(addr, "DELETE", path, None).await;
    assert_eq!(code, 401);
    let (code, _) = request(addr, "DELETE", path, Some("wrong")).await;
    assert_eq!(code, 401);
    let (code, body) = request(addr, "DELETE", path, Some(TOKEN)).await;
    assert_eq!(
        (code, &body["error"]),
        (
            503,
            &serde_json::json!("this board is not in a cluster yet")
        )
    );
    let (code, _) = request(addr, "GET", path, Some(TOKEN)).await;
    assert_eq!(code, 405);
}
