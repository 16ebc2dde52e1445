//! Sending the question and reading the answer, bounded in time ([`super::TIMEOUT`]), size
//! ([`super::MAX_BODY`]) and number ([`super::MAX_CHECKS`]).
//!
//! A URL whose host is a service of the snapshot goes to that service's ready instances through
//! the balancer (least outstanding requests, passive health) and the proxy's connection pool,
//! as requests of routes do; any other host is resolved by the board's resolvers.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::Semaphore;

use super::{Answer, Failure, MAX_BODY, MAX_CHECKS, TIMEOUT};
use crate::proxy::pool::{self, Pool, Sender};
use crate::state::{Active, State};

/// How long a kept connection may take to be ready before a fresh one is made.
const POOLED_READY: Duration = Duration::from_secs(1);
/// Addresses of a resolved host tried at most.
const MAX_ADDRS: usize = 4;

/// Where the question goes.
#[derive(Debug)]
pub struct Target {
    to: To,
    authority: String,
    path: PathAndQuery,
}

#[derive(Debug)]
enum To {
    /// A service of the snapshot; the URL's port, if it named one.
    Service { name: String, port: Option<u16> },
    /// Any other host.
    Host { host: String, port: u16 },
}

impl Target {
    /// Reads `url`; its host is a service when the snapshot lists one of that name.
    pub fn parse(url: &str, active: &Active) -> Result<Target, String> {
        let uri = Uri::try_from(url).map_err(|e| format!("not a URL ({e})"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err("only http:// auth services are supported by this front door".into());
        }
        let authority = uri.authority().ok_or("the URL has no host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let lower = host.to_ascii_lowercase();
        let to = if active.services.contains_key(&lower) {
            To::Service {
                name: lower,
                port: authority.port_u16(),
            }
        } else {
            To::Host {
                host: host.to_string(),
                port: authority.port_u16().unwrap_or(80),
            }
        };
        Ok(Target {
            to,
            authority: authority.as_str().to_string(),
            path,
        })
    }

    /// The URL's `host[:port]`, the `Host` of the question.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    fn request(&self, headers: &HeaderMap) -> Request<crate::http::Body> {
        let mut req = Request::new(crate::http::empty());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = Uri::from(self.path.clone());
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers.clone();
        req
    }
}

/// The places for checks under way, shared by every front door in the process.
fn places() -> &'static Semaphore {
    static PLACES: OnceLock<Semaphore> = OnceLock::new();
    PLACES.get_or_init(|| Semaphore::new(MAX_CHECKS))
}

/// Asks `target` with `headers`, within [`TIMEOUT`] all told.
pub(super) async fn ask(
    state: &State,
    target: &Target,
    headers: HeaderMap,
) -> Result<Answer, Failure> {
    let work = async {
        let _place = places()
            .acquire()
            .await
            .map_err(|_| Failure::Unavailable("the front door is stopping".into()))?;
        match &target.to {
            To::Service { name, port } => via_balancer(state, target, name, *port, &headers).await,
            To::Host { host, port } => {
                via_resolver(&state.pool, target, host, *port, &headers).await
            }
        }
    };
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Unavailable(format!(
            "no whole answer within {} s",
            TIMEOUT.as_secs()
        ))),
    }
}

/// A ready instance of the service `name`, picked as for a route; a connection failure counts
/// against it (passive health) and one other instance is tried.
async fn via_balancer(
    state: &State,
    target: &Target,
    name: &str,
    port: Option<u16>,
    headers: &HeaderMap,
) -> Result<Answer, Failure> {
    let mut avoid: Option<String> = None;
    let mut last = String::new();
    for _ in 0..2 {
        let Some(pick) = state.balancer.pick(name, avoid.as_deref(), Instant::now()) else {
            break;
        };
        let addr = pick.addr();
        if port.is_some_and(|p| p != addr.port()) {
            return Err(Failure::Unavailable(format!(
                "the URL names port {}, but service {name} takes requests on {}",
                port.unwrap_or_default(),
                addr.port()
            )));
        }
        match exchange(&state.pool, addr, target, headers).await {
            Ok((response, sender)) => {
                let inflight = pick.success(Instant::now());
                let answer = read(&state.pool, addr, response, sender).await;
                inflight.end(Instant::now());
                return answer;
            }
            Err(why) => {
                avoid = Some(pick.id().to_string());
                pick.local_failure(Instant::now());
                last = why;
            }
        }
    }
    Err(Failure::Unavailable(if last.is_empty() {
        format!("service {name} has no ready instance")
    } else {
        format!("service {name}: {last}")
    }))
}

/// The host resolved by the board's resolvers; its first few addresses tried in turn.
async fn via_resolver(
    pool: &Pool,
    target: &Target,
    host: &str,
    port: u16,
    headers: &HeaderMap,
) -> Result<Answer, Failure> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::Unavailable(format!("resolving {host}: {e}")))?;
    let mut last = format!("{host} resolves to no address");
    for addr in addrs.take(MAX_ADDRS) {
        match exchange(pool, addr, target, headers).await {
            Ok((response, sender)) => return read(pool, addr, response, sender).await,
            Err(why) => last = why,
        }
    }
    Err(Failure::Unavailable(last))
}

/// The question on a kept connection to `addr`, or, if that fails in any way (it is a GET
/// without a body, so sending it twice is harmless), on a fresh one.
async fn exchange(
    pool: &Pool,
    addr: SocketAddr,
    target: &Target,
    headers: &HeaderMap,
) -> Result<(Response<Incoming>, Sender), String> {
    if let Some(mut sender) = pool.take(addr) {
        if matches!(
            tokio::time::timeout(POOLED_READY, sender.ready()).await,
            Ok(Ok(()))
        ) {
            if let Ok(response) = sender.send_request(target.request(headers)).await {
                return Ok((response, sender));
            }
        }
    }
    let mut sender = pool::connect(addr).await.map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(target.request(headers))
        .await
        .map_err(|e| format!("asking {addr}: {e}"))?;
    Ok((response, sender))
}

/// The answer read whole, at most [`MAX_BODY`] bytes; the connection goes back to the pool
/// when it ended cleanly.
async fn read(
    pool: &Pool,
    addr: SocketAddr,
    response: Response<Incoming>,
    sender: Sender,
) -> Result<Answer, Failure> {
    if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(Failure::BadAnswer("it switched protocols".into()));
    }
    let (parts, body) = response.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_long =
        || Failure::BadAnswer(format!("its body is longer than {} KiB", MAX_BODY / 1024));
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_long());
    }
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_long()),
        Err(e) => return Err(Failure::Unavailable(format!("reading its answer: {e}"))),
    };
    pool.give_back(addr, sender);
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
