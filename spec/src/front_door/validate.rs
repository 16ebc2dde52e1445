//! Raw `[front_door]` to [`FrontDoor`]: every problem recorded with its line and field
//! (`front_door.oidc.issuer`), defaults from [`super::defaults`].

use std::net::IpAddr;

use super::defaults as d;
use super::raw::{RawFrontDoor, RawMtls, RawOidc};
use super::{Cidr, FrontDoor, Mtls, Oidc};
use crate::service::check::Checker;
use crate::service::defaults::API_PORT;
use crate::service::route::{check_url, normalise_path};
use crate::service::tables::bytes;

/// Validates `raw` (absent: every default).
pub(crate) fn validate(c: &mut Checker<'_>, raw: Option<RawFrontDoor>) -> FrontDoor {
    let Some(raw) = raw else {
        return FrontDoor::default();
    };
    let mut port = |field: &str, value: Option<i64>, default: u16| match value {
        None => default,
        Some(v) => match u16::try_from(v) {
            Ok(API_PORT) => {
                c.error(field, format!("port {API_PORT} is the board's API"));
                default
            }
            Ok(p) => p,
            Err(_) => {
                c.error(
                    field,
                    format!("{v} is not a TCP port: use 1 to 65535, or 0 for off"),
                );
                default
            }
        },
    };
    let http = port("front_door.http", raw.http, d::HTTP);
    let https = port("front_door.https", raw.https, d::HTTPS);
    if http != 0 && http == https {
        c.error("front_door.https", format!("port {https} is also `http`"));
    }
    let memory_bytes = bytes(
        c,
        "front_door.memory",
        raw.memory,
        d::MIN_MEMORY_BYTES..=d::MAX_MEMORY_BYTES,
    )
    .unwrap_or(d::MEMORY_BYTES);
    let idle_timeout = c.duration(
        "front_door.idle_timeout",
        raw.idle_timeout.as_ref(),
        d::IDLE_TIMEOUT,
        (d::MIN_IDLE_TIMEOUT, d::MAX_IDLE_TIMEOUT),
    );
    let mut count = |field: &str, value: Option<i64>, default: u32, max: u32| {
        value.map_or(default, |v| c.count(field, v, 1, max).unwrap_or(default))
    };
    let max_connections = count(
        "front_door.max_connections",
        raw.max_connections,
        d::MAX_CONNECTIONS,
        d::MAX_MAX_CONNECTIONS,
    );
    let per_client_connections = count(
        "front_door.per_client_connections",
        raw.per_client_connections,
        d::PER_CLIENT_CONNECTIONS.min(max_connections),
        max_connections,
    );
    let per_client_rate = count(
        "front_door.per_client_rate",
        raw.per_client_rate,
        d::PER_CLIENT_RATE,
        d::MAX_PER_CLIENT_REQUESTS,
    );
    let per_client_burst = count(
        "front_door.per_client_burst",
        raw.per_client_burst,
        d::PER_CLIENT_BURST,
        d::MAX_PER_CLIENT_REQUESTS,
    );
    let proxies = raw.trusted_proxies.unwrap_or_default();
    if proxies.len() > d::MAX_TRUSTED_PROXIES {
        c.error(
            "front_door.trusted_proxies",
            format!(
                "lists {} blocks; at most {}",
                proxies.len(),
                d::MAX_TRUSTED_PROXIES
            ),
        );
    }
    let trusted_proxies = proxies
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match parse_cidr(text) {
            Ok(cidr) => Some(cidr),
            Err(why) => {
                c.error(
                    &format!("front_door.trusted_proxies[{i}]"),
                    format!("{text:?} {why}"),
                );
                None
            }
        })
        .collect();
    FrontDoor {
        http,
        https,
        redirect_http: raw.redirect_http.unwrap_or(d::REDIRECT_HTTP),
        memory_bytes,
        idle_timeout,
        max_connections,
        per_client_connections,
        per_client_rate,
        per_client_burst,
        trusted_proxies,
        oidc: raw.oidc.map(|o| oidc(c, o)),
        mtls: raw.mtls.map(|m| mtls(c, m)),
    }
}

