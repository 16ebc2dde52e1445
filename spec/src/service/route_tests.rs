//! `route`: normalised hosts and paths, the new fields, and errors that name file, line and
//! field.

use std::time::Duration;

use super::route::{check_url, normalise_host, normalise_path, url_host};
use super::*;
use crate::ConfigError;

const BASE: &str = "name = \"web\"\nimage = \"nginx\"\nport = 8080\n";

fn parse(route: &str) -> Result<ServiceSpec, Vec<ConfigError>> {
    ServiceSpec::parse("services/web.toml", &format!("{BASE}{route}")).map_err(|e| e.0)
}

/// The single error of `route`, as (line, field, message).
fn error(route: &str) -> (usize, String, String) {
    let e = parse(route).expect_err(route);
    assert_eq!(e.len(), 1, "{route}: {e:?}");
    assert_eq!(e[0].file, "services/web.toml");
    (
        e[0].line.unwrap_or(0),
        e[0].field.clone(),
        e[0].message.clone(),
    )
}

#[test]
fn hosts_are_lowercased_and_wildcards_need_two_labels() {
    for (text, want) in [
        ("Shop.LAN", Ok("shop.lan")),
        ("shop.lan.", Ok("shop.lan")),
        ("*.Apps.lan", Ok("*.apps.lan")),
        ("*.a.b.c", Ok("*.a.b.c")),
        ("localhost", Ok("localhost")),
        ("*.lan", Err(())),
        ("*", Err(())),
        ("a.*.lan", Err(())),
        ("*.*.lan", Err(())),
        ("**.a.lan", Err(())),
        ("_.apps.lan", Err(())),
        ("shop lan", Err(())),
        ("", Err(())),
        ("-a.lan", Err(())),
    ] {
        assert_eq!(
            normalise_host(text).map_err(drop),
            want.map(str::to_string),
            "{text:?}"
        );
    }
}

#[test]
fn paths_lose_a_trailing_slash_and_refuse_odd_segments() {
    for (text, want) in [
        ("/", Some("/")),
        ("/api", Some("/api")),
        ("/api/", Some("/api")),
        ("/a/b-c/~d", Some("/a/b-c/~d")),
        ("/.well-known/acme", Some("/.well-known/acme")),
        ("/.batons", Some("/.batons")),
        ("api", None),
        ("//", None),
        ("/a//b", None),
        ("/a/./b", None),
        ("/a/..", None),
        ("/a?b", None),
        ("/a#b", None),
        ("/a\\b", None),
        ("/a b", None),
        ("/.baton", None),
        ("/.baton/", None),
        ("/.baton/auth/callback", None),
        ("/.BATON/x", None),
        ("/.well-known/baton", None),
        ("/.well-known/baton/jwks.json", None),
        ("/%2Ebaton/x", None),
        ("/%61pi", None),
        ("/api%2F..", None),
        ("/.baton;x", None),
        ("/a;b", None),
    ] {
        assert_eq!(normalise_path(text).ok().as_deref(), want, "{text:?}");
    }
    assert!(normalise_path(&format!("/{}", "a".repeat(route::MAX_PATH))).is_err());
}

#[test]
fn a_reserved_path_is_refused_naming_file_line_and_field() {
    let (line, field, message) = error("[route]\nhost = \"a.lan\"\npath = \"/.baton/x\"\n");
    assert_eq!((line, field.as_str()), (6, "route.path"));
    assert!(
        message.contains("/.baton/") && message.contains("front door"),
        "{message}"
    );
    let (line, field, _) = error("route = { path = \"/.well-known/baton/jwks.json\" }\n");
    assert_eq!((line, field.as_str()), (4, "route.path"));
}

