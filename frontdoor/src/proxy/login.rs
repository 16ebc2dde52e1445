//! Browser sign-in on the request path (docs/design/front-door.md section 5.4): the check of a
//! route with `auth = "login"` (a session cookie, or a bearer token for API clients), the
//! redirect to the issuer, and the front door's own paths: the callback and the logout.
//! The state machine itself is [`crate::identity::login::flow`].

use std::sync::Arc;

use http::header::{ACCEPT, AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use crate::config::Route;
use crate::http::{pages, Body, Scheme};
use crate::identity::login::exchange::{self, Failed, TokenRequest};
use crate::identity::login::flow::{self, Expected, Refusal, LOGIN_COOKIE, SESSION_COOKIE};
use crate::identity::login::{cookie, query, Login};
use crate::identity::{claims, Identity};
use crate::idp::Discovery;
use crate::route::normalize;
use crate::state::{Active, State};

type Answer = Box<Response<Body>>;

use super::unix_now as now;

/// The login settings and the issuer's endpoints, or the 503 that says why sign-in cannot
/// happen on this board (it never lets a request through unchecked).
fn ready<'a>(
    state: &State,
    active: &'a Active,
    html: bool,
) -> Result<(&'a Login, Arc<Discovery>), Answer> {
    let unavailable = |why: &str| Box::new(pages::unavailable(html, why, 60));
    let login = active.login.as_ref().ok_or_else(|| no_settings(html))?;
    if active.oidc.is_none() {
        return Err(unavailable(
            "this board's front door has no settings of the identity provider",
        ));
    }
    let discovery = state.idp.discovery().ok_or_else(|| {
        unavailable("the identity provider's discovery document has not been fetched yet")
    })?;
    Ok((login, discovery))
}

/// The 503 of a board without sign-in settings.
fn no_settings(html: bool) -> Answer {
    Box::new(pages::unavailable(
        html,
        "this board's front door has no sign-in settings (client_id in [front_door.oidc])",
        60,
    ))
}

/// What sessions are sealed to on this board: the issuer, the client id and the session_ttl.
fn session_for<'a>(login: &'a Login, issuer: &'a str) -> flow::SessionFor<'a> {
    flow::SessionFor {
        issuer,
        client_id: &login.settings.client_id,
        ttl_s: login.settings.session_ttl_s,
    }
}

/// The value of a baton cookie in the request.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie::find(
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

/// `https://<host>[:port]<callback path>` for the host the browser used.
fn redirect_uri<B>(req: &Request<B>, login: &Login) -> Option<String> {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)?
                .to_str()
                .ok()
                .map(str::to_string)
        })?;
    let host = normalize::host(&raw).ok()?;
    let port = raw
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || raw.starts_with('['))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .filter(|p| *p != 443);
    let authority = match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    Some(format!(
        "https://{authority}{}",
        login.settings.callback_path
    ))
}

