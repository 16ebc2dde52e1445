//! `route`: how the front door sends requests to a service. Host names (exact or `*.suffix`)
//! and paths are normalised here, so that the front door and the clash check in [`super::load`]
//! compare the same keys: `Shop.LAN` is `shop.lan`, `/api/` is `/api`.

use std::collections::BTreeMap;

use super::check::{is_host_name, Checker};
use super::defaults as d;
use super::raw::{RawForward, RawRoute};
use super::types::{Auth, Forward, Route};
use crate::locate::quote_key;

/// Longest `route.path`, in bytes.
pub const MAX_PATH: usize = 1024;
/// Most claims in `route.require`.
pub const MAX_REQUIRE_CLAIMS: usize = 16;
/// Most values of one claim in `route.require`.
pub const MAX_REQUIRE_VALUES: usize = 32;
/// Longest claim name or value in `route.require`, in bytes.
pub const MAX_REQUIRE_TEXT: usize = 256;
/// Longest `route.forward.url`, in bytes.
pub const MAX_FORWARD_URL: usize = 2048;
/// Most names in `route.forward.copy_headers`.
pub const MAX_COPY_HEADERS: usize = 32;
/// Longest header name in `route.forward`, in bytes.
pub const MAX_HEADER_NAME: usize = 64;

/// Headers `route.forward.copy_headers` may not name (compared without case): identity headers
/// and cookies only the front door sets or the client sends, the forwarding headers the front
/// door sets, and headers that frame a request or describe one connection. Copied from an
/// answer they would let the auth service, or whoever answers in its place, speak for the
/// front door; the front door never copies them either.
pub const NOT_COPYABLE: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-baton-identity",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-real-ip",
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Path prefixes the front door answers itself (sign-in callbacks, its JWKS); no route may take
/// them.
pub const RESERVED_PATHS: &[&str] = &["/.baton", "/.well-known/baton"];

/// The clash key of a route: normalised host (empty for any host) and normalised path. Two
/// specs with the same key would fight over the same requests.
pub fn route_key(r: &Route) -> (String, String) {
    (r.host.clone().unwrap_or_default(), r.path.clone())
}

/// Validates `raw`; `has_port` says whether the spec has the `port` requests go to.
pub(crate) fn route(c: &mut Checker<'_>, raw: RawRoute, has_port: bool) -> Route {
    if !has_port {
        c.error("route", "needs `port`, the container port requests go to");
    }
    let host = raw.host.and_then(|h| match normalise_host(&h) {
        Ok(h) => Some(h),
        Err(why) => {
            c.error("route.host", format!("{h:?} {why}"));
            None
        }
    });
    let path = raw.path.unwrap_or_else(|| d::ROUTE_PATH.to_string());
    let path = match normalise_path(&path) {
        Ok(p) => p,
        Err(why) => {
            c.error("route.path", format!("{path:?} {why}"));
            d::ROUTE_PATH.to_string()
        }
    };
    let auth = raw.auth.unwrap_or(d::ROUTE_AUTH);
    let timeout = c.duration(
        "route.timeout",
        raw.timeout.as_ref(),
        d::ROUTE_TIMEOUT,
        (d::MIN_ROUTE_TIMEOUT, d::MAX_ROUTE_TIMEOUT),
    );
    let require = raw.require.map(|r| require(c, r, auth)).unwrap_or_default();
    let forward = match (raw.forward, auth) {
        (Some(f), Auth::Forward) => Some(forward(c, f)),
        (Some(_), _) => {
            c.error("route.forward", "is only used with auth = \"forward\"");
            None
        }
        (None, Auth::Forward) => {
            c.error(
                "route.forward",
                "is required with auth = \"forward\": for example { url = \"http://auth:9091/api/verify\" }",
            );
            None
        }
        (None, _) => None,
    };
    Route {
        host,
        path,
        auth,
        timeout,
        require,
        forward,
    }
}

/// A route host, lowercased and without a final dot: a DNS name, or `*.` and a suffix of at
/// least two labels (`*.apps.lan`; `*.lan` would take a whole top-level name).
pub fn normalise_host(text: &str) -> Result<String, &'static str> {
    let lower = text.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    match host.strip_prefix("*.") {
        Some(suffix) if is_host_name(suffix) && suffix.contains('.') => Ok(host.to_string()),
        Some(_) => Err("is not a wildcard host: write `*.` and a name of at least two labels, like \"*.apps.lan\""),
        None if is_host_name(host) => Ok(host.to_string()),
        None => Err("is not a host name: use labels of letters, digits and '-' joined by '.', or \"*.suffix\""),
    }
}

/// A route path: absolute, visible ASCII, no empty, `.` or `..` segments, no query or fragment,
/// not under [`RESERVED_PATHS`]; a trailing `/` is dropped (`/api/` matches what `/api` does).
pub fn normalise_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err("must start with '/'".into());
    }
    if text.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    // No '%': a prefix is matched against the path as the front door decodes it, so an encoded
    // form would be a second spelling of one path (a way around the clash and reserved checks).
    // No ';': parameters in a segment are another such spelling on some servers.
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii_graphic() || "?#\\%;".contains(*c))
    {
        return Err(format!(
            "must not contain {c:?}: a path prefix is visible ASCII without '?', '#', '\\', '%' \
             or ';' (write it decoded)"
        ));
    }
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    if trimmed.is_empty() {
        return Ok("/".into());
    }
    for segment in trimmed[1..].split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("must not contain empty, '.' or '..' segments".into());
        }
    }
    if let Some(r) = RESERVED_PATHS.iter().find(|r| is_under(trimmed, r)) {
        return Err(format!(
            "is under {r}/, which the front door answers itself"
        ));
    }
    Ok(trimmed.to_string())
}

