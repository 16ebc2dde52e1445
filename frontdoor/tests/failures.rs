//! Failing instances and hostile clients: an instance killed under a stream of requests costs
//! no request, and a client that sends its head too slowly is cut off.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn an_instance_killed_under_a_stream_of_gets_fails_no_request() {
    let (a, kill_a) = echo("a").await;
    let mut kill_a = Some(kill_a);
    let (b, _b) = echo("b").await;
    let door = Door::start(snapshot(vec![route("web", None, "/")], None)).await;
    door.instances("web", &[("a", a, true), ("b", b, true)]);
    let mut client = Client::connect(door.addr).await;
    let mut served = [0u32; 2];
    for i in 0..200 {
        if let Some(task) = kill_a.take_if(|_| i == 50) {
            task.abort();
            let _ = task.await;
        }
        let got = client.get("web.lan", "/").await;
        assert_eq!(got.status, 200, "request {i}: {got:?}");
        match got.body.as_bytes().first() {
            Some(b'a') => served[0] += 1,
            _ => served[1] += 1,
        }
    }
    assert!(served[0] > 0 && served[1] > 150, "{served:?}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let (a, _a) = echo("a").await;
    let door = Door::start(snapshot(vec![route("web", None, "/")], None)).await;
    door.instances("web", &[("a", a, true)]);
    let mut slow = tokio::net::TcpStream::connect(door.addr)
        .await
        .expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: web.lan\r\nX-Slow: ")
        .await
        .expect("send");
    // The front door closes it (with a 408 or nothing) after its header timeout.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "still open after 30 s");
    // Meanwhile others are served.
    assert_eq!(get(door.addr, "web.lan", "/").await.status, 200);
}

#[tokio::test]
async fn a_post_whose_instance_dies_before_answering_is_not_sent_twice() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let posts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&posts);
    // The instance takes the request and drops the connection without an answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let a = listener.local_addr().expect("addr");
    let _a = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if let Ok(n) = s.read(&mut buf).await {
                    if n > 0 {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    // Another instance that counts the POSTs it gets: a second try would reach it.
    let b_posts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&b_posts);
    let (b, _b) = upstream(move |req: http::Request<hyper::body::Incoming>| {
        let seen = Arc::clone(&seen);
        async move {
            if req.method() == http::Method::POST {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            http::Response::new(text("b"))
        }
    })
    .await;
    let door = Door::start(snapshot(vec![route("web", None, "/")], None)).await;
    // Only a first: the POST must go there (LOR picks at random among equals).
    door.instances("web", &[("a", a, true)]);
    let req = http::Request::post("/order")
        .header("host", "web.lan")
        .body(text("one order"))
        .expect("request");
    let got = send(door.addr, req).await;
    assert_eq!(got.status, 502, "{got:?}");
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    // With b there too, a POST that a takes and drops is still not sent again to b.
    door.instances("web", &[("a", a, true), ("b", b, true)]);
    let mut to_a = 0;
    for _ in 0..20 {
        let req = http::Request::post("/order")
            .header("host", "web.lan")
            .body(text("one order"))
            .expect("request");
        let got = send(door.addr, req).await;
        if got.status == 502 {
            to_a += 1;
        }
    }
    // Each POST reached exactly one instance: a second try would count twice.
    let at_a = posts.load(Ordering::SeqCst) - 1;
    assert_eq!(
        at_a + b_posts.load(Ordering::SeqCst),
        20,
        "a POST was sent twice"
    );
    assert_eq!(to_a, at_a, "a POST that failed at a was answered by b");
    // A GET with no body is tried once more on another instance.
    for _ in 0..10 {
        let got = get(door.addr, "web.lan", "/").await;
        assert_eq!(got.status, 200, "{got:?}");
    }
}
