//! The request path: from a client's request to an instance's answer.
//!
//! [`handle`] normalises the host and path, applies the per-client rate, finds the route, sends
//! plain HTTP to HTTPS where the route needs it, refuses routes whose identity check this front
//! door cannot make (fail closed), rewrites the headers and hands the request to [`forward`].

pub mod assert;
pub mod auth;
pub mod body;
pub mod forward;
pub mod forward_auth;
pub mod login;
pub mod mtls;
pub mod pool;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::config::Auth;
use crate::http::headers::{self, REQUEST_ID};
use crate::http::{pages, Body, Scheme};
use crate::route::normalize;
use crate::state::State;

/// The connection a request came on.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The client.
    pub peer: SocketAddr,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// Held by whatever outlives a request on this connection (a joined WebSocket), so the
    /// connection keeps its place in the listener's limits until that ends too.
    pub keep: KeepOpen,
    /// On HTTPS: the name the client asked for and its certificate.
    pub tls: Option<Arc<crate::tls::client_cert::Peer>>,
}

/// A token of a connection still in use; [`KeepOpen::closed`] waits for every copy to go.
#[derive(Debug, Clone)]
pub struct KeepOpen {
    // Never sent on: only its drop matters.
    _sender: tokio::sync::mpsc::Sender<()>,
}

/// The waiting side of [`KeepOpen`].
#[derive(Debug)]
pub struct AllClosed(tokio::sync::mpsc::Receiver<()>);

impl KeepOpen {
    /// A token and the future side that ends when every copy of it is dropped.
    pub fn new() -> (KeepOpen, AllClosed) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (KeepOpen { _sender: tx }, AllClosed(rx))
    }
}

impl AllClosed {
    /// Ends once every copy of the token is dropped.
    pub async fn closed(mut self) {
        // Nothing is ever sent: `recv` ends with `None` when the last sender goes.
        while self.0.recv().await.is_some() {}
    }
}

/// The instance that answered, as a response extension (for the access line).
#[derive(Debug, Clone)]
pub struct Answered(pub String);

/// The service whose route matched, as a response extension (for the access line).
#[derive(Debug, Clone)]
struct Routed(String);

/// Who called (the checked identity's user), as a response extension (for the access line).
#[derive(Debug, Clone)]
struct Caller(String);

