//! `GET /v1/events`: what happened on a board, as typed events, newest last.
//!
//! Each board numbers its events from 1 at every boot; an event carries the board that raised it
//! and its time. The texts inside come from outside (a container's error, a scaling reason) and
//! are cut at [`MAX_TEXT`] bytes before they are kept.

use serde::{Deserialize, Serialize};

use crate::services::{ExitStatus, InstancePhase};

/// The longest text an event keeps, in bytes.
pub const MAX_TEXT: usize = 512;
/// How many events a board keeps.
pub const RING: usize = 1000;
/// How many recent events an answer holds unless the query says otherwise.
pub const DEFAULT_TAIL: usize = 100;

/// The query of `GET /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// How many recent events to send first (at most [`RING`]; default [`DEFAULT_TAIL`]).
    #[serde(default)]
    pub tail: Option<usize>,
    /// `1`: stay connected and send new events as they come (server-sent events).
    #[serde(default)]
    pub follow: Option<u8>,
}

/// The JSON answer of `GET /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    /// Oldest first.
    pub events: Vec<Event>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its number on its board since that board's boot, from 1; 0 for an event made for one
    /// reader only (`lagged`), which is not kept.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch, by the board's clock.
    pub at_ms: u64,
    /// The board that raised it.
    pub board: String,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

