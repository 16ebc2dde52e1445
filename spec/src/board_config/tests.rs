//! `cluster.toml`: parsing, validation, salvaging the token, filling in secrets.

use super::*;

const GOOD: &str = r#"
[cluster]
name = "home"
key = "0123456789abcdef0123456789abcdef0123"

[api]
token = "secret-token-1234567"

[board]
hostname = "pi-one"
labels = { disk = "ssd" }

[network]
mode = "static"
address = "192.168.1.10/24"
gateway = "192.168.1.1"
dns = ["1.1.1.1"]
"#;

#[test]
fn parses_registry_ca_files() {
    let src = format!("{GOOD}\n[registries.\"reg.lan\"]\nca = \"certs/registry.pem\"\n");
    let c = BoardConfig::parse("cluster.toml", &src).unwrap();
    assert_eq!(
        c.registries["reg.lan"].ca.as_deref(),
        Some("certs/registry.pem")
    );
    assert!(!c.registries["reg.lan"].insecure);

    for (ca, extra, says) in [
        ("/etc/ssl/ca.pem", "", "absolute"),
        ("certs/../../etc/ca.pem", "", "\"..\""),
        ("..", "", "\"..\""),
        ("", "", "must not be empty"),
        ("certs/ca.pem", "insecure = true\n", "insecure"),
    ] {
        let src = format!("{GOOD}\n[registries.\"reg.lan\"]\n{extra}ca = {ca:?}\n");
        let errors = BoardConfig::parse("cluster.toml", &src).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{ca:?}: {errors:?}");
        let error = &errors.0[0];
        assert_eq!(error.field, "registries.\"reg.lan\".ca", "{ca:?}");
        assert!(error.message.contains(says), "{ca:?}: {error:?}");
        assert_eq!(
            error.line,
            Some(20 + extra.lines().count()),
            "{ca:?}: {error:?}"
        );
    }
}

#[test]
fn parses_registries() {
    let src = format!(
        "{GOOD}\n[registries.\"localhost:5000\"]\nusername = \"ann\"\npassword = \"pw\"\n\n[registries.\"reg.lan\"]\ninsecure = true\n"
    );
    let c = BoardConfig::parse("cluster.toml", &src).unwrap();
    assert_eq!(
        c.registries.get("localhost:5000"),
        Some(&RegistryConfig {
            username: Some("ann".to_string()),
            password: Some("pw".to_string()),
            insecure: false,
            ca: None,
        })
    );
    assert!(c.registries["reg.lan"].insecure);
    assert_eq!(c.registries["reg.lan"].username, None);
    assert!(!serde_json::to_string(&c).unwrap().contains("\"pw\""));

    for (bad, field, line) in [
        (
            "[registries.\"x:5000\"]\nusername = \"ann\"\n",
            "password",
            19,
        ),
        ("[registries.\"x\"]\npassword = \"pw\"\n", "username", 19),
        ("[registries.\"http://x/\"]\ninsecure = true\n", "", 19),
        ("[registries.\"x\"]\nuser = \"ann\"\n", "user", 20),
    ] {
        let errors = BoardConfig::parse("cluster.toml", &format!("{GOOD}\n{bad}")).unwrap_err();
        let error = &errors.0[0];
        assert!(error.field.ends_with(field), "{bad}: {error:?}");
        assert_eq!(error.line, Some(line), "{bad}: {error:?}");
    }
}

#[test]
fn parses_a_full_file() {
    let c = BoardConfig::parse("cluster.toml", GOOD).unwrap();
    assert_eq!(c.name, "home");
    assert_eq!(c.hostname.as_deref(), Some("pi-one"));
    assert_eq!(c.labels.get("disk").map(String::as_str), Some("ssd"));
    assert_eq!(
        c.network.mode,
        NetworkMode::Static(StaticAddress {
            address: Ipv4Addr::new(192, 168, 1, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 168, 1, 1)),
        })
    );
    assert_eq!(c.time_servers, vec!["pool.ntp.org"]);
}

#[test]
fn unknown_key_names_file_line_and_field() {
    let src = "[api]\ntoken = \"secret-token-1234567\"\n[network]\nmdoe = \"dhcp\"\n";
    let e = BoardConfig::parse("cluster.toml", src).unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].file, "cluster.toml");
    assert_eq!(e[0].line, Some(4));
    assert_eq!(e[0].field, "network.mdoe");
    assert!(e[0].message.contains("unknown field"), "{}", e[0].message);
}

#[test]
fn syntax_error_names_the_line() {
    let src = "[api]\ntoken = \"unterminated\n";
    let e = BoardConfig::parse("cluster.toml", src).unwrap_err().0;
    assert_eq!(e[0].line, Some(2));
}

