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
