//! Which records the cluster's desired state takes in.
//!
//! Records come from other boards (sync requests and answers), from the board's own saved state
//! on `/data`, and from its card. Whoever holds the cluster key can send any record, and a record's
//! name becomes a file name (`services/<name>.toml` on the card), so every record is checked here
//! before [`Desired::merge`](super::Desired::merge) lets it in; a refused record changes nothing
//! and is reported ([`Refused`]).

use baton_spec::service::is_service_name;

use super::Record;

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The name is not a service name (the rule of `spec`, [`is_service_name`]).
    #[error(
        "its name is not a service name (1-63 of a-z, 0-9 and '-', not starting or ending with '-')"
    )]
    Name,
}

/// A record that was not let in, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The record's name as it arrived (print it with [`escaped`]).
    pub name: String,
    /// The board its version names.
    pub board: String,
    /// Why.
    pub reason: Reason,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} (stamped by board {}) refused: {}",
            escaped(&self.name),
            escaped(&self.board),
            self.reason
        )
    }
}

/// Characters of a refused name shown in a report; the rest is cut.
const SHOWN: usize = 64;

/// `text` quoted with control characters, quotes and backslashes escaped, and cut after
/// [`SHOWN`] characters: safe to print whatever a peer sent.
pub fn escaped(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars().take(SHOWN) {
        out.extend(c.escape_debug());
    }
    out.push('"');
    if text.chars().nth(SHOWN).is_some() {
        out.push_str("...");
    }
    out
}

/// Whether `record` may enter the desired state.
pub fn check(record: &Record) -> Result<(), Reason> {
    if !is_service_name(&record.name) {
        return Err(Reason::Name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Version;

    fn named(name: &str) -> Record {
        Record {
            name: name.into(),
            text: None,
            version: Version {
                time: 1,
                board: "pi-a".into(),
            },
        }
    }

    #[test]
    fn names_that_are_not_service_names_are_refused() {
        for bad in [
            "../cluster",
            "..",
            ".",
            "",
            "a/b",
            "/etc/passwd",
            "Web",
            "-web",
            "web-",
            "web.toml",
            "we b",
            "web\0",
            "caf\u{e9}",
            &"a".repeat(64),
        ] {
            assert_eq!(check(&named(bad)), Err(Reason::Name), "{bad:?}");
        }
        for good in ["web", "a", "db-2", &"a".repeat(63)] {
            assert_eq!(check(&named(good)), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn reports_escape_and_cut_what_a_peer_sent() {
        assert_eq!(escaped("../cluster"), "\"../cluster\"");
        assert_eq!(escaped("a\nb\"\u{1b}[2J"), "\"a\\nb\\\"\\u{1b}[2J\"");
        let long = escaped(&"x".repeat(10_000));
        assert_eq!(long.len(), SHOWN + 2 + 3);
        let refused = Refused {
            name: "../cluster".into(),
            board: "pi-\n".into(),
            reason: Reason::Name,
        };
        let text = refused.to_string();
        assert!(text.starts_with("record \"../cluster\" (stamped by board \"pi-\\n\") refused: its name is not a service name"), "{text}");
        assert!(!text.contains('\n'));
    }
}
