//! Serving the API's connections: each accepted connection (through the board's limited accept
//! loop, [`baton_listen`]) gets a task of its own in which it is told TLS from plain
//! HTTP ([`super::tls`]) and hyper serves HTTP/1.1 with bounded headers and a header-read
//! timeout.
//!
//! hyper starts the header-read timer whenever it waits for a request head, so the same timeout
//! closes a connection that sends nothing, one that sends its headers slowly, and a kept-alive
//! connection idle between requests. Bodies are bounded where they are read (the unauthenticated
//! one, `POST /v1/cluster/sync`, with a timeout of its own, see [`super::cluster`]), and every
//! request body is cut when it sends nothing for [`Settings::body_idle`] (a client that
//! announces a body and stalls would otherwise hold its handler for ever).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use baton_frontdoor::proxy::body::Watched;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::tls;

use crate::board::console::Console;
use baton_listen::stall::Stall;
use baton_listen::{self as listen, Limits, Log, Rate, Stats};

/// How the API's connections are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Time for a request head to arrive whole, and for a kept-alive connection to send its next.
    pub header_timeout: Duration,
    /// How long a reply may wait for a client that does not read it.
    pub write_stall: Duration,
    /// How long a request body may go without sending a byte.
    pub body_idle: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Connection limits of the listener.
    pub limits: Limits,
}

impl Default for Settings {
    /// 10 s for a head of at most 16 KiB and 64 headers; 4,096 connections (PID 1's file limit
    /// is raised at boot to allow them), 64 per source, a source opening at most 64 a second
    /// after a burst of 128 (clients behind one NAT, QEMU's user network among them, share a
    /// source).
    fn default() -> Self {
        Settings {
            header_timeout: Duration::from_secs(10),
            write_stall: Duration::from_secs(30),
            body_idle: Duration::from_secs(10),
            max_header_bytes: 16 << 10,
            max_headers: 64,
            limits: Limits {
                max_connections: 4096,
                per_source: 64,
                rate: Rate {
                    burst: 128,
                    per_second: 64,
                },
                max_sources: 8192,
            },
        }
    }
}

/// hyper's read buffer: room for the largest head and a body chunk (its minimum is 8 KiB).
const READ_BUFFER: usize = 64 << 10;

/// Serves `router` on `listener` with `settings` until the task is dropped: over TLS with
/// `tls`, where plain HTTP gets only [`tls::plain_router`]; without it, plain HTTP. Accept
/// failures are reported on `console`.
pub async fn run(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    settings: Settings,
    stats: Arc<Stats>,
    console: Arc<Console>,
) {
    let log: Log = Arc::new(move |message| console.line(message));
    let router = router.layer(middleware::from_fn_with_state(
        settings.body_idle,
        idle_bodies,
    ));
    let plain = tls::plain_router();
    let handle = move |stream: TcpStream, _peer: SocketAddr| {
        let (router, plain, tls) = (router.clone(), plain.clone(), tls.clone());
        async move {
            let Some(acceptor) = tls else {
                return connection(stream, router, settings).await;
            };
            // A client that never finishes its handshake is cut off by accept's timeout.
            let Ok(conn) = tls::accept(stream, &acceptor).await else {
                return;
            };
            let router = if conn.is_tls() { router } else { plain };
            connection(conn, router, settings).await
        }
    };
    listen::serve(listener, "API", settings.limits, stats, log, handle).await;
}

/// Serves HTTP/1.1 on one accepted connection until it closes, fails or times out. Any stream
/// will do (a TLS one wraps the accepted TCP stream here).
pub async fn connection<S>(stream: S, router: Router, settings: Settings)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(READ_BUFFER.max(settings.max_header_bytes))
        .max_header_size(settings.max_header_bytes)
        .max_headers(settings.max_headers)
        .keep_alive(true);
    // A client that stops reading what it asked for is cut off (a followed log may be quiet
    // for hours; one not read for WRITE_STALL ends).
    let stall = Stall::new();
    let stream = stall.watch(stream);
    // Errors here are the client's (reset, timeout, malformed head): nothing to report.
    tokio::select! {
        _ = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router)) => {}
        () = stall.stalled_for(settings.write_stall) => {}
    }
}

/// Gives the request's body an idle timeout: a read that waits longer fails, and the handler
/// answers as for a broken body.
async fn idle_bodies(State(idle): State<Duration>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::new(Watched::new(body, idle, None));
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