#[test]
fn defaults_and_every_field() {
    let r = parse("route = {}\n").unwrap().route.unwrap();
    assert_eq!(
        (r.host, r.path.as_str(), r.auth, r.timeout),
        (None, "/", Auth::None, Duration::from_secs(60))
    );
    assert!(r.require.is_empty() && r.forward.is_none());

    let s = parse(
        "[route]\nhost = \"*.Apps.lan\"\npath = \"/api/\"\nauth = \"login\"\ntimeout = \"2m\"\nrequire = { groups = [\"admins\", \"ops\"], email_verified = [\"true\"] }\n",
    )
    .unwrap();
    let r = s.route.clone().unwrap();
    assert_eq!(r.host.as_deref(), Some("*.apps.lan"));
    assert_eq!((r.path.as_str(), r.auth), ("/api", Auth::Login));
    assert_eq!(r.timeout, Duration::from_secs(120));
    assert_eq!(r.require["groups"], ["admins", "ops"]);
    let again = ServiceSpec::parse("services/web.toml", &s.to_toml().unwrap()).unwrap();
    assert_eq!(again, s);

    let s = parse("[route]\nauth = \"forward\"\nforward = { url = \"http://auth:9091/api/verify\", copy_headers = [\"Remote-Groups\"] }\n").unwrap();
    let f = s.route.as_ref().unwrap().forward.clone().unwrap();
    assert_eq!(f.url, "http://auth:9091/api/verify");
    assert_eq!(f.copy_headers, ["Remote-Groups"]);
    assert_eq!(
        (f.user_header.as_str(), f.email_header.as_str()),
        ("Remote-User", "Remote-Email")
    );
    let again = ServiceSpec::parse("services/web.toml", &s.to_toml().unwrap()).unwrap();
    assert_eq!(again, s);

    assert_eq!(
        parse("route = { auth = \"mtls\" }\n")
            .unwrap()
            .route
            .unwrap()
            .auth,
        Auth::Mtls
    );
}

#[test]
fn bad_fields_name_their_line_and_field() {
    for (route, line, field, says) in [
        ("[route]\ntimeout = \"0s\"\n", 5, "route.timeout", "out of range"),
        ("[route]\ntimeout = \"2h\"\n", 5, "route.timeout", "out of range"),
        ("[route]\ntimeout = 5\n", 5, "route.timeout", "\"5s\""),
        ("[route]\nhost = \"*.lan\"\n", 5, "route.host", "two labels"),
        ("[route]\nrequire = { groups = [\"a\"] }\n", 5, "route.require", "\"oidc\""),
        ("[route]\nauth = \"oidc\"\nrequire = { groups = [] }\n", 6, "route.require.groups", "1 to 32"),
        ("[route]\nauth = \"oidc\"\nrequire = { \"\" = [\"a\"] }\n", 6, "route.require.\"\"", "claim name"),
        ("[route]\nauth = \"forward\"\n", 4, "route.forward", "required"),
        ("[route]\nforward = { url = \"http://a\" }\n", 5, "route.forward", "only used"),
        ("[route]\nauth = \"forward\"\nforward = {}\n", 6, "route.forward.url", "required"),
        ("[route]\nauth = \"forward\"\nforward = { url = \"ftp://a/\" }\n", 6, "route.forward.url", "http or https"),
        ("[route]\nauth = \"forward\"\n[route.forward]\nurl = \"http://a\"\ncopy_headers = [\"ok\", \"bad header\"]\n", 8, "route.forward.copy_headers[1]", "header name"),
        ("[route]\nauth = \"forward\"\n[route.forward]\nurl = \"http://a\"\nuser_header = \"\"\n", 8, "route.forward.user_header", "header name"),
        ("[route]\nauth = \"forward\"\n[route.forward]\nurl = \"http://a\"\ncopy_headers = [\"Remote-Groups\", \"cookie\"]\n", 8, "route.forward.copy_headers[1]", "\"cookie\" cannot be copied"),
        ("[route]\nauth = \"magic\"\n", 5, "route.auth", "unknown variant"),
        ("[route]\nretries = 3\n", 5, "route.retries", "unknown field"),
    ] {
        let (l, f, m) = error(route);
        assert_eq!((l, f.as_str()), (line, field), "{route}: {m}");
        assert!(m.contains(says), "{route}: {m}");
    }
}

