//! The bearer check of an `oidc` route (docs/design/front-door.md section 5.1): the token from
//! `Authorization: Bearer` only (never a query string or a cookie), verified against the key
//! set, its claims checked, and the answer for the client when it does not pass (RFC 6750
//! section 3).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::claims::{self, Expect};
use super::jwk::Keys;
use super::jws::{self, JwsError, MAX_TOKEN};
use super::verified::Verified;

/// Bytes of a reason put in `WWW-Authenticate`.
const MAX_REASON: usize = 200;

/// What the check needs besides the token and the keys.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The token's `iss` must equal it.
    pub issuer: &'a str,
    /// The token's `aud` must contain it.
    pub audience: &'a str,
    /// Seconds of clock difference allowed.
    pub leeway_s: u64,
    /// The route's `require`: each claim must contain each value.
    pub require: &'a BTreeMap<String, Vec<String>>,
}

/// Who a token says the caller is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub`.
    pub sub: String,
    /// `email`, when it is a string.
    pub email: Option<String>,
    /// `groups`, its string entries (empty when absent).
    pub groups: Vec<String>,
    /// All claims; bounded by the payload's size ([`jws::MAX_PART`]).
    pub claims: Map<String, Value>,
}

/// Why a request does not pass, and so what it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No bearer token: 401 with a bare challenge.
    Missing,
    /// A token that does not hold: 401 `invalid_token`.
    Invalid(String),
    /// A valid token without what the route requires: 403 `insufficient_scope`.
    Insufficient(String),
    /// A `kid` the key set lacks: the caller may refetch the set (at most once a minute) and
    /// check again; otherwise it is answered as an invalid token.
    UnknownKey {
        /// The `kid`.
        kid: String,
    },
}

impl Denied {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Denied::Insufficient(_) => 403,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` value of the answer.
    pub fn www_authenticate(&self) -> String {
        let (error, reason) = match self {
            Denied::Missing => return "Bearer realm=\"baton\"".to_string(),
            Denied::Invalid(why) => ("invalid_token", safe(why)),
            Denied::UnknownKey { .. } => ("invalid_token", "unknown key".to_string()),
            Denied::Insufficient(why) => ("insufficient_scope", safe(why)),
        };
        format!("Bearer realm=\"baton\", error=\"{error}\", error_description=\"{reason}\"")
    }
}

/// `text` as RFC 6750 allows in `error_description` (visible ASCII and space, without `"` and
/// `\`), each other character as `?`, bounded.
fn safe(text: &str) -> String {
    text.chars()
        .take(MAX_REASON)
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// Checks the request's `Authorization` header at `now_secs`.
pub fn check(
    authorization_header: Option<&str>,
    keys: &Keys,
    settings: &Settings<'_>,
    now_secs: u64,
) -> Result<Identity, Denied> {
    check_with(authorization_header, keys, None, settings, now_secs)
}

/// [`check`], taking the signature check from `verified` (the cache of `keys`) when the token
/// passed it before. The claims are checked every time.
pub fn check_with(
    authorization_header: Option<&str>,
    keys: &Keys,
    verified: Option<&Verified>,
    settings: &Settings<'_>,
    now_secs: u64,
) -> Result<Identity, Denied> {
    let token = token(authorization_header)?;
    let signed = match verified {
        Some(cache) => cache.verify(token, keys),
        None => jws::verify(token, keys).map(Arc::new),
    };
    let claims = signed.map_err(|e| match e {
        JwsError::Invalid(why) => Denied::Invalid(why),
        JwsError::UnknownKey { kid } => Denied::UnknownKey { kid },
    })?;
    let expect = Expect {
        issuer: settings.issuer,
        audience: settings.audience,
        leeway_s: settings.leeway_s,
    };
    claims::check(&claims, expect, now_secs).map_err(Denied::Invalid)?;
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Denied::Invalid("no sub".into())),
    };
    claims::require(&claims, settings.require).map_err(Denied::Insufficient)?;
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);
    let groups = match claims.get("groups") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Identity {
        sub,
        email,
        groups,
        claims: Map::clone(&claims),
    })
}

/// The token of `Bearer <token>` (scheme in any case). A header of another scheme counts as no
/// token, as RFC 6750 section 3.1 answers a request without bearer credentials.
fn token(header: Option<&str>) -> Result<&str, Denied> {
    let Some(header) = header else {
        return Err(Denied::Missing);
    };
    // Bounded before anything else looks at it; the scheme and the space fit in the slack.
    if header.len() > MAX_TOKEN + 64 {
        return Err(Denied::Invalid(format!(
            "token longer than {MAX_TOKEN} bytes"
        )));
    }
    let header = header.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denied::Missing);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(Denied::Invalid("empty token".into()));
    }
    Ok(token)
}
