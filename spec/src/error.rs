//! The error every configuration parser in baton returns: what, where, why.

use std::fmt;

/// One problem in one configuration file. The type is the API's ([`baton_api::ConfigError`]):
/// a board reports these errors as they are.
pub use baton_api::ConfigError;

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