/// Whether `path` is `prefix` or below it, on segment boundaries (ASCII case-insensitively, so
/// that `/.Baton` does not slip by on a server that folds case).
fn is_under(path: &str, prefix: &str) -> bool {
    path.len() >= prefix.len()
        && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

fn require(
    c: &mut Checker<'_>,
    raw: BTreeMap<String, Vec<String>>,
    auth: Auth,
) -> BTreeMap<String, Vec<String>> {
    if !matches!(auth, Auth::Oidc | Auth::Login) {
        c.error(
            "route.require",
            "checks token claims: it needs auth = \"oidc\" or \"login\"",
        );
    }
    if raw.len() > MAX_REQUIRE_CLAIMS {
        c.error(
            "route.require",
            format!("names {} claims; at most {MAX_REQUIRE_CLAIMS}", raw.len()),
        );
    }
    let text_ok =
        |t: &str| !t.is_empty() && t.len() <= MAX_REQUIRE_TEXT && !t.contains(char::is_control);
    for (claim, values) in &raw {
        let field = format!("route.require.{}", quote_key(claim));
        if !text_ok(claim) {
            c.error(
                &field,
                format!("a claim name is 1 to {MAX_REQUIRE_TEXT} bytes without control characters"),
            );
        }
        if values.is_empty() || values.len() > MAX_REQUIRE_VALUES {
            c.error(
                &field,
                format!("list 1 to {MAX_REQUIRE_VALUES} values the claim must contain"),
            );
        }
        for (i, v) in values.iter().enumerate() {
            if !text_ok(v) {
                c.error(
                    &format!("{field}[{i}]"),
                    format!("a value is 1 to {MAX_REQUIRE_TEXT} bytes without control characters"),
                );
            }
        }
    }
    raw
}

fn forward(c: &mut Checker<'_>, raw: RawForward) -> Forward {
    let url = c
        .required(
            "route.forward.url",
            raw.url,
            "for example \"http://auth:9091/api/verify\"",
        )
        .unwrap_or_default();
    if !url.is_empty() {
        if let Err(why) = check_url(&url, &["http", "https"], MAX_FORWARD_URL) {
            c.error("route.forward.url", format!("{url:?} {why}"));
        }
    }
    let copy_headers = raw.copy_headers.unwrap_or_default();
    if copy_headers.len() > MAX_COPY_HEADERS {
        c.error(
            "route.forward.copy_headers",
            format!(
                "lists {} headers; at most {MAX_COPY_HEADERS}",
                copy_headers.len()
            ),
        );
    }
    for (i, h) in copy_headers.iter().enumerate() {
        let field = format!("route.forward.copy_headers[{i}]");
        if !is_header_name(h) {
            c.error(&field, header_hint(h));
        } else if NOT_COPYABLE.contains(&h.to_ascii_lowercase().as_str()) {
            c.error(
                &field,
                format!(
                    "{h:?} cannot be copied from the auth service's answer: the front door \
                     alone sets identity, cookie, forwarding and framing headers"
                ),
            );
        }
    }
    let mut name = |field: &str, value: Option<String>, default: &str| {
        let value = value.unwrap_or_else(|| default.to_string());
        if !is_header_name(&value) {
            c.error(field, header_hint(&value));
        }
        value
    };
    let user_header = name(
        "route.forward.user_header",
        raw.user_header,
        d::FORWARD_USER_HEADER,
    );
    let email_header = name(
        "route.forward.email_header",
        raw.email_header,
        d::FORWARD_EMAIL_HEADER,
    );
    Forward {
        url,
        copy_headers,
        user_header,
        email_header,
    }
}

fn header_hint(h: &str) -> String {
    format!("{h:?} is not a header name: 1 to {MAX_HEADER_NAME} letters, digits and '-'")
}

/// An HTTP header name as baton accepts it: letters, digits and `-` (a subset of RFC 9110's
/// token that every proxy and server agrees on).
pub fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= MAX_HEADER_NAME
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The host of an absolute URL, lowercased, without brackets or port: how a
/// `route.forward.url` names a service of the cluster (`http://auth:9091/verify` is `auth`),
/// whose instances the front door then asks directly.
pub fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => authority.split_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Checks an absolute URL with one of `schemes`: a host, no user info, no fragment, visible
/// ASCII, at most `max` bytes. The front door's client parses it again; this catches typos
/// and credentials put where they would be logged.
pub fn check_url(url: &str, schemes: &[&str], max: usize) -> Result<(), String> {
    if url.len() > max {
        return Err(format!("is longer than {max} bytes"));
    }
    if !url.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be visible ASCII without spaces".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("is not a URL: write {}://host/path", schemes[0]));
    };
    if !schemes.contains(&scheme) {
        return Err(format!("must use {}", schemes.join(" or ")));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry a user name or password".into());
    }
    if url.contains('#') {
        return Err("must not have a fragment ('#')".into());
    }
    // `[v6]:port`, `host:port` or just the host.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, rest)) => (h, Some(rest.strip_prefix(':').unwrap_or(rest))),
            None => return Err("has an unclosed '['".into()),
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if let Some(port) = port {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(format!("has a bad port {port:?}"));
        }
    }
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok(())
}
