//! The headers of the question to the auth service: the client's own (its cookies and
//! `Authorization` are what the auth service judges), minus those that describe the client's
//! connection or a body, plus what the request was, in the names Authelia, Traefik and nginx
//! use. The path is the normalised one the instance would get, so the auth service judges the
//! request that would actually be passed on (`/pub/../admin` is asked about as `/admin`).

use std::net::IpAddr;

use http::header::{CONTENT_LENGTH, COOKIE, EXPECT, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::http::headers;
use crate::http::Scheme;

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");

/// The request the auth service is asked about.
#[derive(Debug)]
pub struct Origin<'a> {
    /// The client's headers as they came.
    pub headers: &'a HeaderMap,
    /// The client.
    pub peer: IpAddr,
    /// Whether the client is a trusted proxy (its `X-Forwarded-*` chain is kept).
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

/// The headers of the GET to the auth service at `authority`.
pub fn headers(origin: &Origin<'_>, authority: &str) -> HeaderMap {
    let mut out = origin.headers.clone();
    headers::strip_hop_by_hop(&mut out, false);
    // The question has no body: a length or an `Expect` would make the auth service wait
    // for one.
    out.remove(CONTENT_LENGTH);
    out.remove(EXPECT);
    // An HTTP/2 client may split its cookies over several `cookie` fields; HTTP/1.1 allows one
    // (RFC 9113 section 8.2.3 says to join them with "; "), and an auth service may read only
    // the first.
    let cookies: Vec<&str> = origin
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if cookies.len() > 1 {
        if let Ok(joined) = HeaderValue::from_str(&cookies.join("; ")) {
            out.insert(COOKIE, joined);
        }
    }
    // The client's forwarding headers go unless it is trusted (a forged `X-Forwarded-Host`
    // once let clients choose what Traefik's forwardAuth judged), and identity headers always.
    headers::set_forwarded(
        &mut out,
        origin.peer,
        origin.trusted,
        origin.scheme,
        origin.host,
    );
    for name in [&X_FORWARDED_METHOD, &X_FORWARDED_URI, &X_ORIGINAL_URL] {
        out.remove(name);
    }
    if let Ok(value) = HeaderValue::from_str(authority) {
        out.insert(HOST, value);
    }
    if let Ok(value) = HeaderValue::from_str(origin.method.as_str()) {
        out.insert(X_FORWARDED_METHOD, value);
    }
    if let Ok(value) = HeaderValue::from_str(origin.path_and_query) {
        out.insert(X_FORWARDED_URI, value);
    }
    let proto = out
        .get(X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(origin.scheme.as_str())
        .to_string();
    let url = format!("{proto}://{}{}", origin.host, origin.path_and_query);
    if let Ok(value) = HeaderValue::from_str(&url) {
        out.insert(X_ORIGINAL_URL, value);
    }
    out
}
