//! The headers of the question to the auth service: the client's own (its cookies and
//! `Authorization` are what the auth service judges), minus those that describe the client's
//! connection or a body, plus what the request was, in the names Authelia, Traefik and nginx
//! use. The path is the normalised one the instance would get, so the auth service judges the
//! request that would actually be passed on (`/pub/../admin` is asked about as `/admin`).

use std::net::IpAddr;

use http::header::{CONTENT_LENGTH, EXPECT, FORWARDED, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::http::headers;
use crate::http::Scheme;

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// The request the auth service is asked about.
#[derive(Debug)]
pub struct Origin<'a> {
    /// The client's headers as they came.
    pub headers: &'a HeaderMap,
    /// The client.
    pub peer: IpAddr,
    /// Whether the client is a trusted proxy (its `X-Forwarded-For` chain is kept).
    pub trusted: bool,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// The normalised host.
    pub host: &'a str,
    /// The method.
    pub method: &'a Method,
    /// The normalised path and the query as sent.
    pub path_and_query: &'a str,
}

/// The one `X-Forwarded-Proto` a trusted proxy sent, when it is `http` or `https`.
fn proxied_scheme(headers: &HeaderMap) -> Option<&'static str> {
    let mut values = headers.get_all(&X_FORWARDED_PROTO).iter();
    let one = values.next()?;
    if values.next().is_some() {
        return None;
    }
    match one.as_bytes() {
        b"https" => Some("https"),
        b"http" => Some("http"),
        _ => None,
    }
}

/// The headers of the GET to the auth service at `authority`.
pub fn headers(origin: &Origin<'_>, authority: &str) -> HeaderMap {
    let mut out = origin.headers.clone();
    headers::strip_hop_by_hop(&mut out, false);
    // The question has no body: a length or an `Expect` would make the auth service wait
    // for one.
    out.remove(CONTENT_LENGTH);
    out.remove(EXPECT);
    // The client's forwarding and identity headers go unless it is trusted (a forged
    // `X-Forwarded-Host` once let clients choose what Traefik's forwardAuth judged), baton's
    // cookies go, and the others are joined into one `Cookie` (an HTTP/2 client may split
    // them; an auth service may read only the first), all by the shared cleaning.
    // The scheme the caller used: a trusted proxy that ends TLS says so with one
    // `X-Forwarded-Proto` of `http` or `https` (the instance is told the same, so the two
    // agree); anything else counts for nothing.
    let scheme = match origin.trusted {
        true => proxied_scheme(&out).unwrap_or(origin.scheme.as_str()),
        false => origin.scheme.as_str(),
    };
    headers::set_forwarded(
        &mut out,
        origin.peer,
        origin.trusted,
        origin.scheme,
        origin.host,
    );
    // What the request was is said by the front door alone, even behind a trusted proxy: the
    // auth service must judge the request that is routed (this host, this scheme, this path),
    // not one a client or proxy describes. A trusted proxy's `X-Forwarded-For` chain stays: it
    // names the client, not the request.
    for name in [
        &X_FORWARDED_METHOD,
        &X_FORWARDED_URI,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
        &X_FORWARDED_PORT,
        &FORWARDED,
        &X_ORIGINAL_URL,
        &X_ORIGINAL_URI,
        &X_ORIGINAL_METHOD,
    ] {
        out.remove(name);
    }
    if let Ok(value) = HeaderValue::from_str(authority) {
        out.insert(HOST, value);
    }
    out.insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
    if let Ok(value) = HeaderValue::from_str(origin.host) {
        out.insert(X_FORWARDED_HOST, value);
    }
    // Traefik's and Authelia's `/api/verify` names, then nginx `auth_request`'s (Authelia's
    // `/api/authz/auth-request`, ingress-nginx).
    let method = HeaderValue::from_str(origin.method.as_str()).ok();
    let uri = HeaderValue::from_str(origin.path_and_query).ok();
    for (name, value) in [
        (X_FORWARDED_METHOD, &method),
        (X_FORWARDED_URI, &uri),
        (X_ORIGINAL_METHOD, &method),
        (X_ORIGINAL_URI, &uri),
    ] {
        if let Some(value) = value {
            out.insert(name, value.clone());
        }
    }
    let url = format!("{scheme}://{}{}", origin.host, origin.path_and_query);
    if let Ok(value) = HeaderValue::from_str(&url) {
        out.insert(X_ORIGINAL_URL, value);
    }
    out
}
