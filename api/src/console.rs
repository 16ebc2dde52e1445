//! `GET /v1/console`: the most recent lines of the board's console, as the board printed them
//! (`baton: ...`), oldest first, one per line of a `text/plain` answer.

use serde::{Deserialize, Serialize};

/// The query of `GET /v1/console`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleQuery {
    /// How many of the most recent lines to send ([`DEFAULT_TAIL`] without it; at most as many
    /// as the board keeps).
    pub tail: Option<usize>,
}

/// Lines sent when the query names no `tail`.
pub const DEFAULT_TAIL: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_reads_from_a_query_string_s_fields() {
        let q: ConsoleQuery = serde_json::from_str(r#"{"tail": 5}"#).expect("reads");
        assert_eq!(q.tail, Some(5));
        let q: ConsoleQuery = serde_json::from_str("{}").expect("reads");
        assert_eq!(q, ConsoleQuery::default());
    }
}
