//! A tiny registry for tests, served on a loopback address by a thread, in plain HTTP or in TLS:
//! manifests and blobs from maps, with optional basic or bearer authentication, and a log of the
//! requests it saw. [`Pki`] makes the throwaway CA and server certificate for the TLS case.

use crate::digest::Digest;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A self-signed CA and a server certificate it signed.
pub(crate) struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    /// A new CA and a server certificate for `names` (IP addresses become IP SANs).
    pub fn new(names: &[&str]) -> Pki {
        // Distinct names: a CA with the same name would be a bad signature, not an unknown issuer.
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("baton test CA {serial}"));
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");
        Pki {
            ca_pem: ca.pem(),
            leaf: leaf.der().clone(),
            key: leaf_key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(vec![self.leaf.clone()], key)
                .expect("server certificate");
        Arc::new(config)
    }
}

/// How the fake registry wants clients to authenticate.
#[derive(Clone)]
pub(crate) enum FakeAuth {
    None,
    /// `Authorization: Basic …` must be exactly this.
    Basic(String),
    /// A bearer token from `/token`, which wants this `Authorization` header (if any).
    Bearer {
        token: String,
        basic: Option<String>,
    },
}

/// The registry's content.
#[derive(Clone)]
pub(crate) struct Fake {
    /// Tag or digest -> (content type, bytes).
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    /// Digest -> bytes.
    pub blobs: HashMap<String, Vec<u8>>,
    pub auth: FakeAuth,
    /// The bearer realm to announce instead of this registry's own `/token`.
    pub realm: Option<String>,
}

impl Fake {
    pub fn new(auth: FakeAuth) -> Fake {
        Fake {
            manifests: HashMap::new(),
            blobs: HashMap::new(),
            auth,
            realm: None,
        }
    }

    /// Adds a blob; returns its digest.
    pub fn blob(&mut self, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        self.blobs.insert(digest.to_string(), bytes.to_vec());
        digest
    }

    /// Adds a manifest under its digest and the given tags; returns its digest.
    pub fn manifest(&mut self, media_type: &str, bytes: &[u8], tags: &[&str]) -> Digest {
        let digest = Digest::of(bytes);
        for reference in tags
            .iter()
            .map(|t| t.to_string())
            .chain([digest.to_string()])
        {
            self.manifests
                .insert(reference, (media_type.to_owned(), bytes.to_vec()));
        }
        digest
    }

    /// Serves plain HTTP on 127.0.0.1; returns `host:port` and the request log (`METHOD path auth`).
    pub fn serve(self) -> (String, Arc<Mutex<Vec<String>>>) {
        self.serve_on("127.0.0.1", None)
    }

    /// Serves TLS with `pki`'s server certificate on `ip` (a loopback address); returns
    /// `host:port` and the request log. Handshakes the client refuses are not logged.
    pub fn serve_tls(self, ip: &str, pki: &Pki) -> (String, Arc<Mutex<Vec<String>>>) {
        self.serve_on(ip, Some(pki.server_config()))
    }

    fn serve_on(
        self,
        ip: &str,
        tls: Option<Arc<ServerConfig>>,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{addr}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // A client that stops talking must not block the next one forever.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = match &tls {
                    None => handle(&self, &origin, &thread_log, stream),
                    Some(config) => ServerConnection::new(Arc::clone(config))
                        .map_err(std::io::Error::other)
                        .and_then(|connection| {
                            let mut tls = StreamOwned::new(connection, stream);
                            handle(&self, &origin, &thread_log, &mut tls)?;
                            tls.conn.send_close_notify();
                            tls.flush()
                        }),
                };
            }
        });
        (addr, log)
    }
}

/// Answers one request on `stream`; `origin` is `scheme://host:port`, for the token realm.
fn handle(
    fake: &Fake,
    origin: &str,
    log: &Mutex<Vec<String>>,
    mut stream: impl Read + Write,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_owned();
            }
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    log.lock()
        .expect("log")
        .push(format!("GET {path} {authorization}").trim_end().to_owned());
    drop(reader);
    let (status, headers, body) = answer(fake, origin, &path, &authorization);
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

type Answer = (&'static str, Vec<(&'static str, String)>, Vec<u8>);

fn answer(fake: &Fake, origin: &str, path: &str, authorization: &str) -> Answer {
    let unauthorized = |challenge: String| -> Answer {
        (
            "401 Unauthorized",
            vec![("WWW-Authenticate", challenge)],
            br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec(),
        )
    };
    if let Some(query) = path.strip_prefix("/token?") {
        return match &fake.auth {
            FakeAuth::Bearer { basic, .. }
                if basic.as_deref().is_some_and(|b| b != authorization) =>
            {
                ("401 Unauthorized", vec![], b"bad credentials".to_vec())
            }
            FakeAuth::Bearer { token, .. } if query.contains("scope=repository%3Ahello%3Apull") => {
                (
                    "200 OK",
                    vec![("Content-Type", "application/json".to_owned())],
                    format!(r#"{{"token":"{token}"}}"#).into_bytes(),
                )
            }
            _ => ("400 Bad Request", vec![], b"bad token request".to_vec()),
        };
    }
    match &fake.auth {
        FakeAuth::None => {}
        FakeAuth::Basic(expected) if expected != authorization => {
            return unauthorized(r#"Basic realm="fake""#.to_owned())
        }
        FakeAuth::Bearer { token, .. } if authorization != format!("Bearer {token}") => {
            let realm = fake.realm.clone().unwrap_or(format!("{origin}/token"));
            return unauthorized(format!(
                r#"Bearer realm="{realm}",service="fake",scope="repository:hello:pull""#
            ));
        }
        _ => {}
    }
    let not_found = |code: &str| -> Answer {
        (
            "404 Not Found",
            vec![],
            format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#).into_bytes(),
        )
    };
    if let Some(reference) = path.strip_prefix("/v2/hello/manifests/") {
        return match fake.manifests.get(reference) {
            Some((media_type, bytes)) => (
                "200 OK",
                vec![("Content-Type", media_type.clone())],
                bytes.clone(),
            ),
            None => not_found("MANIFEST_UNKNOWN"),
        };
    }
    if let Some(digest) = path.strip_prefix("/v2/hello/blobs/") {
        return match fake.blobs.get(digest) {
            Some(bytes) => ("200 OK", vec![], bytes.clone()),
            None => not_found("BLOB_UNKNOWN"),
        };
    }
    not_found("NAME_UNKNOWN")
}
