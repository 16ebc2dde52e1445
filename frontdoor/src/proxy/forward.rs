//! Passing one request to an instance of its route's service and its answer back.
//!
//! The least-loaded ready instance is asked ([`Balancer::pick`]). A request that never left
//! (the connection could not be made, or a pooled one turned out closed) is tried again, on a
//! fresh connection or another instance, whatever its method: nothing was sent. One that was
//! sent and failed before the answer's head is tried again on another instance only when it is
//! idempotent and has no body, and only within the retry budget, so retries cannot pile up on a
//! struggling service. Connection failures count against the instance (passive health); an
//! instance's own error answers (5xx) do not: they are the application's.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use std::time::Instant;

use super::body::{OnEnd, Watched};
use super::pool::{self, Sender};
use super::upgrade;
use crate::config::Route;
use crate::http::{pages, Body};
use crate::state::State;
use crate::upstream::Pick;

/// How long a kept connection may take to be ready for a request before a fresh one is made.
const POOLED_READY: Duration = Duration::from_secs(1);

/// What a request needs besides itself.
pub struct Call<'a> {
    /// The shared state.
    pub state: &'a Arc<State>,
    /// The route that matched.
    pub route: &'a Route,
    /// Whether error pages are HTML.
    pub html: bool,
    /// Idle timeout of bodies and upgraded streams.
    pub idle: Duration,
    /// The client's side of a protocol switch, when the request asks for one.
    pub client_upgrade: Option<OnUpgrade>,
    /// The client connection's token, held by a joined protocol switch.
    pub keep: super::KeepOpen,
    /// Whether the request's body was sent whole (the connection is reused only then).
    pub request_done: Arc<std::sync::atomic::AtomicBool>,
}

/// How one attempt ended.
enum Attempt {
    /// The instance answered.
    Answered(Response<Incoming>, Sender, Pick),
    /// Nothing was sent: try again with the request given back.
    Unsent(Request<Body>, Pick, String),
    /// The request was sent (at least partly) and failed before the answer's head.
    Failed(Pick, String),
    /// The route's timeout passed before the answer's head.
    TimedOut,
}

/// Forwards `request` (already rewritten for the instance) and returns the answer to give the
/// client.
pub async fn forward(mut call: Call<'_>, request: Request<Body>) -> Response<Body> {
    let state = call.state;
    let service = call.route.service.as_str();
    let replayable = is_idempotent(request.method()) && request.body().is_end_stream();
    let template = (
        request.method().clone(),
        request.uri().clone(),
        request.headers().clone(),
    );
    let mut request = Some(request);
    let mut avoid: Option<String> = None;
    let mut retried = false;
    let mut _permit = None;
    loop {
        let pick = match state
            .balancer
            .pick(service, avoid.as_deref(), Instant::now())
        {
            Some(pick) => pick,
            None if avoid.is_none() => match wait_for_instance(&call).await {
                Ok(pick) => pick,
                Err(response) => return response,
            },
            // The retry found no other instance: the first failure stands.
            None => return pages::bad_gateway(call.html, &format!("{service} failed to answer")),
        };
        let Some(req) = request.take() else {
            return pages::bad_gateway(call.html, "the request could not be sent again");
        };
        let outcome = attempt(&call, pick, req).await;
        let (pick, why) = match outcome {
            Attempt::Answered(response, sender, pick) => {
                return answer(&mut call, response, sender, pick);
            }
            Attempt::TimedOut => {
                return pages::gateway_timeout(call.html, service, call.route.timeout_ms);
            }
            Attempt::Unsent(req, pick, why) => {
                request = Some(req);
                (pick, why)
            }
            Attempt::Failed(pick, why) => {
                if replayable {
                    // No body: nothing is left to send after the head.
                    call.request_done
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    let (method, uri, headers) = template.clone();
                    let mut again = Request::new(crate::http::empty());
                    *again.method_mut() = method;
                    *again.uri_mut() = uri;
                    *again.headers_mut() = headers;
                    request = Some(again);
                }
                (pick, why)
            }
        };
        let id = pick.id().to_string();
        pick.local_failure(Instant::now());
        if retried || request.is_none() {
            return pages::bad_gateway(call.html, &format!("{service}: {why}"));
        }
        match state.balancer.retry_permit() {
            Some(permit) => _permit = Some(permit),
            None => return pages::bad_gateway(call.html, &format!("{service}: {why}")),
        }
        retried = true;
        avoid = Some(id);
    }
}

