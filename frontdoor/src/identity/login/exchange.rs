//! The token request of a sign-in (RFC 6749 section 4.1.3, with PKCE's `code_verifier`): one
//! POST to the issuer's token endpoint over HTTPS, the client authenticated with HTTP Basic
//! (`client_secret_basic`), 5 s in all, the answer bounded to 64 KiB and only its `id_token`
//! used. The issuer's certificate is checked against Mozilla's roots plus the card's `ca`.
//!
//! This is a minimal client of its own (one request per connection, no redirects, no pool):
//! sign-ins are rare next to proxied requests, and the token endpoint must not be able to
//! steer the front door elsewhere.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::flow::form;

/// The whole exchange, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the token endpoint's answer.
pub const MAX_ANSWER: usize = 64 * 1024;

/// Why the exchange gave no ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The issuer refused the code (`invalid_grant` and the like): the browser is answered 401.
    Refused(String),
    /// The issuer could not be asked or answered nonsense: 502.
    Unreachable(String),
}

/// The TLS settings for the issuer: Mozilla's roots plus the PEM certificates of `ca_pem`.
/// The notes name certificates of `ca_pem` that could not be used.
pub fn client_config(ca_pem: Option<&str>) -> (Arc<ClientConfig>, Vec<String>) {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut notes = Vec::new();
    if let Some(pem) = ca_pem {
        for (i, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
            let added = cert
                .map_err(|e| e.to_string())
                .and_then(|c| roots.add(c).map_err(|e| e.to_string()));
            if let Err(e) = added {
                notes.push(format!(
                    "the issuer's CA file: certificate {i} is not used ({e})"
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable!("ring supports the default versions"));
    (Arc::new(config), notes)
}

/// What one token request sends.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// The token endpoint.
    pub endpoint: &'a str,
    /// The client id and secret.
    pub client_id: &'a str,
    /// The secret.
    pub client_secret: &'a str,
    /// The code from the callback.
    pub code: &'a str,
    /// The redirect URI the authorization request named.
    pub redirect_uri: &'a str,
    /// The PKCE verifier of the sign-in.
    pub verifier: &'a str,
}

/// Trades the code for an ID token.
pub async fn id_token(tls: Arc<ClientConfig>, req: TokenRequest<'_>) -> Result<String, Failed> {
    match tokio::time::timeout(TIMEOUT, exchange(tls, &req)).await {
        Ok(result) => result,
        Err(_) => Err(Failed::Unreachable(format!(
            "the token endpoint did not answer within {} s",
            TIMEOUT.as_secs()
        ))),
    }
}

async fn exchange(tls: Arc<ClientConfig>, req: &TokenRequest<'_>) -> Result<String, Failed> {
    let down = |why: String| Failed::Unreachable(format!("the token endpoint: {why}"));
    let uri: Uri = req.endpoint.parse().map_err(|_| down("not a URL".into()))?;
    let host = uri
        .host()
        .ok_or_else(|| down("no host".into()))?
        .to_string();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(down("not http(s)".into())),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host.trim_matches(|c| c == '[' || c == ']').to_string();
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| down(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", req.code),
        ("redirect_uri", req.redirect_uri),
        ("code_verifier", req.verifier),
    ]);
    // RFC 6749 section 2.3.1: id and secret are form-encoded before Basic.
    let basic = base64(
        format!(
            "{}:{}",
            super::flow::encode(req.client_id),
            super::flow::encode(req.client_secret)
        )
        .as_bytes(),
    );
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    let request = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(HOST, authority)
        .header(AUTHORIZATION, format!("Basic {basic}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| down(e.to_string()))?;
    let (status, answer) = if https {
        let name = ServerName::try_from(bare).map_err(|_| down("a bad host name".into()))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| down(format!("TLS: {e}")))?;
        send(stream, request).await.map_err(down)?
    } else {
        send(tcp, request).await.map_err(down)?
    };
    let json: serde_json::Value = serde_json::from_slice(&answer)
        .map_err(|_| down(format!("status {status}, and the answer is not JSON")))?;
    if !(200..300).contains(&status) {
        let error = json.get("error").and_then(|e| e.as_str()).unwrap_or("?");
        let text: String = error.chars().take(100).collect();
        return Err(Failed::Refused(format!(
            "the identity provider refused the code ({status} {text:?})"
        )));
    }
    json.get("id_token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| down("the answer has no id_token".into()))
}

/// One request on `io`, and the status and body of its answer (bounded).
async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string());
    let result = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|b| (status, b.to_bytes()))
                .map_err(|e| format!("the answer: {e}"))
        }
        Err(e) => Err(e),
    };
    conn.abort();
    result
}

/// Standard base64 with padding (RFC 4648 section 4), as HTTP Basic needs.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn basic_credentials_are_standard_base64() {
        // RFC 7617 section 2's example.
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
