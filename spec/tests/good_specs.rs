//! Good specs: every `good-specs/<name>.toml` and every complete example in docs/services.md
//! parses, and its canonical TOML parses back to an equal spec.

use std::fs;
use std::path::Path;

use baton_spec::ServiceSpec;

fn round_trip(file: &str, src: &str) {
    let spec = ServiceSpec::parse(file, src).unwrap_or_else(|e| panic!("{file}:\n{e}"));
    let text = spec.to_toml().expect("renders");
    let again = ServiceSpec::parse(file, &text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(again, spec, "{file}: canonical form:\n{text}");
    assert_eq!(
        again.to_toml().expect("renders"),
        text,
        "{file}: canonical form is stable"
    );
}

#[test]
fn good_specs_parse_and_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good-specs");
    let mut count = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        round_trip(
            &format!("services/{name}"),
            &fs::read_to_string(&path).unwrap(),
        );
        count += 1;
    }
    assert!(count >= 4, "only {count} good specs");
}

#[test]
fn examples_in_the_docs_are_valid() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/services.md");
    let doc = fs::read_to_string(doc).unwrap();
    let mut count = 0;
    for block in doc.split("```toml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        // Whole specs start with their name; other blocks are fragments.
        let Some(name) = block
            .strip_prefix("name = \"")
            .and_then(|l| l.split('"').next())
        else {
            continue;
        };
        round_trip(&format!("services/{name}.toml"), block);
        count += 1;
    }
    assert!(
        count >= 3,
        "only {count} complete examples in docs/services.md"
    );
}
