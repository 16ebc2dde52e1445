//! `GET /metrics`: the board's figures for Prometheus (see [`crate::metrics`]), behind the API
//! token or `[api] metrics_token`, which opens this route only. One scrape at a time: a second
//! waits for the first.

use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{problem, Handles};
use crate::metrics::{collect, render};

/// The route's path.
pub const PATH: &str = "/metrics";

/// The route.
pub fn routes() -> Router<Handles> {
    Router::new().route(PATH, get(scrape))
}

/// Scrapes run one at a time: each reads every instance's cgroup.
static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

async fn scrape(Extract(handles): Extract<Handles>, headers: HeaderMap) -> Response {
    let Ok(_permit) = ONE_AT_A_TIME.acquire().await else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the board is stopping");
    };
    let inputs = collect::Inputs {
        state: handles.state.clone(),
        supervisor: handles.supervisor(),
        scaler: handles.scaler(),
        cluster: handles.cluster(),
        front_door: handles
            .front_door()
            .map(|f| f.shared.tallies.totals())
            .unwrap_or_default(),
        paths: collect::Paths::default(),
    };
    let snapshot = match collect::collect(inputs).await {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = render::render(&snapshot, render::wants_openmetrics(accept));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
