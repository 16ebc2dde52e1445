//! Which records the cluster's desired state takes in.
//!
//! Records come from other boards (sync requests and answers), from the board's own saved state
//! on `/data`, and from its card. Whoever holds the cluster key can send any record, and a record's
//! name becomes a file name (`services/<name>.toml` on the card), so every record is checked here
//! before [`Desired::merge`](super::Desired::merge) lets it in; a refused record changes nothing
//! and is reported ([`Refused`]).
//!
//! # Bounds
//! - the time: at most [`MAX_AHEAD`](crate::plausible::MAX_AHEAD) ahead of this board's clock
//!   ([`crate::plausible`] says why);
//! - the stamping board's name: 1 to [`MAX_BOARD_NAME`] bytes without control characters;
//! - the text: at most [`MAX_SPEC_TEXT`] bytes, without control characters other than tab, line
//!   feed and carriage return (TOML allows no others), so that its JSON in a sync body takes at
//!   most twice its length;
//! - the number of names held, tombstones included: at most [`MAX_RECORDS`] (checked by
//!   [`Desired::merge`](super::Desired::merge): a new name beyond it is refused, a newer
//!   version of a name held is not).
//!
//! Together they bound a sync body that carries every record: see
//! [`crate::sync::MAX_BODY`].

use baton_spec::service::is_service_name;

use super::Record;
use crate::plausible;

/// Most names the desired state holds, tombstones included.
pub const MAX_RECORDS: usize = 256;
/// Longest spec text, in bytes (specs are typically under 1 KiB).
pub const MAX_SPEC_TEXT: usize = 16 << 10;
/// Longest name of the board that stamped a record (a host name).
pub const MAX_BOARD_NAME: usize = 63;
/// The most bytes one record can take in a sync body's JSON: its text doubled by escaping, its
/// name and board name (at most 63 bytes each, which need no escaping or are refused), the time
/// and the field names.
pub const MAX_RECORD_JSON: usize = 2 * MAX_SPEC_TEXT + 512;

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The name is not a service name (the rule of `spec`, [`is_service_name`]).
    #[error(
        "its name is not a service name (1-63 of a-z, 0-9 and '-', not starting or ending with '-')"
    )]
    Name,
    /// The time is further ahead of this board's clock than [`crate::plausible::MAX_AHEAD`].
    #[error("its time {time} ms is ahead of this board's clock by more than a day (latest taken: {latest} ms); if this board's clock is behind, set it (SNTP)")]
    Future {
        /// The record's time.
        time: u64,
        /// The latest time taken now.
        latest: u64,
    },
    /// The stamping board's name is empty, too long or holds control characters.
    #[error("the name of the board that stamped it is not 1-{MAX_BOARD_NAME} bytes without control characters")]
    Board,
    /// The text is longer than [`MAX_SPEC_TEXT`].
    #[error("its text of {len} bytes is longer than the {MAX_SPEC_TEXT} allowed")]
    TooLarge {
        /// The text's length.
        len: usize,
    },
    /// The text holds a control character other than tab, line feed and carriage return.
    #[error(
        "its text holds control characters (TOML allows only tab, line feed and carriage return)"
    )]
    Control,
    /// The state already holds [`MAX_RECORDS`] names.
    #[error("the cluster already holds {MAX_RECORDS} services and tombstones, the most allowed")]
    Full,
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

/// Whether `record` may enter the desired state of a board whose clock reads `now_ms` (all but
/// the count, [`Reason::Full`], which depends on what is held).
pub fn check(record: &Record, now_ms: u64) -> Result<(), Reason> {
    if !is_service_name(&record.name) {
        return Err(Reason::Name);
    }
    let board = &record.version.board;
    if board.is_empty() || board.len() > MAX_BOARD_NAME || board.chars().any(char::is_control) {
        return Err(Reason::Board);
    }
    let latest = plausible::latest_time(now_ms);
    if record.version.time > latest {
        return Err(Reason::Future {
            time: record.version.time,
            latest,
        });
    }
    if let Some(text) = &record.text {
        if text.len() > MAX_SPEC_TEXT {
            return Err(Reason::TooLarge { len: text.len() });
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(Reason::Control);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "admit_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Version;

    const NOW: u64 = 1_700_000_000_000;

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
            assert_eq!(check(&named(bad), NOW), Err(Reason::Name), "{bad:?}");
        }
        for good in ["web", "a", "db-2", &"a".repeat(63)] {
            assert_eq!(check(&named(good), NOW), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn times_far_ahead_texts_too_large_or_odd_and_bad_board_names_are_refused() {
        let day = crate::plausible::MAX_AHEAD.as_millis() as u64;
        let at = |time| Record {
            version: Version {
                time,
                board: "pi-a".into(),
            },
            ..named("web")
        };
        assert_eq!(check(&at(NOW + day), NOW), Ok(()));
        assert_eq!(check(&at(0), NOW), Ok(()));
        for time in [NOW + day + 1, u64::MAX, u64::MAX - 1] {
            assert_eq!(
                check(&at(time), NOW),
                Err(Reason::Future {
                    time,
                    latest: NOW + day
                })
            );
        }
        let text = |t: String| Record {
            text: Some(t),
            ..named("web")
        };
        assert_eq!(check(&text("a\tb\r\n".repeat(10)), NOW), Ok(()));
        assert_eq!(check(&text("x".repeat(MAX_SPEC_TEXT)), NOW), Ok(()));
        assert_eq!(
            check(&text("x".repeat(MAX_SPEC_TEXT + 1)), NOW),
            Err(Reason::TooLarge {
                len: MAX_SPEC_TEXT + 1
            })
        );
        for odd in ["a\0b", "\u{1b}[2J", "\u{7f}", "\u{85}"] {
            assert_eq!(
                check(&text(odd.into()), NOW),
                Err(Reason::Control),
                "{odd:?}"
            );
        }
        let by = |board: &str| Record {
            version: Version {
                time: 1,
                board: board.into(),
            },
            ..named("web")
        };
        for bad in ["", "pi\n", &"b".repeat(64)] {
            assert_eq!(check(&by(bad), NOW), Err(Reason::Board), "{bad:?}");
        }
        assert_eq!(check(&by(&"b".repeat(63)), NOW), Ok(()));
        let err = check(&at(u64::MAX), NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("its time {} ms is ahead of this board's clock by more than a day (latest taken: {} ms); if this board's clock is behind, set it (SNTP)", u64::MAX, NOW + day)
        );
    }

    #[test]
    fn a_record_at_its_largest_fits_its_json_bound() {
        // Every character of the text escaped (quotes), names at their longest.
        let record = Record {
            name: "a".repeat(63),
            text: Some("\"".repeat(MAX_SPEC_TEXT)),
            version: Version {
                time: u64::MAX,
                board: "\u{10ffff}".repeat(15) + "bbb",
            },
        };
        assert!(record.version.board.len() <= MAX_BOARD_NAME);
        let json = serde_json::to_vec(&record).expect("json");
        assert!(json.len() <= MAX_RECORD_JSON, "{}", json.len());
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
