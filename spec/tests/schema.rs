//! docs/service.schema.json is the generated schema, byte for byte. Run with `BATON_BLESS=1`
//! to rewrite it after changing the raw types.

use std::fs;
use std::path::Path;

#[test]
fn committed_schema_matches_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/service.schema.json");
    let generated = baton_spec::service::json_schema_text();
    if std::env::var_os("BATON_BLESS").is_some() {
        fs::write(&path, &generated).unwrap();
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/service.schema.json is out of date: run BATON_BLESS=1 cargo test -p baton-spec --test schema"
    );
}

#[test]
fn schema_describes_every_top_level_key_and_rejects_unknown_ones() {
    let schema = baton_spec::service::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "name",
        "image",
        "command",
        "args",
        "env",
        "workdir",
        "user",
        "port",
        "publish",
        "resources",
        "volumes",
        "restart",
        "health",
        "stop_timeout",
        "readonly_root",
        "scale",
        "allow",
        "egress",
        "capabilities",
        "host_ids",
        "route",
        "surge",
        "placement",
    ] {
        let p = props.get(key).unwrap_or_else(|| panic!("no {key}"));
        assert!(p.get("description").is_some(), "{key} has no description");
    }
    assert_eq!(props.len(), 23);
    let restart = serde_json::to_string(&schema["$defs"]["RestartPolicy"]).unwrap();
    assert!(restart.contains("on-failure"), "{restart}");
}

/// docs/cluster.schema.json is the generated schema of cluster.toml, byte for byte.
#[test]
fn committed_cluster_schema_matches_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cluster.schema.json");
    let generated = baton_spec::board_config::json_schema_text();
    if std::env::var_os("BATON_BLESS").is_some() {
        fs::write(&path, &generated).unwrap();
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/cluster.schema.json is out of date: run BATON_BLESS=1 cargo test -p baton-spec --test schema"
    );
}

#[test]
fn cluster_schema_describes_every_table_and_rejects_unknown_keys() {
    let schema = baton_spec::board_config::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "cluster",
        "api",
        "board",
        "network",
        "time",
        "registries",
        "front_door",
    ] {
        let p = props.get(key).unwrap_or_else(|| panic!("no {key}"));
        assert!(p.get("description").is_some(), "{key} has no description");
    }
    assert_eq!(props.len(), 7);
    let front_door = serde_json::to_string(&schema["$defs"]["RawFrontDoor"]).unwrap();
    for knob in [
        "http",
        "https",
        "redirect_http",
        "memory",
        "idle_timeout",
        "max_connections",
        "per_client_connections",
        "per_client_rate",
        "per_client_burst",
        "trusted_proxies",
        "oidc",
        "mtls",
    ] {
        assert!(
            front_door.contains(&format!("\"{knob}\"")),
            "no {knob}: {front_door}"
        );
    }
    let oidc = serde_json::to_string(&schema["$defs"]["RawOidc"]).unwrap();
    for knob in [
        "issuer",
        "audience",
        "jwks",
        "jwks_url",
        "ca",
        "client_id",
        "client_secret",
        "scopes",
        "leeway",
        "session_ttl",
        "callback_path",
    ] {
        assert!(oidc.contains(&format!("\"{knob}\"")), "no {knob}: {oidc}");
    }
    assert_eq!(schema["$defs"]["RawOidc"]["additionalProperties"], false);
}
