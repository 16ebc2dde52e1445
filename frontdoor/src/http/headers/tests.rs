use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in pairs {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    headers
}

#[test]
fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
    let mut h = map(&[
        ("connection", "close, x-secret"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("te", "gzip, trailers"),
        ("proxy-authorization", "Basic x"),
        ("upgrade", "websocket"),
        ("accept", "*/*"),
    ]);
    strip_hop_by_hop(&mut h, false);
    let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["accept", "te"], "{h:?}");
    assert_eq!(h[TE], "trailers");
}

#[test]
fn an_upgrade_keeps_its_upgrade_header() {
    let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    assert!(wants_upgrade(&h));
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h[UPGRADE], "websocket");
    assert_eq!(h[CONNECTION], "upgrade");
    assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
}

#[test]
fn an_untrusted_client_cannot_claim_an_address_a_host_or_an_identity() {
    let mut h = map(&[
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-host", "admin.lan"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=10.0.0.1"),
        ("x-real-ip", "10.0.0.1"),
        ("x-forwarded-user", "root"),
        ("X-Baton-Identity", "forged"),
        ("host", "other.lan"),
    ]);
    let peer: IpAddr = "192.168.1.9".parse().unwrap();
    set_forwarded(&mut h, peer, false, Scheme::Http, "shop.lan");
    assert_eq!(h["x-forwarded-for"], "192.168.1.9");
    assert_eq!(h["x-forwarded-host"], "shop.lan");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h[HOST], "shop.lan");
    for gone in [
        "forwarded",
        "x-real-ip",
        "x-forwarded-user",
        "x-baton-identity",
    ] {
        assert!(!h.contains_key(gone), "{gone}: {h:?}");
    }
}

#[test]
fn a_trusted_proxy_extends_the_chain() {
    let mut h = map(&[
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-for", "10.1.1.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-user", "root"),
    ]);
    let peer: IpAddr = "192.168.1.2".parse().unwrap();
    set_forwarded(&mut h, peer, true, Scheme::Http, "shop.lan");
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.1.1.1, 192.168.1.2");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert!(!h.contains_key("x-forwarded-user"));
}

#[test]
fn a_sane_request_id_is_kept_and_others_replaced() {
    let kept = request_id(&map(&[("x-request-id", "abc-123")]));
    assert_eq!(kept, "abc-123");
    let long = "a".repeat(MAX_REQUEST_ID + 1);
    for bad in [long.as_str(), "has space", ""] {
        let id = request_id(&map(&[("x-request-id", bad)]));
        assert_eq!(id.len(), 32, "{bad:?}");
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }
    assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
}
