//! The host binary (`baton-front-door`), as the benchmark runs it: a configuration file, plain
//! HTTP and HTTPS listeners on port 0 whose bound addresses it prints, requests routed to an
//! upstream over both; and a start refused when HTTPS has no certificate.

mod common;
mod common_tls;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use baton_frontdoor::config::Snapshot;
use common::{echo, get, instance, route, snapshot};
use common_tls::{connect, h1, https_get, read, with_certs, Hello, Pki};

const BINARY: &str = env!("CARGO_BIN_EXE_baton-front-door");
const PATIENCE: Duration = Duration::from_secs(30);

/// A configuration file removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn write(snapshot: &Snapshot, instances: serde_json::Value) -> ConfigFile {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "baton-front-door-test-{}-{unique}.json",
            std::process::id()
        ));
        let body = serde_json::json!({ "snapshot": snapshot, "instances": instances });
        std::fs::write(&path, body.to_string()).expect("config file");
        ConfigFile(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The binary running; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &ConfigFile, args: &[&str]) -> Running {
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(&config.0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn baton-front-door");
    let stderr = child.stderr.take().expect("stderr");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines }
}

impl Running {
    /// The address the binary says it serves `scheme` on.
    fn serving(&self, scheme: &str) -> SocketAddr {
        let prefix = format!("baton-front-door: serving {scheme} on ");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no 'serving {scheme}' line: {e}"));
            if let Some(addr) = line.strip_prefix(&prefix) {
                return addr.parse().expect("address");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_http_and_https_to_the_configured_instances() {
    let pki = Pki::new();
    let cert = pki.issue(&["web.lan"], true);
    let (a, _a) = echo("a").await;
    let snap = with_certs(
        snapshot(vec![route("web", None, "/")], None),
        vec![cert.cert],
    );
    let instances: BTreeMap<&str, _> = [("web", vec![instance("a", a, true)])].into();
    let config = ConfigFile::write(&snap, serde_json::json!(instances));
    let door = start(
        &config,
        &[
            "--http",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
            "--workers",
            "1",
        ],
    );
    let http = door.serving("http");
    let https = door.serving("https");

    let got = get(http, "web.lan", "/plain").await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.starts_with("a GET /plain"), "{}", got.body);

    let hello = Hello {
        sni: Some("web.lan"),
        verify_as: "web.lan",
        alpn: &[b"http/1.1"],
    };
    let tls = connect(&pki, https, hello).await.expect("handshake");
    let mut sender = h1(tls).await;
    let got = read(
        sender
            .send_request(https_get("web.lan", "/secure"))
            .await
            .expect("response"),
    )
    .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.starts_with("a GET /secure"), "{}", got.body);
    assert!(
        got.body.contains("x-forwarded-proto: https"),
        "{}",
        got.body
    );
}

#[test]
fn https_without_a_certificate_is_refused_at_start() {
    let snap = snapshot(vec![route("web", None, "/")], None);
    let config = ConfigFile::write(&snap, serde_json::json!({}));
    let mut door = start(&config, &["--https", "127.0.0.1:0"]);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = door.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running without a certificate"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    // Everything it wrote, up to the end of its stderr.
    let mut said = Vec::new();
    while let Ok(line) = door
        .lines
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        said.push(line);
    }
    assert!(
        said.iter()
            .any(|l| l.contains("needs at least one certificate")),
        "{said:?}"
    );
}

/// Whether a second connection from the same client resumes the first one's session.
async fn second_handshake_resumes(pki: &Pki, addr: SocketAddr) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.cert_der().clone()).expect("root");
    let provider = baton_cluster::tls::provider();
    // One client config for both connections: it keeps the tickets or session ids it gets.
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(baton_cluster::tls::VERSIONS)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let mut kinds = Vec::new();
    for path in ["/first", "/second"] {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("web.lan").expect("name");
        let tls = tokio::time::timeout(PATIENCE, connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        kinds.push(tls.get_ref().1.handshake_kind());
        // A whole exchange, so the client has read the tickets sent after the handshake.
        let mut sender = h1(tls).await;
        let got = read(
            sender
                .send_request(https_get("web.lan", path))
                .await
                .expect("response"),
        )
        .await;
        assert_eq!(got.status, 200, "{got:?}");
    }
    assert_eq!(kinds[0], Some(rustls::HandshakeKind::Full));
    kinds[1] == Some(rustls::HandshakeKind::Resumed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tls_resumption_makes_every_handshake_a_full_one() {
    let pki = Pki::new();
    let cert = pki.issue(&["web.lan"], true);
    let (a, _a) = echo("a").await;
    let snap = with_certs(
        snapshot(vec![route("web", None, "/")], None),
        vec![cert.cert],
    );
    let instances: BTreeMap<&str, _> = [("web", vec![instance("a", a, true)])].into();
    let config = ConfigFile::write(&snap, serde_json::json!(instances));

    let door = start(&config, &["--https", "127.0.0.1:0"]);
    let addr = door.serving("https");
    assert!(second_handshake_resumes(&pki, addr).await, "by default");
    drop(door);

    let door = start(&config, &["--https", "127.0.0.1:0", "--no-tls-resumption"]);
    let addr = door.serving("https");
    assert!(
        !second_handshake_resumes(&pki, addr).await,
        "with --no-tls-resumption"
    );
}
