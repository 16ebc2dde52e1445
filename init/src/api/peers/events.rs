//! `GET /v1/events` on a board in a cluster: this board's events merged with its peers'
//! instance events (read through [`super::fanout`]), so that one board shows the whole
//! cluster. Decisions, moves and member changes every board raises alike, so they come from
//! this board only. The past is merged by time; what comes live is passed on as it comes.
//!
//! A followed stream's ids name every board's last event (`pi-a:B.12,pi-b:B.40`), so that a
//! reader coming back with `Last-Event-ID` gets, from each board, what it had not seen. A peer
//! that cannot be read shows as a `peer-unreachable` event, not as a silent gap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_api::events::{Event, EventList, What};
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::fanout::{Ask, Fanout, Got};
use crate::api::events::KEEP_ALIVE;
use crate::cluster::peer_read::Peers;
use crate::events::{Bus, StreamSlot};

/// How long the peers' past is waited for.
pub const PAST_WAIT: Duration = Duration::from_secs(3);
/// The most boards a stream's id names (the others' events are still sent).
pub const MAX_IDS: usize = 32;

/// What the reader asked.
pub struct Asked {
    /// This board's events after this number.
    pub after: Option<u64>,
    /// How many past events.
    pub tail: usize,
    /// The reader's `Last-Event-ID`, passed to the peers.
    pub last_event_id: Option<String>,
}

/// The JSON answer: every board's past, merged.
pub async fn list(bus: &Bus, node: Arc<dyn Peers>, asked: Asked) -> Response {
    let mut fan: Fanout<Event> = Fanout::start(
        node,
        Ask {
            first: format!("/v1/peer/events?tail={}", asked.tail),
            again: String::new(),
            last_event_id: asked.last_event_id,
            follow: false,
        },
    );
    let local = bus.recent(asked.after, asked.tail);
    let (got, late) = fan
        .past(Instant::now() + PAST_WAIT, (asked.tail, asked.tail), |e| {
            e.at_ms
        })
        .await;
    let mut events: Vec<Event> = local.iter().map(|e| (**e).clone()).collect();
    events.extend(
        got.into_iter()
            .filter_map(|(peer, g)| from_peer(bus, &peer, g).map(|(_, e)| e)),
    );
    events.extend(
        late.into_iter()
            .map(|peer| unreachable(bus, peer, "no answer in time")),
    );
    events.sort_by_key(|e| e.at_ms);
    let skip = events.len().saturating_sub(asked.tail);
    Json(EventList {
        events: events.into_iter().skip(skip).collect(),
    })
    .into_response()
}

