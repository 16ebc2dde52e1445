//! `GET /v1/routes`: every route of the cluster as this board's front door serves it (the
//! instances behind it on every board, requests and errors so far, where the host's
//! certificate comes from); `POST /v1/routes/restart`: kills the front door's process, which
//! is started again at once (the crash path, on purpose).

use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_api::{RouteInstance, RouteView, RoutesReport};

use super::{problem, Handles};
use crate::frontdoor::certs::Source;

pub(super) fn routes() -> Router<Handles> {
    Router::new()
        .route("/v1/routes", get(list))
        .route("/v1/routes/restart", post(restart))
}

async fn list(Extract(handles): Extract<Handles>) -> Response {
    let (Some(front_door), Some(supervisor)) = (handles.front_door(), handles.supervisor()) else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the front door has not started yet",
        );
    };
    let routed = supervisor.routed().borrow().clone();
    let totals = front_door.shared.totals();
    let sources = front_door.shared.cert_sources();
    let board = handles.state.info().hostname;
    let routes = routed
        .services
        .iter()
        .map(|(name, service)| {
            let instances: Vec<RouteInstance> = service
                .instances
                .iter()
                .map(|i| {
                    let t = totals.get(&i.id).copied().unwrap_or_default();
                    RouteInstance {
                        id: i.id.clone(),
                        board: i.board.clone().unwrap_or_else(|| board.clone()),
                        address: format!("{}:{}", i.addr, service.port),
                        ready: i.ready,
                        inflight: t.inflight,
                        completed: t.completed,
                        failed: t.failed,
                    }
                })
                .collect();
            let certificate = service
                .route
                .host
                .as_ref()
                .and_then(|h| sources.get(h))
                .map(|source| match source {
                    Source::Card => "card".to_string(),
                    Source::Issued(until) => format!("issued by the cluster CA, until {until}"),
                    Source::Missing(why) => format!("none: {why}"),
                });
            RouteView {
                service: name.clone(),
                host: service.route.host.clone(),
                path: service.route.path.clone(),
                auth: format!("{:?}", service.route.auth).to_lowercase(),
                certificate,
                requests: instances.iter().map(|i| i.completed).sum(),
                errors: instances.iter().map(|i| i.failed).sum(),
                instances,
            }
        })
        .collect();
    Json(RoutesReport {
        board,
        front_door: front_door.shared.status(),
        routes,
    })
    .into_response()
}

async fn restart(Extract(handles): Extract<Handles>) -> Response {
    match handles.front_door() {
        Some(front_door) => {
            front_door.restart();
            (StatusCode::ACCEPTED, Json(front_door.shared.status())).into_response()
        }
        None => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the front door has not started yet",
        ),
    }
}
