//! `auth = "forward"`: an auth service is asked before a request goes on, as Traefik's
//! forwardAuth and Caddy's forward_auth do, so Authelia or Authentik can guard a route
//! (docs/design/front-door.md, section 5.6).
//!
//! The front door sends the auth service a GET with the client's headers (no body, no
//! hop-by-hop headers) and what the request was: `X-Forwarded-Method/-Proto/-Host/-Uri/-For`
//! and `X-Original-URL` ([`ask`]). A 2xx lets the request on: its `copy_headers` go into the
//! request passed on, its user and email headers become `X-Forwarded-User/-Email`. Any other
//! answer goes back to the client as it is (status, headers such as `Location` and
//! `Set-Cookie`, body): that is how an auth service sends a browser to its sign-in page. An
//! auth service that cannot be reached, is too slow or answers too much gets 503 or 502 with a
//! page: the request is never passed on unchecked ([`send`]).
//!
//! Client-sent copies of every name the auth service may set (`copy_headers`, the user and
//! email headers) are removed from the request passed on, whatever the answer carried: a
//! client must never be able to speak for the auth service. (A local scrub: the shared cleaning
//! of [`crate::http::hygiene`] covers the `X-Forwarded-User/-Email` and `X-Baton-Identity`
//! names on every route.) `copy_headers` never reaches the identity headers, `Cookie` or the
//! forwarding headers the front door sets ([`NOT_COPIED`]; the spec refuses them too).

mod ask;
mod send;

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::config::ForwardAuth;
use crate::http::{pages, Body};
use crate::identity::Identity;
use crate::state::{Active, State};

pub use ask::Origin;

/// How long the whole check may take: connection, answer and its body.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer body read from the auth service (its head is bounded by the pool's client).
pub const MAX_BODY: usize = 64 * 1024;
/// Checks under way at once on this front door; more wait (within [`TIMEOUT`]) for a place,
/// so a flood of requests on a forward route cannot open unbounded connections to the auth
/// service.
pub const MAX_CHECKS: usize = 256;
/// Longest user or email taken from an answer; a longer one is not passed on.
pub const MAX_IDENTITY: usize = 1024;

/// Headers never copied from an answer nor removed from the request on its account, whatever
/// `copy_headers`, `user_header` or `email_header` say: they frame the request or describe one
/// connection (a copied `Content-Length` would make the instance wait for a body that never
/// comes), carry the client's cookies, or say where the request came from and for what host,
/// which only the front door says.
const NOT_COPIED: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Identity headers: never copied by `copy_headers` (only the front door sets them, from the
/// answer's `user_header` and `email_header`, or signs `X-Baton-Identity`), but an answer may
/// name its user in one of them (`user_header = "X-Forwarded-User"`).
const NOT_COPIED_IDENTITY: &[&str] = crate::http::hygiene::IDENTITY;

/// What a 2xx of the auth service gives the request passed on.
#[derive(Debug, Default)]
pub struct Granted {
    /// The user and email the answer named, if any.
    pub identity: Option<Identity>,
    /// Names removed from the client's headers before anything is set.
    scrub: Vec<HeaderName>,
    /// `copy_headers` as the answer had them.
    copied: Vec<(HeaderName, HeaderValue)>,
}

impl Granted {
    /// Removes the client's own copies of every name the auth service may set. Run before the
    /// identity headers are set.
    pub fn scrub(&self, headers: &mut HeaderMap) {
        for name in &self.scrub {
            headers.remove(name);
        }
    }

    /// Adds the answer's `copy_headers`. Run after the identity headers are set.
    pub fn copy(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.copied {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Asks the route's auth service about the request `origin` describes: `Ok` with what to add
/// to the request passed on, or the answer to give the client instead.
pub async fn check(
    state: &State,
    active: &Active,
    forward: Option<&ForwardAuth>,
    origin: &Origin<'_>,
    html: bool,
) -> Result<Granted, Box<Response<Body>>> {
    let Some(forward) = forward else {
        return Err(Box::new(pages::unavailable(
            html,
            "this route has auth = \"forward\" but no auth service (route.forward)",
            60,
        )));
    };
    let target = match send::Target::parse(&forward.url, active) {
        Ok(target) => target,
        Err(why) => {
            return Err(Box::new(pages::unavailable(
                html,
                &format!("the auth service {}: {why}", forward.url),
                60,
            )))
        }
    };
    let headers = ask::headers(origin, target.authority());
    let answer = match send::ask(state, &target, headers).await {
        Ok(answer) => answer,
        Err(failure) => return Err(Box::new(failure.page(html, &forward.url))),
    };
    if !answer.status.is_success() {
        return Err(Box::new(answer.into_response()));
    }
    Ok(granted(forward, &answer.headers))
}

/// What a 2xx answer with `headers` lets through.
fn granted(forward: &ForwardAuth, headers: &HeaderMap) -> Granted {
    let name = |n: &str| {
        HeaderName::from_bytes(n.as_bytes())
            .ok()
            .filter(|h| !NOT_COPIED.contains(&h.as_str()))
    };
    let user_header = name(&forward.user_header);
    let email_header = name(&forward.email_header);
    let copy: Vec<HeaderName> = forward
        .copy_headers
        .iter()
        .filter_map(|n| name(n))
        .filter(|h| !NOT_COPIED_IDENTITY.contains(&h.as_str()))
        .collect();
    let scrub = copy
        .iter()
        .cloned()
        .chain(user_header.clone())
        .chain(email_header.clone())
        .collect();
    let copied = copy
        .iter()
        .flat_map(|n| headers.get_all(n).iter().map(|v| (n.clone(), v.clone())))
        .collect();
    let text = |n: &Option<HeaderName>| {
        let value = headers.get(n.as_ref()?)?.to_str().ok()?.trim();
        (!value.is_empty() && value.len() <= MAX_IDENTITY).then(|| value.to_string())
    };
    let identity = text(&user_header).map(|sub| Identity {
        sub,
        email: text(&email_header),
        groups: Vec::new(),
        claims: Default::default(),
    });
    Granted {
        identity,
        scrub,
        copied,
    }
}

/// Why the auth service gave no usable answer.
#[derive(Debug)]
enum Failure {
    /// Not reachable, no ready instance, or no answer in time: 503.
    Unavailable(String),
    /// An answer the front door will not pass on (too long, a protocol switch): 502.
    BadAnswer(String),
}

impl Failure {
    fn page(&self, html: bool, url: &str) -> Response<Body> {
        match self {
            Failure::Unavailable(why) => pages::unavailable(
                html,
                &format!("the auth service {url} could not be asked: {why}"),
                5,
            ),
            Failure::BadAnswer(why) => pages::bad_gateway(
                html,
                &format!("the auth service {url} gave an answer that cannot be used: {why}"),
            ),
        }
    }
}

/// The auth service's answer, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    /// The answer as the client gets it: status, headers without hop-by-hop ones (the
    /// length is the body's own), body.
    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(crate::http::full(self.body));
        *response.status_mut() = self.status;
        let mut headers = self.headers;
        crate::http::headers::strip_hop_by_hop(&mut headers, false);
        headers.remove(http::header::CONTENT_LENGTH);
        *response.headers_mut() = headers;
        response
    }
}

#[cfg(test)]
mod tests;