/// Checks a request on a login route: a bearer token (API clients), else the session cookie;
/// without either, browsers are sent to the issuer and JSON clients get 401.
pub async fn check<B>(
    state: &State,
    active: &Active,
    route: &Route,
    req: &Request<B>,
    html: bool,
) -> Result<Identity, Answer> {
    if req.headers().contains_key(AUTHORIZATION) {
        return super::auth::bearer(state, active, route, req.headers(), html).await;
    }
    // A session needs only the key: it holds while the provider or its discovery document is
    // out of reach. Sending a browser to sign in needs the provider's endpoints.
    let login = active.login.as_ref().ok_or_else(|| no_settings(html))?;
    // Without the provider's settings no session opens: it is bound to the issuer.
    let session = active.oidc.as_ref().and_then(|oidc| {
        let under = session_for(login, &oidc.issuer);
        flow::read_session(
            &login.sealer,
            under,
            cookie_value(req.headers(), SESSION_COOKIE)?,
            now(),
        )
    });
    if let Some(session) = session {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(session.sub.clone()));
        if let Some(email) = &session.email {
            claims.insert("email".into(), Value::String(email.clone()));
        }
        claims.insert(
            "groups".into(),
            Value::Array(session.groups.iter().cloned().map(Value::String).collect()),
        );
        if let Err(why) = claims::require(&claims, &route.require) {
            return Err(Box::new(pages::page(
                StatusCode::FORBIDDEN,
                html,
                "Forbidden",
                &why,
            )));
        }
        return Ok(Identity {
            sub: session.sub,
            email: session.email,
            groups: session.groups,
            claims,
        });
    }
    if json_only(req.headers()) {
        let mut answer = pages::page(
            StatusCode::UNAUTHORIZED,
            false,
            "Unauthorized",
            "this route needs a signed-in browser session or a bearer token",
        );
        answer.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"baton\""),
        );
        return Err(Box::new(answer));
    }
    let (login, discovery) = ready(state, active, html)?;
    let Some(redirect_uri) = redirect_uri(req, login) else {
        return Err(Box::new(pages::bad_request(
            html,
            "the request names no usable host",
        )));
    };
    // Only a page fetch comes back to where it was; a form post would be replayed as a GET.
    let ret = match *req.method() {
        Method::GET | Method::HEAD => req.uri().path_and_query().map_or("/", |p| p.as_str()),
        _ => "/",
    };
    let Some(start) = flow::start(
        &login.settings,
        &discovery,
        &login.sealer,
        &redirect_uri,
        ret,
        now(),
    ) else {
        return Err(Box::new(pages::unavailable(
            html,
            "no randomness for a sign-in",
            5,
        )));
    };
    let mut answer = found(&start.location);
    append_cookie(&mut answer, &start.set_cookie);
    Err(Box::new(answer))
}

/// `Accept` asks for JSON and not HTML: an API client, which a redirect would not help.
fn json_only(headers: &HeaderMap) -> bool {
    let accept: Vec<&str> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    accept.iter().any(|a| a.contains("application/json"))
        && !accept.iter().any(|a| a.contains("text/html"))
}

/// Code exchanges under way at once, on all hosts: each holds a connection to the token
/// endpoint, and callbacks are cheap to send in bulk.
pub const MAX_EXCHANGES: usize = 256;

/// Answers the front door's own sign-in paths (the callback and the logout); `None` for any
/// other path, or when this board has no sign-in settings. Over plain HTTP with
/// `redirect_http`, they are sent to HTTPS like a routed request: their cookies are `Secure`,
/// so a browser would drop a logout's cleared cookie or never send the login cookie.
pub async fn own_path<B>(
    state: &State,
    active: &Active,
    scheme: Scheme,
    host: &str,
    req: &Request<B>,
    path: &str,
    html: bool,
) -> Option<Response<Body>> {
    let login = active.login.as_ref()?;
    let callback_path = path == login.settings.callback_path;
    if !callback_path && !login.settings.is_logout(path) {
        return None;
    }
    let settings = &active.settings;
    if scheme == Scheme::Http && settings.redirect_http && settings.https_port != 0 {
        let url = super::https_url(host, settings.https_port, req.uri());
        return Some(pages::redirect(&url));
    }
    if !callback_path {
        return Some(logout(login, state.idp.discovery().as_deref(), req));
    }
    // A refused callback also ends the sign-in it belonged to: its login cookie is of no
    // further use, and a browser should start over rather than retry a spent code. A failure
    // that may pass (the provider unreachable, too many sign-ins at once) keeps it, so a
    // reload can still finish the sign-in.
    Some(
        callback(state, active, req, html)
            .await
            .unwrap_or_else(|answer| {
                let mut answer = *answer;
                if answer.status().is_client_error() {
                    append_cookie(&mut answer, &flow::clear_cookie(LOGIN_COOKIE));
                }
                answer
            }),
    )
}