fn oidc(c: &mut Checker<'_>, raw: RawOidc) -> Oidc {
    let f = |key: &str| format!("front_door.oidc.{key}");
    let mut text = |key: &str, value: Option<String>| {
        let value = value?;
        if value.is_empty() || value.len() > d::MAX_TEXT || value.contains(char::is_control) {
            c.error(
                &f(key),
                format!(
                    "must be 1 to {} bytes without control characters",
                    d::MAX_TEXT
                ),
            );
        }
        Some(value)
    };
    let issuer = text("issuer", raw.issuer);
    let audience = text("audience", raw.audience);
    let jwks_url = text("jwks_url", raw.jwks_url);
    let client_id = text("client_id", raw.client_id);
    let client_secret = text("client_secret", raw.client_secret);
    let issuer = c
        .required(
            &f("issuer"),
            issuer,
            "the issuer's URL, for example \"https://idp.lan\"",
        )
        .unwrap_or_default();
    let audience = c
        .required(
            &f("audience"),
            audience,
            "the `aud` its tokens carry, for example \"baton\"",
        )
        .unwrap_or_default();
    for (key, url) in [("issuer", Some(&issuer)), ("jwks_url", jwks_url.as_ref())] {
        if let Some(url) = url.filter(|u| !u.is_empty()) {
            if let Err(why) = check_url(url, &["https"], d::MAX_TEXT) {
                c.error(&f(key), format!("{url:?} {why}"));
            }
        }
    }
    if raw.jwks.is_none() && jwks_url.is_none() {
        c.error(
            &f("jwks"),
            "is required, or `jwks_url`: where the issuer's keys are (a file on the card works offline)",
        );
    }
    for (key, path) in [("jwks", &raw.jwks), ("ca", &raw.ca)] {
        if let Some(Err(why)) = path
            .as_deref()
            .map(crate::board_config::check_relative_path)
        {
            c.error(&f(key), why);
        }
    }
    match (&client_id, &client_secret) {
        (Some(_), None) => c.error(&f("client_secret"), "is required with client_id"),
        (None, Some(_)) => c.error(&f("client_id"), "is required with client_secret"),
        _ => {}
    }
    let scopes = raw.scopes.unwrap_or_default();
    if scopes.len() > d::MAX_SCOPES {
        c.error(
            &f("scopes"),
            format!("lists {} scopes; at most {}", scopes.len(), d::MAX_SCOPES),
        );
    }
    for (i, s) in scopes.iter().enumerate() {
        let ok = !s.is_empty()
            && s.len() <= 256
            && s.chars()
                .all(|ch| ch.is_ascii_graphic() && ch != '"' && ch != '\\');
        if !ok {
            c.error(
                &format!("{}[{i}]", f("scopes")),
                format!("{s:?} is not a scope: 1 to 256 visible characters, no '\"' or '\\'"),
            );
        }
    }
    let leeway = c.duration(
        &f("leeway"),
        raw.leeway.as_ref(),
        d::LEEWAY,
        (std::time::Duration::ZERO, d::MAX_LEEWAY),
    );
    let session_ttl = c.duration(
        &f("session_ttl"),
        raw.session_ttl.as_ref(),
        d::SESSION_TTL,
        (d::MIN_SESSION_TTL, d::MAX_SESSION_TTL),
    );
    let callback_path = match raw.callback_path {
        None => d::CALLBACK_PATH.to_string(),
        Some(p) => callback_path(&p).unwrap_or_else(|why| {
            c.error(&f("callback_path"), format!("{p:?} {why}"));
            d::CALLBACK_PATH.to_string()
        }),
    };
    Oidc {
        issuer,
        audience,
        jwks: raw.jwks,
        jwks_url,
        ca: raw.ca,
        client_id,
        client_secret,
        scopes,
        leeway,
        session_ttl,
        callback_path,
    }
}

/// A callback path: a clean path under `/.baton/`, which routes cannot take.
fn callback_path(p: &str) -> Result<String, String> {
    let rest = p
        .strip_prefix(d::CALLBACK_PREFIX)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            format!(
                "must be under {}, which routes cannot take",
                d::CALLBACK_PREFIX
            )
        })?;
    // Checked as if it were a route path outside the reserved prefix.
    normalise_path(&format!("/{rest}")).map(|_| p.trim_end_matches('/').to_string())
}

fn mtls(c: &mut Checker<'_>, raw: RawMtls) -> Mtls {
    let ca = c.required(
        "front_door.mtls.ca",
        raw.ca,
        "a PEM file of CA certificates on the card, like \"certs/clients.pem\"",
    );
    if let Some(Err(why)) = ca.as_deref().map(crate::board_config::check_relative_path) {
        c.error("front_door.mtls.ca", why);
    }
    Mtls {
        ca: ca.unwrap_or_default(),
    }
}

/// `a.b.c.d/n` or `v6/n`; host bits must be zero so that what is written is what is matched.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or("needs a prefix length, like \"192.168.1.2/32\"")?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("{prefix:?} is not a prefix length of 0 to {max}"))?;
    let cidr = Cidr { addr, prefix };
    if masked(cidr) != addr {
        return Err(format!(
            "has host bits set: write {}",
            Cidr {
                addr: masked(cidr),
                prefix
            }
        ));
    }
    Ok(cidr)
}

fn masked(c: Cidr) -> IpAddr {
    match c.addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(c.prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(c.prefix))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}
