//! The sync exchange over HTTP between boards of this release, a board of the previous release,
//! and a board whose clock is hours off: who is refused, and that records still move both ways.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use baton_cluster::desired::{Desired, Record, Version};
use baton_cluster::sync::SyncKey;

use super::answer::answer;
use super::sync_round::{clock_offset, post as post_sync, Answer};
use super::{lock, now_ms, NodeState};
use crate::board::console::Console;

const KEY: &str = "sync-http-test-key-0123456789abcdef0123";

fn record(name: &str, board: &str) -> Record {
    Record {
        name: name.into(),
        text: Some(format!("name = \"{name}\"\nimage = \"x:1\"\n")),
        version: Version {
            time: now_ms() - 60_000,
            board: board.into(),
        },
    }
}

fn holding(records: Vec<Record>) -> Arc<Mutex<NodeState>> {
    let mut inner = NodeState::default();
    inner.desired.merge(records, &mut inner.clock, now_ms());
    Arc::new(Mutex::new(inner))
}

/// Serves `POST /v1/cluster/sync` for board `me` holding `state`, through the API's serving and
/// its reply; `skew_ms` is added to this host's clock (a board whose clock is off). With
/// `previous`, it answers as the previous release did: no freshness check.
async fn board(
    me: &'static str,
    state: Arc<Mutex<NodeState>>,
    skew_ms: u64,
    previous: bool,
    console: Arc<Console>,
) -> String {
    let key = SyncKey::derive(KEY).expect("key");
    let log = Arc::clone(&console);
    let handler = move |body: Bytes| {
        let mut inner = lock(&state);
        let reply = if previous {
            let request = key.open_request(&body).expect("opens");
            let inner = &mut *inner;
            inner
                .desired
                .merge(request.records.clone(), &mut inner.clock, now_ms());
            let records = inner.desired.records().cloned().collect();
            super::SyncAnswer::Sealed(key.respond(&request, me, records).expect("answer"))
        } else {
            answer(&key, me, &log, &mut inner, &body, now_ms() + skew_ms).0
        };
        std::future::ready(crate::api::cluster::sync_reply(reply))
    };
    let router = Router::new().route("/v1/cluster/sync", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v1/cluster/sync",
        listener.local_addr().expect("address")
    );
    tokio::spawn(crate::api::serve::run(
        listener,
        router,
        None,
        crate::api::serve::Settings::default(),
        Arc::default(),
        console,
    ));
    url
}

async fn send(url: &str, body: Vec<u8>) -> Answer {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || post_sync(&url, &body, None))
        .await
        .expect("joined")
        .expect("an HTTP answer")
}

fn names(d: &Desired) -> Vec<String> {
    d.records().map(|r| r.name.clone()).collect()
}

#[tokio::test]
async fn the_previous_release_is_refused_clearly_and_the_new_board_s_requests_converge_both_ways() {
    let key = SyncKey::derive(KEY).expect("key");
    let console = Arc::new(Console::quiet(100));
    let new = holding(vec![record("web", "pi-new")]);
    let old = holding(vec![record("db", "pi-old")]);
    let new_url = board("pi-new", Arc::clone(&new), 0, false, Arc::clone(&console)).await;
    let old_url = board("pi-old", Arc::clone(&old), 0, true, Arc::clone(&console)).await;

    // The previous release's request: a challenge of 32 hex digits, no time.
    let records: Vec<Record> = lock(&old).desired.records().cloned().collect();
    let (challenge, body) = key
        .request_with_challenge(
            "00112233445566778899aabbccddeeff".into(),
            "pi-old",
            "d",
            records,
        )
        .expect("request");
    let Answer::Stale(sealed) = send(&new_url, body).await else {
        panic!("answered")
    };
    let refusal = key
        .open_refusal(&sealed, &challenge)
        .expect("a sealed refusal");
    assert!(
        refusal.reason.contains("from an older build?"),
        "{}",
        refusal.reason
    );
    assert_eq!(names(&lock(&new).desired), ["web"], "nothing merged");
    assert_eq!(lock(&new).sync_refused, 1);
    let lines = console.recent().join("\n");
    assert!(
        lines.contains("the sync request of board \"pi-old\" refused: its challenge carries no time and nonce (no freshness: from an older build?)"),
        "{lines}"
    );

    // The new board's request to the old one: answered, and both hold both records after it.
    let records: Vec<Record> = lock(&new).desired.records().cloned().collect();
    let (challenge, body) = key
        .request_at(now_ms(), "pi-new", "d", records)
        .expect("request");
    let Answer::Records(sealed) = send(&old_url, body).await else {
        panic!("refused")
    };
    let response = key.open_response(&sealed, &challenge).expect("answer");
    {
        let mut inner = lock(&new);
        let inner = &mut *inner;
        inner
            .desired
            .merge(response.records, &mut inner.clock, now_ms());
    }
    assert_eq!(names(&lock(&new).desired), ["db", "web"]);
    assert_eq!(lock(&new).desired.digest(), lock(&old).desired.digest());
}

#[tokio::test]
async fn a_board_whose_clock_is_hours_ahead_refuses_once_then_answers_by_its_clock() {
    const SKEW: u64 = 3 * 3600 * 1000;
    let key = SyncKey::derive(KEY).expect("key");
    let console = Arc::new(Console::quiet(100));
    let ahead = holding(vec![record("web", "pi-ahead")]);
    let url = board(
        "pi-ahead",
        Arc::clone(&ahead),
        SKEW,
        false,
        Arc::clone(&console),
    )
    .await;
    let mine = vec![record("db", "pi-a")];

    let (challenge, body) = key
        .request_at(now_ms(), "pi-a", "d", mine.clone())
        .expect("request");
    let Answer::Stale(sealed) = send(&url, body).await else {
        panic!("answered")
    };
    let (refusal, offset) = clock_offset(&key, &sealed, &challenge, now_ms()).expect("opens");
    assert!(
        refusal.reason.contains("10800s behind this board's clock"),
        "{}",
        refusal.reason
    );
    // The offset is the skew, give or take the time the exchange took.
    assert!(
        offset > (SKEW - 60_000) as i64 && offset <= SKEW as i64,
        "{offset}"
    );

    let (challenge, body) = key
        .request_at(now_ms().saturating_add_signed(offset), "pi-a", "d", mine)
        .expect("request");
    let Answer::Records(sealed) = send(&url, body).await else {
        panic!("refused again")
    };
    let response = key.open_response(&sealed, &challenge).expect("answer");
    assert_eq!(response.records.len(), 2, "both records, both ways");
    assert_eq!(names(&lock(&ahead).desired), ["db", "web"]);
}
