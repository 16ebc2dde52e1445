//! The TLS side of a connection: a handshake within [`HANDSHAKE_TIMEOUT`], then HTTP/2 or
//! HTTP/1.1 as ALPN chose. A client that fails the handshake is closed, costing others nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::TcpStream;

use crate::http::{serve, Scheme};
use crate::state::State;

/// Time a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server config of every HTTPS connection: certificates from the state in force, ALPN
/// `h2` then `http/1.1`, session tickets on.
pub fn server_config(state: &Arc<State>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(super::provider())
        .with_protocol_versions(super::VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(super::certs::Resolver(Arc::clone(state))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

/// [`server_config`] with no session resumption (no tickets, no session cache), so that every
/// handshake is a full one: for the host binary's handshake benchmark, where the other
/// proxies have resumption turned off too. A board keeps resumption.
pub fn server_config_without_resumption(
    state: &Arc<State>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(super::provider())
        .with_protocol_versions(super::VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(super::certs::Resolver(Arc::clone(state))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The builder's ticketer already produces none; no stateful sessions either.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Serves one HTTPS connection: the ClientHello is read first, so that a name with an mTLS
/// route gets the config that asks for a client certificate ([`super::mtls::Configs`]).
pub async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    configs: Arc<super::mtls::Configs>,
    state: Arc<State>,
) {
    let _ = stream.set_nodelay(true);
    let handshake = async {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
                .await?;
        let sni = start
            .client_hello()
            .server_name()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        let config = configs.pick(&state, sni.as_deref());
        let tls = start.into_stream(config).await?;
        Ok::<_, std::io::Error>((tls, sni))
    };
    let (tls, sni) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(done)) => done,
        // A failed or slow handshake: closed.
        Ok(Err(_)) | Err(_) => return,
    };
    let connection = tls.get_ref().1;
    let h2 = connection.alpn_protocol() == Some(b"h2");
    // The handshake verified the chain; only the leaf is read.
    let cert = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| super::client_cert::read(leaf.as_ref()));
    let info = super::client_cert::Peer { sni, cert };
    serve::connection_with(tls, peer, Scheme::Https, h2, state, Some(Arc::new(info))).await;
}

/// Accepts HTTPS connections on `listener` for ever, within the settings' limits.
pub async fn listen(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    stats: Arc<baton_listen::Stats>,
    log: baton_listen::Log,
) -> Result<(), rustls::Error> {
    let config = server_config(&state)?;
    listen_with(listener, config, state, stats, log).await;
    Ok(())
}

/// Accepts HTTPS connections on `listener` with `config` for ever, within the settings' limits.
pub async fn listen_with(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
    state: Arc<State>,
    stats: Arc<baton_listen::Stats>,
    log: baton_listen::Log,
) {
    let limits = serve::limits(&state.active().settings);
    let configs = Arc::new(super::mtls::Configs::new(config));
    baton_listen::serve(
        listener,
        "front door (https)",
        limits,
        stats,
        log,
        move |stream, peer| connection(stream, peer, Arc::clone(&configs), Arc::clone(&state)),
    )
    .await;
}
