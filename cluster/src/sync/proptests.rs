//! Hostile bytes into the openers, and the exchange between this release and the previous one.

use proptest::prelude::*;

use super::fresh::{Freshness, Stale};
use super::*;
use crate::desired::Version;

const KEY: &str = "sync-proptest-key-0123456789abcdef0123456789";

/// A sync request as the previous release reads it: the same fields, no others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PreviousRequest {
    challenge: String,
    board: String,
    digest: String,
    records: Vec<Record>,
}

fn record(name: &str, text: Option<&str>, time: u64) -> Record {
    Record {
        name: name.into(),
        text: text.map(str::to_string),
        version: Version {
            time,
            board: "pi-a".into(),
        },
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_openers(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let key = SyncKey::derive(KEY).expect("key");
        prop_assert!(key.open_request(&bytes).is_err());
        prop_assert!(key.open_response(&bytes, "c").is_err());
        prop_assert!(key.open_refusal(&bytes, "c").is_err());
        let mut head = vec![VERSION];
        head.extend_from_slice(&bytes);
        prop_assert!(key.open_request(&head).is_err());
    }

    #[test]
    fn random_json_sealed_with_the_key_never_panics(text in ".{0,200}") {
        let key = SyncKey::derive(KEY).expect("key");
        let body = key.seal_bounded(&text).expect("small");
        prop_assert_eq!(key.open_request(&body), Err(SyncError::Malformed("sync request")));
        prop_assert!(key.open_response(&body, &text).is_err());
        let mut f = Freshness::default();
        prop_assert!(f.admit("pi-a", &text, 1_800_000_000_000).is_err());
    }
}

#[test]
fn a_request_of_this_release_reads_on_the_previous_one() {
    let key = SyncKey::derive(KEY).expect("key");
    let records = vec![record("web", Some("name = \"web\"\n"), 5)];
    let (challenge, body) = key
        .request_at(1_800_000_000_000, "pi-new", "d", records.clone())
        .expect("request");
    let previous: PreviousRequest = key
        .open(&body, "sync request")
        .expect("the old build reads it");
    assert_eq!(previous.challenge, challenge);
    assert_eq!(previous.records, records);
    // The previous release echoes the challenge in an answer of the same shape as ever.
    let request = key.open_request(&body).expect("opens");
    let answer = key
        .respond(&request, "pi-old", vec![record("db", None, 6)])
        .expect("answer");
    let response = key
        .open_response(&answer, &challenge)
        .expect("answer opens");
    assert_eq!(response.records, [record("db", None, 6)]);
}

#[test]
fn a_request_of_the_previous_release_is_refused_as_without_freshness() {
    let key = SyncKey::derive(KEY).expect("key");
    // The previous release's challenge: 32 random hex digits, nothing else.
    let body = key
        .seal_bounded(&SyncRequest {
            challenge: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
            board: "pi-old".into(),
            digest: "d".into(),
            records: Vec::new(),
        })
        .expect("seal");
    let request = key
        .open_request(&body)
        .expect("opens: same key, same shape");
    let mut f = Freshness::default();
    let stale = f
        .admit(&request.board, &request.challenge, 1_800_000_000_000)
        .expect_err("no freshness");
    assert_eq!(stale, Stale::NoFreshness);
    assert_eq!(
        stale.to_string(),
        "its challenge carries no time and nonce (no freshness: from an older build?)"
    );
}

#[test]
fn a_refusal_names_the_refusing_clock_and_answers_one_request() {
    let key = SyncKey::derive(KEY).expect("key");
    let (challenge, body) = key
        .request_at(1_000, "pi-a", "d", Vec::new())
        .expect("request");
    let request = key.open_request(&body).expect("opens");
    let sealed = key.refuse(&request, "pi-b", 1_800_000_000_000, "its time is behind");
    let refusal = key
        .open_refusal(&sealed, &challenge)
        .expect("refusal opens");
    assert_eq!(refusal.time_ms, 1_800_000_000_000);
    assert_eq!(refusal.board, "pi-b");
    assert_eq!(
        key.open_refusal(&sealed, "another"),
        Err(SyncError::WrongChallenge)
    );
    // A refusal is not an answer, nor an answer a refusal.
    assert_eq!(
        key.open_response(&sealed, &challenge),
        Err(SyncError::Malformed("sync response"))
    );
    let answer = key.respond(&request, "pi-b", Vec::new()).expect("answer");
    assert_eq!(
        key.open_refusal(&answer, &challenge),
        Err(SyncError::Malformed("sync refusal"))
    );
}