/// The server-sent stream: every board's past merged, then each event as it comes.
pub fn stream(bus: Arc<Bus>, slot: StreamSlot, node: Arc<dyn Peers>, asked: Asked) -> Response {
    let (past, missed, rx) = bus.follow(asked.after, asked.tail);
    let mut ids = Ids::from_header(asked.last_event_id.as_deref());
    let mut fan: Fanout<Event> = Fanout::start(
        node,
        Ask {
            first: format!("/v1/peer/events?follow=1&tail={}", asked.tail),
            // Again after a failure, from the last id got (a peer that rebooted since sends
            // its whole ring: that id is of another boot).
            again: format!("/v1/peer/events?follow=1&tail={}", baton_api::events::RING),
            last_event_id: asked.last_event_id,
            follow: true,
        },
    );
    let tail = asked.tail;
    let head_bus = Arc::clone(&bus);
    let head = async move {
        let (got, late) = fan
            .past(Instant::now() + PAST_WAIT, (tail, tail), |e| e.at_ms)
            .await;
        let mut merged: Vec<(Option<String>, Event)> = past
            .iter()
            .map(|e| (Some(head_bus.id(e.seq)), (**e).clone()))
            .collect();
        merged.extend(
            got.into_iter()
                .filter_map(|(peer, g)| from_peer(&head_bus, &peer, g)),
        );
        merged.sort_by_key(|(_, e)| e.at_ms);
        let skip = merged.len().saturating_sub(tail);
        let mut text = String::new();
        if missed > 0 {
            text.push_str(&frame(None, &lagged(missed)));
        }
        for (id, event) in merged.into_iter().skip(skip) {
            text.push_str(&frame(ids.next(&event.board, id).as_deref(), &event));
        }
        for peer in late {
            text.push_str(&frame(
                None,
                &unreachable(&head_bus, peer, "no answer in time"),
            ));
        }
        (text, (rx, fan, ids, slot, head_bus))
    };
    let head = futures_util::stream::once(head).flat_map(|(text, state)| {
        let rest = futures_util::stream::unfold(state, live);
        futures_util::stream::once(async move { text }).chain(rest)
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(head.map(Ok::<_, std::convert::Infallible>)),
    )
        .into_response()
}

type Live = (
    tokio::sync::broadcast::Receiver<Arc<Event>>,
    Fanout<Event>,
    Ids,
    StreamSlot,
    Arc<Bus>,
);

/// The next frame of the live part: this board's event, a peer's, or a keep-alive comment.
async fn live((mut rx, mut fan, mut ids, slot, bus): Live) -> Option<(String, Live)> {
    let deadline = Instant::now() + KEEP_ALIVE;
    loop {
        let text = tokio::select! {
            local = rx.recv() => match local {
                Ok(event) => frame(ids.next(&event.board, Some(bus.id(event.seq))).as_deref(), &event),
                Err(RecvError::Lagged(n)) => frame(None, &lagged(n)),
                Err(RecvError::Closed) => return None,
            },
            Some((peer, got)) = fan.recv() => match from_peer(&bus, &peer, got) {
                Some((id, event)) => frame(ids.next(&event.board, id).as_deref(), &event),
                None => continue,
            },
            () = tokio::time::sleep_until(deadline) => ": keep-alive\n\n".to_string(),
        };
        return Some((text, (rx, fan, ids, slot, bus)));
    }
}

/// What a peer sent, as an event to pass on with its id; `None` for what is not passed on.
/// The peer is hostile: only instance events are taken from it, under its own name, with
/// their texts cut, and an id that is not its own is dropped.
fn from_peer(bus: &Bus, peer: &str, got: Got<Event>) -> Option<(Option<String>, Event)> {
    match got {
        Got::Item { id, v: mut event } => {
            if !event.what.is_instance() {
                return None;
            }
            event.board = peer.to_string();
            event.what.cut_texts();
            let id = id.filter(|id| own_id(peer, id));
            Some((id, event))
        }
        Got::Skipped(n) => {
            let mut e = lagged(n);
            e.board = peer.to_string();
            Some((None, e))
        }
        Got::Unreachable(error) => Some((None, unreachable(bus, peer.to_string(), &error))),
        Got::PastEnd => None,
    }
}

/// Whether `id` is an event id of `peer` and nothing else: `peer:BOOT.SEQ`, both numbers. It
/// goes into the stream's `id:` line as it is, so nothing else may get through.
fn own_id(peer: &str, id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    id.strip_prefix(peer)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(boot, seq)| digits(boot) && digits(seq))
}

fn unreachable(bus: &Bus, peer: String, error: &str) -> Event {
    let mut what = What::PeerUnreachable {
        peer,
        error: error.to_string(),
    };
    what.cut_texts();
    Event {
        seq: 0,
        at_ms: crate::cluster::now_ms(),
        board: bus.board().to_string(),
        what,
    }
}

fn lagged(missed: u64) -> Event {
    Event {
        seq: 0,
        at_ms: 0,
        board: String::new(),
        what: What::Lagged { missed },
    }
}

/// One server-sent event; without an id for what is made for this reader only.
fn frame(id: Option<&str>, event: &Event) -> String {
    let json = serde_json::to_string(event).unwrap_or_default();
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    format!("{id}event: {}\ndata: {json}\n\n", event.what.kind())
}

