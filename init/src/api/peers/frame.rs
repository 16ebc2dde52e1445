//! What the `/v1/peer/` routes send: one JSON object per line (`application/x-ndjson`), each a
//! [`Frame`]. The past comes first and ends with [`Frame::PastEnd`], so that the reading board
//! can merge every board's past by time before it passes on what comes live.

use serde::{Deserialize, Serialize};

/// The content type of the peer routes' answers.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// One line of a peer route's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum Frame<T> {
    /// An event or a log line, with the id a reader resumes after (events only).
    Item {
        /// `board:boot.seq` for an event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The item.
        v: T,
    },
    /// The past is over; what follows is live.
    PastEnd,
    /// This many items were skipped because the peer's reader fell behind.
    Skipped {
        /// How many.
        n: u64,
    },
    /// Nothing happened for a while (sent every [`crate::api::events::KEEP_ALIVE`]).
    Alive,
}

impl<T: Serialize> Frame<T> {
    /// The frame as one line of JSON, with its line ending.
    pub fn line(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_one_line_each_and_read_back() {
        let frames = [
            Frame::Item {
                id: Some("pi-b:7.3".to_string()),
                v: "a\nb".to_string(),
            },
            Frame::Item {
                id: None,
                v: "x".to_string(),
            },
            Frame::PastEnd,
            Frame::Skipped { n: 4 },
            Frame::Alive,
        ];
        for frame in frames {
            let line = frame.line();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            let back: Frame<String> = serde_json::from_str(&line).expect("reads back");
            assert_eq!(back, frame);
        }
    }
}
