//! Loading the whole `services/` directory: every file validated on its own, then the checks
//! that need all of them (names, published ports and routes used twice).

use std::collections::BTreeMap;

use super::types::{Route, ServiceSpec};
use super::SERVICES_DIR;
use crate::error::ConfigError;
use crate::front_door::FrontDoor;

/// What a `services/` directory holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedServices {
    /// The valid specs, sorted by name.
    pub specs: Vec<ServiceSpec>,
    /// Every problem, per file (`services/<file>`), sorted by file and line. A file with an
    /// error contributes no spec.
    pub errors: Vec<ConfigError>,
    /// Things worth telling the user that are not errors (ignored files, unknown `allow` names).
    pub notes: Vec<String>,
}

/// Validates the files of the `services/` directory, given as (file name, contents) pairs with
/// names relative to that directory (`web.toml`). Files not ending in `.toml` and hidden files
/// (such as the `._web.toml` files macOS writes on FAT) are ignored with a note. A service name
/// defined twice, a board port published twice, or a route claimed twice refuses every file
/// involved, so that which one runs never depends on directory order.
pub fn load_services<N: AsRef<str>, T: AsRef<str>>(files: &[(N, T)]) -> LoadedServices {
    load(files, None)
}

/// [`load_services`] on a board whose `cluster.toml` has `front_door`: each spec is also checked
/// with [`FrontDoor::check_service`] (a route needing identity settings the board lacks, a
/// `publish` of the front door's ports), and refused with those errors.
pub fn load_services_with<N: AsRef<str>, T: AsRef<str>>(
    files: &[(N, T)],
    front_door: &FrontDoor,
) -> LoadedServices {
    load(files, Some(front_door))
}

fn load<N: AsRef<str>, T: AsRef<str>>(
    files: &[(N, T)],
    front_door: Option<&FrontDoor>,
) -> LoadedServices {
    let mut out = LoadedServices::default();
    // Each valid spec with its file name and text.
    let mut valid: Vec<(String, &str, ServiceSpec)> = Vec::new();
    for (name, text) in files {
        let name = name.as_ref();
        let path = format!("{SERVICES_DIR}/{name}");
        let is_toml = name.len() > 5 && name[name.len() - 5..].eq_ignore_ascii_case(".toml");
        if name.starts_with('.') || !is_toml {
            out.notes.push(format!(
                "{path}: ignored: service specs are non-hidden files ending in .toml"
            ));
            continue;
        }
        match ServiceSpec::parse(&path, text.as_ref()) {
            Ok(spec) => {
                let refused = front_door
                    .map(|f| f.check_service(&path, text.as_ref(), &spec))
                    .unwrap_or_default();
                if refused.is_empty() {
                    valid.push((path, text.as_ref(), spec));
                } else {
                    out.errors.extend(refused);
                }
            }
            Err(e) => out.errors.extend(e.0),
        }
    }

    let mut refused = vec![false; valid.len()];
    let conflicts: [(&str, ClaimOf); 3] = [
        ("name", |s| Some(format!("service {:?}", s.name))),
        ("publish", |s| s.publish.map(|p| format!("board port {p}"))),
        ("route", |s| s.route.as_ref().map(route_key)),
    ];
    for (field, key) in conflicts {
        let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, _, spec)) in valid.iter().enumerate() {
            if let Some(k) = key(spec) {
                by_key.entry(k).or_default().push(i);
            }
        }
        for (k, users) in by_key.into_iter().filter(|(_, u)| u.len() > 1) {
            for &i in &users {
                let others: Vec<&str> = users
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| valid[j].0.as_str())
                    .collect();
                refused[i] = true;
                out.errors.push(ConfigError {
                    file: valid[i].0.clone(),
                    line: Some(line_of_top_key(valid[i].1, field)),
                    field: field.to_string(),
                    message: format!("{k} is also claimed by {}", others.join(", ")),
                });
            }
        }
    }

    let names: Vec<String> = valid.iter().map(|(_, _, s)| s.name.clone()).collect();
    for (i, (path, _, spec)) in valid.into_iter().enumerate() {
        if refused[i] {
            continue;
        }
        if let (Some(p), Some(r)) = (spec.publish, &spec.route) {
            if r.auth != super::Auth::None {
                // A published port reaches the service without the front door's check.
                out.notes.push(format!(
                    "{path}: publish: board port {p} reaches the service without the identity check of route.auth"
                ));
            }
        }
        for a in spec.allow.iter().filter(|a| !names.contains(a)) {
            out.notes
                .push(format!("{path}: allow: no service {a:?} is defined (yet)"));
        }
        out.specs.push(spec);
    }
    out.specs.sort_by(|a, b| a.name.cmp(&b.name));
    out.errors
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

/// What a spec claims that no other spec may claim too, as text for the message.
type ClaimOf = fn(&ServiceSpec) -> Option<String>;

fn route_key(r: &Route) -> String {
    let (host, path) = super::route::route_key(r);
    let host = if host.is_empty() { "<any host>" } else { &host };
    format!("route {host}{path}")
}

/// Line of a top-level key or table in `text` (1 when not written there).
fn line_of_top_key(text: &str, key: &str) -> usize {
    crate::locate::line_of_key(text, "", key)
        .or_else(|| crate::locate::line_of_table(text, key))
        .unwrap_or(1)
}
