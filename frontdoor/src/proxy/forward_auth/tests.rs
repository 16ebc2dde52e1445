//! What a 2xx answer lets through, and what a refusal passes back.

use super::*;

fn forward() -> ForwardAuth {
    ForwardAuth {
        url: "http://auth/verify".into(),
        copy_headers: vec!["Remote-Groups".into(), "X-Token".into()],
        user_header: "Remote-User".into(),
        email_header: "Remote-Email".into(),
    }
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in pairs {
        out.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    out
}

#[test]
fn a_yes_names_the_user_and_copies_only_the_listed_headers() {
    let answer = map(&[
        ("remote-user", "ann"),
        ("remote-email", "ann@lan"),
        ("remote-groups", "admins"),
        ("remote-groups", "staff"),
        ("x-other", "not copied"),
    ]);
    let g = granted(&forward(), &answer);
    let identity = g.identity.clone().expect("identity");
    assert_eq!(identity.sub, "ann");
    assert_eq!(identity.email.as_deref(), Some("ann@lan"));
    let mut upstream = map(&[
        ("remote-user", "forged"),
        ("remote-email", "forged@lan"),
        ("remote-groups", "forged"),
        ("x-token", "forged"),
        ("x-kept", "yes"),
    ]);
    g.scrub(&mut upstream);
    g.copy(&mut upstream);
    let all = |n: &str| {
        upstream
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("remote-groups"), ["admins", "staff"]);
    // Named by the answer's user and email headers, not copied: the client's copies are gone.
    assert!(all("remote-user").is_empty() && all("remote-email").is_empty());
    assert!(
        all("x-token").is_empty(),
        "the answer had none, the client's is gone"
    );
    assert!(all("x-other").is_empty());
    assert_eq!(all("x-kept"), ["yes"]);
}

#[test]
fn a_yes_without_a_usable_user_names_no_one() {
    let g = granted(&forward(), &map(&[("remote-email", "ann@lan")]));
    assert!(g.identity.is_none());
    let long = "u".repeat(MAX_IDENTITY + 1);
    let g = granted(&forward(), &map(&[("remote-user", &long)]));
    assert!(g.identity.is_none());
    let g = granted(&forward(), &map(&[("remote-user", "  ")]));
    assert!(g.identity.is_none());
}

#[test]
fn a_refusal_passes_back_without_hop_by_hop_headers_or_its_length() {
    let answer = Answer {
        status: StatusCode::FOUND,
        headers: map(&[
            ("location", "https://auth.lan/?rd=x"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("connection", "close, x-conn"),
            ("x-conn", "hop"),
            ("content-length", "999"),
        ]),
        body: bytes::Bytes::from_static(b"go sign in"),
    };
    let r = answer.into_response();
    assert_eq!(r.status(), StatusCode::FOUND);
    let h = r.headers();
    assert_eq!(h["location"], "https://auth.lan/?rd=x");
    assert_eq!(h.get_all("set-cookie").iter().count(), 2);
    assert!(!h.contains_key("connection") && !h.contains_key("x-conn"));
    assert!(!h.contains_key("content-length"));
}

#[test]
fn framing_and_connection_headers_are_never_copied_or_removed() {
    let mut f = forward();
    f.copy_headers = vec![
        "Content-Length".into(),
        "Transfer-Encoding".into(),
        "Host".into(),
        "Connection".into(),
        "X-Token".into(),
    ];
    f.user_header = "Host".into();
    let answer = map(&[
        ("content-length", "3"),
        ("transfer-encoding", "chunked"),
        ("host", "auth"),
        ("connection", "close"),
        ("x-token", "t1"),
    ]);
    let g = granted(&f, &answer);
    assert!(g.identity.is_none(), "a framing header names no user");
    let mut upstream = map(&[("host", "app.lan"), ("content-length", "0")]);
    g.scrub(&mut upstream);
    g.copy(&mut upstream);
    assert_eq!(upstream["host"], "app.lan");
    assert_eq!(upstream["content-length"], "0");
    assert_eq!(upstream["x-token"], "t1");
    assert!(!upstream.contains_key("transfer-encoding") && !upstream.contains_key("connection"));
}

#[test]
fn the_question_joins_cookie_crumbs_and_says_what_the_request_was() {
    let client = map(&[
        ("cookie", "a=1"),
        ("cookie", "session=good"),
        ("content-length", "12"),
        ("connection", "keep-alive"),
        ("x-forwarded-host", "forged.lan"),
        ("x-forwarded-user", "mallory"),
    ]);
    let origin = Origin {
        headers: &client,
        peer: "192.0.2.7".parse().unwrap(),
        trusted: false,
        scheme: crate::http::Scheme::Https,
        host: "app.lan",
        method: &http::Method::PUT,
        path_and_query: "/a/b?c=d",
    };
    let asked = ask::headers(&origin, "auth:9091");
    let one = |n: &str| {
        let all: Vec<_> = asked.get_all(n).iter().collect();
        assert_eq!(all.len(), 1, "{n}: {all:?}");
        all[0].to_str().unwrap().to_string()
    };
    assert_eq!(one("cookie"), "a=1; session=good");
    assert_eq!(one("host"), "auth:9091");
    assert_eq!(one("x-forwarded-method"), "PUT");
    assert_eq!(one("x-forwarded-proto"), "https");
    assert_eq!(one("x-forwarded-host"), "app.lan");
    assert_eq!(one("x-forwarded-uri"), "/a/b?c=d");
    assert_eq!(one("x-forwarded-for"), "192.0.2.7");
    assert_eq!(one("x-original-url"), "https://app.lan/a/b?c=d");
    for gone in ["content-length", "connection", "x-forwarded-user"] {
        assert!(!asked.contains_key(gone), "{gone}");
    }
}
