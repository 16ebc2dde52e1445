//! `/v1/services`: list, inspect, change, restart and remove services, and read their logs.
//!
//! | method | path                              | what |
//! |--------|-----------------------------------|------|
//! | GET    | `/v1/services`                    | every service with its instances, plus spec errors |
//! | GET    | `/v1/services/{name}`             | one service |
//! | PUT    | `/v1/services/{name}`             | TOML body: validate, write `services/{name}.toml` atomically, apply |
//! | DELETE | `/v1/services/{name}`             | stop it and delete its file |
//! | POST   | `/v1/services/{name}/restart`     | restart every instance |
//! | GET    | `/v1/services/{name}/logs?tail=N&follow=1` | log lines as text, `follow` streams new ones |

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_spec::service::{load_services, SERVICES_DIR};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{problem, Shared};
use crate::containers::supervisor::logs::{LogLine, Stream};
use crate::containers::supervisor::Supervisor;

/// Where the config partition is mounted.
const CONFIG: &str = "/config";

/// The routes (all behind the token check).
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/services", get(list))
        .route("/v1/services/{name}", get(one).put(put).delete(delete))
        .route("/v1/services/{name}/restart", post(restart))
        .route("/v1/services/{name}/logs", get(logs))
}

fn supervisor(shared: &Shared) -> Result<Supervisor, Box<Response>> {
    shared.supervisor().ok_or_else(|| {
        Box::new(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the supervisor is not running yet",
        ))
    })
}

async fn list(Extract(shared): Extract<Shared>) -> Response {
    let services = shared
        .supervisor()
        .map(|s| s.services())
        .unwrap_or_default();
    let errors: Vec<_> = shared
        .state
        .config_errors()
        .into_iter()
        .filter(|e| e.file.starts_with(SERVICES_DIR))
        .collect();
    // Other boards' instances, read once for the whole list.
    let mut remote = remote_instances(&shared);
    let services: Vec<serde_json::Value> = services
        .into_iter()
        .map(|view| cluster_wide(&shared, view, &mut remote))
        .collect();
    Json(serde_json::json!({ "services": services, "errors": errors })).into_response()
}

/// The instances on the other boards of the cluster, by service (none without a cluster).
fn remote_instances(shared: &Shared) -> BTreeMap<String, Vec<crate::cluster::RemoteInstance>> {
    shared
        .cluster()
        .map(|node| node.remote_instances())
        .unwrap_or_default()
}

/// A service as the API shows it: with a cluster, every instance in the cluster with its board
/// (`remote`: the other boards' instances, by service), the desired count for the whole cluster,
/// and why instances are not placed, if so.
fn cluster_wide(
    shared: &Shared,
    view: crate::containers::supervisor::ServiceView,
    remote: &mut BTreeMap<String, Vec<crate::cluster::RemoteInstance>>,
) -> serde_json::Value {
    let mut value = serde_json::to_value(&view).unwrap_or_default();
    let Some(node) = shared.cluster() else {
        return value;
    };
    let mut running = u64::from(view.running);
    if let Some(instances) = value.get_mut("instances").and_then(|v| v.as_array_mut()) {
        for instance in instances.iter_mut() {
            instance["board"] = serde_json::Value::from(node.board());
        }
        for remote in remote.remove(&view.name).unwrap_or_default() {
            running += u64::from(remote.state == "running");
            instances.push(serde_json::to_value(&remote).unwrap_or_default());
        }
    }
    value["running"] = running.into();
    let (desired, unplaced) = match node.placement_of(&view.name) {
        Some((desired, unplaced)) => (Some(desired), unplaced),
        None => (None, Vec::new()),
    };
    if let Some(desired) = desired {
        value["desired"] = desired.into();
    }
    value["unplaced"] = unplaced.into();
    value
}

async fn one(Extract(shared): Extract<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    match supervisor(&shared).map(|s| s.service(&name)) {
        Ok(Some(view)) => {
            let mut remote = remote_instances(&shared);
            Json(cluster_wide(&shared, view, &mut remote)).into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, &format!("no service {name:?}")),
        Err(r) => *r,
    }
}

