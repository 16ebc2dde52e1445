//! `auth = "mtls"` routes on loopback, with Debian's curl as the client and certificates made
//! by the openssl command line (both apart from the code under test): a certificate from the
//! client CA gets through and the instance learns its subject (compared with what `openssl x509
//! -nameopt RFC2253` prints) and email; no certificate gets 401; a certificate from another CA
//! is refused; a name without an mTLS route never asks for a certificate; a request whose host
//! differs from the connection's name gets 421.

mod common;
mod common_keys;
mod common_tls;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use baton_frontdoor::config::model::MtlsSettings;
use baton_frontdoor::config::Auth;
use common::*;
use common_tls::*;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

/// A directory of its own for one test's files.
fn workdir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mtls-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("workdir");
    dir
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name.pem`/`name.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A client certificate `name.pem`/`name.key` for `subject`, signed by the CA `ca`.
fn make_client(dir: &Path, ca: &str, name: &str, subject: &str, email: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    let ext = format!(
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=email:{email}\n"
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            "7",
            "-days",
            "1",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// The subject of `name.pem` as openssl prints it in RFC 2253 form (the RFC 4514 string).
fn openssl_subject(dir: &Path, name: &str) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(format!("{name}.pem"))
        .output()
        .expect("openssl");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.trim()
        .strip_prefix("subject=")
        .expect("subject=")
        .to_string()
}

struct Rig {
    door: TlsDoor,
    dir: PathBuf,
    _upstreams: Vec<tokio::task::JoinHandle<()>>,
    pki: Pki,
}

async fn rig(name: &str) -> Rig {
    let dir = workdir(name);
    make_ca(&dir, "clients");
    make_ca(&dir, "stranger");
    let pki = Pki::new();
    std::fs::write(dir.join("server-ca.pem"), pki.ca.cert_pem()).expect("server ca");
    let issued = pki.issue(&["secure.lan", "open.lan"], false);
    let (a, secure_task) = echo("secure").await;
    let (b, open_task) = echo("open").await;
    let mut secure = route("secure", Some("secure.lan"), "/");
    secure.auth = Auth::Mtls;
    let open = route("open", Some("open.lan"), "/");
    let mut snap = with_certs(snapshot(vec![secure, open], None), vec![issued.cert]);
    snap.assertion = Some(common_keys::assertion_key());
    snap.mtls = Some(MtlsSettings {
        ca_pem: std::fs::read_to_string(dir.join("clients.pem")).expect("ca"),
    });
    let door = TlsDoor::start(snap).await;
    door.instances("secure", &[("s1", a, true)]);
    door.instances("open", &[("o1", b, true)]);
    Rig {
        door,
        dir,
        _upstreams: vec![secure_task, open_task],
        pki,
    }
}

/// What curl got: its exit code, the status (0 when none) and the body.
#[derive(Debug)]
struct Curl {
    code: i32,
    status: u16,
    body: String,
}

/// `curl https://<name>:<port>/headers` to the rig's front door, trusting the cluster CA,
/// with `extra` arguments (a client certificate, another Host).
async fn curl(rig: &Rig, name: &str, extra: &[&str]) -> Curl {
    let port = rig.door.addr.port();
    let mut cmd = Command::new("curl");
    cmd.current_dir(&rig.dir)
        .args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            "server-ca.pem",
            "--resolve",
        ])
        .arg(format!("{name}:{port}:127.0.0.1"))
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(format!("https://{name}:{port}/headers"));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run curl"))
        .await
        .expect("join");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    Curl {
        code: out.status.code().unwrap_or(-1),
        status: status.trim().parse().unwrap_or(0),
        body: body.to_string(),
    }
}

