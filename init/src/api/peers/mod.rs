//! The routes boards read each other's events and log lines through, and the reading side
//! (see `docs/design/observability.md`, section 2, "Fan-out"):
//!
//! | method | path                          | what |
//! |--------|-------------------------------|------|
//! | GET    | `/v1/peer/events?tail=N&follow=1` | this board's instance events (the others every board raises alike) |
//! | GET    | `/v1/peer/logs/{name}?tail=N&follow=1` | this board's lines of the service |
//! | GET    | `/v1/peer/status`              | this board's load and version (for `/v1/boards`) |
//!
//! Both answer [`frame::Frame`]s, one JSON object a line: the past, [`frame::Frame::PastEnd`],
//! then (with `follow=1`) what comes, with [`frame::Frame::Alive`] every
//! [`super::events::KEEP_ALIVE`] of silence. They take only the peer read key
//! ([`crate::cluster::peer_read`]), not the API token, and only read.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, Request, State as Extract};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_api::events::{Event, EventsQuery, RING};
use baton_api::LogsQuery;
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use super::events::KEEP_ALIVE;
use super::{constant_time_eq, problem, Handles};
use crate::containers::supervisor::logs::LogLine;
use frame::Frame;

pub mod boards;
pub mod client;
pub mod events;
pub mod fanout;
pub mod frame;
pub mod logs;
#[cfg(test)]
mod tests;

/// The routes, behind the peer read key.
pub fn routes(handles: Handles) -> Router<Handles> {
    Router::new()
        .route("/v1/peer/events", get(events))
        .route("/v1/peer/logs/{name}", get(logs))
        .route("/v1/peer/status", get(boards::peer_status))
        .route_layer(middleware::from_fn_with_state(handles, require_peer_key))
}

async fn require_peer_key(
    Extract(handles): Extract<Handles>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = handles.peer_key.clone() else {
        return problem(StatusCode::NOT_FOUND, "this board is in no cluster");
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(given) if constant_time_eq(key.as_bytes(), given.as_bytes()) => {
            next.run(request).await
        }
        _ => problem(
            StatusCode::UNAUTHORIZED,
            "the peer read key is missing or wrong",
        ),
    }
}

pub(super) fn ndjson(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, frame::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn events(
    Extract(handles): Extract<Handles>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "tail must be a number and follow 0 or 1",
        );
    };
    let bus = std::sync::Arc::clone(&handles.bus);
    let (after, tail) = super::events::position(&bus, &headers, &q);
    let item = {
        let bus = std::sync::Arc::clone(&bus);
        move |e: &Event| {
            Frame::Item {
                id: Some(bus.id(e.seq)),
                v: e,
            }
            .line()
        }
    };
    let follow = q.follow.unwrap_or(0) != 0;
    let slot = if follow {
        match bus.stream() {
            Some(slot) => Some(slot),
            None => {
                return problem(StatusCode::SERVICE_UNAVAILABLE, "too many event streams");
            }
        }
    } else {
        None
    };
    let (past, missed, rx) = bus.follow(after, RING);
    let mine: Vec<_> = past.into_iter().filter(|e| e.what.is_instance()).collect();
    let skip = mine.len().saturating_sub(tail);
    let head = (missed > 0)
        .then(|| Frame::<()>::Skipped { n: missed }.line())
        .into_iter()
        .chain(mine.into_iter().skip(skip).map({
            let item = item.clone();
            move |e| item(&e)
        }))
        .chain(std::iter::once(Frame::<()>::PastEnd.line()))
        .map(Ok::<_, std::convert::Infallible>);
    let head = futures_util::stream::iter(head);
    if !follow {
        return ndjson(Body::from_stream(head));
    }
    let rest = futures_util::stream::unfold((rx, slot, item), |(mut rx, slot, item)| async move {
        loop {
            let text = match tokio::time::timeout(KEEP_ALIVE, rx.recv()).await {
                Err(_) => Frame::<()>::Alive.line(),
                Ok(Ok(event)) if event.what.is_instance() => item(&event),
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(n))) => Frame::<()>::Skipped { n }.line(),
                Ok(Err(RecvError::Closed)) => return None,
            };
            return Some((Ok(text), (rx, slot, item)));
        }
    });
    ndjson(Body::from_stream(head.chain(rest)))
}

async fn logs(
    Extract(handles): Extract<Handles>,
    UrlPath(name): UrlPath<String>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "tail must be a number and follow 0 or 1",
        );
    };
    let Some(log) = handles.supervisor().and_then(|s| s.log(&name)) else {
        return problem(StatusCode::NOT_FOUND, &format!("no service {name:?} here"));
    };
    let line = |l: &LogLine| Frame::Item { id: None, v: l }.line();
    let rx = log.subscribe();
    let past = log.tail(q.tail.unwrap_or(100).min(logs::MAX_TAIL));
    let head = futures_util::stream::iter(
        past.iter()
            .map(line)
            .chain(std::iter::once(Frame::<()>::PastEnd.line()))
            .map(Ok::<_, std::convert::Infallible>)
            .collect::<Vec<_>>(),
    );
    if q.follow.unwrap_or(0) == 0 {
        return ndjson(Body::from_stream(head));
    }
    let rest = futures_util::stream::unfold(rx, move |mut rx| async move {
        let text = match tokio::time::timeout(KEEP_ALIVE, rx.recv()).await {
            Err(_) => Frame::<()>::Alive.line(),
            Ok(Ok(l)) => line(&l),
            Ok(Err(RecvError::Lagged(n))) => Frame::<()>::Skipped { n }.line(),
            Ok(Err(RecvError::Closed)) => return None,
        };
        Some((Ok(text), rx))
    });
    ndjson(Body::from_stream(head.chain(rest)))
}
