//! The session cookie as a credential of the API's authenticated routes, beside the bearer
//! token: a valid cookie opens what the token opens, and a request that changes something
//! (any method but GET and HEAD) must also carry the session's CSRF value in
//! [`CSRF_HEADER`] and an `Origin` equal to the board's own (the scheme it serves and the
//! request's `Host`). A cross-site page can make a browser send neither.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;

use super::super::{constant_time_eq, problem, Handles};
use super::session::{self, Session};

/// The header that carries the session's CSRF value.
pub const CSRF_HEADER: &str = "x-baton-csrf";

/// The cookie's name on this board: `__Host-` and `Secure` over TLS, plain without.
pub fn cookie_name(handles: &Handles) -> &'static str {
    if handles.tls.is_some() {
        session::NAME_TLS
    } else {
        session::NAME_PLAIN
    }
}

/// The session the request's cookie holds, if it is valid now.
pub fn session_of(handles: &Handles, headers: &HeaderMap) -> Option<Session> {
    let token = handles.state.token()?;
    let sealed = cookie(handles, headers)?;
    let sessions = &handles.dashboard.sessions;
    sessions.open(&token, cookie_name(handles), sealed, sessions.now_s())
}

/// The value of this board's session cookie in `headers`, if there is one.
fn cookie<'a>(handles: &Handles, headers: &'a HeaderMap) -> Option<&'a str> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    session::find(values, cookie_name(handles))
}

/// How a request without a bearer token fares by its cookie: `None` when it has no session
/// cookie (the token check then says what is missing), `Some(Ok)` when it may go on, and
/// `Some(Err)` with the refusal.
pub fn by_cookie(handles: &Handles, request: &Request) -> Option<Result<(), Box<Response>>> {
    cookie(handles, request.headers())?;
    let Some(session) = session_of(handles, request.headers()) else {
        return Some(Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "the session has ended or is not valid (a reboot or a new API token ends every session); sign in again",
        ))));
    };
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return Some(Ok(()));
    }
    Some(csrf(handles, request.headers(), &session))
}

/// The CSRF value and the origin of a change made with the cookie of `session`.
fn csrf(handles: &Handles, headers: &HeaderMap, session: &Session) -> Result<(), Box<Response>> {
    let Some(given) = headers.get(CSRF_HEADER) else {
        return Err(forbidden(
            "a change made with the session cookie needs the X-Baton-CSRF header (its value is in GET /v1/session)",
        ));
    };
    if !constant_time_eq(given.as_bytes(), session.csrf.as_bytes()) {
        return Err(forbidden(
            "X-Baton-CSRF does not match this session's value (GET /v1/session gives it)",
        ));
    }
    same_origin(handles, headers, true)
}

/// Whether the request's `Origin` is the board's own: `https://` (`http://` without TLS)
/// followed by the request's `Host`. `required`: a request without `Origin` is refused too.
pub fn same_origin(
    handles: &Handles,
    headers: &HeaderMap,
    required: bool,
) -> Result<(), Box<Response>> {
    let scheme = if handles.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let own = format!("{scheme}://{host}");
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None if !required => Ok(()),
        None => Err(forbidden(&format!(
            "a change made with the session cookie needs an Origin header naming this board ({own})"
        ))),
        Some(Ok(origin)) if !host.is_empty() && origin.eq_ignore_ascii_case(&own) => Ok(()),
        Some(origin) => Err(forbidden(&format!(
            "Origin {:?} is not this board's ({own}): changes from another site are refused",
            origin.unwrap_or("(not text)")
        ))),
    }
}

fn forbidden(message: &str) -> Box<Response> {
    Box::new(problem(StatusCode::FORBIDDEN, message))
}
