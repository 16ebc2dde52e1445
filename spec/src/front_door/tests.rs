//! `[front_door]` in cluster.toml, and service specs checked against it.

use std::net::IpAddr;
use std::time::Duration;

use super::validate::parse_cidr;
use super::*;
use crate::service::{load_services_with, ServiceSpec};
use crate::{BoardConfig, ConfigError};

const BASE: &str = "[cluster]\nkey = \"0123456789abcdef0123456789abcdef\"\n[api]\ntoken = \"secret-token-1234567\"\n";

fn parse(extra: &str) -> Result<FrontDoor, Vec<ConfigError>> {
    BoardConfig::parse("cluster.toml", &format!("{BASE}{extra}"))
        .map(|c| c.front_door)
        .map_err(|e| e.0)
}

const OIDC: &str = "[front_door.oidc]\nissuer = \"https://idp.lan\"\naudience = \"baton\"\njwks = \"certs/idp-jwks.json\"\n";

#[test]
fn absent_means_every_default() {
    let f = parse("").unwrap();
    assert_eq!(f, FrontDoor::default());
    assert_eq!((f.http, f.https, f.redirect_http), (80, 443, true));
    assert_eq!(f.memory_bytes, 64 << 20);
    assert_eq!(f.idle_timeout, Duration::from_secs(300));
    assert!(f.oidc.is_none() && f.mtls.is_none() && f.trusted_proxies.is_empty());
    assert!(f.per_client_connections <= f.max_connections);
    // An empty table is the same.
    assert_eq!(parse("[front_door]\n").unwrap(), FrontDoor::default());
}

