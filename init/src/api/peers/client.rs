//! A board's requests to a peer's `/v1/peer/` routes: one HTTP/1.1 GET, over TLS that trusts
//! the cluster CA (or plain TCP on a card without one), whose answer is read line by line.
//! Everything is bounded: [`CONNECT`] to connect and get the answer's head, [`IDLE`] between
//! two reads of the body (the peer sends a line every [`super::super::events::KEEP_ALIVE`]),
//! and [`MAX_LINE`] bytes a line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{header, Request, StatusCode};
use futures_util::StreamExt as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use crate::cluster::peer_read::PeerApi;

/// To connect, shake hands and get the answer's head.
pub const CONNECT: Duration = Duration::from_secs(5);
/// The longest silence between two reads of an answer.
pub const IDLE: Duration = Duration::from_secs(30);
/// The longest line read from a peer: a log line of the supervisor's largest
/// (`logs::MAX_LINE`, 8 KiB) in JSON, where a control byte takes 6 bytes, with room to spare.
pub const MAX_LINE: usize = 64 * 1024;

/// Why a request to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer has no such thing (a service it does not run).
    #[error("not found")]
    NotFound,
    /// Anything else, in words.
    #[error("{0}")]
    Failed(String),
}

fn too_long() -> Error {
    failed("answer", format_args!("a line over {MAX_LINE} bytes"))
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Failed(format!("{what}: {e}"))
}

/// An answer being read, line by line.
pub struct Lines {
    body: BodyDataStream,
    buf: Vec<u8>,
    /// Where the next line starts in `buf` (what is before was handed out): the buffer is
    /// compacted once per chunk, not once per line.
    at: usize,
    /// The connection's task, ended with the answer.
    conn: AbortHandle,
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Asks `peer` for `path` (with its query) with the read key `key`, passing `last_event_id` on.
pub async fn get(
    peer: &PeerApi,
    tls: Option<&Arc<rustls::ClientConfig>>,
    key: &str,
    path: &str,
    last_event_id: Option<&str>,
) -> Result<Lines, Error> {
    let mut request = Request::get(path)
        .header(header::HOST, peer.addr.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::USER_AGENT, "baton-peer");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let request = request
        .body(Body::empty())
        .map_err(|e| failed("request", e))?;
    let head = async {
        let tcp = TcpStream::connect(peer.addr)
            .await
            .map_err(|e| failed("connect", e))?;
        let _ = tcp.set_nodelay(true);
        match tls {
            Some(config) => {
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(server_name(peer.addr), tcp)
                    .await
                    .map_err(|e| failed("TLS", e))?;
                exchange(tls, request).await
            }
            None => exchange(tcp, request).await,
        }
    };
    let (status, body, conn) = tokio::time::timeout(CONNECT, head)
        .await
        .map_err(|_| failed("no answer", format_args!("{} s", CONNECT.as_secs())))??;
    let mut lines = Lines {
        body: body.into_data_stream(),
        buf: Vec::new(),
        at: 0,
        conn,
    };
    match status {
        StatusCode::OK => Ok(lines),
        StatusCode::NOT_FOUND => Err(Error::NotFound),
        other => {
            // The problem's text, if it comes at once and is short.
            let said = tokio::time::timeout(Duration::from_secs(1), lines.next())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
                .unwrap_or_default();
            let said: String = said.chars().take(200).collect();
            Err(Error::Failed(
                format!("HTTP {other} {said}").trim().to_string(),
            ))
        }
    }
}

/// The name TLS is told: the peer's address (the cluster CA's verifier checks the chain, not
/// the name, since a board's address is not in its certificate).
fn server_name(addr: SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}

async fn exchange<IO>(
    io: IO,
    request: Request<Body>,
) -> Result<(StatusCode, Body, AbortHandle), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| failed("HTTP", e))?;
    let conn = tokio::spawn(conn).abort_handle();
    let answer = match sender.send_request(request).await {
        Ok(answer) => answer,
        Err(e) => {
            conn.abort();
            return Err(failed("HTTP", e));
        }
    };
    let status = answer.status();
    Ok((status, Body::new(answer.into_body()), conn))
}

impl Lines {
    /// The next line without its ending; `None` at the end of the answer. A line longer than
    /// [`MAX_LINE`], a silence longer than [`IDLE`] or a broken connection is an error.
    pub async fn next(&mut self) -> Result<Option<String>, Error> {
        loop {
            let rest = &self.buf[self.at..];
            if let Some(end) = rest.iter().position(|&b| b == b'\n') {
                if end > MAX_LINE {
                    return Err(too_long());
                }
                let line = String::from_utf8_lossy(&rest[..end]).into_owned();
                self.at += end + 1;
                return Ok(Some(line));
            }
            if rest.len() > MAX_LINE {
                return Err(too_long());
            }
            self.buf.drain(..self.at);
            self.at = 0;
            match tokio::time::timeout(IDLE, self.body.next()).await {
                Err(_) => {
                    return Err(failed(
                        "answer",
                        format_args!("silent for {} s", IDLE.as_secs()),
                    ))
                }
                Ok(None) if self.buf.is_empty() => return Ok(None),
                Ok(None) => return Err(failed("answer", "cut within a line")),
                Ok(Some(Err(e))) => return Err(failed("answer", e)),
                // One chunk at most is added to what is kept (hyper bounds a chunk by its
                // read buffer), and every line taken out is checked.
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
            }
        }
    }
}
