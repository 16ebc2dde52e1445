//! What a client may not tell an instance itself (docs/design/front-door.md section 5.3): the
//! identity headers only the front door sets, the headers an auth service's answer is copied
//! into, and baton's own cookies. Removed from every request on every route, `auth = "none"`
//! included, before anything is set (Caddy GHSA-7r4p-vjf4-gxv4 and APISIX #13183 were this bug:
//! a header the proxy only sometimes overwrote went through as the client wrote it). Header
//! names with an underscore are dropped too, as nginx drops them by default.

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Identity headers only the front door sets: who called, as it tells an instance, and the
/// cluster's signed statement of it ([`crate::identity::assertion`]).
pub const IDENTITY: &[&str] = &["x-forwarded-user", "x-forwarded-email", "x-baton-identity"];
pub const X_FORWARDED_USER: HeaderName = HeaderName::from_static(IDENTITY[0]);
pub const X_FORWARDED_EMAIL: HeaderName = HeaderName::from_static(IDENTITY[1]);
pub const X_BATON_IDENTITY: HeaderName = HeaderName::from_static(IDENTITY[2]);

/// Cookies whose name starts with this are the front door's own (sign-in and session): the
/// browser sends them on every request to the host, and no instance needs to see them.
pub const BATON_COOKIE_PREFIX: &[u8] = b"__Host-baton_";
/// The board dashboard's session cookie on a board without TLS (cookies ignore the port: a
/// browser signed in on port 7070 sends it to the front door on port 80 of the same host too).
pub const DASHBOARD_PLAIN_COOKIE: &[u8] = b"baton_dash=";

/// Removes the identity headers, each of `extra` (such as a forward-auth route's
/// `copy_headers`), and baton's cookies from `Cookie`. The other cookies stay, joined into one
/// `Cookie` header (HTTP/2 clients may send several; an HTTP/1.1 instance expects one, RFC
/// 9113 section 8.2.3).
pub fn strip(headers: &mut HeaderMap, extra: &[HeaderName]) {
    for name in IDENTITY {
        headers.remove(*name);
    }
    // Names with `_` are dropped whole, as nginx does by default (`underscores_in_headers
    // off`): CGI, WSGI and PHP servers read `X_Forwarded_User` and `X-Forwarded-User` as one
    // `HTTP_X_FORWARDED_USER`, so such a name could stand in for an identity header.
    let underscored: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in underscored {
        headers.remove(name);
    }
    for name in extra {
        headers.remove(name);
    }
    strip_cookies(headers);
}

fn strip_cookies(headers: &mut HeaderMap) {
    if !headers.contains_key(COOKIE) {
        return;
    }
    // Bytes, not text: a cookie value may hold bytes a header's text view refuses, and those
    // cookies are not ours to drop.
    let mut kept: Vec<u8> = Vec::new();
    for value in headers.get_all(COOKIE) {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let pair = trim(pair);
            if pair.is_empty()
                || pair.starts_with(BATON_COOKIE_PREFIX)
                || pair.starts_with(DASHBOARD_PLAIN_COOKIE)
            {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(COOKIE);
    // The pieces come from valid header values and are joined with "; ", so this cannot fail;
    // if it did, leaving the cookies out is the safe side.
    if let Ok(value) = HeaderValue::from_bytes(&kept) {
        if !kept.is_empty() {
            headers.insert(COOKIE, value);
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn identity_headers_and_extra_names_go_in_any_case() {
        let mut h = headers(&[
            ("X-Forwarded-User", "root"),
            ("x-forwarded-email", "root@lan"),
            ("X-BATON-IDENTITY", "forged"),
            ("remote-user", "root"),
            ("accept", "*/*"),
        ]);
        strip(&mut h, &[HeaderName::from_static("remote-user")]);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn names_with_underscores_go_whole() {
        let mut h = headers(&[
            ("X_Forwarded_User", "root"),
            ("x-baton_identity", "forged"),
            ("remote_user", "root"),
            ("x-fine-name", "kept"),
        ]);
        strip(&mut h, &[]);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-fine-name"], "kept");
    }

    #[test]
    fn baton_cookies_go_and_the_others_are_joined_into_one_header() {
        let mut h = headers(&[
            ("cookie", "a=1; __Host-baton_session=secret;b=2"),
            ("cookie", "__Host-baton_login=x"),
            ("cookie", " c=3 ;; "),
        ]);
        strip(&mut h, &[]);
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h[COOKIE], "a=1; b=2; c=3");
    }

    #[test]
    fn a_cookie_header_of_only_baton_cookies_is_removed() {
        let mut h = headers(&[(
            "cookie",
            "__Host-baton_session=s; __Host-baton_login=l; __Host-baton_dash=d; baton_dash=p",
        )]);
        strip(&mut h, &[]);
        assert!(!h.contains_key(COOKIE), "{h:?}");
    }

    #[test]
    fn a_cookie_named_like_ours_in_other_case_is_not_ours() {
        // Cookie names are case-sensitive (RFC 6265 section 5.4), and the __Host- prefix too.
        let mut h = headers(&[("cookie", "__host-baton_session=s")]);
        strip(&mut h, &[]);
        assert_eq!(h[COOKIE], "__host-baton_session=s");
    }
}
