//! `route`: the normalisation of hostile hosts and paths (tables of attacks and a property
//! test), and the table's choice of route.

use proptest::prelude::*;

use super::normalize::{self, Bad, MAX_HOST, MAX_PATH};
use super::Table;
use crate::config::{Auth, Route};

/// Cases of `path`: input, then the path upstream and the path matched.
const PATHS: &[(&str, &str, &str)] = &[
    ("/", "/", "/"),
    ("/a/b", "/a/b", "/a/b"),
    ("/a/b/", "/a/b/", "/a/b"),
    // Traversal through a public prefix.
    ("/pub/../admin", "/admin", "/admin"),
    ("/x/%2e%2e/admin", "/admin", "/admin"),
    ("/a/b/%2E%2E/../c", "/c", "/c"),
    ("/a/.%2e/b", "/b", "/b"),
    ("/a/./b/.", "/a/b/", "/a/b"),
    ("/a/b/..", "/a/", "/a"),
    // Merged slashes: an upstream that merges them must see the path matched.
    ("//admin", "/admin", "/admin"),
    ("/a///b//", "/a/b/", "/a/b"),
    // Parameters go upstream but are not matched.
    ("/admin;jsessionid=1", "/admin;jsessionid=1", "/admin"),
    ("/a;x/b;y=2/", "/a;x/b;y=2/", "/a/b"),
    ("/;x/admin", "/;x/admin", "/admin"),
    ("/b;x/../admin", "/admin", "/admin"),
    // Escapes: unreserved decoded, others upper-cased; matched decoded when visible ASCII.
    ("/%41%7e%2d%5F", "/A~-_", "/A~-_"),
    ("/a%3ab", "/a%3Ab", "/a:b"),
    ("/admin%3bx", "/admin%3Bx", "/admin"),
    ("/%c3%a9t%C3%A9", "/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9"),
    ("/a%20b", "/a%20b", "/a%20b"),
    ("/%2541", "/%2541", "/%41"),
];

