//! The folders of `init/src/` import each other in one direction only: each may use the folders
//! listed before it in [`LAYERS`] and none after it. The files at the top (`lib.rs`,
//! `lifecycle.rs`, `power.rs`, ...) wire everything together and may use any folder. Test code
//! (`tests.rs`, `*_tests.rs`, `testbed.rs`, files under a `tests/` folder, and items marked
//! `#[cfg(test)]`) and comments are not counted.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The folders from the bottom up.
const LAYERS: &[&str] = &[
    "events",
    "board",
    "boot",
    "uplink",
    "svcnet",
    "containers",
    "scaling",
    "cluster",
    "frontdoor",
    "metrics",
    "api",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read source dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `path` (relative to `init/src`) holds only test code.
fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let in_tests_folder = path.components().any(|c| c.as_os_str() == "tests");
    name == "tests.rs" || name.ends_with("_tests.rs") || name == "testbed.rs" || in_tests_folder
}

/// The code of `text` without comments and without the items marked `#[cfg(test)]` (a
/// one-line item such as `mod tests;`, or a block up to its closing brace).
fn production_code(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let all: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < all.len() {
        let trimmed = all[i].trim_start();
        if trimmed == "#[cfg(test)]" {
            i = end_of_item(&all, i + 1);
            continue;
        }
        if !trimmed.starts_with("//") {
            let code = all[i].split(" // ").next().unwrap_or_default();
            lines.push((i + 1, code.to_string()));
        }
        i += 1;
    }
    lines
}

/// The index of the line after the item that starts at line `start`: after its `;` if it has
/// no body, else after the brace that closes its body.
fn end_of_item(lines: &[&str], start: usize) -> usize {
    let mut depth = 0usize;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let ends_bodiless = !opened && line.trim_end().ends_with(';');
        if ends_bodiless || (opened && depth == 0) {
            return i + 1;
        }
    }
    lines.len()
}

/// The top-level modules a line names through `crate::` paths, groups included
/// (`crate::{a, b::c}`).
fn crate_modules(line: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(head(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.insert(head(&item));
        } else {
            found.insert(head(rest));
        }
    }
    found.remove("");
    found.remove("self");
    found
}

fn head(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn folders_import_each_other_in_one_direction() {
    let src = src();
    let mut violations = Vec::new();
    for (rank, layer) in LAYERS.iter().enumerate() {
        let above: BTreeSet<&str> = LAYERS[rank + 1..].iter().copied().collect();
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "init/src/{layer} has no Rust files");
        for file in files
            .iter()
            .filter(|f| !is_test_file(f.strip_prefix(&src).unwrap_or(f)))
        {
            let text = fs::read_to_string(file).expect("read source file");
            for (number, line) in production_code(&text) {
                for module in crate_modules(&line) {
                    let upward = above.contains(module.as_str());
                    let top_level = !LAYERS.contains(&module.as_str());
                    if upward || top_level {
                        violations.push(format!(
                            "{}:{number}: {layer} uses crate::{module}",
                            file.strip_prefix(&src).unwrap_or(file).display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layering (board < boot < uplink < svcnet < containers < cluster < api < the top files):\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_folder_and_top_file_is_accounted_for() {
    let top_files: BTreeSet<&str> = [
        "lib.rs",
        "main.rs",
        "lifecycle.rs",
        "power.rs",
        "reaper.rs",
        "services.rs",
    ]
    .into_iter()
    .collect();
    let mut unknown = Vec::new();
    for entry in fs::read_dir(src()).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let known = if path.is_dir() {
            LAYERS.contains(&name.as_str())
        } else {
            top_files.contains(name.as_str())
        };
        if !known {
            unknown.push(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "init/src has entries the layering does not place (add them to LAYERS or the top files): {unknown:?}"
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_paths() {
    let found = crate_modules("use crate::{api, boot::{self, Running}, svcnet::nft::Ipv4Net};");
    assert_eq!(
        found,
        ["api", "boot", "svcnet"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert!(crate_modules("use baton_crate::x;").is_empty());
    let code = production_code(
        "use crate::api;\n// crate::boot\n#[cfg(test)]\nmod tests;\nuse crate::svcnet;\n\
         #[cfg(test)]\nmod more {\n    fn f() {\n        crate::power::x();\n    }\n}\nuse crate::uplink;\n",
    );
    let kept: Vec<&str> = code.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        kept,
        [
            "use crate::api;",
            "use crate::svcnet;",
            "use crate::uplink;"
        ]
    );
}