#[test]
fn every_knob_is_read() {
    let f = parse(
        "[front_door]\nhttp = 0\nhttps = 8443\nredirect_http = false\nmemory = \"128Mi\"\nidle_timeout = \"30s\"\nmax_connections = 100\nper_client_connections = 10\nper_client_rate = 5\nper_client_burst = 20\ntrusted_proxies = [\"192.168.1.2/32\", \"fd00::/8\"]\n\n[front_door.oidc]\nissuer = \"https://idp.lan\"\naudience = \"baton\"\njwks_url = \"https://idp.lan/jwks\"\nca = \"certs/idp.pem\"\nclient_id = \"baton\"\nclient_secret = \"s3cret\"\nscopes = [\"groups\"]\nleeway = \"10s\"\nsession_ttl = \"1h\"\ncallback_path = \"/.baton/cb/\"\n\n[front_door.mtls]\nca = \"certs/clients.pem\"\n",
    )
    .unwrap();
    assert_eq!((f.http, f.https, f.redirect_http), (0, 8443, false));
    assert_eq!(f.memory_bytes, 128 << 20);
    assert_eq!(f.idle_timeout, Duration::from_secs(30));
    assert_eq!(
        (
            f.max_connections,
            f.per_client_connections,
            f.per_client_rate,
            f.per_client_burst
        ),
        (100, 10, 5, 20)
    );
    assert_eq!(f.trusted_proxies.len(), 2);
    let o = f.oidc.clone().unwrap();
    assert_eq!(o.issuer, "https://idp.lan");
    assert_eq!(o.jwks, None);
    assert_eq!(o.client_secret.as_deref(), Some("s3cret"));
    assert_eq!(
        (o.leeway, o.session_ttl),
        (Duration::from_secs(10), Duration::from_secs(3600))
    );
    assert_eq!(o.callback_path, "/.baton/cb");
    assert_eq!(f.mtls.unwrap().ca, "certs/clients.pem");
    // The secret stays out of what the board reports.
    let json = serde_json::to_string(
        &parse(&format!(
            "{OIDC}client_id = \"a\"\nclient_secret = \"s3cret\"\n"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(!json.contains("s3cret"), "{json}");
}

#[test]
fn bad_values_name_file_line_and_field() {
    for (extra, line, field, says) in [
        ("[front_door]\nhttp = 7070\n", 6, "front_door.http", "API"),
        (
            "[front_door]\nhttps = 70000\n",
            6,
            "front_door.https",
            "TCP port",
        ),
        (
            "[front_door]\nhttp = 8080\nhttps = 8080\n",
            7,
            "front_door.https",
            "also",
        ),
        (
            "[front_door]\nmemory = \"1Mi\"\n",
            6,
            "front_door.memory",
            "out of range",
        ),
        (
            "[front_door]\nidle_timeout = \"2h\"\n",
            6,
            "front_door.idle_timeout",
            "out of range",
        ),
        (
            "[front_door]\nmax_connections = 10\nper_client_connections = 11\n",
            7,
            "front_door.per_client_connections",
            "1 to 10",
        ),
        (
            "[front_door]\nper_client_rate = 0\n",
            6,
            "front_door.per_client_rate",
            "out of range",
        ),
        (
            "[front_door]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n",
            6,
            "front_door.trusted_proxies[1]",
            "host bits",
        ),
        (
            "[front_door]\noidc = { audience = \"a\", jwks = \"j.json\" }\n",
            6,
            "front_door.oidc.issuer",
            "required",
        ),
        (
            "[front_door.oidc]\nissuer = \"http://idp.lan\"\naudience = \"a\"\njwks = \"j.json\"\n",
            6,
            "front_door.oidc.issuer",
            "https",
        ),
        (
            "[front_door.oidc]\nissuer = \"https://idp.lan\"\naudience = \"a\"\n",
            5,
            "front_door.oidc.jwks",
            "jwks_url",
        ),
        (
            &format!("{OIDC}ca = \"/etc/ca.pem\"\n"),
            9,
            "front_door.oidc.ca",
            "absolute",
        ),
        (
            &format!("{OIDC}client_id = \"a\"\n"),
            5,
            "front_door.oidc.client_secret",
            "client_id",
        ),
        (
            &format!("{OIDC}leeway = \"10m\"\n"),
            9,
            "front_door.oidc.leeway",
            "out of range",
        ),
        (
            &format!("{OIDC}session_ttl = \"1m\"\n"),
            9,
            "front_door.oidc.session_ttl",
            "out of range",
        ),
        (
            &format!("{OIDC}callback_path = \"/auth/cb\"\n"),
            9,
            "front_door.oidc.callback_path",
            "/.baton/",
        ),
        (
            &format!("{OIDC}callback_path = \"/.baton/../x\"\n"),
            9,
            "front_door.oidc.callback_path",
            "'..'",
        ),
        (
            &format!("{OIDC}scopes = [\"a b\"]\n"),
            9,
            "front_door.oidc.scopes[0]",
            "scope",
        ),
        ("[front_door.mtls]\n", 5, "front_door.mtls.ca", "required"),
        (
            "[front_door.mtls]\nca = \"../ca.pem\"\n",
            6,
            "front_door.mtls.ca",
            "\"..\"",
        ),
    ] {
        let e = parse(extra).expect_err(extra);
        assert_eq!(e.len(), 1, "{extra}: {e:?}");
        assert_eq!(e[0].file, "cluster.toml");
        assert_eq!(
            (e[0].line, e[0].field.as_str()),
            (Some(line), field),
            "{extra}: {}",
            e[0]
        );
        assert!(e[0].message.contains(says), "{extra}: {}", e[0]);
    }
}

#[test]
fn unknown_keys_are_refused_like_the_rest_of_the_file() {
    for (extra, line, field) in [
        ("[front_door]\nhtpp = 80\n", 6, "front_door.htpp"),
        (
            "[front_door.oidc]\nissuer = \"https://a\"\naudiance = \"x\"\n",
            7,
            "front_door.oidc.audiance",
        ),
        (
            "[front_door.mtls]\nca = \"a.pem\"\ncrl = \"b.pem\"\n",
            7,
            "front_door.mtls.crl",
        ),
    ] {
        let e = parse(extra).expect_err(extra);
        assert_eq!(
            (e[0].line, e[0].field.as_str()),
            (Some(line), field),
            "{extra}: {}",
            e[0]
        );
        assert!(e[0].message.contains("unknown field"), "{}", e[0]);
    }
}

#[test]
fn cidrs() {
    let c = parse_cidr("192.168.1.0/24").unwrap();
    assert!(c.contains("192.168.1.77".parse::<IpAddr>().unwrap()));
    assert!(!c.contains("192.168.2.1".parse::<IpAddr>().unwrap()));
    assert!(!c.contains("::1".parse::<IpAddr>().unwrap()));
    assert!(parse_cidr("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    assert!(parse_cidr("fd00::/8")
        .unwrap()
        .contains("fd12::1".parse().unwrap()));
    // A block the parser would refuse, made by hand, contains nothing (and does not panic).
    let odd = Cidr {
        addr: "10.0.0.0".parse().unwrap(),
        prefix: 40,
    };
    assert!(!odd.contains("10.0.0.1".parse().unwrap()));
    for bad in [
        "10.0.0.1",
        "10.0.0.0/33",
        "::/129",
        "x/8",
        "10.0.0.1/24",
        "10.0.0.0/-1",
    ] {
        assert!(parse_cidr(bad).is_err(), "{bad}");
    }
}

fn spec(name: &str, body: &str) -> (String, String) {
    (
        format!("{name}.toml"),
        format!("name = \"{name}\"\nimage = \"nginx\"\nport = 8080\n{body}"),
    )
}

#[test]
fn a_route_needing_a_missing_identity_setting_is_refused_with_file_line_and_field() {
    let files = [
        spec("bearer", "\n[route]\npath = \"/a\"\nauth = \"oidc\"\n"),
        spec("browser", "route = { path = \"/b\", auth = \"login\" }\n"),
        spec("certs", "route = { path = \"/c\", auth = \"mtls\" }\n"),
        spec("open", "route = { path = \"/d\", auth = \"none\" }\n"),
    ];
    let loaded = load_services_with(&files, &FrontDoor::default());
    let names: Vec<_> = loaded.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["open"]);
    let got: Vec<_> = loaded
        .errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("services/bearer.toml", Some(7), "route.auth"),
            ("services/browser.toml", Some(4), "route.auth"),
            ("services/certs.toml", Some(4), "route.auth"),
        ]
    );
    assert!(
        loaded.errors[0].message.contains("[front_door.oidc]"),
        "{}",
        loaded.errors[0]
    );
    assert!(
        loaded.errors[2].message.contains("[front_door.mtls]"),
        "{}",
        loaded.errors[2]
    );

    // With the settings, they load; login also needs a client.
    let with_oidc = parse(&format!(
        "{OIDC}\n[front_door.mtls]\nca = \"certs/c.pem\"\n"
    ))
    .unwrap();
    let loaded = load_services_with(&files, &with_oidc);
    assert_eq!(loaded.specs.len(), 3, "{:?}", loaded.errors);
    assert!(
        loaded.errors[0].message.contains("client_id"),
        "{}",
        loaded.errors[0]
    );
    let with_client = parse(&format!("{OIDC}client_id = \"c\"\nclient_secret = \"s\"\n\n[front_door.mtls]\nca = \"certs/c.pem\"\n")).unwrap();
    assert_eq!(load_services_with(&files, &with_client).specs.len(), 4);
    // Without a board's settings (`load_services`), nothing is checked against them.
    assert_eq!(crate::load_services(&files).specs.len(), 4);
}

#[test]
fn the_ports_the_front_door_moved_to_cannot_be_published() {
    let front_door = parse("[front_door]\nhttp = 8080\nhttps = 8443\n").unwrap();
    for (port, key) in [(8080, "http"), (8443, "https")] {
        let text = format!("name = \"web\"\nimage = \"nginx\"\nport = 80\n\npublish = {port}\n");
        let s = ServiceSpec::parse("services/web.toml", &text).unwrap();
        let e = front_door.check_service("services/web.toml", &text, &s);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].file.as_str(), e[0].line, e[0].field.as_str()),
            ("services/web.toml", Some(5), "publish")
        );
        assert!(
            e[0].message
                .contains(&format!("[front_door] {key} = {port}")),
            "{}",
            e[0]
        );
    }
    // The default ports are refused on a board that keeps them, and free where they are off.
    let text = "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 80\n";
    let s = ServiceSpec::parse("services/web.toml", text).unwrap();
    assert!(front_door
        .check_service("services/web.toml", text, &s)
        .is_empty());
    let defaults = parse("").unwrap();
    let e = defaults.check_service("services/web.toml", text, &s);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].message.contains("[front_door] http = 80"), "{}", e[0]);
    let off = parse("[front_door]\nhttp = 0\n").unwrap();
    assert!(off.check_service("services/web.toml", text, &s).is_empty());
    let text = "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 9000\n";
    let s = ServiceSpec::parse("services/web.toml", text).unwrap();
    assert!(front_door
        .check_service("services/web.toml", text, &s)
        .is_empty());
}

#[test]
fn a_login_route_can_require_only_the_claims_a_session_keeps() {
    let front_door = parse(&format!("{OIDC}client_id = \"c\"\nclient_secret = \"s\"\n")).unwrap();
    let files = [
        spec(
            "kept",
            "\n[route]\npath = \"/a\"\nauth = \"login\"\nrequire = { groups = [\"staff\"], email = [\"a@b\"] }\n",
        ),
        spec(
            "dept",
            "\n[route]\npath = \"/b\"\nauth = \"login\"\nrequire = { dept = [\"ops\"] }\n",
        ),
        spec(
            "bearer",
            "\n[route]\npath = \"/c\"\nauth = \"oidc\"\nrequire = { dept = [\"ops\"] }\n",
        ),
    ];
    let loaded = load_services_with(&files, &front_door);
    let names: Vec<_> = loaded.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bearer", "kept"]);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let e = &loaded.errors[0];
    assert_eq!(
        (e.file.as_str(), e.line, e.field.as_str()),
        ("services/dept.toml", Some(8), "route.require")
    );
    assert!(e.message.contains("\"dept\""), "{e}");
}
