//! `GET /v1/boards`: every board's load and version, gathered by the board answering from its
//! peers' `GET /v1/peer/status` through [`super::fanout`] (the same peers, key and bounds as
//! the events), within [`super::events::PAST_WAIT`]. A member that is dead, or that did not
//! answer in time, is listed with why, not left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_api::{BoardList, BoardView, MemberStatus};
use tokio::time::Instant;

use super::events::PAST_WAIT;
use super::fanout::{Ask, Fanout, Got, MAX_PEERS};
use super::frame::Frame;
use crate::api::Handles;
use crate::cluster::peer_read::Peers;
use crate::metrics::collect::Paths;

/// This board as it says of itself.
pub async fn own(handles: &Handles) -> BoardView {
    BoardView {
        name: handles.state.info().hostname,
        state: MemberStatus::Myself,
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_ms: crate::api::proc_files::uptime_ms().unwrap_or(0),
        load: crate::metrics::now::board_load(Paths::default()).await,
        error: None,
    }
}

/// `GET /v1/peer/status`: this board, for a peer's `/v1/boards`.
pub async fn peer_status(Extract(handles): Extract<Handles>) -> Response {
    let lines = [
        Frame::Item {
            id: None,
            v: own(&handles).await,
        }
        .line(),
        Frame::<()>::PastEnd.line(),
    ]
    .concat();
    super::ndjson(Body::from(lines))
}

/// `GET /v1/boards`.
pub async fn list(Extract(handles): Extract<Handles>) -> Response {
    let mut boards = vec![own(&handles).await];
    let Some(node) = handles.cluster() else {
        return Json(BoardList { boards }).into_response();
    };
    let members = node.view().members;
    let peers: Arc<dyn Peers> = node;
    let mut fan: Fanout<BoardView> = Fanout::start(
        peers,
        Ask {
            first: "/v1/peer/status".to_string(),
            again: String::new(),
            last_event_id: None,
            follow: false,
        },
    );
    let (got, late) = fan
        .past(Instant::now() + PAST_WAIT, (1, MAX_PEERS), |_| 0)
        .await;
    let mut said: BTreeMap<String, Result<BoardView, String>> = BTreeMap::new();
    for (peer, g) in got {
        match g {
            Got::Item { v, .. } => {
                said.insert(peer, Ok(v));
            }
            Got::Unreachable(e) => {
                said.entry(peer).or_insert(Err(e));
            }
            Got::Skipped(_) | Got::PastEnd => {}
        }
    }
    for peer in late {
        said.entry(peer)
            .or_insert(Err("no answer in time".to_string()));
    }
    for m in members
        .into_iter()
        .filter(|m| m.state != MemberStatus::Myself)
    {
        // What a peer says of itself, under the name and state this board knows it by.
        let view = match said.remove(&m.name) {
            Some(Ok(v)) => BoardView {
                name: m.name,
                state: m.state,
                error: None,
                ..v
            },
            Some(Err(e)) => unasked(m.name, m.state, e),
            None if m.state == MemberStatus::Alive => {
                unasked(m.name, m.state, "its API is not known yet".to_string())
            }
            None => unasked(m.name, m.state, "not asked: it is not alive".to_string()),
        };
        boards.push(view);
    }
    Json(BoardList { boards }).into_response()
}

fn unasked(name: String, state: MemberStatus, error: String) -> BoardView {
    BoardView {
        name,
        state,
        error: Some(error),
        ..BoardView::default()
    }
}