/// Each board's last event id, as a stream's ids carry them.
#[derive(Debug, Default)]
struct Ids(BTreeMap<String, String>);

impl Ids {
    /// From a reader's `Last-Event-ID`: the entries that read as `board:boot.seq`.
    fn from_header(header: Option<&str>) -> Ids {
        let mut ids = Ids::default();
        for id in header.unwrap_or_default().split(',').take(MAX_IDS) {
            let id = id.trim();
            if let Some((board, rest)) = id.rsplit_once(':') {
                if !board.is_empty() && rest.contains('.') && id.len() <= 128 {
                    ids.0.insert(board.to_string(), id.to_string());
                }
            }
        }
        ids
    }

    /// The stream's id after `board`'s event `id`: every board's last (`None` when the event
    /// has no id of its own).
    fn next(&mut self, board: &str, id: Option<String>) -> Option<String> {
        let id = id?;
        if self.0.len() < MAX_IDS || self.0.contains_key(board) {
            self.0.insert(board.to_string(), id);
        }
        Some(self.0.values().cloned().collect::<Vec<_>>().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_names_each_boards_last_event() {
        let mut ids = Ids::from_header(Some("pi-b:9.4, junk ,pi-c:9.2"));
        assert_eq!(
            ids.next("pi-a", Some("pi-a:7.1".into())).as_deref(),
            Some("pi-a:7.1,pi-b:9.4,pi-c:9.2")
        );
        assert_eq!(
            ids.next("pi-b", Some("pi-b:9.5".into())).as_deref(),
            Some("pi-a:7.1,pi-b:9.5,pi-c:9.2")
        );
        assert_eq!(ids.next("pi-b", None), None);
    }

    #[test]
    fn a_peer_is_taken_only_for_its_own_instance_events() {
        let bus = Bus::new(1);
        bus.set_board("pi-a");
        let crashed = |board: &str| Event {
            seq: 3,
            at_ms: 5,
            board: board.to_string(),
            what: What::InstanceReady {
                service: "web".into(),
                instance: "web-1".into(),
            },
        };
        let (id, event) = from_peer(
            &bus,
            "pi-b",
            Got::Item {
                id: Some("pi-b:1.3".into()),
                v: crashed("pi-z"),
            },
        )
        .expect("an instance event");
        assert_eq!(event.board, "pi-b", "a peer speaks for itself only");
        assert_eq!(id.as_deref(), Some("pi-b:1.3"));
        let (id, _) = from_peer(
            &bus,
            "pi-b",
            Got::Item {
                id: Some("pi-a:1.3".into()),
                v: crashed("pi-b"),
            },
        )
        .expect("an instance event");
        assert_eq!(id, None, "an id naming another board is dropped");
        for forged in [
            "pi-b:1.1\n\nevent: board-left\ndata: {}\n\n:",
            "pi-b:1.1,pi-a:1.9",
            "pi-b:1.x",
            "pi-b:.1",
            "pi-b:1",
        ] {
            let (id, _) = from_peer(
                &bus,
                "pi-b",
                Got::Item {
                    id: Some(forged.into()),
                    v: crashed("pi-b"),
                },
            )
            .expect("an instance event");
            assert_eq!(id, None, "{forged:?} is not pi-b's id");
        }
        let decision = Event {
            what: What::BoardJoined {
                member: "pi-q".into(),
            },
            ..crashed("pi-b")
        };
        assert!(from_peer(
            &bus,
            "pi-b",
            Got::Item {
                id: None,
                v: decision
            }
        )
        .is_none());
        let (_, said) = from_peer(&bus, "pi-b", Got::Unreachable("refused".into())).expect("said");
        assert_eq!(said.board, "pi-a");
        assert!(matches!(said.what, What::PeerUnreachable { ref peer, .. } if peer == "pi-b"));
    }
}
