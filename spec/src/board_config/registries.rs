//! `[registries."host[:port]"]`: how to reach each registry services pull from.

use std::collections::BTreeMap;

use super::raw::RawRegistry;
use crate::error::ConfigError;
use crate::locate;

/// How to reach one registry, from `[registries."host[:port]"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryConfig {
    /// User name, when the registry needs credentials.
    pub username: Option<String>,
    /// Password or access token (present exactly when `username` is).
    #[serde(skip)]
    pub password: Option<String>,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// A PEM file of CA certificates to trust for this registry besides Mozilla's roots, relative
    /// to the config partition (validated: not empty, not absolute, no `..`).
    pub ca: Option<String>,
}

/// Validates every registry table, recording problems in `errors`.
pub(super) fn validate(
    file: &str,
    src: &str,
    raw: BTreeMap<String, RawRegistry>,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, RegistryConfig> {
    let mut registries = BTreeMap::new();
    for (host, r) in raw {
        let table = format!("registries.\"{host}\"");
        let mut fail = |key: &str, message: String| {
            errors.push(ConfigError {
                file: file.to_string(),
                line: locate::line_of_key(src, &table, key)
                    .or_else(|| locate::line_of_table(src, &table)),
                field: format!("registries.{host:?}.{key}"),
                message,
            })
        };
        if !is_registry_host(&host) {
            fail("", format!("{host:?} is not a registry host: use host or host:port, without a scheme or path"));
        }
        match (&r.username, &r.password) {
            (Some(u), _) if u.is_empty() || u.contains(':') || u.chars().any(char::is_control) => {
                fail(
                    "username",
                    "must be non-empty, without ':' or control characters".to_string(),
                )
            }
            (Some(_), None) => fail("password", "is required with username".to_string()),
            (None, Some(_)) => fail("username", "is required with password".to_string()),
            (_, Some(p)) if p.chars().any(char::is_control) => fail(
                "password",
                "must not contain control characters".to_string(),
            ),
            _ => {}
        }
        let insecure = r.insecure.unwrap_or(false);
        if let Some(ca) = &r.ca {
            if let Err(message) = check_relative_path(ca) {
                fail("ca", message);
            } else if insecure {
                fail(
                    "ca",
                    "cannot go with insecure = true (plain HTTP has no certificates)".to_string(),
                );
            }
        }
        registries.insert(
            host,
            RegistryConfig {
                username: r.username,
                password: r.password,
                insecure,
                ca: r.ca,
            },
        );
    }
    registries
}

/// Checks a path meant to be relative to the config partition: not empty, not absolute, no `..`.
pub(crate) fn check_relative_path(path: &str) -> Result<(), String> {
    use std::path::{Component, Path};
    if path.is_empty() {
        return Err("must not be empty: a PEM file relative to the config partition".to_string());
    }
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{path:?} is absolute: give the file relative to the config partition, like \"certs/registry.pem\""
                ))
            }
            Component::ParentDir => {
                return Err(format!(
                    "{path:?} leaves the config partition with \"..\""
                ))
            }
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    Ok(())
}

/// Whether `text` is `host` or `host:port`, as a registry's key in image references.
fn is_registry_host(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}
