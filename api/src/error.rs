//! What the board answers when it refuses a request.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The body of every refused request (HTTP 4xx and 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, in words.
    pub error: String,
    /// For a refused service spec (`PUT /v1/services/{name}`), each problem in it; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ConfigError>>,
}

impl ApiError {
    /// A refusal with a message only.
    pub fn new(message: impl Into<String>) -> ApiError {
        ApiError {
            error: message.into(),
            errors: None,
        }
    }
}

/// One problem in one configuration file (the board's `cluster.toml` or a service spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    /// The file, as the user knows it (for example `cluster.toml` or `services/web.toml`).
    pub file: String,
    /// 1-based line of the offending key or value; `null` when the file as a whole is at fault.
    pub line: Option<usize>,
    /// Dotted path of the field, for example `network.address`; empty for whole-file problems.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `file:line: field: message`, leaving out what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refusal_lists_spec_errors_only_when_there_are_some() {
        assert_eq!(
            serde_json::to_value(ApiError::new("wrong API token")).unwrap(),
            json!({"error": "wrong API token"})
        );
        let spec = ApiError {
            error: "invalid service spec".into(),
            errors: Some(vec![ConfigError {
                file: "services/web.toml".into(),
                line: None,
                field: String::new(),
                message: "not TOML".into(),
            }]),
        };
        let wire = json!({
            "error": "invalid service spec",
            "errors": [{"file": "services/web.toml", "line": null, "field": "", "message": "not TOML"}],
        });
        assert_eq!(serde_json::to_value(&spec).unwrap(), wire);
        assert_eq!(serde_json::from_value::<ApiError>(wire).unwrap(), spec);
        let plain: ApiError = serde_json::from_value(json!({"error": "no"})).unwrap();
        assert_eq!(plain.errors, None);
    }

    #[test]
    fn config_errors_read_as_file_line_field_message() {
        let mut e = ConfigError {
            file: "cluster.toml".into(),
            line: Some(3),
            field: "network.mode".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "cluster.toml:3: network.mode: bad");
        e.line = None;
        e.field.clear();
        assert_eq!(e.to_string(), "cluster.toml: bad");
    }
}
