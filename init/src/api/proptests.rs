//! Property tests of the API's request handling: any request, well-formed or not, with or
//! without the token, gets an HTTP answer or a closed connection, never a panic, never a 500,
//! and never a success for an authenticated endpoint without the token. The requests go
//! through the same connection code and router as on the board (over an in-memory stream).
//! 256 cases each (`PROPTEST_CASES` to change it; `scripts/fuzz` runs many more).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::serve::{connection, Settings};
use super::{router, Handles};
use crate::board::console::Console;
use crate::board::status::BoardStatus;

const TOKEN: &str = "proptest-token-0123456789abcdef";

/// Sends `request` on a fresh connection to a fresh API whose specs live in `services`; returns
/// what came back before the connection closed.
fn exchange(request: Vec<u8>, services: PathBuf) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let state = Arc::new(BoardStatus::default());
        state.set_token(Some(TOKEN.to_string()));
        let handles = Handles::alone(
            state,
            Arc::new(Console::quiet(100)),
            mpsc::channel(1).0,
            services,
            None,
        );
        let settings = Settings {
            header_timeout: Duration::from_secs(1),
            ..Settings::default()
        };
        let (ours, mut theirs) = tokio::io::duplex(256 << 10);
        let served = tokio::spawn(connection(ours, router(handles), settings));
        // The client may close its side once its request is written: the server may still answer.
        let _ = theirs.write_all(&request).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), theirs.read_to_end(&mut answer));
        assert!(read.await.is_ok(), "no answer and no close within 20 s");
        served.await.expect("the connection task did not panic");
        answer
    })
}

/// The status code of an HTTP/1.1 answer, if `answer` holds one.
fn status(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        Just("HEAD".to_string()),
        Just("OPTIONS".to_string()),
        "[A-Z]{1,10}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let known = prop_oneof![
        Just("/v1/health"),
        Just("/v1/status"),
        Just("/v1/console"),
        Just("/v1/reboot"),
        Just("/v1/services"),
        Just("/v1/services/web"),
        Just("/v1/services/web/logs"),
        Just("/v1/services/web/restart"),
        Just("/v1/cluster"),
        Just("/v1/cluster/sync"),
        Just("/v1/network"),
        Just("/v1/events"),
        Just("/v1/boards"),
        Just("/v1/peer/events"),
        Just("/v1/peer/status"),
        Just("/v1/session"),
        Just("/"),
    ];
    let odd = "/[a-zA-Z0-9%./_~-]{0,40}";
    let query = proptest::option::of("[a-zA-Z0-9=&%+._-]{0,40}");
    (prop_oneof![known.prop_map(str::to_string), odd], query).prop_map(|(p, q)| match q {
        Some(q) => format!("{p}?{q}"),
        None => p,
    })
}

/// Authorization: none, the token, a wrong one, or garbage.
fn auth() -> impl Strategy<Value = (Option<String>, bool)> {
    prop_oneof![
        Just((None, false)),
        Just((Some(format!("Bearer {TOKEN}")), true)),
        Just((Some("Bearer wrong-token".to_string()), false)),
        "[ -~]{0,60}".prop_map(|g| (Some(g), false)),
    ]
}

/// Endpoints that need the token: everything but health, sync, the dashboard's files and its
/// sign-in (which answer without it by design), and the 404 fallback.
fn needs_token(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let dashboard = path == "/" || path.starts_with("/dash/") || path.starts_with("/v1/session");
    path != "/v1/health" && path != "/v1/cluster/sync" && !dashboard
}

proptest! {
    #[test]
    fn any_bytes_get_an_error_or_nothing(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let answer = exchange(bytes, dir.path().to_path_buf());
        if let Some(code) = status(&answer) {
            prop_assert!(code != 500, "{}", String::from_utf8_lossy(&answer));
        }
    }

    #[test]
    fn any_request_is_answered_without_500_and_only_with_the_token(
        method in method(),
        path in path(),
        (authorization, authorized) in auth(),
        body in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: board\r\nConnection: close\r\n");
        if let Some(a) = &authorization {
            request.push_str(&format!("Authorization: {a}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(&body);
        let answer = exchange(bytes, dir.path().to_path_buf());
        let text = String::from_utf8_lossy(&answer);
        let code = status(&answer);
        prop_assert!(code.is_some(), "no answer to {method} {path}: {text}");
        let code = code.unwrap_or_default();
        prop_assert!(code != 500, "{method} {path}: {text}");
        if needs_token(&path) && !authorized {
            prop_assert!(!(200..300).contains(&code), "{method} {path} without the token: {text}");
        }
    }
}
