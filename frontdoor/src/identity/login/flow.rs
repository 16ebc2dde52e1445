//! The sign-in state machine, without I/O: where to send a browser that has no session, what a
//! callback must carry, what an ID token must say, and the cookies that hold it all.
//!
//! 1. [`start`]: random `state`, `nonce` and PKCE verifier (RFC 7636, S256), sealed with the
//!    return path into the login cookie (10 minutes, `SameSite=Lax` so that it comes back on
//!    the issuer's top-level redirect), and the authorization URL.
//! 2. [`callback`]: the login cookie must open and the query's `state` must equal its own
//!    (else 400: a forged or replayed callback); the code goes to the token endpoint with the
//!    verifier, so a code taken from another flow fails there.
//! 3. [`verify_id_token`]: the ID token as a bearer token is checked (signature, `iss`, `exp`),
//!    with `aud` = the client id and the login cookie's `nonce`.
//! 4. [`session_cookie`]: sub, email and the groups, sealed, at most [`MAX_SESSION_COOKIE`]
//!    bytes, read back by [`read_session`] on every board. An identity with more than
//!    [`MAX_GROUPS`] groups, a longer group, or one that does not fit the cookie is refused
//!    (401 with the reason) rather than kept in part.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cookie::Sealer;
use super::query::{form, parse_query};
use super::LoginSettings;
use crate::identity::claims::{self, Expect};
use crate::identity::{b64, jws, Keys};
use crate::idp::Discovery;

/// The login cookie: the state of one sign-in across the trip to the issuer.
pub const LOGIN_COOKIE: &str = "__Host-baton_login";
/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-baton_session";
/// Seconds a sign-in may take.
pub const LOGIN_TTL_S: u64 = 600;
/// Bytes of a session cookie's value at most (browsers keep about 4 KiB per cookie, with
/// its name and attributes).
pub const MAX_SESSION_COOKIE: usize = 3584;
/// Groups kept in a session.
pub const MAX_GROUPS: usize = 32;
/// Bytes of `sub`, `email` and one group kept in a session.
pub const MAX_CLAIM: usize = 256;
/// Bytes of the return path kept across the sign-in.
pub const MAX_RETURN: usize = 1024;
/// Bytes of a callback's query.
pub const MAX_QUERY: usize = 8 * 1024;

/// A sign-in under way, sealed in the login cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The `state` sent to the issuer.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Where the browser goes once signed in (a path on this host).
    pub ret: String,
    /// Unix seconds after which it is refused.
    pub exp: u64,
}

/// A signed-in browser, sealed in the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The ID token's `sub`.
    pub sub: String,
    /// Its `email`, when a string.
    #[serde(default)]
    pub email: Option<String>,
    /// Its `groups` (a list of strings, or one string split at spaces; at most [`MAX_GROUPS`]).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Unix seconds after which it is refused.
    pub exp: u64,
    /// Unix seconds of the sign-in: a session older than the `session_ttl` in force is refused
    /// even before `exp` (0 in sessions made before it was kept: those are refused).
    #[serde(default)]
    pub iat: u64,
}

/// Where to send a browser that must sign in, and the login cookie to set.
#[derive(Debug)]
pub struct Start {
    /// The authorization URL.
    pub location: String,
    /// The `Set-Cookie` value.
    pub set_cookie: String,
}

/// Why a callback is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the callback does not belong to a sign-in of this browser.
    BadRequest(String),
    /// 401: the issuer or the token said no.
    Denied(String),
}

/// `bytes` random bytes as base64url.
fn random(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).ok()?;
    Some(b64::encode(&buf))
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    b64::encode(digest(&SHA256, verifier.as_bytes()).as_ref())
}

/// A path to come back to: the request's own path and query when it is a plain local path,
/// else `/` (never `//host` or a scheme: no open redirect).
pub fn return_path(path_and_query: &str) -> String {
    let local = path_and_query.starts_with('/')
        && !path_and_query.starts_with("//")
        && !path_and_query.starts_with("/\\")
        && path_and_query.len() <= MAX_RETURN
        && path_and_query.bytes().all(|b| b.is_ascii_graphic());
    if local {
        path_and_query.to_string()
    } else {
        "/".to_string()
    }
}

