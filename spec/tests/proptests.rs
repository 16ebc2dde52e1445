//! Property tests of the parsers of files a user edits by hand: a service spec and
//! `cluster.toml`. Any text, and any one-byte edit of a good file, is read without a panic, and
//! every error names the file and says something. Cases: proptest's 256 per property,
//! `PROPTEST_CASES` for more (`scripts/fuzz`).

use baton_spec::board_config::BoardConfig;
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
}

#[test]
fn the_files_edited_above_are_good() {
    ServiceSpec::parse("services/web.toml", SPEC).expect("a good spec");
    BoardConfig::parse("cluster.toml", CLUSTER).expect("a good cluster.toml");
}
