//! The whole way of a fetched key set: a real front door (in this process, without its
//! sandbox) fetches `jwks_url` from a provider on loopback over HTTPS (a CA from the card's
//! `ca` file), reports it, and the manager keeps it on the data directory, where the next boot
//! reads it back.

use std::sync::Arc;
use std::time::Duration;

use baton_cluster::tls::ca::Ca;
use baton_frontdoor::control::frame;
use baton_frontdoor::control::protocol::{Fetched, Listener};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};

use super::{Cache, Expect, JWKS_FILE};
use crate::board::console::Console;
use crate::containers::supervisor::routed::Routed;
use crate::frontdoor::run::{talk, Listeners};
use crate::frontdoor::{certs, Settings, Shared, State};

fn jwks() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../frontdoor/tests/keys/p256.jwk.json"
    );
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("key")).expect("jwk");
    serde_json::json!({ "keys": [key] }).to_string()
}

/// A provider answering every request with `body`, over HTTPS for `localhost`; its CA's PEM.
async fn provider(body: String) -> (u16, String) {
    let ca = Ca::generate("idp-test").expect("CA");
    let leaf = ca
        .issue_server("localhost", &["127.0.0.1".parse().expect("ip")])
        .expect("leaf");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
    .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca.cert_pem().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_the_front_door_fetched_is_kept_on_the_data_partition() {
    let (port, ca_pem) = provider(jwks()).await;
    let issuer = format!("https://localhost:{port}");
    let jwks_url = format!("{issuer}/jwks");
    let card = tempfile::tempdir().expect("card");
    std::fs::create_dir_all(card.path().join("certs")).expect("certs");
    std::fs::write(card.path().join("certs/idp-ca.pem"), &ca_pem).expect("ca");
    let data = card.path().join("data");
    let front_door = baton_spec::FrontDoor {
        oidc: Some(baton_spec::front_door::Oidc {
            issuer: issuer.clone(),
            audience: "baton".into(),
            jwks: None,
            jwks_url: Some(jwks_url.clone()),
            ca: Some("certs/idp-ca.pem".into()),
            client_id: None,
            client_secret: None,
            scopes: Vec::new(),
            leeway: Duration::from_secs(30),
            session_ttl: Duration::from_secs(3600),
            callback_path: "/.baton/auth/callback".into(),
        }),
        ..baton_spec::FrontDoor::default()
    };
    let settings = Settings {
        front_door,
        exe: "/nonexistent".into(),
        root: card.path().to_path_buf(),
        card: card.path().to_path_buf(),
        board: "b1".into(),
        ca: None,
        data: data.clone(),
        assertion: None,
        session_key: None,
        scaler: None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listeners = Listeners {
        kinds: vec![Listener::Http],
        fds: vec![std::os::fd::OwnedFd::from(listener)],
    };
    let console = Arc::new(Console::quiet(64));
    let shared = Arc::new(Shared::new(State::Starting, None, console, (80, 0)));
    let (ours, theirs) = frame::pair().expect("pair");
    let front_door = tokio::spawn(baton_frontdoor::child::run(theirs));
    let (_routed_tx, mut routed) = watch::channel(Routed::default());
    let (_restart_tx, mut restart) = mpsc::channel(1);
    let s = Arc::clone(&shared);
    let talking = tokio::spawn(async move {
        let mut certs = certs::Certs::default();
        talk(
            &settings,
            &listeners,
            7,
            ours,
            &mut routed,
            &mut restart,
            &mut certs,
            &s,
        )
        .await
    });
    let path = data.join(JWKS_FILE);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not written; notes: {:?}",
            shared.status().notes
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next boot reads it back, for the same jwks_url only.
    let expect = Expect {
        issuer: &issuer,
        jwks_url: Some(&jwks_url),
    };
    let (cache, notes) = Cache::load(&data, &expect);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        cache.jwks.map(|e| (e.url, e.body)),
        Some((jwks_url, jwks()))
    );
    // And the manager keeps it for the snapshots of this boot.
    assert!(shared.idp().jwks.is_some());
    assert!(!shared
        .status()
        .notes
        .iter()
        .any(|n| n.contains(&format!("{:?}", Fetched::Jwks))));
    talking.abort();
    front_door.abort();
}