/// What happened. The JSON names the kind in `kind` (kebab-case); a kind this client does not
/// know reads as [`What::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// An instance's process started.
    InstanceStarted {
        /// Its service.
        service: String,
        /// The instance (`web-2`).
        instance: String,
        /// Restarts of its slot so far.
        restarts: u32,
        /// Launch to running, in milliseconds, when measured.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_ms: Option<u64>,
    },
    /// An instance takes requests.
    InstanceReady {
        /// Its service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// An instance stopped as asked, or exited cleanly and is not restarted.
    InstanceStopped {
        /// Its service.
        service: String,
        /// The instance.
        instance: String,
        /// How its process ended, when it ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit: Option<ExitStatus>,
    },
    /// An instance failed: its process ended with an error, or it could not start.
    InstanceCrashed {
        /// Its service.
        service: String,
        /// The instance.
        instance: String,
        /// How its process ended, when it ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit: Option<ExitStatus>,
        /// Why it could not start, when it did not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Restarts of its slot so far.
        restarts: u32,
        /// What the instance does next (`backoff`, `crash-loop`, `stopped`, ...).
        next: InstancePhase,
    },
    /// An instance was frozen (its service scaled to zero and keeps it ready to thaw).
    InstanceFrozen {
        /// Its service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// A frozen instance was thawed.
    InstanceThawed {
        /// Its service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// A spec came into force on this board (new or changed).
    SpecApplied {
        /// The service.
        service: String,
    },
    /// A spec was deleted.
    SpecDeleted {
        /// The service.
        service: String,
    },
    /// An instance of a service was placed on another board (the one it was on left, or the
    /// cluster's placement changed). Every board raises it, since every board places alike.
    InstanceMoved {
        /// Its service.
        service: String,
        /// The instance.
        instance: String,
        /// The board it was on.
        from: String,
        /// The board it is on now.
        to: String,
    },
    /// A board came up in the cluster, as this board's membership sees it.
    BoardJoined {
        /// The board.
        member: String,
    },
    /// A board left the cluster, as this board's membership sees it.
    BoardLeft {
        /// The board.
        member: String,
        /// `dead` (it stopped answering or said it leaves) or `gone` (it was forgotten).
        why: String,
    },
    /// The board answering this reader could not follow a peer's events or lines; what
    /// that peer raises is missing until it is reached again.
    PeerUnreachable {
        /// The peer.
        peer: String,
        /// Why, in words.
        error: String,
    },
    /// The scaler changed how many instances a service should have.
    ScaleDecided {
        /// The service.
        service: String,
        /// Instances wanted.
        count: u32,
        /// Of those, how many are frozen.
        frozen: u32,
        /// Why, in words.
        reason: String,
    },
    /// This reader fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
    /// A kind this client does not know (from a newer board).
    #[serde(other)]
    Unknown,
}

impl What {
    /// The kind's name, as in the JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            What::InstanceStarted { .. } => "instance-started",
            What::InstanceReady { .. } => "instance-ready",
            What::InstanceStopped { .. } => "instance-stopped",
            What::InstanceCrashed { .. } => "instance-crashed",
            What::InstanceFrozen { .. } => "instance-frozen",
            What::InstanceThawed { .. } => "instance-thawed",
            What::SpecApplied { .. } => "spec-applied",
            What::SpecDeleted { .. } => "spec-deleted",
            What::InstanceMoved { .. } => "instance-moved",
            What::BoardJoined { .. } => "board-joined",
            What::BoardLeft { .. } => "board-left",
            What::PeerUnreachable { .. } => "peer-unreachable",
            What::ScaleDecided { .. } => "scale-decided",
            What::Lagged { .. } => "lagged",
            What::Unknown => "unknown",
        }
    }

    /// Whether the event is about an instance this board runs: those are raised only by the
    /// board that runs it, so a reader gathers them from every board; the others (decisions,
    /// moves, members) every board raises alike.
    pub fn is_instance(&self) -> bool {
        matches!(
            self,
            What::InstanceStarted { .. }
                | What::InstanceReady { .. }
                | What::InstanceStopped { .. }
                | What::InstanceCrashed { .. }
                | What::InstanceFrozen { .. }
                | What::InstanceThawed { .. }
        )
    }

    /// Cuts every text inside to [`MAX_TEXT`] bytes.
    pub fn cut_texts(&mut self) {
        let texts: Vec<&mut String> = match self {
            What::InstanceStarted {
                service, instance, ..
            }
            | What::InstanceReady { service, instance }
            | What::InstanceStopped {
                service, instance, ..
            }
            | What::InstanceFrozen { service, instance }
            | What::InstanceThawed { service, instance } => vec![service, instance],
            What::InstanceCrashed {
                service,
                instance,
                error,
                ..
            } => {
                let mut texts = vec![service, instance];
                texts.extend(error.as_mut());
                texts
            }
            What::SpecApplied { service } | What::SpecDeleted { service } => vec![service],
            What::InstanceMoved {
                service,
                instance,
                from,
                to,
            } => vec![service, instance, from, to],
            What::BoardJoined { member } => vec![member],
            What::BoardLeft { member, why } => vec![member, why],
            What::PeerUnreachable { peer, error } => vec![peer, error],
            What::ScaleDecided {
                service, reason, ..
            } => vec![service, reason],
            What::Lagged { .. } | What::Unknown => Vec::new(),
        };
        for text in texts {
            cut(text, MAX_TEXT);
        }
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
pub fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crashed() -> Event {
        Event {
            seq: 7,
            at_ms: 1_764_921_147_000,
            board: "pi-a".into(),
            what: What::InstanceCrashed {
                service: "web".into(),
                instance: "web-1".into(),
                exit: Some(ExitStatus {
                    code: None,
                    signal: Some(9),
                    oom_killed: true,
                }),
                error: None,
                restarts: 2,
                next: InstancePhase::Backoff,
            },
        }
    }

    #[test]
    fn an_oom_crash_has_its_pinned_json() {
        assert_eq!(
            serde_json::to_value(crashed()).expect("json"),
            json!({
                "seq": 7, "at_ms": 1_764_921_147_000u64, "board": "pi-a",
                "kind": "instance-crashed", "service": "web", "instance": "web-1",
                "exit": {"code": null, "signal": 9, "oom_killed": true},
                "restarts": 2, "next": "backoff"
            })
        );
    }

    #[test]
    fn every_kind_round_trips_and_names_itself() {
        let kinds = [
            What::InstanceStarted {
                service: "s".into(),
                instance: "s-1".into(),
                restarts: 0,
                start_ms: Some(250),
            },
            What::InstanceReady {
                service: "s".into(),
                instance: "s-1".into(),
            },
            What::InstanceStopped {
                service: "s".into(),
                instance: "s-1".into(),
                exit: None,
            },
            crashed().what,
            What::InstanceFrozen {
                service: "s".into(),
                instance: "s-1".into(),
            },
            What::InstanceThawed {
                service: "s".into(),
                instance: "s-1".into(),
            },
            What::SpecApplied {
                service: "s".into(),
            },
            What::SpecDeleted {
                service: "s".into(),
            },
            What::ScaleDecided {
                service: "s".into(),
                count: 3,
                frozen: 0,
                reason: "load 2.5 of 1 per instance".into(),
            },
            What::Lagged { missed: 12 },
            What::InstanceMoved {
                service: "s".into(),
                instance: "s-2".into(),
                from: "pi-c".into(),
                to: "pi-a".into(),
            },
            What::BoardJoined {
                member: "pi-b".into(),
            },
            What::BoardLeft {
                member: "pi-c".into(),
                why: "dead".into(),
            },
            What::PeerUnreachable {
                peer: "pi-b".into(),
                error: "connection refused".into(),
            },
        ];
        for what in kinds {
            let event = Event {
                seq: 1,
                at_ms: 1,
                board: "b".into(),
                what,
            };
            let value = serde_json::to_value(&event).expect("json");
            assert_eq!(value["kind"], event.what.kind(), "{value}");
            let back: Event = serde_json::from_value(value).expect("read back");
            assert_eq!(back, event);
        }
    }

    #[test]
    fn a_kind_from_a_newer_board_reads_as_unknown() {
        let event: Event = serde_json::from_value(
            json!({"seq": 1, "at_ms": 1, "board": "a", "kind": "future", "x": 1}),
        )
        .expect("lenient");
        assert_eq!(event.what, What::Unknown);
        assert_eq!(event.board, "a");
    }

    #[test]
    fn texts_are_cut_at_a_character_boundary() {
        let mut what = What::ScaleDecided {
            service: "s".into(),
            count: 1,
            frozen: 0,
            reason: "é".repeat(300),
        };
        what.cut_texts();
        let What::ScaleDecided { reason, .. } = what else {
            panic!("kind changed");
        };
        assert!(
            reason.len() <= MAX_TEXT && reason.len() >= MAX_TEXT - 1,
            "{}",
            reason.len()
        );
        assert!(reason.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_query_reads_from_nothing() {
        let q: EventsQuery = serde_json::from_value(json!({})).expect("empty");
        assert_eq!(q, EventsQuery::default());
    }
}
