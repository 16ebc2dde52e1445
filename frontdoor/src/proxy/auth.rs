//! The identity check of a route before its request goes on: `none` passes, `oidc` needs a
//! valid bearer token (401 or 403 with the RFC 6750 challenge otherwise), and a check this
//! front door cannot make (no key set on this board, or a mode not built yet) fails closed
//! with 503, never passing the request on unchecked.

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::config::{Auth, Route};
use crate::http::{pages, Body};
use crate::identity::{self, Denied, Identity};
use crate::state::{Active, State};

use crate::http::hygiene::{X_FORWARDED_EMAIL, X_FORWARDED_USER};

/// Checks who is calling on `route`: `Ok(None)` for `auth = "none"`, `Ok(Some(who))` for a
/// caller the check let through, or the answer to give.
pub async fn check(
    state: &State,
    active: &Active,
    route: &Route,
    headers: &HeaderMap,
    html: bool,
) -> Result<Option<Identity>, Box<Response<Body>>> {
    match route.auth {
        Auth::None => Ok(None),
        Auth::Oidc => bearer(state, active, route, headers, html).await.map(Some),
        other => Err(Box::new(pages::unavailable(
            html,
            &format!(
                "the route to {} needs auth = {other:?}, which this front door cannot check yet",
                route.service
            ),
            60,
        ))),
    }
}

pub(crate) async fn bearer(
    state: &State,
    active: &Active,
    route: &Route,
    headers: &HeaderMap,
    html: bool,
) -> Result<Identity, Box<Response<Body>>> {
    let Some(oidc) = &active.oidc else {
        return Err(Box::new(pages::unavailable(
            html,
            "this board's front door has no key set of the identity provider",
            60,
        )));
    };
    // A header that is not text is no bearer token.
    let header = match headers.get(AUTHORIZATION).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(text)) => Some(text),
        Some(Err(_)) => {
            return Err(denied(
                &Denied::Invalid("the header is not text".into()),
                html,
            ))
        }
    };
    let now = super::unix_now();
    let settings = identity::Settings {
        issuer: &oidc.issuer,
        audience: &oidc.audience,
        leeway_s: oidc.leeway_s,
        require: &route.require,
    };
    let set = state.idp.keys();
    let mut result = identity::check_with(header, &set.keys, Some(&set.verified), &settings, now);
    // A key the set lacks: the provider may have rotated its keys. One refetch a minute at
    // most, which this request waits on briefly (crate::idp::gate); then the token is checked
    // once more against what is in force.
    if matches!(result, Err(Denied::UnknownKey { .. })) && state.idp.unknown_kid().await {
        let set = state.idp.keys();
        result = identity::check_with(header, &set.keys, Some(&set.verified), &settings, now);
    }
    match result {
        Ok(identity) => Ok(identity),
        Err(Denied::UnknownKey { kid }) => Err(denied(
            &Denied::Invalid(format!("no key {kid:?} in the identity provider's key set")),
            html,
        )),
        Err(why) => Err(denied(&why, html)),
    }
}

/// The 401 or 403 for `why`, with its challenge.
fn denied(why: &Denied, html: bool) -> Box<Response<Body>> {
    let (status, title, text) = match why {
        Denied::Insufficient(reason) => (StatusCode::FORBIDDEN, "Forbidden", reason.clone()),
        Denied::Missing => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "this route needs a bearer token (Authorization: Bearer ...)".to_string(),
        ),
        Denied::Invalid(reason) | Denied::UnknownKey { kid: reason } => {
            (StatusCode::UNAUTHORIZED, "Unauthorized", reason.clone())
        }
    };
    let mut response = pages::page(status, html, title, &text);
    if let Ok(value) = HeaderValue::from_str(&why.www_authenticate()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    Box::new(response)
}

/// Tells the instance who called (after the client's own copies were removed).
pub fn set_identity(headers: &mut HeaderMap, identity: &Identity) {
    // A value that cannot be a header (control characters) is left out, not passed raw.
    if let Ok(value) = HeaderValue::from_str(&identity.sub) {
        headers.insert(X_FORWARDED_USER, value);
    }
    if let Some(value) = identity
        .email
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        headers.insert(X_FORWARDED_EMAIL, value);
    }
}
