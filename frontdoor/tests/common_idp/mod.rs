//! An identity provider on loopback for the provider link's tests: HTTPS with a certificate for
//! `localhost` from a test CA, serving a key set and a discovery document whose answers a test
//! can change (a new set, a body too large, a redirect, no answer at all), counting the
//! requests for the key set, and echoing form posts.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use baton_cluster::tls::ca::Ca;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the key set's URL answers.
#[derive(Debug, Clone)]
pub enum Jwks {
    /// 200 with this body.
    Serve(String),
    /// Never: the request hangs.
    Hang,
    /// A redirect to this URL.
    Redirect(String),
}

struct Shared {
    jwks: Mutex<Jwks>,
    discovery: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
}

/// The provider.
pub struct Provider {
    pub addr: SocketAddr,
    /// The test CA's certificate, PEM (the snapshot's `ca_pem`).
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// Starts serving `jwks` at `/jwks`.
    pub async fn start(jwks: Jwks) -> Provider {
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
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            jwks: Mutex::new(jwks),
            discovery: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| answer(Arc::clone(&shared), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Provider {
            addr,
            ca_pem: ca.cert_pem().to_string(),
            shared,
            task,
        }
    }

    /// `https://localhost:PORT` (the issuer).
    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// A URL of `path` on the provider.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Changes how the key set's URL answers.
    pub fn set_jwks(&self, jwks: Jwks) {
        *self.shared.jwks.lock().expect("lock") = jwks;
    }

    /// Serves `doc` as the discovery document.
    pub fn set_discovery(&self, doc: String) {
        *self.shared.discovery.lock().expect("lock") = Some(doc);
    }

    /// Requests for the key set so far.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// Stops serving: connections are refused from now on.
    pub fn stop(&self) {
        self.task.abort();
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .expect("response")
}

async fn answer(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let response = match path.as_str() {
        "/jwks" => {
            shared.jwks_hits.fetch_add(1, Ordering::SeqCst);
            let jwks = shared.jwks.lock().expect("lock").clone();
            match jwks {
                Jwks::Serve(body) => reply(200, body),
                Jwks::Hang => std::future::pending().await,
                Jwks::Redirect(to) => Response::builder()
                    .status(302)
                    .header("location", to)
                    .body(Full::new(Bytes::new()))
                    .expect("response"),
            }
        }
        "/.well-known/openid-configuration" => {
            match shared.discovery.lock().expect("lock").clone() {
                Some(doc) => reply(200, doc),
                None => reply(404, "{}"),
            }
        }
        // Echoes a form post: what a token endpoint would read.
        "/token" => {
            let headers = req.headers().clone();
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let (method, ctype, auth) = (
                req.method().to_string(),
                header("content-type"),
                header("authorization"),
            );
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let body = String::from_utf8_lossy(&body.unwrap_or_default()).to_string();
            let echo = serde_json::json!({
                "method": method, "content_type": ctype, "authorization": auth, "body": body,
            });
            reply(400, echo.to_string())
        }
        _ => reply(404, "{}"),
    };
    Ok(response)
}
