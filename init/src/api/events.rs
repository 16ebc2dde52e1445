//! `GET /v1/events?tail=N[&follow=1]`: the board's recent events as JSON
//! ([`baton_api::EventList`]), or,
//! with `follow=1` or an `Accept: text/event-stream`, as server-sent events: the last `tail`
//! first (after the reader's `Last-Event-ID`, when it names this board and boot), then each new
//! one. A follower that falls behind gets a `lagged` event saying how many it missed; a comment
//! every [`KEEP_ALIVE`] shows a reader that has gone (its write fails) and keeps proxies from
//! closing a quiet stream. At most [`crate::events::MAX_STREAMS`] follow at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as Extract};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_api::events::{Event, EventsQuery, What, DEFAULT_TAIL, RING};
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use super::{peers, problem, Handles};
use crate::events::Bus;

/// How long a followed stream may stay silent before a comment is sent.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The route.
pub fn routes() -> Router<Handles> {
    Router::new().route("/v1/events", get(events))
}

async fn events(
    Extract(handles): Extract<Handles>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "tail must be a number of events and follow 0 or 1",
        );
    };
    let bus = &handles.bus;
    let (after, tail) = position(bus, &headers, &q);
    let streamed = q.follow.unwrap_or(0) != 0
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(node) = handles.cluster() {
        let node: Arc<dyn crate::cluster::peer_read::Peers> = node;
        let asked = peers::events::Asked {
            after,
            tail,
            last_event_id,
        };
        if !streamed {
            return peers::events::list(bus, node, asked).await;
        }
        return match bus.stream() {
            Some(slot) => peers::events::stream(Arc::clone(bus), slot, node, asked),
            None => too_many(),
        };
    }
    if !streamed {
        // The JSON of an `EventList`, written from the kept events without copying them.
        #[derive(serde::Serialize)]
        struct List<'a> {
            events: Vec<&'a Event>,
        }
        let recent = bus.recent(after, tail);
        let events = recent.iter().map(|e| &**e).collect();
        return Json(List { events }).into_response();
    }
    let Some(slot) = bus.stream() else {
        return too_many();
    };
    let (past, missed, rx) = bus.follow(after, tail);
    // The past is written one frame at a time as the client reads it, not gathered first.
    let head = {
        let bus = Arc::clone(bus);
        let lag = (missed > 0).then(|| lagged(missed));
        futures_util::stream::iter(
            lag.into_iter()
                .chain(past.into_iter().map(move |event| frame(&bus, &event)))
                .map(Ok::<_, std::convert::Infallible>),
        )
    };
    let bus = Arc::clone(bus);
    let rest = futures_util::stream::unfold((rx, slot, bus), |(mut rx, slot, bus)| async move {
        let text = match tokio::time::timeout(KEEP_ALIVE, rx.recv()).await {
            Err(_) => ": keep-alive\n\n".to_string(),
            Ok(Ok(event)) => frame(&bus, &event),
            Ok(Err(RecvError::Lagged(n))) => lagged(n),
            Ok(Err(RecvError::Closed)) => return None,
        };
        Some((Ok(text), (rx, slot, bus)))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(head.chain(rest)),
    )
        .into_response()
}

/// Where a reader goes on in `bus`: after the number its `Last-Event-ID` names for this
/// board and boot, if any, and how many past events it gets. A reader that names where it
/// stopped gets everything since (the ring's worth), so that only what the ring no longer
/// holds is missed, and said.
pub(super) fn position(bus: &Bus, headers: &HeaderMap, q: &EventsQuery) -> (Option<u64>, usize) {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|id| bus.after(id));
    let tail = match after {
        Some(_) => RING,
        None => q.tail.unwrap_or(DEFAULT_TAIL).min(RING),
    };
    (after, tail)
}

fn too_many() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "too many event streams ({} at most); try again later",
            crate::events::MAX_STREAMS
        ),
    )
}

/// One event as a server-sent event: its id, its kind as the event name, its JSON on one line.
fn frame(bus: &Bus, event: &Event) -> String {
    let json = serde_json::to_string(event).unwrap_or_default();
    format!(
        "id: {}\nevent: {}\ndata: {json}\n\n",
        bus.id(event.seq),
        event.what.kind()
    )
}

/// A `lagged` event for this reader only: no id, so a reconnection does not resume from it.
fn lagged(missed: u64) -> String {
    let event = Event {
        seq: 0,
        at_ms: 0,
        board: String::new(),
        what: What::Lagged { missed },
    };
    let json = serde_json::to_string(&event).unwrap_or_default();
    format!("event: lagged\ndata: {json}\n\n")
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
