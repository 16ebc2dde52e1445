//! `/v1/cluster`: the members of the cluster as this board sees them, and the sealed exchange of
//! spec records between boards.
//!
//! | method | path               | auth          | what |
//! |--------|--------------------|---------------|------|
//! | GET    | `/v1/cluster`      | token         | members (name, state, addresses, labels, capacity, last heard), conflicts, unplaced instances |
//! | POST   | `/v1/cluster/sync` | the cluster key (sealed body) | a peer's records in, ours out |
//! | GET    | `/v1/network`      | token         | each service's virtual IP, allow list and egress; the rule set's generation; the mesh to other boards |

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_api::NetworkReport;

use super::{problem, Handles};

/// `GET /v1/cluster`, behind the token check.
pub(super) fn routes() -> Router<Handles> {
    Router::new()
        .route("/v1/cluster", get(view))
        .route("/v1/network", get(network))
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

async fn sync(Extract(handles): Extract<Handles>, body: Bytes) -> Response {
    let Some(node) = handles.cluster() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "not in a cluster yet");
    };
    match node.answer_sync(&body) {
        Some(answer) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response()
        }
        // Nothing about why: a stranger learns only that it was refused.
        None => problem(StatusCode::FORBIDDEN, "refused"),
    }
}
