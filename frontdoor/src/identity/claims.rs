//! The claims of a verified token (RFC 7519 section 4.1): who issued it, for whom, when it is
//! valid, and what a route requires of it. The time is passed in, so the checks are plain
//! functions of their inputs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// What a token is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// `iss` must equal it.
    pub issuer: &'a str,
    /// `aud` (a string or an array of strings) must contain it.
    pub audience: &'a str,
    /// Seconds of clock difference allowed on `exp`, `nbf` and `iat`.
    pub leeway_s: u64,
}

/// Checks `iss`, `aud`, `exp` (required), `nbf` and `iat` at `now_secs`; the error is the reason.
pub fn check(claims: &Map<String, Value>, expect: Expect<'_>, now_secs: u64) -> Result<(), String> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(_) => return Err("wrong issuer".into()),
        None => return Err("no iss".into()),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expect.audience,
        Some(Value::Array(list)) => {
            if !list.iter().all(Value::is_string) {
                return Err("aud is not a string or an array of strings".into());
            }
            list.iter().any(|a| a.as_str() == Some(expect.audience))
        }
        Some(_) => return Err("aud is not a string or an array of strings".into()),
        None => return Err("no aud".into()),
    };
    if !audience_ok {
        return Err("wrong audience".into());
    }
    // Compared as f64: NumericDate may have a fraction, and a huge or negative value must not
    // wrap. Seconds since 1970 fit an f64 exactly far beyond any real clock.
    let now = now_secs as f64;
    let leeway = expect.leeway_s as f64;
    let exp = time(claims, "exp")?.ok_or("no exp")?;
    if now >= exp + leeway {
        return Err("expired".into());
    }
    if let Some(nbf) = time(claims, "nbf")? {
        if now + leeway < nbf {
            return Err("not yet valid".into());
        }
    }
    if let Some(iat) = time(claims, "iat")? {
        if iat > now + leeway {
            return Err("issued in the future".into());
        }
    }
    Ok(())
}

/// A NumericDate claim, `Ok(None)` when absent.
fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() => Ok(Some(t)),
            _ => Err(format!("{name} is not a number")),
        },
    }
}

/// Checks a route's `require`: each listed claim must contain each listed value. A claim may be
/// an array of strings (`groups`) or a string; a string contains a value when it equals it or
/// has it as one of its space-separated words (as the OAuth `scope` claim lists scopes). The
/// error names the first claim that falls short.
pub fn require(
    claims: &Map<String, Value>,
    require: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    for (name, values) in require {
        let has = |value: &str| match claims.get(name) {
            Some(Value::String(s)) => s == value || s.split(' ').any(|w| w == value),
            Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(value)),
            _ => false,
        };
        if !values.iter().all(|v| has(v)) {
            return Err(format!("the token's {name} claim lacks a required value"));
        }
    }
    Ok(())
}
