//! The two secrets of `cluster.toml`: generated into a file that lacks them (`baton image
//! build`), and salvaged from a broken file so that its board still answers its owner.

use super::{first_line, BoardConfig, MIN_TOKEN_LEN};
use crate::error::{ConfigError, ConfigErrors};
use crate::locate;

impl BoardConfig {
    /// Recovers `[api] token` from a file that failed to parse or validate, so that a board with a
    /// broken `cluster.toml` still answers its owner's API calls (and can report the error).
    /// Returns `None` when no token of acceptable shape can be found.
    pub fn salvage_token(src: &str) -> Option<String> {
        let acceptable =
            |t: &str| t.len() >= MIN_TOKEN_LEN && t.chars().all(|c| c.is_ascii_graphic());
        if let Ok(table) = src.parse::<toml::Table>() {
            let token = table.get("api")?.get("token")?.as_str()?;
            return acceptable(token).then(|| token.to_string());
        }
        // The file is not valid TOML: look for a `token = "..."` line inside `[api]`.
        let line = locate::line_of_key(src, "api", "token")?;
        let text = src.lines().nth(line - 1)?;
        let value = text.split_once('=')?.1.trim();
        let token = value.strip_prefix('"')?.split('"').next()?;
        acceptable(token).then(|| token.to_string())
    }
}

/// Secrets that `fill_missing_secrets` added to a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddedSecrets {
    /// The API token, when it was missing and was added.
    pub token: Option<String>,
    /// The cluster key, when it was missing and was added.
    pub key: Option<String>,
}

/// Adds `[api] token` and `[cluster] key` to a `cluster.toml` that lacks them, keeping the
/// user's comments and layout. Returns the new text and what was added. The file must parse
/// as TOML; its contents are otherwise not validated here.
pub fn fill_missing_secrets(
    file: &str,
    src: &str,
    token: &str,
    key: &str,
) -> Result<(String, AddedSecrets), ConfigErrors> {
    let mut doc: toml_edit::DocumentMut = src.parse().map_err(|e: toml_edit::TomlError| {
        let line = e.span().map(|s| locate::line_of_offset(src, s.start));
        ConfigErrors(vec![ConfigError {
            file: file.to_string(),
            line,
            field: e
                .span()
                .map(|s| locate::field_at_offset(src, s.start))
                .unwrap_or_default(),
            message: first_line(e.message()),
        }])
    })?;
    let mut added = AddedSecrets::default();
    for (table, name, value) in [("api", "token", token), ("cluster", "key", key)] {
        let entry = doc
            .entry(table)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let Some(t) = entry.as_table_like_mut() else {
            return Err(ConfigErrors(vec![ConfigError {
                file: file.to_string(),
                line: locate::line_of_key(src, "", table),
                field: table.to_string(),
                message: "must be a table".to_string(),
            }]));
        };
        if t.get(name).is_none() {
            t.insert(name, toml_edit::value(value));
            if table == "api" {
                added.token = Some(value.to_string());
            } else {
                added.key = Some(value.to_string());
            }
        }
    }
    Ok((doc.to_string(), added))
}
