//! The sync endpoint's reading of unauthenticated bodies.

use super::*;
use axum::body::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn headers(length: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, length.into());
    h
}

/// A body that yields `first`, then never ends; counts how often it is polled for more.
fn stalling(first: Vec<u8>, polls: Arc<AtomicUsize>) -> Body {
    let rest = futures_util::stream::unfold((), move |()| {
        let polls = Arc::clone(&polls);
        async move {
            polls.fetch_add(1, Ordering::Relaxed);
            std::future::pending::<Option<(Result<Bytes, std::io::Error>, ())>>().await
        }
    });
    let head = futures_util::stream::once(async move { Ok(Bytes::from(first)) });
    Body::from_stream(head.chain(rest))
}

fn sealed_head() -> Vec<u8> {
    // The version byte and a nonce, as a real sealed body begins.
    let mut head = vec![1u8];
    head.extend_from_slice(&[7u8; HEAD_LEN - 1]);
    head
}

#[tokio::test]
async fn a_body_over_the_limit_or_without_a_length_is_refused_unread() {
    let polls = Arc::new(AtomicUsize::new(0));
    let r = read_sealed(
        &headers(MAX_SYNC_REQUEST + 1),
        stalling(sealed_head(), Arc::clone(&polls)),
    )
    .await;
    let refusal = r.expect_err("refused");
    assert_eq!(refusal.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = axum::body::to_bytes(refusal.into_body(), 4096)
        .await
        .expect("problem body");
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(&format!(
            "sync body of {} bytes is larger than the {} bytes a board takes",
            MAX_SYNC_REQUEST + 1,
            baton_cluster::sync::MAX_BODY
        )),
        "{text}"
    );
    let r = read_sealed(
        &HeaderMap::new(),
        stalling(sealed_head(), Arc::clone(&polls)),
    )
    .await;
    assert_eq!(
        r.expect_err("refused").status(),
        StatusCode::LENGTH_REQUIRED
    );
    let r = read_sealed(
        &headers(MIN_BODY - 1),
        stalling(sealed_head(), Arc::clone(&polls)),
    )
    .await;
    assert_eq!(r.expect_err("refused").status(), StatusCode::FORBIDDEN);
    assert_eq!(polls.load(Ordering::Relaxed), 0, "nothing was read");
}

#[tokio::test]
async fn a_head_that_cannot_be_sealed_is_refused_before_the_rest_is_read() {
    let polls = Arc::new(AtomicUsize::new(0));
    let mut garbage = sealed_head();
    garbage[0] = b'{';
    // The rest never comes: a reader that wanted the whole body would wait for ever.
    let r = read_sealed(
        &headers(MAX_SYNC_REQUEST),
        stalling(garbage, Arc::clone(&polls)),
    )
    .await;
    assert_eq!(r.expect_err("refused").status(), StatusCode::FORBIDDEN);
    assert_eq!(
        polls.load(Ordering::Relaxed),
        0,
        "refused on the head alone"
    );
}

#[tokio::test]
async fn a_plausible_body_is_read_to_its_length_and_no_further() {
    let mut body = sealed_head();
    body.extend_from_slice(&[9u8; 100]);
    let got = read_sealed(&headers(body.len()), Body::from(body.clone())).await;
    assert_eq!(got.ok(), Some(body.clone()));
    let r = read_sealed(&headers(body.len() - 1), Body::from(body)).await;
    assert_eq!(r.expect_err("refused").status(), StatusCode::BAD_REQUEST);
}
