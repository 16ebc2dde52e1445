//! Sealing, opening and the body limit of sync messages.

use super::*;
use crate::desired::Version;

const KEY: &str = "sync-test-key-0123456789abcdef0123456789";

fn record() -> Record {
    Record {
        name: "web".into(),
        text: Some("name = \"web\"\nimage = \"x:1\"\n".into()),
        version: Version {
            time: 5,
            board: "pi-a".into(),
        },
    }
}

#[test]
fn a_request_and_its_response_round_trip() {
    let key = SyncKey::derive(KEY).expect("key");
    let (challenge, body) = key.request("pi-a", "d1", vec![record()]).expect("request");
    let request = key.open_request(&body).expect("request opens");
    assert_eq!(request.board, "pi-a");
    assert_eq!(request.records, [record()]);
    let answer = key
        .respond(&request, "pi-b", vec![record()])
        .expect("answer");
    let response = key.open_response(&answer, &challenge).expect("response");
    assert_eq!(response.board, "pi-b");
    assert_eq!(response.records, [record()]);
    // The text never travels in the clear.
    assert!(!body.windows(3).any(|w| w == b"web"));
    assert!(!answer.windows(3).any(|w| w == b"web"));
}

#[test]
fn another_key_garbage_and_replays_are_refused() {
    let key = SyncKey::derive(KEY).expect("key");
    let other = SyncKey::derive("another-cluster-key-0123456789abcdef").expect("key");
    let (challenge, body) = key.request("pi-a", "d1", Vec::new()).expect("request");
    assert_eq!(other.open_request(&body), Err(SyncError::Unauthentic));
    for len in [0, 1, 24, 25, 40, 200] {
        assert_eq!(
            key.open_request(&vec![1u8; len]),
            Err(SyncError::Unauthentic)
        );
    }
    let mut flipped = body.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(key.open_request(&flipped), Err(SyncError::Unauthentic));
    assert_eq!(
        key.open_request(&vec![0u8; MAX_BODY + 1]),
        Err(SyncError::TooLarge(MAX_BODY + 1))
    );
    // A response to an earlier request does not answer this one.
    let request = key.open_request(&body).expect("opens");
    let answer = key.respond(&request, "pi-b", Vec::new()).expect("answer");
    key.request("pi-a", "d1", Vec::new())
        .expect("another request");
    assert!(key.open_response(&answer, &challenge).is_ok());
    assert_eq!(
        key.open_response(&answer, "00000000000000000000000000000000"),
        Err(SyncError::WrongChallenge)
    );
    // A request is not a response.
    assert_eq!(
        key.open_response(&body, &challenge),
        Err(SyncError::Malformed("sync response"))
    );
    assert_eq!(
        SyncKey::derive("short").err(),
        Some(SyncError::KeyTooShort(5))
    );
}

/// `count` records at their largest: every character of the text escaped in JSON.
fn largest(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            name: format!("{i:a>63}"),
            text: Some("\"".repeat(crate::desired::admit::MAX_SPEC_TEXT)),
            version: Version {
                time: u64::MAX,
                board: "b".repeat(63),
            },
        })
        .collect()
}

#[test]
fn everything_the_desired_state_can_hold_fits_one_body() {
    let key = SyncKey::derive(KEY).expect("key");
    // A request carries a field more than an answer (the digest): it is the larger body.
    let (_, body) = key
        .request(&"b".repeat(63), &"d".repeat(64), largest(MAX_RECORDS))
        .expect("every record fits a request");
    assert!(body.len() <= MAX_BODY);
    let request = key.open_request(&body).expect("opens");
    assert_eq!(request.records.len(), MAX_RECORDS);
}

#[test]
fn a_body_over_the_limit_is_refused_when_sealed_not_sent_to_be_dropped() {
    let key = SyncKey::derive(KEY).expect("key");
    let err = key
        .request("pi-a", "d", largest(MAX_RECORDS + 20))
        .expect_err("too large to send");
    let SyncError::TooLarge(len) = err else {
        panic!("{err:?}")
    };
    assert!(len > MAX_BODY);
    assert_eq!(
        err.to_string(),
        format!(
            "sealed sync body of {len} bytes is larger than the {MAX_BODY} bytes a board takes"
        )
    );
    let (_, body) = key.request("pi-a", "d", Vec::new()).expect("request");
    let request = key.open_request(&body).expect("opens");
    assert!(matches!(
        key.respond(&request, "pi-b", largest(MAX_RECORDS + 20)),
        Err(SyncError::TooLarge(_))
    ));
}