/// Answers one request.
pub async fn handle(state: Arc<State>, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    let id = headers::request_id(req.headers());
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let host = req
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| {
            let h = req.headers().get(HOST)?.to_str().ok()?;
            Some(h.to_string())
        })
        .unwrap_or_default();
    let mut response = route_and_forward(&state, &conn, req, &id).await;
    let upgrading = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    headers::strip_hop_by_hop(response.headers_mut(), upgrading);
    if let Some(Routed(service)) = response.extensions_mut().remove::<Routed>() {
        let instance = response.extensions_mut().remove::<Answered>().map(|a| a.0);
        let (status, ms) = (
            response.status().as_u16(),
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        state.tally.add(&service, status, ms);
        state.access.push(crate::control::protocol::AccessLine {
            route: service,
            method,
            host: host.chars().take(255).collect(),
            path,
            status,
            ms,
            // At most 256 characters (1 KiB), within the control channel's bound on texts.
            identity: response
                .extensions_mut()
                .remove::<Caller>()
                .map(|c| c.0.chars().take(256).collect()),
            instance,
            request_id: id.to_str().unwrap_or("-").to_string(),
        });
    }
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

async fn route_and_forward(
    state: &Arc<State>,
    conn: &Conn,
    req: Request<Incoming>,
    id: &HeaderValue,
) -> Response<Body> {
    let html = pages::wants_html(req.headers());
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let Some(authority) = authority else {
        return pages::bad_request(html, "the request names no host");
    };
    let host = match normalize::host(&authority) {
        Ok(host) => host,
        Err(why) => return pages::bad_request(html, &format!("host {authority:?}: {why}")),
    };
    let raw_path = req.uri().path().to_string();
    let path = match normalize::path(&raw_path) {
        Ok(path) => path,
        Err(why) => return pages::bad_request(html, &format!("path: {why}")),
    };
    if !state.rate().admit(conn.peer.ip()) {
        return pages::too_many(html, 1);
    }
    let active = state.active();
    if let Some(answer) = assert::well_known(&active, req.method(), &path.match_path, html) {
        return answer;
    }
    if let Some(answer) = login::own_path(
        state,
        &active,
        conn.scheme,
        &host,
        &req,
        &path.match_path,
        html,
    )
    .await
    {
        return answer;
    }
    let Some(route) = active.table.find(&host, &path.match_path) else {
        return pages::no_route(html, &host, &raw_path);
    };
    let mut response =
        routed_request(state, conn, req, id, html, &host, &path, &active, route).await;
    response
        .extensions_mut()
        .insert(Routed(route.service.clone()));
    response
}

/// The part of a request's way after its route was found.
#[allow(clippy::too_many_arguments)]
async fn routed_request(
    state: &Arc<State>,
    conn: &Conn,
    mut req: Request<Incoming>,
    id: &HeaderValue,
    html: bool,
    host: &str,
    path: &normalize::Normal,
    active: &crate::state::Active,
    route: &crate::config::Route,
) -> Response<Body> {
    let settings = &active.settings;
    if conn.scheme == Scheme::Http
        && settings.redirect_http
        && settings.https_port != 0
        && route.auth != Auth::None
    {
        return pages::redirect(&https_url(host, settings.https_port, req.uri()));
    }
    let trusted = settings
        .trusted_proxies
        .iter()
        .any(|(net, prefix)| in_block(conn.peer.ip(), *net, *prefix));
    // The auth service is asked over the network, so this check is async and apart from
    // `auth::check` (which refuses forward routes: it never lets one through unasked).
    let granted = match route.auth {
        Auth::Forward => {
            match ask_auth_service(state, active, route, conn, &req, host, path, trusted, html)
                .await
            {
                Ok(granted) => Some(granted),
                Err(answer) => return *answer,
            }
        }
        _ => None,
    };
    let checked = match (&granted, route.auth) {
        (Some(granted), _) => Ok(granted.identity.clone()),
        (None, Auth::Mtls) => mtls::check(active, conn, host, html).map(Some),
        (None, Auth::Login) => login::check(state, active, route, &req, html)
            .await
            .map(Some),
        (None, _) => auth::check(state, active, route, req.headers(), html).await,
    };
    let identity = match checked {
        Ok(identity) => identity,
        Err(answer) => return *answer,
    };
    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let idle = Duration::from_millis(settings.idle_timeout_ms);
    let (mut upstream, request_done) = match upstream_request(req, &path.path, id, upgrade, idle) {
        Ok(r) => r,
        Err(why) => return pages::bad_request(html, &why),
    };
    headers::set_forwarded(
        upstream.headers_mut(),
        conn.peer.ip(),
        trusted,
        conn.scheme,
        host,
    );
    if let Some(granted) = &granted {
        granted.scrub(upstream.headers_mut());
    }
    if let Some(identity) = &identity {
        auth::set_identity(upstream.headers_mut(), identity);
        assert::set(upstream.headers_mut(), active, route, identity);
    }
    if let Some(granted) = &granted {
        granted.copy(upstream.headers_mut());
    }
    let call = forward::Call {
        state,
        route,
        html,
        idle,
        client_upgrade,
        keep: conn.keep.clone(),
        request_done,
    };
    let mut response = forward::forward(call, upstream).await;
    if let Some(identity) = identity {
        response.extensions_mut().insert(Caller(identity.sub));
    }
    response
}

/// Asks the route's auth service about `req` (see [`forward_auth`]).
#[allow(clippy::too_many_arguments)]
async fn ask_auth_service(
    state: &Arc<State>,
    active: &crate::state::Active,
    route: &crate::config::Route,
    conn: &Conn,
    req: &Request<Incoming>,
    host: &str,
    path: &normalize::Normal,
    trusted: bool,
    html: bool,
) -> Result<forward_auth::Granted, Box<Response<crate::http::Body>>> {
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{}?{q}", path.path),
        None => path.path.clone(),
    };
    let origin = forward_auth::Origin {
        headers: req.headers(),
        peer: conn.peer.ip(),
        trusted,
        scheme: conn.scheme,
        host,
        method: req.method(),
        path_and_query: &path_and_query,
    };
    forward_auth::check(state, active, route.forward.as_ref(), &origin, html).await
}

/// The request as the instance gets it: HTTP/1.1, origin-form with the normalised path and
/// the query as sent, hop-by-hop headers removed, the request id set, the body streamed with
/// the idle timeout. The flag turns true once its body was sent whole (only then may the
/// connection serve another request).
fn upstream_request(
    req: Request<Incoming>,
    path: &str,
    id: &HeaderValue,
    upgrade: bool,
    idle: Duration,
) -> Result<(Request<Body>, Arc<AtomicBool>), String> {
    let target = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let pq = PathAndQuery::try_from(target.as_str()).map_err(|e| format!("target: {e}"))?;
    let (parts, body) = req.into_parts();
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let on_end: body::OnEnd = Box::new(move |clean| flag.store(clean, Ordering::SeqCst));
    let mut out = Request::new(body::Watched::new(body, idle, Some(on_end)).boxed_unsync());
    *out.method_mut() = parts.method;
    *out.uri_mut() = Uri::from(pq);
    *out.version_mut() = Version::HTTP_11;
    *out.headers_mut() = parts.headers;
    headers::strip_hop_by_hop(out.headers_mut(), upgrade);
    out.headers_mut().insert(REQUEST_ID, id.clone());
    Ok((out, done))
}

/// `https://host[:port]/path?query` for a redirect.
fn https_url(host: &str, port: u16, uri: &Uri) -> String {
    let pq = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    if port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{port}{pq}")
    }
}

/// Whether `ip` is in `net/prefix`.
fn in_block(ip: std::net::IpAddr, net: std::net::IpAddr, prefix: u8) -> bool {
    use std::net::IpAddr;
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Seconds since 1970 by this board's clock (0 before it), for token and cookie times.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
