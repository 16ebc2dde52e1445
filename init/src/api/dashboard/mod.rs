//! The dashboard: a few pages served by every board at `/` on the API port, which read the
//! same JSON routes as the CLI, and the sign-in that lets a browser use them.
//!
//! | method | path                  | what |
//! |--------|-----------------------|------|
//! | GET    | `/`, `/dash/…`        | the pages ([`assets`]), no token needed |
//! | GET    | `/v1/session`         | whether signed in, and the CSRF value ([`signin`]) |
//! | POST   | `/v1/session`         | `{"token": …}` for a session cookie |
//! | POST   | `/v1/session/logout`  | clears the cookie |
//!
//! The cookie ([`session`]) then opens every authenticated route as the token does, with CSRF
//! and origin checks on changes ([`auth`]). Every answer of these routes carries a strict
//! Content-Security-Policy: the page runs only its own scripts, and puts every text from the
//! board (log lines, names, events: hostile text) in through `textContent`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{problem, Handles};

pub mod assets;
pub mod auth;
pub mod session;
pub mod signin;

/// The dashboard's state on this board: the sessions of this boot and the bound on wrong
/// sign-ins.
#[derive(Debug, Default)]
pub struct Dashboard {
    /// Sealing and opening session cookies.
    pub sessions: session::Sessions,
    /// Wrong tokens allowed.
    pub attempts: signin::Attempts,
}

/// The policy every dashboard answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages and the session routes (no token needed: the session routes check it).
pub fn routes() -> Router<Handles> {
    let mut router = Router::new()
        .route("/v1/session", get(signin::state).post(signin::sign_in))
        .route("/v1/session/logout", post(signin::sign_out));
    for asset in assets::ASSETS {
        router = router.route(asset.path, get(file));
    }
    router.route_layer(middleware::from_fn(secured))
}

/// The embedded file at the request's path, or 304 when the browser has it already.
async fn file(request: Request) -> Response {
    let Some(asset) = assets::find(request.uri().path()) else {
        return problem(StatusCode::NOT_FOUND, "no such page");
    };
    let etag = asset.etag();
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| assets::matches(given, &etag));
    let cache = [
        (header::ETAG, etag),
        // Kept, but asked about each time: a new release changes the files at the same paths.
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.body,
    )
        .into_response()
}

/// Adds the security headers to every dashboard answer.
async fn secured(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests;
