//! TLS on the API's port, and what plain HTTP on the same port still gets.
//!
//! A connection whose first byte is a TLS handshake record (`0x16`) is a TLS connection: it is
//! served the whole API once the handshake is done. Any other first byte is plain HTTP, which is
//! answered by [`plain_router`] alone: `GET /v1/health`, and a `308` to the same URL over
//! `https://` for everything else, so the token never has to cross the LAN in clear.
//!
//! [`setup`] builds the acceptor from the cluster CA on the config partition
//! ([`crate::board::tls`]); a card without a CA (written before it existed) serves plain HTTP as
//! before, and says so on the console and in `/v1/status`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_api::{ApiTls, Health};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::board::console::Console;
use crate::board::status::BoardStatus;
use crate::board::tls::{load_ca, server_config, BoardCert};

/// The first byte of a TLS handshake record.
const HANDSHAKE: u8 = 0x16;

/// How long a client has to send its first byte and to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for the API from the CA on the config partition at `config_dir`, or `None`
/// (plain HTTP) with the reason; either way the outcome is recorded in `state` for
/// `/v1/status` and said on `console`.
pub fn setup(
    config_dir: &Path,
    state: &Arc<BoardStatus>,
    console: &Console,
) -> Option<TlsAcceptor> {
    let outcome = load_ca(config_dir).and_then(|ca| match ca {
        None => Err(format!(
            "no {} on the config partition",
            baton_cluster::tls::CA_CERT_FILE
        )),
        Some(ca) => server_config(BoardCert::new(ca, Arc::clone(state))?),
    });
    match outcome {
        Ok(config) => {
            state.set_api_tls(ApiTls {
                enabled: true,
                reason: None,
            });
            console.line("API: TLS with a certificate issued from the cluster CA");
            Some(TlsAcceptor::from(config))
        }
        Err(reason) => {
            console.line(format_args!("API: plain HTTP, without TLS: {reason}"));
            state.set_api_tls(ApiTls {
                enabled: false,
                reason: Some(reason),
            });
            None
        }
    }
}

/// An accepted connection: TLS, or plain HTTP.
#[derive(Debug)]
pub enum Conn {
    /// A TLS connection whose handshake is done.
    Tls(Box<TlsStream<TcpStream>>),
    /// A connection that did not start with a TLS handshake.
    Plain(TcpStream),
}

impl Conn {
    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }
}

/// Tells TLS from plain HTTP by the first byte (without consuming it) and completes the TLS
/// handshake, each within [`HANDSHAKE_TIMEOUT`].
pub async fn accept(stream: TcpStream, acceptor: &TlsAcceptor) -> io::Result<Conn> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first))
        .await
        .map_err(|_| timed_out())??;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if first[0] != HANDSHAKE {
        return Ok(Conn::Plain(stream));
    }
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| timed_out())??;
    Ok(Conn::Tls(Box::new(tls)))
}

/// What plain HTTP gets on a port that speaks TLS: `GET /v1/health`, and a redirect to
/// `https://` for everything else (a request without a usable `Host` gets a 400 that says so).
pub fn plain_router() -> Router {
    Router::new()
        .route("/v1/health", get(|| async { Json(Health { ok: true }) }))
        .fallback(redirect)
}

async fn redirect(headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_host(h));
    let Some(host) = host else {
        return (
            StatusCode::BAD_REQUEST,
            Json(baton_api::ApiError::new(
                "this port speaks TLS: use https:// (plain HTTP answers only GET /v1/health)",
            )),
        )
            .into_response();
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("https://{host}{path}"))],
        Json(baton_api::ApiError::new(
            "this port speaks TLS: use https://",
        )),
    )
        .into_response()
}

/// A `Host` header worth echoing into a `Location`: a name or address with an optional port.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