/// One attempt on the instance `pick`: a pooled connection if one is open (a closed one is
/// replaced by a fresh connection once), then the request, within the route's timeout.
async fn attempt(call: &Call<'_>, pick: Pick, req: Request<Body>) -> Attempt {
    let addr = pick.addr();
    let pool = &call.state.pool;
    let mut sender = match pool.take(addr) {
        Some(sender) => sender,
        None => match pool::connect(addr).await {
            Ok(sender) => sender,
            Err(e) => return Attempt::Unsent(req, pick, e.to_string()),
        },
    };
    let ready = tokio::time::timeout(POOLED_READY, sender.ready()).await;
    if !matches!(ready, Ok(Ok(()))) {
        // A pooled connection the instance closed meanwhile, or one not free yet: a fresh one.
        sender = match pool::connect(addr).await {
            Ok(fresh) => fresh,
            Err(e) => return Attempt::Unsent(req, pick, e.to_string()),
        };
        if sender.ready().await.is_err() {
            return Attempt::Unsent(req, pick, "the connection closed at once".into());
        }
    }
    let timeout = Duration::from_millis(call.route.timeout_ms);
    let sent = sender.try_send_request(req);
    match tokio::time::timeout(timeout, sent).await {
        Ok(Ok(response)) => Attempt::Answered(response, sender, pick),
        Ok(Err(mut e)) => match e.take_message() {
            Some(req) => Attempt::Unsent(req, pick, "the connection was not ready".into()),
            None => Attempt::Failed(pick, e.into_error().to_string()),
        },
        Err(_) => Attempt::TimedOut,
    }
}

/// The answer passed back: its body tracked (in-flight count, idle timeout, the connection
/// back to the pool at its clean end), or, for a protocol switch, both sides joined.
fn answer(
    call: &mut Call<'_>,
    mut response: Response<Incoming>,
    sender: Sender,
    pick: Pick,
) -> Response<Body> {
    let addr = pick.addr();
    response
        .extensions_mut()
        .insert(super::Answered(pick.id().to_string()));
    // The instance answered: its connection works (passive health); the request counts as in
    // flight until its answer's body ends.
    let inflight = pick.success(Instant::now());
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut response);
        return match call.client_upgrade.take() {
            Some(client) => {
                upgrade::join(client, upstream, call.idle, (inflight, call.keep.clone()));
                response.map(|_| crate::http::empty())
            }
            None => pages::bad_gateway(call.html, "the instance switched protocols unasked"),
        };
    }
    let pool = Arc::clone(call.state);
    let request_done = Arc::clone(&call.request_done);
    let on_end: OnEnd = Box::new(move |clean| {
        inflight.end(Instant::now());
        // Only a connection done with both the request (an instance may answer before an
        // upload ends) and the answer can take the next request at once.
        if clean && request_done.load(std::sync::atomic::Ordering::SeqCst) {
            pool.pool.give_back(addr, sender);
        }
    });
    response.map(|body| {
        use http_body_util::BodyExt as _;
        Watched::new(body, call.idle, Some(on_end)).boxed_unsync()
    })
}

/// Waits for a ready instance when the service holds requests, or answers 503.
async fn wait_for_instance(call: &Call<'_>) -> Result<Pick, Response<Body>> {
    let state = call.state;
    let service = call.route.service.as_str();
    let unavailable = |why: &str| pages::unavailable(call.html, why, 5);
    let hold = state.active().services.get(service).and_then(|s| s.hold);
    let Some(hold) = hold else {
        return Err(unavailable(&format!("{service} has no ready instance")));
    };
    if let Err(e) = state.holds.wait(service, hold, &state.balancer).await {
        return Err(unavailable(&format!(
            "{service} has no ready instance: {e}"
        )));
    }
    state
        .balancer
        .pick(service, None, Instant::now())
        .ok_or_else(|| unavailable(&format!("{service} has no ready instance")))
}

/// Methods that may be sent twice (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
