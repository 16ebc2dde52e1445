//! The corpus of bad specs: every `bad-specs/<case>.toml` is parsed as `services/<case>.toml`
//! and must fail with exactly the problems listed in `bad-specs/<case>.expected`, one
//! `line:field: message` per line, in order. Run with `BATON_BLESS=1` to write the `.expected`
//! files from the current output (then read the diff before committing it).

use std::fs;
use std::path::Path;

use baton_spec::ServiceSpec;

#[test]
fn every_bad_spec_fails_with_the_expected_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-specs");
    let bless = std::env::var_os("BATON_BLESS").is_some();
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let stem = case.file_stem().unwrap().to_str().unwrap();
        let file = format!("services/{stem}.toml");
        let src = fs::read_to_string(case).unwrap();
        let errors = match ServiceSpec::parse(&file, &src) {
            Ok(spec) => {
                failures.push(format!("{stem}: parsed, but should fail: {spec:?}"));
                continue;
            }
            Err(e) => e.0,
        };
        let mut got = String::new();
        for e in &errors {
            assert_eq!(e.file, file, "{stem}: {e}");
            let line = e.line.unwrap_or_else(|| panic!("{stem}: no line in {e}"));
            assert!(!e.field.is_empty(), "{stem}: no field in {e}");
            assert!(
                line <= src.lines().count().max(1),
                "{stem}: line {line} is past the end: {e}"
            );
            got.push_str(&format!("{line}:{}: {}\n", e.field, e.message));
        }
        let expected_path = case.with_extension("expected");
        if bless {
            fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{stem}:\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
