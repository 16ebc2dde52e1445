//! Property tests of the parsers of files a user edits by hand: a service spec and
//! `cluster.toml`. Any text, and any one-byte edit of a good file, is read without a panic, and
//! every error names the file and says something. Cases: proptest's 256 per property,
//! `PROPTEST_CASES` for more (`scripts/fuzz`).

use baton_spec::board_config::BoardConfig;
use baton_spec::service::route::{normalise_host, normalise_path};
use baton_spec::service::ServiceSpec;
use baton_spec::ConfigErrors;
use proptest::prelude::*;

const SPEC: &str = include_str!("good-specs/web.toml");

const CLUSTER: &str = r#"[cluster]
name = "home"
key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

[api]
token = "a-token-of-at-least-16"

[network]
mode = "dhcp"

[time]
servers = ["pool.ntp.org"]

[front_door]
http = 8080
https = 8443
trusted_proxies = ["192.168.1.0/24"]

[front_door.oidc]
issuer = "https://idp.lan"
audience = "baton"
jwks = "certs/idp-jwks.json"
client_id = "baton"
client_secret = "s3cret"
leeway = "30s"

[front_door.mtls]
ca = "certs/clients.pem"
"#;

fn named(result: Result<(), ConfigErrors>, file: &str) -> Result<(), TestCaseError> {
    if let Err(errors) = result {
        prop_assert!(!errors.0.is_empty(), "an error without a problem");
        for e in &errors.0 {
            prop_assert_eq!(&e.file, file);
            prop_assert!(!e.message.is_empty(), "{:?}", e);
        }
    }
    Ok(())
}

/// `text` with the byte at `at` (modulo its length) replaced by `byte`, read lossily.
fn edited(text: &str, at: usize, byte: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at % bytes.len();
    bytes[i] = byte;
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #[test]
    fn any_text_is_a_spec_or_errors_naming_the_file(text in ".{0,400}") {
        named(ServiceSpec::parse("services/x.toml", &text).map(drop), "services/x.toml")?;
    }

    #[test]
    fn a_one_byte_edit_of_a_good_spec_is_read_without_a_panic(at: usize, byte: u8) {
        let text = edited(SPEC, at, byte);
        named(ServiceSpec::parse("services/web.toml", &text).map(drop), "services/web.toml")?;
    }

    #[test]
    fn any_text_is_a_cluster_toml_or_errors_naming_it(text in ".{0,400}") {
        named(BoardConfig::parse("cluster.toml", &text).map(drop), "cluster.toml")?;
    }

    #[test]
    fn a_one_byte_edit_of_a_good_cluster_toml_is_read_without_a_panic(at: usize, byte: u8) {
        let text = edited(CLUSTER, at, byte);
        named(BoardConfig::parse("cluster.toml", &text).map(drop), "cluster.toml")?;
    }

    #[test]
    fn any_route_is_read_without_a_panic(host in "[*.a-zA-Z0-9_-]{0,20}", path in "[/.a-z%?#~-]{0,20}") {
        let text = format!("name = \"web\"\nimage = \"nginx\"\nport = 80\nroute = {{ host = {host:?}, path = {path:?} }}\n");
        named(ServiceSpec::parse("services/web.toml", &text).map(drop), "services/web.toml")?;
    }

    /// What normalising gives is normalised already, so the front door and the clash check,
    /// which both see the normalised form, agree with what the spec said.
    #[test]
    fn normalised_hosts_and_paths_are_fixed_points(host in "[*.a-zA-Z0-9-]{0,20}", path in "[/.a-z~-]{0,20}") {
        if let Ok(h) = normalise_host(&host) {
            prop_assert_eq!(normalise_host(&h), Ok(h.clone()));
            prop_assert_eq!(h.to_ascii_lowercase(), h);
        }
        if let Ok(p) = normalise_path(&path) {
            prop_assert_eq!(normalise_path(&p), Ok(p.clone()));
            prop_assert!(p == "/" || !p.ends_with('/'));
            prop_assert!(!p.starts_with("/.baton/") && p != "/.baton");
        }
    }
}

#[test]
fn the_files_edited_above_are_good() {
    ServiceSpec::parse("services/web.toml", SPEC).expect("a good spec");
    BoardConfig::parse("cluster.toml", CLUSTER).expect("a good cluster.toml");
}
