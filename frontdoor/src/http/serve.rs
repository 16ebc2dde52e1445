//! Serving client connections: HTTP/1.1 (with protocol switches) on plain HTTP, HTTP/1.1 and
//! HTTP/2 on TLS, with the limits a listener facing the LAN needs: the accept loop's caps
//! ([`baton_listen::serve`]), a time limit on reading a request head (which also closes idle
//! keep-alive connections), a bound on its size (hyper answers 431 past it), HTTP/2 stream and
//! header-list bounds with hyper's reset-flood limits left on, and a limit on how long a client
//! may stop reading what it is sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use super::quiet::{Counted, Requests, QUIET_LIMIT};
use super::Scheme;
use crate::proxy::{self, Conn, KeepOpen};
use crate::state::State;

/// Time to send a request head, and the longest idle time between requests on one connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (HTTP/1.1 read buffer; HTTP/2 header list).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 100;
/// HTTP/2 streams open at once on one connection.
pub const MAX_STREAMS: u32 = 100;
/// Bytes an HTTP/2 stream may have queued for sending.
pub const MAX_SEND_BUF: usize = 64 * 1024;
/// How long a client may leave what it is sent unread.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Serves one client connection until it closes.
pub async fn connection<I>(io: I, peer: SocketAddr, scheme: Scheme, h2: bool, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    connection_with(io, peer, scheme, h2, state, None).await;
}

/// [`connection`] for a TLS connection whose name and client certificate are `tls`.
pub async fn connection_with<I>(
    io: I,
    peer: SocketAddr,
    scheme: Scheme,
    h2: bool,
    state: Arc<State>,
    tls: Option<Arc<crate::tls::client_cert::Peer>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (keep, all_closed) = KeepOpen::new();
    let conn = Conn {
        peer,
        scheme,
        keep,
        tls,
    };
    let requests = Requests::new();
    let counting = Arc::clone(&requests);
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        let conn = conn.clone();
        let guard = counting.begin();
        async move {
            let response = proxy::handle(state, conn, req).await;
            Ok::<_, Infallible>(response.map(|body| Counted::new(body, guard)))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(u32::try_from(MAX_HEAD).unwrap_or(u32::MAX))
        .max_send_buf_size(MAX_SEND_BUF);
    let builder = if h2 { builder } else { builder.http1_only() };
    let stall = baton_listen::stall::Stall::new();
    let io = TokioIo::new(stall.watch(io));
    let serving = builder.serve_connection_with_upgrades(io, service);
    tokio::select! {
        _ = serving => {}
        () = stall.stalled_for(STALL_LIMIT) => {}
        () = requests.quiet_for(QUIET_LIMIT) => {}
    }
    // A WebSocket joined on this connection keeps its place in the listener's limits.
    all_closed.closed().await;
}

/// Accepts connections on `listener` for ever, within the limits of the settings in force when
/// it starts, and serves each (HTTP/1.1 only: TLS and HTTP/2 come through [`connection`] with
/// `h2` from the TLS layer).
pub async fn listen(
    listener: tokio::net::TcpListener,
    scheme: Scheme,
    state: Arc<State>,
    stats: Arc<baton_listen::Stats>,
    log: baton_listen::Log,
) {
    let limits = limits(&state.active().settings);
    let name = format!("front door ({})", scheme.as_str());
    baton_listen::serve(listener, &name, limits, stats, log, move |stream, peer| {
        let _ = stream.set_nodelay(true);
        connection(stream, peer, scheme, false, Arc::clone(&state))
    })
    .await;
}

/// The accept loop's limits from the settings.
pub fn limits(settings: &crate::config::Settings) -> baton_listen::Limits {
    baton_listen::Limits {
        max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
        per_source: usize::try_from(settings.per_client_connections).unwrap_or(usize::MAX),
        rate: baton_listen::Rate {
            burst: settings.per_client_burst,
            per_second: settings.per_client_rate,
        },
        max_sources: usize::try_from(settings.max_connections)
            .unwrap_or(usize::MAX)
            .saturating_mul(2),
    }
}