/// Begins a sign-in: the URL to send the browser to and the login cookie. `None` only when the
/// system has no randomness.
pub fn start(
    settings: &LoginSettings,
    discovery: &Discovery,
    sealer: &Sealer,
    redirect_uri: &str,
    ret: &str,
    now: u64,
) -> Option<Start> {
    let pending = Pending {
        state: random(16)?,
        nonce: random(16)?,
        verifier: random(32)?,
        ret: return_path(ret),
        exp: now + LOGIN_TTL_S,
    };
    let mut scope = "openid email profile".to_string();
    for extra in &settings.scopes {
        if !scope.split(' ').any(|s| s == extra) {
            scope.push(' ');
            scope.push_str(extra);
        }
    }
    let params = [
        ("response_type", "code"),
        ("client_id", settings.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", scope.as_str()),
        ("state", pending.state.as_str()),
        ("nonce", pending.nonce.as_str()),
        ("code_challenge", &challenge(&pending.verifier)),
        ("code_challenge_method", "S256"),
    ];
    let authorization = &discovery.authorization_endpoint;
    let join = if authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{authorization}{join}{}", form(&params));
    let sealed = sealer.seal(LOGIN_COOKIE, &pending)?;
    Some(Start {
        location,
        set_cookie: set_cookie(LOGIN_COOKIE, &sealed, LOGIN_TTL_S),
    })
}

/// What a good callback gives: the code and the sign-in it belongs to.
#[derive(Debug)]
pub struct Returned {
    /// The authorization code.
    pub code: String,
    /// The sign-in from the login cookie.
    pub pending: Pending,
}

/// Checks a callback: its query (`code` and `state`, or the issuer's `error`) against the
/// login cookie's value.
pub fn callback(
    sealer: &Sealer,
    login_cookie: Option<&str>,
    query: &str,
    now: u64,
) -> Result<Returned, Refusal> {
    let bad = |why: &str| Refusal::BadRequest(why.to_string());
    if query.len() > MAX_QUERY {
        return Err(bad("the callback's query is too long"));
    }
    let params =
        parse_query(query).ok_or_else(|| bad("the callback's query is not well formed"))?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let pending: Pending = login_cookie
        .and_then(|c| sealer.open(LOGIN_COOKIE, c))
        .ok_or_else(|| bad("no sign-in of this browser is under way (the login cookie is missing or was altered)"))?;
    if pending.exp <= now {
        return Err(bad("the sign-in took too long; start again"));
    }
    let state = get("state").ok_or_else(|| bad("the callback has no state"))?;
    if !equal(state.as_bytes(), pending.state.as_bytes()) {
        return Err(bad("the callback's state is not this browser's"));
    }
    if let Some(error) = get("error") {
        let text: String = error.chars().take(100).collect();
        return Err(Refusal::Denied(format!(
            "the identity provider answered {text:?}"
        )));
    }
    let code = get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("the callback has no code"))?;
    Ok(Returned {
        code: code.to_string(),
        pending,
    })
}

/// What the ID token is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// The client id: `aud` must contain it (and `azp`, when present, equal it).
    pub client_id: &'a str,
    /// The login cookie's nonce.
    pub nonce: &'a str,
    /// Seconds of clock difference allowed.
    pub leeway_s: u64,
}

/// Why an ID token opens no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Its `kid` is not in the key set (the caller may refetch the set once and try again).
    UnknownKey(String),
    /// Anything else.
    Invalid(String),
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::UnknownKey(kid) => write!(f, "no key {kid:?} in the issuer's key set"),
            Unverified::Invalid(why) => f.write_str(why),
        }
    }
}

/// Checks an ID token (OpenID Connect Core 3.1.3.7) and gives the session it opens, valid for
/// `ttl_s` from `now`.
pub fn verify_id_token(
    id_token: &str,
    keys: &Keys,
    expected: Expected<'_>,
    ttl_s: u64,
    now: u64,
) -> Result<Session, Unverified> {
    let claims = jws::verify(id_token, keys).map_err(|e| match e {
        jws::JwsError::Invalid(why) => Unverified::Invalid(why),
        jws::JwsError::UnknownKey { kid } => Unverified::UnknownKey(kid),
    })?;
    session_of(&claims, expected, ttl_s, now).map_err(Unverified::Invalid)
}

