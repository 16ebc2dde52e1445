//! HTTPS requests the front door makes itself: the identity provider's key set and discovery
//! document ([`crate::idp`]), and the token endpoint of a browser sign-in
//! ([`Client::post_form`]). Everything that answers is outside the cluster, so every exchange
//! is bounded:
//!
//! - `https://` only ([`target`]), verified against Mozilla's roots (the `webpki-roots`
//!   crate) plus the optional `[front_door.oidc] ca` file the init hands over;
//! - [`TIMEOUT`] for the whole exchange (name lookup, connect, handshake, request, answer);
//! - at most [`MAX_BODY`] bytes of answer, refused from `Content-Length` before reading;
//! - redirects are answered with an error, never followed (a key set must come from the URL
//!   configured, not from wherever the server points);
//! - one connection per request (`Connection: close`): these requests are rare.
//!
//! Names are resolved with the system's resolver (`getaddrinfo` through tokio), which reads the
//! `/etc/resolv.conf` the init keeps: the front door's mount namespace keeps `/etc`.

pub mod form;
mod roots;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT,
};
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

pub use target::Target;

/// The longest a whole exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The longest answer body read.
pub const MAX_BODY: usize = 64 * 1024;
/// Addresses of one name tried, at most.
const MAX_ADDRESSES: usize = 4;

/// An answer that was read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its `Content-Type`, when it had a readable one.
    pub content_type: Option<String>,
    /// Its body, at most [`MAX_BODY`] bytes.
    pub body: Bytes,
}

/// Why an exchange failed; the text names the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {why}")]
pub struct Error {
    /// The URL asked for.
    pub url: String,
    /// What went wrong.
    pub why: Why,
}

/// What went wrong in an exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Why {
    /// The URL cannot be fetched.
    #[error("{0}")]
    Url(String),
    /// The name did not resolve, or no address took the connection.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (an unknown issuer, a name the certificate does not cover...).
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered a redirect, which is not followed.
    #[error("answered {status} (a redirect to {location:?}), which is not followed")]
    Redirect {
        /// The status.
        status: u16,
        /// Where it pointed.
        location: String,
    },
    /// The server answered a status the caller does not take.
    #[error("answered {0}")]
    Status(u16),
    /// The body is longer than the bound.
    #[error("the answer is longer than {max} bytes")]
    TooBig {
        /// The bound.
        max: usize,
    },
    /// The exchange took longer than the bound.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}

/// An HTTPS client with the front door's bounds.
#[derive(Clone)]
pub struct Client {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_body: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client trusting Mozilla's roots and the certificates of `ca_pem` (the card's `ca`
    /// file). Certificates of `ca_pem` that cannot be used are left out and named in the notes:
    /// fewer roots can only refuse more, never trust more.
    pub fn new(ca_pem: Option<&str>) -> (Client, Vec<String>) {
        let (tls, notes) = roots::config(ca_pem);
        let client = Client {
            tls: Arc::new(tls),
            timeout: TIMEOUT,
            max_body: MAX_BODY,
        };
        (client, notes)
    }

    /// The same client with another time bound (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// GETs `url` asking for JSON; only a `200` is an answer (anything else is an error).
    pub async fn get_json(&self, url: &str) -> Result<Answer, Error> {
        let answer = self.exchange(url, Method::GET, None, None).await?;
        if answer.status != 200 {
            return Err(Error {
                url: url.to_string(),
                why: Why::Status(answer.status),
            });
        }
        Ok(answer)
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded` to `url`, with HTTP basic
    /// credentials (`(client_id, client_secret)`, each form-encoded first as RFC 6749 section
    /// 2.3.1 says) when given. Any status but a redirect is an answer: a token endpoint says
    /// why it refused in a `400` with a JSON body (RFC 6749 section 5.2), which the caller
    /// reads.
    pub async fn post_form(
        &self,
        url: &str,
        basic_auth: Option<(&str, &str)>,
        fields: &[(&str, &str)],
    ) -> Result<Answer, Error> {
        let body = form::encode(fields);
        let auth = basic_auth.map(|(id, secret)| form::basic(id, secret));
        self.exchange(url, Method::POST, auth, Some(body)).await
    }

    async fn exchange(
        &self,
        url: &str,
        method: Method,
        authorization: Option<String>,
        form: Option<String>,
    ) -> Result<Answer, Error> {
        let error = |why| Error {
            url: url.to_string(),
            why,
        };
        let target = Target::parse(url).map_err(|e| error(Why::Url(e)))?;
        let exchange = self.exchange_with(&target, method, authorization, form);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer.map_err(error),
            Err(_) => Err(error(Why::Timeout(self.timeout))),
        }
    }

    async fn exchange_with(
        &self,
        target: &Target,
        method: Method,
        authorization: Option<String>,
        form: Option<String>,
    ) -> Result<Answer, Why> {
        let tcp = connect(target).await?;
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| Why::Url(format!("host {:?}: {e}", target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, tcp)
            .await
            .map_err(|e| Why::Tls(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Why::Http(e.to_string()))?;
        // The connection's task ends with the exchange (Connection: close) or with the
        // timeout, which drops it.
        let driver = tokio::spawn(conn);
        let answer = self
            .request(&mut sender, target, method, authorization, form)
            .await;
        driver.abort();
        answer
    }

    async fn request(
        &self,
        sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        target: &Target,
        method: Method,
        authorization: Option<String>,
        form: Option<String>,
    ) -> Result<Answer, Why> {
        let mut req = Request::builder()
            .method(method)
            .uri(target.path_and_query.as_str())
            .header(HOST, target.authority.as_str())
            .header(USER_AGENT, "baton-front-door")
            .header(ACCEPT, "application/json")
            .header(CONNECTION, "close");
        if let Some(auth) = authorization {
            req = req.header(AUTHORIZATION, auth);
        }
        let body = match form {
            Some(form) => {
                req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(form)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| Why::Http(e.to_string()))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| Why::Http(e.to_string()))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            return Err(Why::Redirect {
                status: status.as_u16(),
                location,
            });
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(Why::TooBig { max: self.max_body });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect());
        let body = Limited::new(response.into_body(), self.max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    Why::TooBig { max: self.max_body }
                } else {
                    Why::Http(e.to_string())
                }
            })?
            .to_bytes();
        Ok(Answer {
            status: status.as_u16(),
            content_type,
            body,
        })
    }
}

/// A connection to the first of the target's addresses that takes one.
async fn connect(target: &Target) -> Result<TcpStream, Why> {
    let addresses = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| Why::Connect(format!("{}: {e}", target.host)))?;
    let mut last = format!("{} resolves to no address", target.host);
    for addr in addresses.take(MAX_ADDRESSES) {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(Why::Connect(last))
}