fn seen<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn a_certificate_from_the_client_ca_gets_through_and_names_the_caller() {
    let rig = rig("pass").await;
    // A subject with characters RFC 4514 escapes, and a comma inside a value.
    make_client(
        &rig.dir,
        "clients",
        "ann",
        "/C=DE/O=Lab, Inc./CN=ann\\+x #1",
        "ann@lan",
    );
    let want = openssl_subject(&rig.dir, "ann");
    assert!(want.contains("\\,") && want.contains("\\+"), "{want}");
    let got = curl(
        &rig,
        "secure.lan",
        &["--cert", "ann.pem", "--key", "ann.key"],
    )
    .await;
    assert_eq!((got.code, got.status), (0, 200), "{got:?}");
    assert!(got.body.starts_with("secure "), "{got:?}");
    assert_eq!(
        seen(&got.body, "x-forwarded-user"),
        Some(want.as_str()),
        "{got:?}"
    );
    assert_eq!(
        seen(&got.body, "x-forwarded-email"),
        Some("ann@lan"),
        "{got:?}"
    );
    let assertion = seen(&got.body, "x-baton-identity").expect("an assertion");
    let claims = common_keys::claims(assertion);
    assert_eq!(claims["sub"], want.as_str(), "{claims}");
    assert_eq!(claims["email"], "ann@lan", "{claims}");
    assert_eq!(claims["auth"], "mtls", "{claims}");
    assert_eq!(claims["aud"], "secure", "{claims}");
    // TLS 1.2 and HTTP/1.1 too (the certificate comes in another place of the handshake).
    let got = curl(
        &rig,
        "secure.lan",
        &[
            "--tls-max",
            "1.2",
            "--http1.1",
            "--cert",
            "ann.pem",
            "--key",
            "ann.key",
        ],
    )
    .await;
    assert_eq!((got.code, got.status), (0, 200), "{got:?}");
    assert_eq!(
        seen(&got.body, "x-forwarded-user"),
        Some(want.as_str()),
        "{got:?}"
    );
}

#[tokio::test]
async fn no_certificate_gets_401_and_a_client_sent_user_does_not_pass() {
    let rig = rig("none").await;
    let got = curl(&rig, "secure.lan", &["-H", "X-Forwarded-User: root"]).await;
    assert_eq!((got.code, got.status), (0, 401), "{got:?}");
    assert!(got.body.contains("client certificate"), "{got:?}");
    assert!(!got.body.contains("root"), "{got:?}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let rig = rig("stranger").await;
    make_client(&rig.dir, "stranger", "eve", "/CN=eve", "eve@lan");
    let got = curl(
        &rig,
        "secure.lan",
        &["--cert", "eve.pem", "--key", "eve.key"],
    )
    .await;
    // The handshake fails: the front door refuses the chain with an alert, so curl exits with
    // an error (55 with TLS 1.3, where the client's certificate follows the server's Finished)
    // and never gets a status.
    assert!(
        got.code != 0 && got.status == 0,
        "a stranger's certificate was not refused in the handshake: {got:?}"
    );
    assert!(!got.body.contains("eve"), "{got:?}");
}

#[tokio::test]
async fn a_request_for_another_host_than_the_connection_s_name_gets_421() {
    let rig = rig("misdirected").await;
    make_client(&rig.dir, "clients", "ann", "/CN=ann", "ann@lan");
    // The handshake names open.lan (no certificate asked), the request secure.lan.
    let got = curl(&rig, "open.lan", &["-H", "Host: secure.lan"]).await;
    assert_eq!((got.code, got.status), (0, 421), "{got:?}");
    // With a certificate the handshake did not ask for, the answer is the same.
    let got = curl(
        &rig,
        "open.lan",
        &[
            "-H",
            "Host: secure.lan",
            "--cert",
            "ann.pem",
            "--key",
            "ann.key",
        ],
    )
    .await;
    assert_eq!((got.code, got.status), (0, 421), "{got:?}");
    // The open route on the same connection name is served as usual.
    let got = curl(&rig, "open.lan", &[]).await;
    assert_eq!((got.code, got.status), (0, 200), "{got:?}");
}

/// A client certificate resolver that only records whether the server asked for one.
#[derive(Debug, Default)]
struct Asked(AtomicBool);

impl ResolvesClientCert for Asked {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Whether a handshake for `name` is asked for a client certificate.
async fn asks_for_certificate(rig: &Rig, name: &str) -> bool {
    let mut roots = RootCertStore::empty();
    roots.add(rig.pki.ca.cert_der().clone()).expect("root");
    let asked = Arc::new(Asked::default());
    let config = ClientConfig::builder_with_provider(baton_cluster::tls::provider())
        .with_protocol_versions(baton_cluster::tls::VERSIONS)
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::clone(&asked) as Arc<dyn ResolvesClientCert>);
    let tcp = tokio::net::TcpStream::connect(rig.door.addr)
        .await
        .expect("connect");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let server = ServerName::try_from(name.to_string()).expect("name");
    tokio::time::timeout(PATIENCE, connector.connect(server, tcp))
        .await
        .expect("in time")
        .expect("handshake");
    asked.0.load(Ordering::SeqCst)
}

#[tokio::test]
async fn only_names_with_an_mtls_route_ask_for_a_client_certificate() {
    let rig = rig("ask").await;
    assert!(asks_for_certificate(&rig, "secure.lan").await);
    assert!(!asks_for_certificate(&rig, "open.lan").await);
}
