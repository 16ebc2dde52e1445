//! `/v1/session`: signing in with the API token, asking whether one is signed in, and signing
//! out. No token is needed to reach these routes; the sign-in is the token check, so wrong
//! tokens are bounded: [`BURST`] at once, then one every [`REFILL`] for the whole board (a
//! password check on a LAN listener, where sources are cheap to change). A right token
//! costs nothing, and the CLI's bearer requests do not count.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_api::{SessionState, SignIn};

use super::super::{constant_time_eq, problem, Handles};
use super::auth::{cookie_name, same_origin, session_of};
use super::session::{self, LIFETIME};

/// Largest sign-in body read: a token is at most a few hundred bytes.
pub const MAX_BODY: usize = 4096;

/// Wrong tokens taken at once.
pub const BURST: u32 = 10;

/// Then one more every so long.
pub const REFILL: Duration = Duration::from_secs(6);

/// Wrong sign-ins, as a token bucket.
#[derive(Debug)]
pub struct Attempts {
    /// Attempts left and when they were counted.
    bucket: Mutex<(f64, Instant)>,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts {
            bucket: Mutex::new((f64::from(BURST), Instant::now())),
        }
    }
}

impl Attempts {
    /// Takes one attempt at `now`, or says in how many seconds one is free.
    pub fn take(&self, now: Instant) -> Result<(), u64> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (left, at) = *bucket;
        let grown = now.saturating_duration_since(at).as_secs_f64() / REFILL.as_secs_f64();
        let left = (left + grown).min(f64::from(BURST));
        if left < 1.0 {
            *bucket = (left, now);
            return Err(((1.0 - left) * REFILL.as_secs_f64()).ceil() as u64);
        }
        *bucket = (left - 1.0, now);
        Ok(())
    }

    /// Gives back an attempt that was right.
    pub fn give_back(&self) {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        bucket.0 = (bucket.0 + 1.0).min(f64::from(BURST));
    }
}

/// `GET /v1/session`: whether the request's cookie is a valid session, and its CSRF value.
pub async fn state(Extract(handles): Extract<Handles>, headers: HeaderMap) -> Response {
    let session = session_of(&handles, &headers);
    let now = handles.dashboard.sessions.now_s();
    answer(SessionState {
        signed_in: session.is_some(),
        expires_in_s: session.as_ref().map(|s| s.left_s(now)),
        csrf: session.map(|s| s.csrf),
        encrypted: handles.tls.is_some(),
    })
}

/// `POST /v1/session` with a [`SignIn`]: the API token for a session cookie.
pub async fn sign_in(
    Extract(handles): Extract<Handles>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = same_origin(&handles, &headers, false) {
        return *refused;
    }
    let Some(expected) = handles.state.token() else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "this board has no valid [api] token in cluster.toml; fix the file on the BATON-CFG partition",
        );
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the sign-in body is broken or larger than {MAX_BODY} bytes"),
        );
    };
    let Ok(SignIn { token }) = serde_json::from_slice(&bytes) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the sign-in body must be JSON: {\"token\": \"<the API token>\"}",
        );
    };
    let dashboard = &handles.dashboard;
    if let Err(wait_s) = dashboard.attempts.take(Instant::now()) {
        let mut refused = problem(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many wrong tokens; try again in {wait_s} s"),
        );
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
        return refused;
    }
    if !constant_time_eq(expected.as_bytes(), token.trim().as_bytes()) {
        return problem(StatusCode::UNAUTHORIZED, "wrong API token");
    }
    dashboard.attempts.give_back();
    let name = cookie_name(&handles);
    let now = dashboard.sessions.now_s();
    let Some((value, session)) = dashboard.sessions.open_new(&expected, name, now) else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the board has no randomness for a session; use the token with the CLI",
        );
    };
    let tls = handles.tls.is_some();
    with_cookie(
        &session::set_cookie(name, &value, LIFETIME, tls),
        SessionState {
            signed_in: true,
            expires_in_s: Some(session.left_s(now)),
            csrf: Some(session.csrf),
            encrypted: tls,
        },
    )
}

/// `POST /v1/session/logout`: clears the cookie (from this board's own pages only).
pub async fn sign_out(Extract(handles): Extract<Handles>, headers: HeaderMap) -> Response {
    if let Err(refused) = same_origin(&handles, &headers, false) {
        return *refused;
    }
    let tls = handles.tls.is_some();
    with_cookie(
        &session::set_cookie(cookie_name(&handles), "", Duration::ZERO, tls),
        SessionState {
            encrypted: tls,
            ..SessionState::default()
        },
    )
}

fn with_cookie(cookie: &str, state: SessionState) -> Response {
    let mut response = answer(state);
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn answer(state: SessionState) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(state)).into_response()
}
