//! HTTPS at the front door: the certificate chosen by SNI (exact, one wildcard level, the
//! default), HTTP/1.1 and HTTP/2 by ALPN, a certificate reloaded under an open connection, and
//! clients that send garbage or nothing instead of a ClientHello.

mod common;
mod common_tls;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use common_tls::steady::Steady;
use common_tls::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_exact_name_then_one_wildcard_level_then_the_default() {
    let pki = Pki::new();
    let exact = pki.issue(&["web.lan"], false);
    let wildcard = pki.issue(&["*.apps.lan"], false);
    let default = pki.issue(&["default.lan"], true);
    let certs = vec![
        exact.cert.clone(),
        wildcard.cert.clone(),
        default.cert.clone(),
    ];
    let door = TlsDoor::start(with_certs(
        snapshot(vec![route("web", None, "/")], None),
        certs,
    ))
    .await;
    // (SNI sent, name the leaf must cover, the leaf expected, its DNS names).
    let cases = [
        (Some("web.lan"), "web.lan", &exact, "web.lan"),
        (Some("a.apps.lan"), "a.apps.lan", &wildcard, "*.apps.lan"),
        // A wildcard covers one label only.
        (Some("b.a.apps.lan"), "default.lan", &default, "default.lan"),
        (Some("apps.lan"), "default.lan", &default, "default.lan"),
        (Some("unknown.lan"), "default.lan", &default, "default.lan"),
        (None, "default.lan", &default, "default.lan"),
    ];
    for (sni, verify_as, issued, name) in cases {
        let hello = Hello {
            sni,
            verify_as,
            alpn: &[b"http/1.1"],
        };
        let tls = connect(&pki, door.addr, hello)
            .await
            .unwrap_or_else(|e| panic!("SNI {sni:?}: {e}"));
        let shown = leaf(&tls);
        assert_eq!(shown, issued.leaf, "SNI {sni:?}");
        assert_eq!(dns_names(&shown), [name], "SNI {sni:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_default_certificate_an_unknown_name_is_refused() {
    let pki = Pki::new();
    let exact = pki.issue(&["web.lan"], false);
    let snap = with_certs(
        snapshot(vec![route("web", None, "/")], None),
        vec![exact.cert],
    );
    let door = TlsDoor::start(snap).await;
    let hello = Hello {
        sni: Some("unknown.lan"),
        verify_as: "web.lan",
        alpn: &[b"http/1.1"],
    };
    assert!(connect(&pki, door.addr, hello).await.is_err());
    // The known name still works.
    let hello = Hello {
        sni: Some("web.lan"),
        ..hello
    };
    assert!(connect(&pki, door.addr, hello).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_reach_an_upstream_over_tls() {
    let pki = Pki::new();
    let cert = pki.issue(&["web.lan"], false);
    let (a, _a) = echo("a").await;
    let snap = with_certs(
        snapshot(vec![route("web", None, "/")], None),
        vec![cert.cert],
    );
    let door = TlsDoor::start(snap).await;
    door.instances("web", &[("a", a, true)]);

    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    let hello = Hello {
        sni: Some("web.lan"),
        verify_as: "web.lan",
        alpn: both,
    };
    let tls = connect(&pki, door.addr, hello).await.expect("h2 handshake");
    assert_eq!(alpn(&tls).as_deref(), Some(&b"h2"[..]));
    let mut sender = h2(tls).await;
    for _ in 0..3 {
        let got = read(
            sender
                .send_request(https_get("web.lan", "/x"))
                .await
                .expect("h2"),
        )
        .await;
        assert_eq!(got.status, 200, "{got:?}");
        assert!(got.body.starts_with("a GET /x"), "{}", got.body);
        assert!(
            got.body.contains("x-forwarded-proto: https"),
            "{}",
            got.body
        );
    }

    let tls = connect(
        &pki,
        door.addr,
        Hello {
            alpn: &[b"http/1.1"],
            ..hello
        },
    )
    .await
    .expect("h1 handshake");
    assert_eq!(alpn(&tls).as_deref(), Some(&b"http/1.1"[..]));
    let mut sender = h1(tls).await;
    let got = read(
        sender
            .send_request(https_get("web.lan", "/y"))
            .await
            .expect("h1"),
    )
    .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.starts_with("a GET /y"), "{}", got.body);
    assert!(
        got.body.contains("x-forwarded-proto: https"),
        "{}",
        got.body
    );

    // A client that offers no ALPN speaks HTTP/1.1.
    let tls = connect(&pki, door.addr, Hello { alpn: &[], ..hello })
        .await
        .expect("handshake without ALPN");
    assert_eq!(alpn(&tls), None);
    let mut sender = h1(tls).await;
    let got = read(
        sender
            .send_request(https_get("web.lan", "/z"))
            .await
            .expect("h1"),
    )
    .await;
    assert_eq!(got.status, 200, "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_serves_new_handshakes_while_open_connections_keep_working() {
    let pki = Pki::new();
    let old = pki.issue(&["web.lan"], false);
    let new = pki.issue(&["web.lan"], false);
    assert_ne!(old.leaf, new.leaf);
    let (a, _a) = echo("a").await;
    let routes = || vec![route("web", None, "/")];
    let door = TlsDoor::start(with_certs(snapshot(routes(), None), vec![old.cert.clone()])).await;
    door.instances("web", &[("a", a, true)]);

    let hello = Hello {
        sni: Some("web.lan"),
        verify_as: "web.lan",
        alpn: &[b"http/1.1"],
    };
    let tls = connect(&pki, door.addr, hello).await.expect("handshake");
    assert_eq!(leaf(&tls), old.leaf);
    let mut open_h1 = h1(tls).await;
    let tls = connect(
        &pki,
        door.addr,
        Hello {
            alpn: &[b"h2"],
            ..hello
        },
    )
    .await
    .expect("handshake");
    assert_eq!(leaf(&tls), old.leaf);
    let mut open_h2 = h2(tls).await;
    for sender in [0, 1] {
        let got = if sender == 0 {
            read(
                open_h1
                    .send_request(https_get("web.lan", "/"))
                    .await
                    .expect("h1"),
            )
            .await
        } else {
            read(
                open_h2
                    .send_request(https_get("web.lan", "/"))
                    .await
                    .expect("h2"),
            )
            .await
        };
        assert_eq!(got.status, 200);
    }

    let notes = door
        .state
        .apply(
            2,
            with_certs(snapshot(routes(), None), vec![new.cert.clone()]),
        )
        .expect("reload");
    assert!(notes.is_empty(), "{notes:?}");
    door.instances("web", &[("a", a, true)]);

    // The connections opened before keep working (keep-alive, no new handshake) ...
    for _ in 0..3 {
        open_h1.ready().await.expect("h1 still open");
        let got = read(
            open_h1
                .send_request(https_get("web.lan", "/"))
                .await
                .expect("h1"),
        )
        .await;
        assert_eq!(got.status, 200, "{got:?}");
        let got = read(
            open_h2
                .send_request(https_get("web.lan", "/"))
                .await
                .expect("h2"),
        )
        .await;
        assert_eq!(got.status, 200, "{got:?}");
    }
    // ... and a new handshake gets the new certificate.
    let tls = connect(&pki, door.addr, hello).await.expect("handshake");
    assert_eq!(leaf(&tls), new.leaf);
    let got = read(
        h1(tls)
            .await
            .send_request(https_get("web.lan", "/"))
            .await
            .expect("h1"),
    )
    .await;
    assert_eq!(got.status, 200, "{got:?}");
}

/// Waits until the server closes `stream` (end of stream or a reset), reading what it sends.
async fn closed_by_server(mut stream: tokio::net::TcpStream, what: &str) {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "{what}: still open after 30 s");
    // An alert at most: the front door never answers garbage with HTTP.
    assert!(sink.len() < 64, "{what}: {} bytes back", sink.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_or_silence_instead_of_a_client_hello_is_closed_while_others_are_served() {
    let pki = Arc::new(Pki::new());
    let cert = pki.issue(&["web.lan"], false);
    let (a, _a) = echo("a").await;
    let snap = with_certs(
        snapshot(vec![route("web", None, "/")], None),
        vec![cert.cert],
    );
    let door = TlsDoor::start(snap).await;
    door.instances("web", &[("a", a, true)]);
    let steady = Steady::start(&pki, door.addr, "web.lan");
    steady.still_served(10).await;

    let garbage = async {
        let mut stream = tokio::net::TcpStream::connect(door.addr)
            .await
            .expect("connect");
        let mut junk = vec![0u8; 64 * 1024];
        getrandom::fill(&mut junk).expect("random");
        // The server may close before it has read it all: a failed write is the point.
        let _ = stream.write_all(&junk).await;
        closed_by_server(stream, "64 KiB of random bytes").await;
    };
    let silent = async {
        let stream = tokio::net::TcpStream::connect(door.addr)
            .await
            .expect("connect");
        // Closed by the handshake timeout (10 s).
        closed_by_server(stream, "a client that sends nothing").await;
    };
    let before = steady.ok();
    tokio::join!(garbage, silent);
    // The steady client was served while they were connected, and still is.
    assert!(steady.ok() > before, "no 200 during the attack");
    steady.still_served(10).await;
}
