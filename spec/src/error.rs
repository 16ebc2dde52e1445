//! The error every configuration parser in baton returns: what, where, why.

use std::fmt;

/// One problem in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigError {
    /// The file, as the user knows it (for example `cluster.toml` or `services/web.toml`).
    pub file: String,
    /// 1-based line of the offending key or value; `None` when the file as a whole is at fault.
    pub line: Option<usize>,
    /// Dotted path of the field, for example `network.address`; empty for whole-file problems.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.field.is_empty()) {
            (Some(line), false) => write!(
                f,
                "{}:{}: {}: {}",
                self.file, line, self.field, self.message
            ),
            (Some(line), true) => write!(f, "{}:{}: {}", self.file, line, self.message),
            (None, false) => write!(f, "{}: {}: {}", self.file, self.field, self.message),
            (None, true) => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// All problems found in one file; validation reports every one, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
