//! Headers between the client and the instance: hop-by-hop headers go, the client's claims
//! about forwarding and identity go unless it is a trusted proxy, and the front door says who
//! called, over what and for which host (`X-Forwarded-*`), with a request id on both sides.

use std::net::IpAddr;

use http::header::{CONNECTION, HOST, TE, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::Scheme;

/// The request id header, kept when the client sends a sane one.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
pub const MAX_REQUEST_ID: usize = 128;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, never passed on (RFC 9110 §7.6.1, plus the
/// `Proxy-*` and `Keep-Alive` headers of older clients).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers a client could use to claim an identity or a path through proxies; removed from
/// every request unless the peer is a trusted proxy (the identity ones always).
const FORWARDING: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "x-real-ip",
];

/// Removes hop-by-hop headers, and those named in `Connection`. With `upgrade` (a WebSocket
/// handshake passed on), `Upgrade` is kept and `Connection: upgrade` set again.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let upgrade_value = upgrade.then(|| headers.get(UPGRADE).cloned()).flatten();
    let trailers = headers
        .get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    if trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    if let Some(value) = upgrade_value {
        headers.insert(UPGRADE, value);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Whether a request asks to switch protocols (a WebSocket handshake over HTTP/1.1).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Sets what the instance learns of the call: `X-Forwarded-For` (the client's address, after
/// the chain a trusted proxy sent), `-Proto`, `-Host` and `Host` (the host the client asked
/// for). A client that is not a trusted proxy loses its own forwarding headers; identity headers
/// and baton's cookies are always removed ([`super::hygiene::strip`]; the identity check sets
/// the headers after).
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: bool,
    scheme: Scheme,
    host: &str,
) {
    super::hygiene::strip(headers, &[]);
    let chain = trusted.then(|| joined(headers, &X_FORWARDED_FOR)).flatten();
    let proto = trusted
        .then(|| headers.get(X_FORWARDED_PROTO).cloned())
        .flatten();
    let fwd_host = trusted
        .then(|| headers.get(X_FORWARDED_HOST).cloned())
        .flatten();
    if !trusted {
        for name in FORWARDING {
            headers.remove(*name);
        }
    }
    let for_value = match chain {
        Some(chain) => format!("{chain}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&for_value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(
        X_FORWARDED_PROTO,
        proto.unwrap_or(HeaderValue::from_static(scheme.as_str())),
    );
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert(HOST, value.clone());
        headers.insert(X_FORWARDED_HOST, fwd_host.unwrap_or(value));
    }
}

/// The values of `name` joined with `, `, if any and all are text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<_>>()?;
    (!values.is_empty()).then(|| values.join(", "))
}

/// The request's id: the client's `X-Request-Id` when it is 1 to [`MAX_REQUEST_ID`] visible
/// ASCII characters, else 128 random bits in hex.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(value) = headers.get(REQUEST_ID) {
        let bytes = value.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(u8::is_ascii_graphic)
        {
            return value.clone();
        }
    }
    let mut random = [0u8; 16];
    // No randomness (a kernel without getrandom): ids still differ per process and request.
    if getrandom::fill(&mut random).is_err() {
        random = fallback_id();
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&hex).unwrap_or(HeaderValue::from_static("0"))
}

fn fallback_id() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

#[cfg(test)]
mod tests;