#[test]
fn reports_every_semantic_error() {
    let src =
        "[board]\nhostname = \"-bad-\"\n[network]\nmode = \"static\"\naddress = \"10.0.0.1\"\n";
    let e = BoardConfig::parse("cluster.toml", src).unwrap_err().0;
    let fields: Vec<_> = e.iter().map(|e| (e.field.as_str(), e.line)).collect();
    assert!(fields.contains(&("board.hostname", Some(2))), "{fields:?}");
    assert!(fields.contains(&("network.address", Some(5))), "{fields:?}");
    assert!(fields.contains(&("api.token", None)), "{fields:?}");
    assert!(fields.contains(&("cluster.key", None)), "{fields:?}");
}

#[test]
fn salvages_the_token_from_broken_files() {
    let invalid = "[api]\ntoken = \"secret-token-1234567\"\n[network]\nmode = \"carrier-pigeon\"\n";
    assert!(BoardConfig::parse("cluster.toml", invalid).is_err());
    assert_eq!(
        BoardConfig::salvage_token(invalid).as_deref(),
        Some("secret-token-1234567")
    );
    let unparsable = "[api]\ntoken = \"secret-token-1234567\"\n[network\nmode = \n";
    assert_eq!(
        BoardConfig::salvage_token(unparsable).as_deref(),
        Some("secret-token-1234567")
    );
    assert_eq!(
        BoardConfig::salvage_token("[api]\ntoken = \"short\"\n"),
        None
    );
    assert_eq!(
        BoardConfig::salvage_token("[board]\ntoken = \"secret-token-1234567\"\n"),
        None
    );
}

#[test]
fn fills_missing_secrets_and_keeps_comments() {
    let src = "# my board\n[board]\nhostname = \"a\"\n";
    let (out, added) = fill_missing_secrets(
        "cluster.toml",
        src,
        "t0k3n-0123456789abcdef",
        &"k".repeat(40),
    )
    .unwrap();
    assert!(out.starts_with("# my board\n"));
    assert_eq!(added.token.as_deref(), Some("t0k3n-0123456789abcdef"));
    let c = BoardConfig::parse("cluster.toml", &out).unwrap();
    assert_eq!(c.token, "t0k3n-0123456789abcdef");
    assert_eq!(c.key, "k".repeat(40));
    // A second pass adds nothing.
    let (again, added) =
        fill_missing_secrets("cluster.toml", &out, "other-token-000000000", "x").unwrap();
    assert_eq!(again, out);
    assert_eq!(added, AddedSecrets::default());
}

#[test]
fn the_time_zone_is_utc_unless_cluster_toml_names_one() {
    let c = BoardConfig::parse("cluster.toml", GOOD).unwrap();
    assert_eq!(c.timezone.name(), "UTC");
    let src = GOOD.replace("[cluster]\n", "[cluster]\ntimezone = \"Europe/Berlin\"\n");
    let c = BoardConfig::parse("cluster.toml", &src).unwrap();
    assert_eq!(c.timezone.name(), "Europe/Berlin");
    // 2026-01-15T23:30:00Z is the 16th in Berlin.
    assert_eq!(
        c.timezone.date_at(1_768_519_800_000).to_string(),
        "2026-01-16"
    );
}

#[test]
fn an_unknown_time_zone_is_refused_with_its_name_and_the_file() {
    for zone in ["Europe/Atlantis", "Berlin", "+01:00"] {
        let src = GOOD.replace("[cluster]\n", &format!("[cluster]\ntimezone = {zone:?}\n"));
        let e = BoardConfig::parse("cluster.toml", &src).unwrap_err();
        assert_eq!(e.0.len(), 1, "{zone}: {e:?}");
        let error = &e.0[0];
        assert_eq!(error.file, "cluster.toml");
        assert_eq!(error.field, "cluster.timezone");
        assert_eq!(error.line, Some(3), "{zone}: {error:?}");
        assert!(error.message.contains(zone), "{zone}: {error:?}");
        let text = e.to_string();
        assert!(
            text.contains("cluster.toml") && text.contains(zone),
            "{text}"
        );
    }
}

#[test]
fn a_metrics_token_of_its_own_is_kept_and_a_weak_or_shared_one_is_refused_by_field() {
    let with = |line: &str| GOOD.replace("[board]", &format!("{line}\n\n[board]"));
    let c = BoardConfig::parse(
        "cluster.toml",
        &with("metrics_token = \"scrape-only-0123456\""),
    )
    .expect("valid");
    assert_eq!(c.metrics_token.as_deref(), Some("scrape-only-0123456"));
    assert_eq!(
        BoardConfig::parse("cluster.toml", GOOD)
            .expect("valid")
            .metrics_token,
        None
    );
    for (line, says) in [
        ("metrics_token = \"short\"", "at least 16"),
        ("metrics_token = \"with a space 0123456\"", "without spaces"),
        (
            "metrics_token = \"secret-token-1234567\"",
            "same as [api] token",
        ),
    ] {
        let errors = BoardConfig::parse("cluster.toml", &with(line))
            .expect_err(line)
            .0;
        let e = errors
            .iter()
            .find(|e| e.field == "api.metrics_token")
            .unwrap_or_else(|| panic!("{line}: {errors:?}"));
        assert!(e.message.contains(says), "{line}: {e}");
        assert!(e.line.is_some(), "{line}: {e:?}");
    }
}
