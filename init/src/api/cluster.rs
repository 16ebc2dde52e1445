//! `/v1/cluster`: the members of the cluster as this board sees them, and the sealed exchange of
//! spec records between boards.
//!
//! | method | path               | auth          | what |
//! |--------|--------------------|---------------|------|
//! | GET    | `/v1/cluster`      | token         | members (name, state, addresses, labels, capacity, last heard), conflicts, unplaced instances, known boards, sync requests refused |
//! | DELETE | `/v1/cluster/boards/{name}` | token | forget a board: tombstones no longer wait for it ([`baton_api::BoardForgotten`]; 409 while it is alive) |
//! | POST   | `/v1/cluster/sync` | the cluster key (sealed body) | a peer's records in, ours out (409 with a sealed refusal when the request is not fresh) |
//! | GET    | `/v1/network`      | token         | each service's virtual IP, allow list and egress; the rule set's generation; the mesh to other boards |

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State as Extract};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use baton_api::NetworkReport;
use baton_cluster::sync::{plausible_head, HEAD_LEN, MIN_BODY};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::{problem, Handles};
use crate::cluster::SyncAnswer;

/// `GET /v1/cluster`, behind the token check.
pub(super) fn routes() -> Router<Handles> {
    Router::new()
        .route("/v1/cluster", get(view))
        .route("/v1/cluster/boards/{name}", delete(forget))
        .route("/v1/network", get(network))
}

/// `DELETE /v1/cluster/boards/{name}`: the board leaves the registry of known boards.
async fn forget(Extract(handles): Extract<Handles>, Path(name): Path<String>) -> Response {
    match handles.cluster() {
        Some(node) => match node.forget_board(&name) {
            Ok(report) => Json(report).into_response(),
            Err(e) => problem(StatusCode::CONFLICT, &e.to_string()),
        },
        None => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "this board is not in a cluster yet",
        ),
    }
}

/// `GET /v1/network`: every service's virtual IP, allow list and egress, and the generation of
/// the isolation rule set in force; in a cluster also `mesh`, the board's container subnet and
/// the other boards at the ends of its WireGuard mesh.
async fn network(Extract(handles): Extract<Handles>) -> Response {
    match handles.supervisor() {
        Some(s) => {
            let mesh = match handles.cluster() {
                Some(node) => Some(node.mesh_view().await),
                None => None,
            };
            Json(NetworkReport {
                network: s.network(),
                mesh,
            })
            .into_response()
        }
        None => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the supervisor is not running yet",
        ),
    }
}

/// `POST /v1/cluster/sync`: no token, the body must open with the cluster key.
pub(super) fn sync_routes() -> Router<Handles> {
    Router::new().route("/v1/cluster/sync", post(sync))
}

async fn view(Extract(handles): Extract<Handles>) -> Response {
    match handles.cluster() {
        Some(node) => Json(node.view()).into_response(),
        None => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "this board is not in a cluster yet (no valid [cluster] key, or its interface has no address)",
        ),
    }
}

/// Largest sync request read: the one limit of sync bodies that both ends use, large enough for
/// every record a board can hold (see [`baton_cluster::sync::MAX_BODY`]). The body is read here
/// from the raw stream, so axum's default limit of extracted bodies (2 MiB) does not apply.
const MAX_SYNC_REQUEST: usize = baton_cluster::sync::MAX_BODY;

/// Time for a sync request's body to arrive whole.
const SYNC_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Sync request bodies read at once: whoever has no key can make PID 1 hold at most this many
/// times [`MAX_SYNC_REQUEST`]; beyond it a request is refused at once (the peer retries next
/// round).
static SYNC_READERS: Semaphore = Semaphore::const_new(4);

/// `POST /v1/cluster/sync`. Unauthenticated until the body opens, so the cheap checks come
/// first: a cluster to answer for, a `Content-Length` within bounds, a free reader, and a head
/// that can begin a sealed body; only then is the rest read, within a time limit.
async fn sync(Extract(handles): Extract<Handles>, request: Request) -> Response {
    let Some(node) = handles.cluster() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "not in a cluster yet");
    };
    let Ok(_reader) = SYNC_READERS.try_acquire() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "busy; try again");
    };
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(SYNC_READ_TIMEOUT, read_sealed(&parts.headers, body)).await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(refusal)) => return refusal,
        Err(_) => return problem(StatusCode::REQUEST_TIMEOUT, "the body came too slowly"),
    };
    sync_reply(node.answer_sync(&body))
}

/// The HTTP answer to a sync request.
pub(crate) fn sync_reply(answer: SyncAnswer) -> Response {
    match answer {
        SyncAnswer::Sealed(answer) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response()
        }
        // Nothing about why: a stranger learns only that it was refused.
        SyncAnswer::Refused => refused(),
        // Opened with the key but not fresh: the sealed refusal, which only a member reads.
        SyncAnswer::Stale(sealed) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            sealed,
        )
            .into_response(),
        // The request opened with the cluster key: a member may learn why.
        SyncAnswer::Failed(why) => problem(StatusCode::INTERNAL_SERVER_ERROR, &why),
    }
}

fn refused() -> Response {
    problem(StatusCode::FORBIDDEN, "refused")
}

/// Reads a sync request's body: exactly its `Content-Length` of at most [`MAX_SYNC_REQUEST`]
/// bytes, refusing as soon as its head cannot begin a sealed body.
async fn read_sealed(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| problem(StatusCode::LENGTH_REQUIRED, "Content-Length needed"))?;
    if length > MAX_SYNC_REQUEST {
        return Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("sync body of {length} bytes is larger than the {MAX_SYNC_REQUEST} bytes a board takes"),
        ));
    }
    if length < MIN_BODY {
        return Err(refused());
    }
    let mut out = Vec::with_capacity(HEAD_LEN);
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| problem(StatusCode::BAD_REQUEST, "body unreadable"))?;
        if out.len() + chunk.len() > length {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "body longer than Content-Length",
            ));
        }
        let had_head = out.len() >= HEAD_LEN;
        out.extend_from_slice(&chunk);
        if !had_head && out.len() >= HEAD_LEN {
            if !plausible_head(&out) {
                return Err(refused());
            }
            out.reserve_exact(length - out.len());
        }
    }
    if out.len() != length {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "body shorter than Content-Length",
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