async fn callback<B>(
    state: &State,
    active: &Active,
    req: &Request<B>,
    html: bool,
) -> Result<Response<Body>, Answer> {
    let (login, discovery) = ready(state, active, html)?;
    let Some(oidc) = &active.oidc else {
        return Err(Box::new(pages::unavailable(
            html,
            "sign-in is not ready",
            60,
        )));
    };
    let refused = |r: Refusal| match r {
        Refusal::BadRequest(why) => Box::new(pages::bad_request(html, &why)),
        Refusal::Denied(why) => Box::new(denied(html, &why)),
    };
    let now = now();
    let returned = flow::callback(
        &login.sealer,
        cookie_value(req.headers(), LOGIN_COOKIE),
        req.uri().query().unwrap_or(""),
        now,
    )
    .map_err(refused)?;
    let redirect_uri = redirect_uri(req, login)
        .ok_or_else(|| Box::new(pages::bad_request(html, "the request names no usable host")))?;
    let Ok(place) = state.exchanges.try_acquire() else {
        return Err(Box::new(pages::unavailable(
            html,
            "too many sign-ins at once",
            5,
        )));
    };
    let token = exchange::id_token(
        &login.client,
        TokenRequest {
            endpoint: &discovery.token_endpoint,
            client_id: &login.settings.client_id,
            client_secret: &login.settings.client_secret,
            code: &returned.code,
            redirect_uri: &redirect_uri,
            verifier: &returned.pending.verifier,
        },
    )
    .await
    .map_err(|e| match e {
        Failed::Refused(why) => Box::new(denied(html, &why)),
        Failed::Unreachable(why) => Box::new(pages::bad_gateway(html, &why)),
    })?;
    // The place covers the exchange only, not the checks after it.
    drop(place);
    let expected = Expected {
        issuer: &oidc.issuer,
        client_id: &login.settings.client_id,
        nonce: &returned.pending.nonce,
        leeway_s: oidc.leeway_s,
    };
    let ttl = login.settings.session_ttl_s;
    let mut checked = flow::verify_id_token(&token, &state.idp.keys().keys, expected, ttl, now);
    // A key the set lacks: the provider may have rotated; one refetch (at most once a minute,
    // shared with the bearer check), then the token is checked once more.
    if matches!(&checked, Err(flow::Unverified::UnknownKey(_))) && state.idp.unknown_kid().await {
        checked = flow::verify_id_token(&token, &state.idp.keys().keys, expected, ttl, now);
    }
    let session = checked.map_err(|why| Box::new(denied(html, &format!("the ID token: {why}"))))?;
    let under = session_for(login, &oidc.issuer);
    let set = flow::session_cookie(&login.sealer, under, session).ok_or_else(|| {
        Box::new(denied(
            html,
            "the identity (its email and groups) does not fit in a session cookie; ask for \
             fewer groups in the ID token",
        ))
    })?;
    let mut answer = found(&returned.pending.ret);
    append_cookie(&mut answer, &set);
    append_cookie(&mut answer, &flow::clear_cookie(LOGIN_COOKIE));
    Ok(answer)
}

/// Clears the session and sends the browser to the issuer's logout, which comes back to this
/// host's root.
fn logout<B>(login: &Login, discovery: Option<&Discovery>, req: &Request<B>) -> Response<Body> {
    let back = redirect_uri(req, login).and_then(|uri| {
        uri.strip_suffix(login.settings.callback_path.as_str())
            .map(|base| format!("{base}/"))
    });
    let location = match (discovery, back) {
        (Some(discovery), Some(back)) => match &discovery.end_session_endpoint {
            Some(end) => {
                let join = if end.contains('?') { '&' } else { '?' };
                let query = query::form(&[
                    ("client_id", login.settings.client_id.as_str()),
                    ("post_logout_redirect_uri", back.as_str()),
                ]);
                format!("{end}{join}{query}")
            }
            None => "/".to_string(),
        },
        _ => "/".to_string(),
    };
    let mut answer = found(&location);
    append_cookie(&mut answer, &flow::clear_cookie(SESSION_COOKIE));
    append_cookie(&mut answer, &flow::clear_cookie(LOGIN_COOKIE));
    answer
}

/// 401 for a sign-in the issuer or the token refused.
fn denied(html: bool, why: &str) -> Response<Body> {
    pages::page(StatusCode::UNAUTHORIZED, html, "Unauthorized", why)
}

/// 302 to `location`.
fn found(location: &str) -> Response<Body> {
    let mut answer = pages::page(
        StatusCode::FOUND,
        false,
        "Found",
        "sign-in continues elsewhere",
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        answer.headers_mut().insert(LOCATION, value);
    }
    answer
}

fn append_cookie(answer: &mut Response<Body>, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        answer.headers_mut().append(SET_COOKIE, value);
    }
}
