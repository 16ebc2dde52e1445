//! HTTPS on loopback: certificates from the cluster's own CA code, a front door serving TLS,
//! and a rustls client that trusts that CA only and keeps the certificate it was shown.

#![allow(dead_code)]

pub mod h2raw;
pub mod steady;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use baton_cluster::tls::ca::{Ca, BACKDATE};
use baton_frontdoor::config::{Cert, Snapshot};
use baton_frontdoor::state::State;
use baton_frontdoor::tls;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use crate::common::{Got, UpBody};

/// The longest a test waits for a handshake or a response.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A cluster CA for one test.
pub struct Pki {
    pub ca: Ca,
}

/// A certificate as the snapshot carries it, and its leaf as issued.
pub struct Issued {
    pub cert: Cert,
    pub leaf: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            ca: Ca::generate("tls-test").expect("CA"),
        }
    }

    /// A front-door certificate naming `hosts`; with `default`, the snapshot lists it with no
    /// hosts (the certificate for clients that name none or an unknown one).
    pub fn issue(&self, hosts: &[&str], default: bool) -> Issued {
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let not_before = time::OffsetDateTime::now_utc() - BACKDATE;
        let leaf = self
            .ca
            .issue_for_hosts(&names, not_before, 30)
            .expect("issue");
        Issued {
            cert: Cert {
                hosts: if default { Vec::new() } else { names },
                chain_pem: leaf.cert_pem.clone(),
                key_pem: pem("PRIVATE KEY", leaf.key.secret_der()),
            },
            leaf: leaf.chain[0].clone(),
        }
    }
}

/// `der` as PEM.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// `snapshot` with `certs` and request rates high enough that a flood reaches the upstreams.
pub fn with_certs(mut snapshot: Snapshot, certs: Vec<Cert>) -> Snapshot {
    snapshot.certs = certs;
    snapshot.settings.per_client_rate = 1_000_000;
    snapshot.settings.per_client_burst = 1_000_000;
    snapshot
}

/// A front door serving HTTPS on 127.0.0.1.
pub struct TlsDoor {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    _wakes: mpsc::Receiver<String>,
    task: JoinHandle<()>,
}

impl Drop for TlsDoor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsDoor {
    pub async fn start(snapshot: Snapshot) -> TlsDoor {
        let (wake, wakes) = mpsc::channel(16);
        let state = Arc::new(State::new(wake));
        let notes = state.apply(1, snapshot).expect("snapshot");
        assert!(notes.is_empty(), "{notes:?}");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            tls::accept::listen(
                listener,
                serving,
                Arc::default(),
                baton_listen::stderr_log(),
            )
            .await
            .expect("server config");
        });
        TlsDoor {
            addr,
            state,
            _wakes: wakes,
            task,
        }
    }

    /// Sets the instances of `service`.
    pub fn instances(&self, service: &str, list: &[(&str, SocketAddr, bool)]) {
        let list = list
            .iter()
            .map(|(id, addr, ready)| crate::common::instance(id, *addr, *ready))
            .collect();
        assert!(self.state.set_instances(service, list));
    }
}

/// The client's verifier: the chain must lead to the CA and the leaf must cover `verify_as`,
/// whatever name the client asked for (so a test can ask for `unknown.lan` and check that the
/// default certificate came back).
#[derive(Debug)]
struct CoversName {
    inner: Arc<WebPkiServerVerifier>,
    verify_as: ServerName<'static>,
}

impl ServerCertVerifier for CoversName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _asked: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &self.verify_as,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a client says in its hello, and the name the certificate must cover.
#[derive(Clone, Copy)]
pub struct Hello<'a> {
    /// The SNI name, or none sent.
    pub sni: Option<&'a str>,
    pub verify_as: &'a str,
    pub alpn: &'a [&'a [u8]],
}

/// A TLS connection to `addr` from 127.0.0.1, or the handshake's error.
pub async fn connect(
    pki: &Pki,
    addr: SocketAddr,
    hello: Hello<'_>,
) -> std::io::Result<TlsStream<TcpStream>> {
    connect_from(pki, addr, hello, [127, 0, 0, 1]).await
}

/// A TLS connection to `addr` from the loopback address `from`.
pub async fn connect_from(
    pki: &Pki,
    addr: SocketAddr,
    hello: Hello<'_>,
    from: [u8; 4],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.cert_der().clone()).expect("root");
    let provider = baton_cluster::tls::provider();
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .expect("verifier");
    let verify_as = ServerName::try_from(hello.verify_as.to_string()).expect("name");
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(baton_cluster::tls::VERSIONS)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(CoversName { inner, verify_as }))
        .with_no_client_auth();
    config.alpn_protocols = hello.alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_sni = hello.sni.is_some();
    let name =
        ServerName::try_from(hello.sni.unwrap_or(hello.verify_as).to_string()).expect("name");
    let tcp = tcp_from(addr, from).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(PATIENCE, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// A TCP connection to `addr` from the loopback address `from`.
pub async fn tcp_from(addr: SocketAddr, from: [u8; 4]) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(addr).await
}

/// The leaf the server showed.
pub fn leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone()
}

/// The DNS names of a certificate's subject alternative names.
pub fn dns_names(der: &[u8]) -> Vec<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("X.509");
    let san = cert
        .subject_alternative_name()
        .expect("one SAN extension")
        .expect("a SAN extension");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// The ALPN protocol agreed.
pub fn alpn(tls: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

/// An HTTP/1.1 client on `tls`.
pub async fn h1(tls: TlsStream<TcpStream>) -> hyper::client::conn::http1::SendRequest<UpBody> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    sender
}

/// An HTTP/2 client on `tls`.
pub async fn h2(tls: TlsStream<TcpStream>) -> hyper::client::conn::http2::SendRequest<UpBody> {
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// `GET https://host/path` as a request (absolute, so HTTP/2 sends `:authority`; HTTP/1.1
/// gets a `Host` too).
pub fn https_get(host: &str, path: &str) -> Request<UpBody> {
    Request::get(format!("https://{host}{path}"))
        .header("host", host)
        .body(crate::common::text(""))
        .expect("request")
}

/// A response read whole, within [`PATIENCE`].
pub async fn read(response: Response<Incoming>) -> Got {
    let (parts, body) = response.into_parts();
    let bytes = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