/// The session of an ID token's verified claims, if they are for this client and sign-in.
fn session_of(
    claims: &serde_json::Map<String, Value>,
    expected: Expected<'_>,
    ttl_s: u64,
    now: u64,
) -> Result<Session, String> {
    let expect = Expect {
        issuer: expected.issuer,
        audience: expected.client_id,
        leeway_s: expected.leeway_s,
    };
    claims::check(claims, expect, now)?;
    match claims.get("azp") {
        None => {}
        Some(Value::String(azp)) if azp == expected.client_id => {}
        Some(_) => return Err("the ID token's azp is another client".into()),
    }
    match claims.get("nonce") {
        Some(Value::String(n)) if equal(n.as_bytes(), expected.nonce.as_bytes()) => {}
        _ => return Err("the ID token's nonce is not this sign-in's".into()),
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CLAIM => s.clone(),
        _ => return Err("the ID token has no usable sub".into()),
    };
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| e.len() <= MAX_CLAIM)
        .map(str::to_string);
    let groups = session_groups(claims.get("groups"))?;
    Ok(Session {
        sub,
        email,
        groups,
        exp: now + ttl_s,
        iat: now,
    })
}

/// The groups of an ID token's `groups` claim: a list of strings, or one string of names
/// separated by spaces (as `claims::require` reads it for bearer tokens). Entries that are not
/// strings, or empty, match no `require` and are left out. More than [`MAX_GROUPS`] groups,
/// or one longer than [`MAX_CLAIM`], refuse the sign-in: a session that silently lost a group
/// would answer 403 where the same user's bearer token passes, with nothing saying why.
fn session_groups(claim: Option<&Value>) -> Result<Vec<String>, String> {
    let groups: Vec<&str> = match claim {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|g| !g.is_empty())
            .collect(),
        Some(Value::String(text)) => text.split_ascii_whitespace().collect(),
        _ => Vec::new(),
    };
    if groups.len() > MAX_GROUPS {
        return Err(format!(
            "the ID token names {} groups; a browser session keeps at most {MAX_GROUPS}",
            groups.len()
        ));
    }
    if let Some(long) = groups.iter().find(|g| g.len() > MAX_CLAIM) {
        let start: String = long.chars().take(40).collect();
        return Err(format!(
            "the ID token's group {start:?}... is longer than the {MAX_CLAIM} bytes a session keeps"
        ));
    }
    Ok(groups.into_iter().map(str::to_string).collect())
}

/// The settings a session is made and read under. The issuer and client id are sealed into
/// the cookie's associated data, so changing either in `cluster.toml` ends every session made
/// before (they no longer open); `ttl_s` is checked against the session's `iat` on every read,
/// so shortening `session_ttl` shortens the sessions already out.
#[derive(Debug, Clone, Copy)]
pub struct SessionFor<'a> {
    /// `[front_door.oidc] issuer`.
    pub issuer: &'a str,
    /// Its `client_id`.
    pub client_id: &'a str,
    /// The `session_ttl` in force, in seconds.
    pub ttl_s: u64,
}

impl SessionFor<'_> {
    /// The associated data: the cookie's name, the issuer and the client id, as a JSON array
    /// (unambiguous whatever the texts hold).
    fn aad(&self) -> String {
        serde_json::json!([SESSION_COOKIE, self.issuer, self.client_id]).to_string()
    }
}

/// The `Set-Cookie` value of `session`, `None` when it does not fit [`MAX_SESSION_COOKIE`] (or
/// no randomness). Nothing is dropped to make it fit: see [`session_groups`].
pub fn session_cookie(sealer: &Sealer, under: SessionFor<'_>, session: Session) -> Option<String> {
    let sealed = sealer.seal(&under.aad(), &session)?;
    (sealed.len() <= MAX_SESSION_COOKIE).then(|| set_cookie(SESSION_COOKIE, &sealed, under.ttl_s))
}

/// The session in a session cookie's value, if it opens under these settings, has not expired
/// and was made less than the current `session_ttl` ago.
pub fn read_session(
    sealer: &Sealer,
    under: SessionFor<'_>,
    value: &str,
    now: u64,
) -> Option<Session> {
    let session: Session = sealer.open(&under.aad(), value)?;
    let live = session.exp > now && session.iat.saturating_add(under.ttl_s) > now;
    (live && session.groups.len() <= MAX_GROUPS).then_some(session)
}

/// A `Set-Cookie` value for a `__Host-` cookie: secure, host-only, not for scripts, sent on
/// top-level navigations from other sites (the issuer's redirect back).
pub fn set_cookie(name: &str, value: &str, max_age_s: u64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_s}")
}

/// A `Set-Cookie` value that removes `name`.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// Compares secrets in time independent of where they differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