async fn restart(Extract(shared): Extract<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    match supervisor(&shared) {
        Ok(s) if s.restart(&name) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "restarting": name })),
        )
            .into_response(),
        Ok(_) => problem(StatusCode::NOT_FOUND, &format!("no service {name:?}")),
        Err(r) => *r,
    }
}

async fn put(
    Extract(shared): Extract<Shared>,
    UrlPath(name): UrlPath<String>,
    body: String,
) -> Response {
    if !baton_spec::service::is_service_name(&name) {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("{name:?} is not a service name"),
        );
    }
    let supervisor = match supervisor(&shared) {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    let file = format!("{name}.toml");
    let dir = Path::new(CONFIG).join(SERVICES_DIR);
    // Validate with the other files, so a clash (name, published port, route) is refused too.
    let mut files = read_specs(&dir, &file);
    files.push((file.clone(), body.clone()));
    let loaded = load_services(&files);
    let errors: Vec<_> = loaded
        .errors
        .iter()
        .filter(|e| e.file == format!("{SERVICES_DIR}/{file}"))
        .cloned()
        .collect();
    if !errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "invalid service spec", "errors": errors })),
        )
            .into_response();
    }
    let Some(spec) = loaded.specs.into_iter().find(|s| s.name == name) else {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("the spec does not define service {name:?}"),
        );
    };
    if let Err(e) = crate::board::persist::write_atomic_fat(&dir.join(&file), body.as_bytes()) {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("writing {SERVICES_DIR}/{file}: {e}"),
        );
    }
    shared
        .state
        .replace_config_errors(&format!("{SERVICES_DIR}/{file}"), Vec::new());
    // With a cluster, the member picks the file up, versions it and places the service.
    match shared.cluster() {
        Some(node) => node.poke(),
        None => supervisor.apply(spec),
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "applied": name })),
    )
        .into_response()
}

async fn delete(Extract(shared): Extract<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let supervisor = match supervisor(&shared) {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    if !baton_spec::service::is_service_name(&name) {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("{name:?} is not a service name"),
        );
    }
    let path = Path::new(CONFIG)
        .join(SERVICES_DIR)
        .join(format!("{name}.toml"));
    let existed = supervisor.service(&name).is_some() || path.exists();
    if !existed {
        return problem(StatusCode::NOT_FOUND, &format!("no service {name:?}"));
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                let _ = crate::board::persist::sync_file_system(dir);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("removing {}: {e}", path.display()),
            )
        }
    }
    shared
        .state
        .replace_config_errors(&format!("{SERVICES_DIR}/{name}.toml"), Vec::new());
    match shared.cluster() {
        Some(node) => node.poke(),
        None => supervisor.remove(&name),
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "removed": name })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    tail: Option<usize>,
    follow: Option<u8>,
}

async fn logs(
    Extract(shared): Extract<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let log = match supervisor(&shared).map(|s| s.log(&name)) {
        Ok(Some(log)) => log,
        Ok(None) => return problem(StatusCode::NOT_FOUND, &format!("no service {name:?}")),
        Err(r) => return *r,
    };
    let past: String = log
        .tail(q.tail.unwrap_or(100))
        .iter()
        .map(format_line)
        .collect();
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if q.follow.unwrap_or(0) == 0 {
        return (text, past).into_response();
    }
    let rx = log.subscribe();
    let first = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(past) });
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(line) => Some((Ok(format_line(&line)), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Some((
                Ok(format!("baton: {n} lines skipped (reader too slow)\n")),
                rx,
            )),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    (text, Body::from_stream(first.chain(rest))).into_response()
}

fn format_line(line: &LogLine) -> String {
    let stream = match line.stream {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
    };
    format!("{} {} {}\n", line.instance, stream, line.text)
}

/// The other spec files of the directory, as (file name, text).
fn read_specs(dir: &Path, except: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != except {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                files.push((name, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    files
}