#[test]
fn require_is_bounded() {
    let values = |n: usize| {
        (0..n)
            .map(|i| format!("\"v{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let claims = (0..=route::MAX_REQUIRE_CLAIMS)
        .map(|i| format!("c{i} = [\"x\"]"))
        .collect::<Vec<_>>()
        .join(", ");
    let (_, field, _) = error(&format!(
        "[route]\nauth = \"oidc\"\nrequire = {{ {claims} }}\n"
    ));
    assert_eq!(field, "route.require");
    let (_, field, _) = error(&format!(
        "[route]\nauth = \"oidc\"\nrequire = {{ g = [{}] }}\n",
        values(33)
    ));
    assert_eq!(field, "route.require.g");
    assert!(parse(&format!(
        "[route]\nauth = \"oidc\"\nrequire = {{ g = [{}] }}\n",
        values(32)
    ))
    .is_ok());
    let long = "x".repeat(route::MAX_REQUIRE_TEXT + 1);
    let (_, field, _) = error(&format!(
        "[route]\nauth = \"oidc\"\nrequire = {{ g = [\"{long}\"] }}\n"
    ));
    assert_eq!(field, "route.require.g[0]");
}

#[test]
fn forward_urls() {
    let web = ["http", "https"];
    for ok in [
        "http://auth:9091/api/verify",
        "https://sso.lan",
        "http://[::1]:80/x",
        "http://10.0.0.1",
    ] {
        assert_eq!(check_url(ok, &web, 100), Ok(()), "{ok}");
    }
    for bad in [
        "auth:9091",
        "ftp://a",
        "http://",
        "http://u:p@a/",
        "http://a/#x",
        "http://a:0/",
        "http://a:x/",
        "http://[::1/",
        "http://a b/",
    ] {
        assert!(check_url(bad, &web, 100).is_err(), "{bad}");
    }
    assert!(check_url(&format!("http://a/{}", "x".repeat(100)), &web, 100).is_err());
}

#[test]
fn the_api_port_cannot_be_published_anywhere() {
    let (line, field, message) = error("publish = 7070\n");
    assert_eq!((line, field.as_str()), (4, "publish"), "{message}");
    assert!(message.contains("7070"), "{message}");
    // The front door's ports are a board's setting, checked against it (`front_door::tests`).
    for port in [80, 443] {
        let text = format!("name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = {port}\n");
        assert!(
            ServiceSpec::parse("services/web.toml", &text).is_ok(),
            "{port}"
        );
    }
}

#[test]
fn url_host_names_the_host_alone() {
    for (url, host) in [
        ("http://auth:9091/api/verify", Some("auth")),
        ("http://Auth/verify?x=1", Some("auth")),
        ("https://auth.lan", Some("auth.lan")),
        ("http://[fd00::1]:80/", Some("fd00::1")),
        ("http:///path", None),
        ("auth:9091/verify", None),
    ] {
        assert_eq!(url_host(url).as_deref(), host, "{url}");
    }
}

#[test]
fn copy_headers_may_not_name_what_only_the_front_door_sets() {
    for name in [
        "X-Forwarded-User",
        "x-forwarded-email",
        "X-Baton-Identity",
        "Cookie",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "Forwarded",
        "X-Real-IP",
        "Content-Length",
        "Host",
    ] {
        let text = format!(
            "[route]\nauth = \"forward\"\n[route.forward]\nurl = \"http://a\"\ncopy_headers = [\"{name}\"]\n"
        );
        let (line, field, message) = error(&text);
        assert_eq!(
            (line, field.as_str()),
            (8, "route.forward.copy_headers[0]"),
            "{name}: {message}"
        );
        assert!(message.contains(&format!("{name:?}")), "{name}: {message}");
    }
    // A name the auth service does own still passes.
    let s = parse("[route]\nauth = \"forward\"\nforward = { url = \"http://a\", copy_headers = [\"Remote-Groups\", \"X-Forwarded-Groups\"] }\n").unwrap();
    let f = s.route.unwrap().forward.unwrap();
    assert_eq!(f.copy_headers, ["Remote-Groups", "X-Forwarded-Groups"]);
}