#[test]
fn paths_are_normalised() {
    for (raw, upstream, matched) in PATHS {
        let n = normalize::path(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(
            (n.path.as_str(), n.match_path.as_str()),
            (*upstream, *matched),
            "{raw}"
        );
    }
}

#[test]
fn hostile_paths_are_refused() {
    let long = format!("/{}", "a".repeat(MAX_PATH));
    let cases: &[(&str, Bad)] = &[
        ("/a%2fb", encoded(2, "%2f", "'/'")),
        ("/a%2Fb", encoded(2, "%2F", "'/'")),
        ("/a%5Cb", encoded(2, "%5C", "'\\'")),
        ("/a%5cb", encoded(2, "%5c", "'\\'")),
        ("/a%00", encoded(2, "%00", "NUL")),
        ("/%zz", Bad::PathEscape(1)),
        ("/%4", Bad::PathEscape(1)),
        ("/a%", Bad::PathEscape(2)),
        ("/a\\b", Bad::PathBackslash(2)),
        ("/é", Bad::PathByte { at: 1, byte: 0xc3 }),
        ("/a b", Bad::PathByte { at: 2, byte: b' ' }),
        ("/a\tb", Bad::PathByte { at: 2, byte: b'\t' }),
        ("/\x7f", Bad::PathByte { at: 1, byte: 0x7f }),
        ("/a?b", Bad::PathQuery(2)),
        ("/a#b", Bad::PathQuery(2)),
        ("/..", Bad::PathAboveRoot),
        ("/a/../..", Bad::PathAboveRoot),
        ("/%2e%2e/admin", Bad::PathAboveRoot),
        ("/a/%2E%2E/../b", Bad::PathAboveRoot),
        ("/pub/..;/admin", Bad::PathDotParams("..;".into())),
        ("/pub/.;x/admin", Bad::PathDotParams(".;x".into())),
        ("/pub/..%3B/admin", Bad::PathDotParams("..%3B".into())),
        ("", Bad::PathNotAbsolute),
        ("*", Bad::PathNotAbsolute),
        ("a/b", Bad::PathNotAbsolute),
        (&long, Bad::PathTooLong(MAX_PATH + 1)),
    ];
    for (raw, why) in cases {
        assert_eq!(normalize::path(raw).as_ref(), Err(why), "{raw:?}");
    }
    // The bound itself is allowed.
    let longest = format!("/{}", "a".repeat(MAX_PATH - 1));
    assert!(normalize::path(&longest).is_ok());
}

fn encoded(at: usize, escape: &str, what: &'static str) -> Bad {
    Bad::PathEncoded {
        at,
        escape: escape.into(),
        what,
    }
}

#[test]
fn refusals_say_why() {
    let text = |raw: &str| normalize::path(raw).map(drop).unwrap_err().to_string();
    assert!(text("/a%2fb").contains("encoded '/'"));
    assert!(text("/%zz").contains("malformed escape at offset 1"));
    assert!(text("/..").contains("above the root"));
    let host = normalize::host("a@b").unwrap_err().to_string();
    assert!(host.contains("user information"), "{host}");
}

#[test]
fn hosts_are_normalised() {
    let cases: &[(&str, &str)] = &[
        ("shop.lan", "shop.lan"),
        ("Shop.LAN:8080", "shop.lan"),
        ("shop.lan.", "shop.lan"),
        ("SHOP.lan.:443", "shop.lan"),
        ("[::1]:80", "[::1]"),
        ("[FE80::1]", "[fe80::1]"),
        ("[::ffff:10.0.0.1]", "[::ffff:10.0.0.1]"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("localhost", "localhost"),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize::host(raw).as_deref(), Ok(*want), "{raw}");
    }
}

#[test]
fn hostile_hosts_are_refused() {
    let long = "a".repeat(MAX_HOST + 1);
    let cases: &[(&str, Bad)] = &[
        ("", Bad::HostEmpty),
        (".", Bad::HostEmpty),
        (":80", Bad::HostEmpty),
        (&long, Bad::HostTooLong(MAX_HOST + 1)),
        ("a@b", Bad::HostUserinfo),
        ("user:pw@shop.lan", Bad::HostUserinfo),
        ("shop lan", Bad::HostByte { at: 4, byte: b' ' }),
        ("shop\r\n.lan", Bad::HostByte { at: 4, byte: b'\r' }),
        ("shop_lan", Bad::HostByte { at: 4, byte: b'_' }),
        ("*.shop.lan", Bad::HostByte { at: 0, byte: b'*' }),
        ("shöp", Bad::HostByte { at: 2, byte: 0xc3 }),
        ("a..b", Bad::HostEmptyLabel),
        (".a", Bad::HostEmptyLabel),
        ("a.lan..", Bad::HostEmptyLabel),
        ("shop.lan:", Bad::HostPort),
        ("shop.lan:8x", Bad::HostPort),
        ("shop.lan:65536", Bad::HostPort),
        ("shop.lan:000080", Bad::HostPort),
        ("::1", Bad::HostByte { at: 0, byte: b':' }),
        ("[::1", Bad::HostIpv6),
        ("[]", Bad::HostIpv6),
        ("[::1]x", Bad::HostIpv6),
        ("[::1]:", Bad::HostPort),
        ("[::g]", Bad::HostIpv6),
        ("[fe80::1%25eth0]", Bad::HostIpv6),
    ];
    for (raw, why) in cases {
        assert_eq!(normalize::host(raw).as_ref(), Err(why), "{raw:?}");
    }
    let longest = format!("{}.lan", "a".repeat(MAX_HOST - 4));
    assert_eq!(normalize::host(&longest).map(|h| h.len()), Ok(MAX_HOST));
}

fn route(host: Option<&str>, path: &str, service: &str) -> Route {
    Route {
        service: service.into(),
        host: host.map(Into::into),
        path: path.into(),
        auth: Auth::None,
        timeout_ms: 60_000,
        require: Default::default(),
        forward: None,
    }
}

fn table() -> Table {
    Table::new(&[
        route(None, "/", "any-root"),
        route(None, "/api", "any-api"),
        route(Some("shop.lan"), "/", "shop-root"),
        route(Some("shop.lan"), "/admin", "shop-admin"),
        route(Some("shop.lan"), "/admin/keys", "shop-keys"),
        route(Some("blog.lan"), "/posts", "blog-posts"),
        route(Some("*.apps.lan"), "/", "apps-root"),
        route(Some("*.apps.lan"), "/api", "apps-api"),
        route(Some("a.apps.lan"), "/only", "a-only"),
        route(Some("10.0.0.1"), "/", "ip"),
        route(Some("*.0.0.1"), "/", "ip-wild"),
    ])
}

#[test]
fn table_picks_host_class_then_longest_prefix() {
    let t = table();
    let cases: &[(&str, &str, Option<&str>)] = &[
        // Exact host, longest prefix, segment boundaries.
        ("shop.lan", "/", Some("shop-root")),
        ("shop.lan", "/admin", Some("shop-admin")),
        ("shop.lan", "/admin/x", Some("shop-admin")),
        ("shop.lan", "/admin/", Some("shop-admin")),
        ("shop.lan", "/adminx", Some("shop-root")),
        ("shop.lan", "/admin/keys/1", Some("shop-keys")),
        ("shop.lan", "/admin/keysx", Some("shop-admin")),
        // Exact host without a matching prefix falls through to host-less routes.
        ("blog.lan", "/posts/1", Some("blog-posts")),
        ("blog.lan", "/postsx", Some("any-root")),
        ("blog.lan", "/api/x", Some("any-api")),
        // Wildcard: exactly one more label.
        ("x.apps.lan", "/", Some("apps-root")),
        ("x.apps.lan", "/api/v1", Some("apps-api")),
        ("x.apps.lan", "/apix", Some("apps-root")),
        ("b.x.apps.lan", "/api", Some("any-api")),
        ("apps.lan", "/api", Some("any-api")),
        // An exact host beats the wildcard, and falls through to it.
        ("a.apps.lan", "/only/x", Some("a-only")),
        ("a.apps.lan", "/api", Some("apps-api")),
        // Unknown hosts, ports, IP literals: host-less routes only.
        ("other.lan", "/api", Some("any-api")),
        ("other.lan", "/x", Some("any-root")),
        ("shop.lan:80", "/admin", Some("any-root")),
        ("10.0.0.1", "/", Some("any-root")),
        ("[::1]", "/api", Some("any-api")),
        ("", "/admin", Some("any-root")),
        // Not a path: nothing.
        ("other.lan", "", None),
    ];
    for (host, path, want) in cases {
        let got = t.find(host, path).map(|r| r.service.as_str());
        assert_eq!(got, *want, "{host} {path}");
    }
}

#[test]
fn table_without_catch_all_finds_nothing() {
    let t = Table::new(&[route(Some("shop.lan"), "/api", "api")]);
    assert_eq!(t.find_index("shop.lan", "/api/x"), Some(0));
    assert_eq!(t.find("shop.lan", "/"), None);
    assert_eq!(t.find("shop.lan", "/apix"), None);
    assert_eq!(t.find("other.lan", "/api"), None);
    assert!(Table::new(&[]).find("shop.lan", "/").is_none());
}

#[test]
fn normalised_requests_reach_the_route_the_path_names() {
    let t = table();
    for raw in ["/x/../admin", "//admin", "/admin;jsessionid=1", "/%61dmin/"] {
        let n = normalize::path(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        let got = t
            .find("shop.lan", &n.match_path)
            .map(|r| r.service.as_str());
        assert_eq!(got, Some("shop-admin"), "{raw}");
    }
}

/// Pieces paths are made of in the property test: the tricky ones often.
fn pieces() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/", "//", ".", "..", "%2e", "%2E", "a", "B", "~", ";", ";x=1", "%41", "%7e", "%3b", "%3A",
        "%25", "%c3%a9", "%20", "-", "_", "%",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|v| format!("/{}", v.concat()))
}

proptest! {
    // The default config: `PROPTEST_CASES` in the environment sets the number of cases.
    #[test]
    fn path_is_idempotent_and_clean(raw in pieces()) {
        if let Ok(n) = normalize::path(&raw) {
            let again = normalize::path(&n.path);
            prop_assert_eq!(again.as_ref(), Ok(&n), "{}", raw);
            for p in [&n.path, &n.match_path] {
                prop_assert!(p.starts_with('/'), "{}", p);
                prop_assert!(!p.contains("//"), "{}", p);
                prop_assert!(p[1..].split('/').all(|s| s != "." && s != ".."), "{}", p);
            }
        }
    }

    #[test]
    fn path_never_panics(raw in "\\PC{0,64}") {
        let _ = normalize::path(&raw);
        let _ = normalize::host(&raw);
    }
}
