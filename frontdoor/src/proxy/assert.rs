//! `X-Baton-Identity` on the way to the instance, and the public key set every host serves at
//! [`JWKS_PATH`] (docs/design/front-door.md section 5.3). Route paths under
//! `/.well-known/baton/` are refused by the spec, so this path never hides a route.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::config::{Auth, Route};
use crate::http::{full, pages, Body};
use crate::identity::assertion::Who;
use crate::identity::Identity;
use crate::state::Active;

/// Where the key set is served, on every host.
pub const JWKS_PATH: &str = "/.well-known/baton/jwks.json";

use crate::http::hygiene::X_BATON_IDENTITY;

/// The answer to a request for the key set, or `None` for any other request.
pub fn well_known(
    active: &Active,
    method: &Method,
    path: &str,
    html: bool,
) -> Option<Response<Body>> {
    if path != JWKS_PATH || (method != Method::GET && method != Method::HEAD) {
        return None;
    }
    let Some(signer) = &active.assertion else {
        return Some(pages::page(
            StatusCode::NOT_FOUND,
            html,
            "Not Found",
            "this front door signs no identity assertions (the board is not in a cluster)",
        ));
    };
    let mut response = Response::new(if method == Method::HEAD {
        crate::http::empty()
    } else {
        full(signer.jwks().to_string())
    });
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // The key changes only with the cluster key; a few minutes of caching spares the front
    // door from services that fetch it per request.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    Some(response)
}

/// Sets `X-Baton-Identity` for `identity` calling `route`'s service, when this board signs.
pub fn set(headers: &mut HeaderMap, active: &Active, route: &Route, identity: &Identity) {
    let Some(signer) = &active.assertion else {
        return;
    };
    let who = Who {
        sub: identity.sub.clone(),
        email: identity.email.clone(),
        groups: identity.groups.clone(),
        auth: name(route.auth),
    };
    let now = super::unix_now();
    if let Some(value) = signer
        .assertion(&who, &route.service, now)
        .and_then(|token| HeaderValue::from_str(&token).ok())
    {
        headers.insert(X_BATON_IDENTITY, value);
    }
}

/// The mode as the spec writes it (the assertion's `auth` claim).
fn name(auth: Auth) -> &'static str {
    match auth {
        Auth::None => "none",
        Auth::Oidc => "oidc",
        Auth::Login => "login",
        Auth::Mtls => "mtls",
        Auth::Forward => "forward",
    }
}
