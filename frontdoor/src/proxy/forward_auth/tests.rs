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

fn origin<'a>(client: &'a HeaderMap, trusted: bool) -> Origin<'a> {
    Origin {
        headers: client,
        peer: "192.0.2.7".parse().unwrap(),
        trusted,
        scheme: crate::http::Scheme::Http,
        host: "app.lan",
        method: &http::Method::GET,
        path_and_query: "/admin?x=1",
    }
}

fn only(asked: &HeaderMap, n: &str) -> String {
    let all: Vec<_> = asked.get_all(n).iter().collect();
    assert_eq!(all.len(), 1, "{n}: {all:?}");
    all[0].to_str().unwrap().to_string()
}

#[test]
fn a_trusted_proxy_cannot_choose_the_request_the_auth_service_judges() {
    let client = map(&[
        ("x-forwarded-for", "203.0.113.1"),
        ("x-forwarded-host", "public.lan"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-port", "8443"),
        ("forwarded", "for=203.0.113.1;host=public.lan;proto=https"),
        ("x-forwarded-uri", "/public"),
        ("x-original-url", "https://public.lan/public"),
    ]);
    let asked = ask::headers(&origin(&client, true), "auth");
    assert_eq!(only(&asked, "x-forwarded-host"), "app.lan");
    // The scheme is the one thing a trusted proxy that ends TLS says for the front door (the
    // instance is told the same); an untrusted client's word counts for nothing.
    assert_eq!(only(&asked, "x-forwarded-proto"), "https");
    assert_eq!(only(&asked, "x-forwarded-uri"), "/admin?x=1");
    assert_eq!(only(&asked, "x-original-url"), "https://app.lan/admin?x=1");
    let untrusted = ask::headers(&origin(&client, false), "auth");
    assert_eq!(only(&untrusted, "x-forwarded-proto"), "http");
    assert_eq!(
        only(&untrusted, "x-original-url"),
        "http://app.lan/admin?x=1"
    );
    let mut odd = client.clone();
    odd.insert("x-forwarded-proto", HeaderValue::from_static("gopher"));
    assert_eq!(
        only(
            &ask::headers(&origin(&odd, true), "auth"),
            "x-forwarded-proto"
        ),
        "http"
    );
    // The chain names the client, and the trusted proxy's word on it is kept.
    assert_eq!(only(&asked, "x-forwarded-for"), "203.0.113.1, 192.0.2.7");
    for gone in ["x-forwarded-port", "forwarded"] {
        assert!(!asked.contains_key(gone), "{gone}");
    }
}

#[test]
fn the_question_carries_nginx_auth_request_names_and_drops_the_clients() {
    for trusted in [false, true] {
        let client = map(&[
            ("x-original-method", "GET"),
            ("x-original-uri", "/public"),
            ("x-original-method", "HEAD"),
        ]);
        let mut o = origin(&client, trusted);
        let delete = http::Method::DELETE;
        o.method = &delete;
        let asked = ask::headers(&o, "auth");
        assert_eq!(only(&asked, "x-original-method"), "DELETE", "{trusted}");
        assert_eq!(only(&asked, "x-original-uri"), "/admin?x=1", "{trusted}");
        assert_eq!(only(&asked, "x-forwarded-method"), "DELETE", "{trusted}");
    }
}

#[test]
fn cookie_crumbs_that_are_not_text_are_kept_in_the_question() {
    let mut client = map(&[("cookie", "a=1"), ("cookie", "b=2")]);
    client.append(
        http::header::COOKIE,
        HeaderValue::from_bytes(b"c=\xe9t\xe9").unwrap(),
    );
    client.append(
        http::header::COOKIE,
        HeaderValue::from_static("__Host-baton_session=s"),
    );
    let asked = ask::headers(&origin(&client, false), "auth");
    let cookies: Vec<_> = asked.get_all(http::header::COOKIE).iter().collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(cookies[0].as_bytes(), b"a=1; b=2; c=\xe9t\xe9");
}

#[test]
fn copy_headers_never_reach_identity_cookie_or_forwarding_headers() {
    let mut f = forward();
    f.copy_headers = [
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Baton-Identity",
        "Cookie",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "Forwarded",
        "X-Real-IP",
        "X-Token",
    ]
    .map(String::from)
    .to_vec();
    let answer = map(&[
        ("remote-user", "ann"),
        ("x-forwarded-user", "root"),
        ("x-forwarded-email", "root@lan"),
        ("x-baton-identity", "forged"),
        ("cookie", "session=auth-service"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-host", "other.lan"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-port", "1"),
        ("forwarded", "for=10.0.0.1"),
        ("x-real-ip", "10.0.0.1"),
        ("x-token", "t1"),
    ]);
    let g = granted(&f, &answer);
    assert_eq!(g.identity.as_ref().map(|i| i.sub.as_str()), Some("ann"));
    // As the front door set them before the answer's headers are applied.
    let before = map(&[
        ("cookie", "session=client"),
        ("x-forwarded-for", "192.0.2.7"),
        ("x-forwarded-host", "app.lan"),
        ("x-forwarded-proto", "http"),
        ("x-real-ip", "192.0.2.7"),
    ]);
    let mut upstream = before.clone();
    g.scrub(&mut upstream);
    g.copy(&mut upstream);
    let mut expected = before;
    expected.insert("x-token", HeaderValue::from_static("t1"));
    assert_eq!(upstream, expected);
}

#[test]
fn an_answer_may_name_its_user_in_an_identity_header_but_not_in_a_cookie() {
    let mut f = forward();
    f.user_header = "X-Forwarded-User".into();
    f.email_header = "Cookie".into();
    let g = granted(&f, &map(&[("x-forwarded-user", "ann"), ("cookie", "s=1")]));
    let identity = g.identity.clone().expect("identity");
    assert_eq!(identity.sub, "ann");
    assert_eq!(identity.email, None);
    let mut upstream = map(&[("cookie", "session=client")]);
    g.scrub(&mut upstream);
    assert_eq!(upstream["cookie"], "session=client");
}
