//! Collecting validation errors with their line and field, and the checks that several fields
//! share (ports, counts, durations, names, container paths).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::duration::{format_duration, parse_duration};
use super::raw::RawDuration;
use crate::error::ConfigError;
use crate::locate::SpanIndex;

/// Gathers every problem found in one file.
pub(crate) struct Checker<'a> {
    file: &'a str,
    index: &'a SpanIndex,
    /// The problems so far, in the order found.
    pub errors: Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a str, index: &'a SpanIndex) -> Checker<'a> {
        Checker {
            file,
            index,
            errors: Vec::new(),
        }
    }

    /// Records a problem with `field` (a dotted path), located at the field's line.
    pub(crate) fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line: Some(self.index.line_of(field)),
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A required value: records "is required" when it is missing.
    pub(crate) fn required<T>(&mut self, field: &str, value: Option<T>, hint: &str) -> Option<T> {
        if value.is_none() {
            self.error(field, format!("is required: {hint}"));
        }
        value
    }

    /// A TCP port, 1..=65535.
    pub(crate) fn port(&mut self, field: &str, value: i64) -> Option<u16> {
        match u16::try_from(value) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.error(field, format!("{value} is not a TCP port: use 1 to 65535"));
                None
            }
        }
    }

    /// An integer within `min..=max`; out of range gives an error and `None`.
    pub(crate) fn count(&mut self, field: &str, value: i64, min: u32, max: u32) -> Option<u32> {
        match u32::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.error(
                    field,
                    format!("{value} is out of range: use {min} to {max}"),
                );
                None
            }
        }
    }

    /// An optional duration within `min..=max`, `default` when absent or wrong.
    pub(crate) fn duration(
        &mut self,
        field: &str,
        value: Option<&RawDuration>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let Some(RawDuration(text)) = value else {
            return default;
        };
        match parse_duration(text) {
            Ok(d) if d >= min && d <= max => d,
            Ok(_) => {
                self.error(
                    field,
                    format!(
                        "{text:?} is out of range: use {} to {}",
                        format_duration(min),
                        format_duration(max)
                    ),
                );
                default
            }
            Err(e) => {
                self.error(field, e.to_string());
                default
            }
        }
    }

    /// An absolute path inside the container, normalised; `..` is refused.
    pub(crate) fn container_path(&mut self, field: &str, text: &str) -> Option<PathBuf> {
        let path = Path::new(text);
        if !text.starts_with('/') || text.contains('\0') {
            self.error(field, format!("{text:?} must be an absolute path"));
            return None;
        }
        let mut out = PathBuf::from("/");
        for c in path.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    self.error(field, format!("{text:?} must not contain '..'"));
                    return None;
                }
            }
        }
        Some(out)
    }
}

/// A service name: a lowercase DNS label, 1-63 of `a-z`, `0-9`, `-`, not starting or ending
/// with `-`. Service names become host names inside containers, cgroup and volume directory
/// names, so case is not allowed to tell two apart.
pub fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS name: lowercase labels joined by `.`, at most 253 characters.
pub(crate) fn is_host_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_service_name)
}

/// A volume name: 1-63 of letters, digits, `_`, `.`, `-`, starting with a letter or digit.
pub(crate) fn is_volume_name(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// An environment variable name: a letter or `_`, then letters, digits, `_`.
pub(crate) fn is_env_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label name, as in `cluster.toml`: letters, digits, `-`, `_`, `.`, `/`.
pub(crate) fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// An HTTP path: starts with `/`, visible ASCII only.
pub(crate) fn is_http_path(s: &str) -> bool {
    s.starts_with('/') && s.chars().all(|c| c.is_ascii_graphic())
}
