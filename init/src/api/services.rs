//! `/v1/services`: list, inspect, change, restart and remove services, and read their logs.
//!
//! | method | path                              | what |
//! |--------|-----------------------------------|------|
//! | GET    | `/v1/services`                    | every service with its instances, plus spec errors |
//! | GET    | `/v1/services/{name}`             | one service |
//! | PUT    | `/v1/services/{name}`             | TOML body: validate, keep it on the data partition, then write `services/{name}.toml`, apply |
//! | DELETE | `/v1/services/{name}`             | delete it from the data partition and the card, stop it |
//! | POST   | `/v1/services/{name}/restart`     | restart every instance |
//! | GET    | `/v1/services/{name}/logs?tail=N&follow=1` | log lines as text, `follow` streams new ones |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_api::{
    ApiError, Applied, InstancePhase, LogsQuery, RemoteInstance, Removed, Restarting, Service,
    ServiceInstance, ServiceList, ServiceView,
};
use baton_spec::service::SERVICES_DIR;
use futures_util::StreamExt;

use super::spec_check::Refused;
use super::{problem, Handles};
use crate::board::card::WriteError;
use crate::containers::supervisor::logs::{LogLine, Stream};
use crate::containers::supervisor::Supervisor;

/// The routes (all behind the token check).
pub(super) fn routes() -> Router<Handles> {
    Router::new()
        .route("/v1/services", get(list))
        .route("/v1/services/{name}", get(one).put(put).delete(delete))
        .route("/v1/services/{name}/restart", post(restart))
        .route("/v1/services/{name}/logs", get(logs))
}

fn supervisor(handles: &Handles) -> Result<Supervisor, Box<Response>> {
    handles.supervisor().ok_or_else(|| {
        Box::new(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the supervisor is not running yet",
        ))
    })
}

async fn list(Extract(handles): Extract<Handles>) -> Response {
    let mut services = handles
        .supervisor()
        .map(|s| s.services())
        .unwrap_or_default();
    let ids = services
        .iter()
        .flat_map(|s| s.instances.iter().map(|i| i.id.clone()))
        .collect();
    let mut usage =
        crate::metrics::now::usage(crate::metrics::collect::Paths::default(), ids).await;
    for instance in services.iter_mut().flat_map(|s| s.instances.iter_mut()) {
        instance.usage = usage.remove(&instance.id);
    }
    let errors = handles
        .state
        .config_errors()
        .into_iter()
        .filter(|e| e.file.starts_with(SERVICES_DIR))
        .collect();
    // Other boards' instances, read once for the whole list.
    let mut remote = remote_instances(&handles);
    let services = services
        .into_iter()
        .map(|view| {
            let cluster = in_cluster(&handles, &view.name, &mut remote);
            let scaling = super::scaling::of(&handles, &view.name);
            Service {
                scaling,
                ..cluster_wide(view, cluster)
            }
        })
        .collect();
    Json(ServiceList { services, errors }).into_response()
}

/// The instances on the other boards of the cluster, by service (none without a cluster).
fn remote_instances(handles: &Handles) -> BTreeMap<String, Vec<RemoteInstance>> {
    handles
        .cluster()
        .map(|node| node.remote_instances())
        .unwrap_or_default()
}

/// What a board in a cluster adds to the view of one of its services.
#[derive(Debug)]
struct InCluster {
    /// This board's name.
    board: String,
    /// The service's instances on the other boards.
    remote: Vec<RemoteInstance>,
    /// How many instances the cluster wants and why some are not placed, once placement has
    /// seen the service.
    placement: Option<(u32, Vec<String>)>,
}

/// What the cluster adds to service `name` (`remote`: the other boards' instances, by service);
/// `None` without a cluster.
fn in_cluster(
    handles: &Handles,
    name: &str,
    remote: &mut BTreeMap<String, Vec<RemoteInstance>>,
) -> Option<InCluster> {
    let node = handles.cluster()?;
    Some(InCluster {
        board: node.board().to_string(),
        remote: remote.remove(name).unwrap_or_default(),
        placement: node.placement_of(name),
    })
}

/// A service as the API shows it: without a cluster, the supervisor's view; with one, every
/// instance in the cluster with its board, the running instances of the whole cluster, the
/// desired count for the whole cluster once placement has seen the service, and why instances
/// are not placed.
fn cluster_wide(view: ServiceView, cluster: Option<InCluster>) -> Service {
    let mut service = Service::from(view);
    let Some(cluster) = cluster else {
        return service;
    };
    for instance in &mut service.instances {
        if let ServiceInstance::Local(local) = instance {
            local.board = Some(cluster.board.clone());
        }
    }
    for remote in cluster.remote {
        service.running += u32::from(remote.state == InstancePhase::Running);
        service.instances.push(ServiceInstance::Remote(remote));
    }
    let unplaced = match cluster.placement {
        Some((desired, unplaced)) => {
            service.desired = desired;
            unplaced
        }
        None => Vec::new(),
    };
    service.unplaced = Some(unplaced);
    service
}

async fn one(Extract(handles): Extract<Handles>, UrlPath(name): UrlPath<String>) -> Response {
    match supervisor(&handles).map(|s| s.service(&name)) {
        Ok(Some(view)) => {
            let mut remote = remote_instances(&handles);
            let cluster = in_cluster(&handles, &name, &mut remote);
            let scaling = super::scaling::of(&handles, &name);
            Json(Service {
                scaling,
                ..cluster_wide(view, cluster)
            })
            .into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, &format!("no service {name:?}")),
        Err(r) => *r,
    }
}

async fn restart(Extract(handles): Extract<Handles>, UrlPath(name): UrlPath<String>) -> Response {
    match supervisor(&handles) {
        Ok(s) if s.restart(&name) => {
            (StatusCode::ACCEPTED, Json(Restarting { restarting: name })).into_response()
        }
        Ok(_) => problem(StatusCode::NOT_FOUND, &format!("no service {name:?}")),
        Err(r) => *r,
    }
}

async fn put(
    Extract(handles): Extract<Handles>,
    UrlPath(name): UrlPath<String>,
    body: String,
) -> Response {
    if !baton_spec::service::is_service_name(&name) {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("{name:?} is not a service name"),
        );
    }
    let max = baton_cluster::desired::admit::MAX_SPEC_TEXT;
    if handles.cluster().is_some() && body.len() > max {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the spec takes {} bytes; a cluster takes specs of at most {max} bytes",
                body.len()
            ),
        );
    }
    let supervisor = match supervisor(&handles) {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    let file = format!("{name}.toml");
    // Validate with the other files (as the board runs them), so a clash (name, published
    // port, route) is refused too, and against this board's `[front_door]`.
    let others = {
        let (card, file) = (Arc::clone(&handles.card), file.clone());
        let others = move || {
            let mut files = card.files();
            files.retain(|(f, _)| *f != file);
            files
        };
        match tokio::task::spawn_blocking(others).await {
            Ok(files) => files,
            Err(e) => {
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("reading {SERVICES_DIR}: {e}"),
                )
            }
        }
    };
    let spec = match super::spec_check::check(&name, &body, others, &handles.front_door) {
        Ok(spec) => spec,
        Err(Refused::Invalid(errors)) => {
            let refusal = ApiError {
                error: "invalid service spec".to_string(),
                errors: Some(errors),
            };
            return (StatusCode::BAD_REQUEST, Json(refusal)).into_response();
        }
        Err(Refused::OtherName) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("the spec does not define service {name:?}"),
            );
        }
    };
    // Durable on the data partition, then on the card (a FAT file system synced as a whole);
    // acknowledged once the data partition holds it (see `kept`). Off the runtime thread, which
    // feeds the watchdog.
    let (card, spec_name, text) = (Arc::clone(&handles.card), name.clone(), body.clone());
    let written = tokio::task::spawn_blocking(move || card.write(&spec_name, Some(&text))).await;
    let warning = match kept(&handles, written) {
        Ok(warning) => warning,
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("writing {SERVICES_DIR}/{file}: {e}"),
            )
        }
    };
    handles
        .state
        .replace_config_errors(&format!("{SERVICES_DIR}/{file}"), Vec::new());
    // With a cluster, the member picks the file up, versions it and places the service.
    match handles.cluster() {
        Some(node) => node.poke(),
        None => supervisor.apply(spec),
    }
    (
        StatusCode::ACCEPTED,
        Json(Applied {
            applied: name,
            warning,
        }),
    )
        .into_response()
}

async fn delete(Extract(handles): Extract<Handles>, UrlPath(name): UrlPath<String>) -> Response {
    let supervisor = match supervisor(&handles) {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    if !baton_spec::service::is_service_name(&name) {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("{name:?} is not a service name"),
        );
    }
    let path = handles.services_dir.join(format!("{name}.toml"));
    let existed = supervisor.service(&name).is_some()
        || path.exists()
        || handles.cluster().is_some_and(|node| node.has(&name));
    if !existed {
        return problem(StatusCode::NOT_FOUND, &format!("no service {name:?}"));
    }
    // Removed from the data partition, then from the card; acknowledged as an apply is.
    let (card, spec_name) = (Arc::clone(&handles.card), name.clone());
    let removed = tokio::task::spawn_blocking(move || card.write(&spec_name, None)).await;
    let warning = match kept(&handles, removed) {
        Ok(warning) => warning,
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("removing {}: {e}", path.display()),
            )
        }
    };
    handles
        .state
        .replace_config_errors(&format!("{SERVICES_DIR}/{name}.toml"), Vec::new());
    match handles.cluster() {
        // The tombstone is stamped and saved now: the service may run here before its file
        // reached the card, and then no round would see the file go (see `cluster::deletion`).
        Some(node) => {
            let spec_name = name.clone();
            let saved = tokio::task::spawn_blocking(move || node.delete(&spec_name)).await;
            if let Some(e) =
                saved.map_or_else(|e| Some(e.to_string()), |r| r.err().map(|e| e.to_string()))
            {
                // A failure on the data partition: not acknowledged, as for an apply.
                let line = format!(
                    "the deletion of {name} is in force on this board, but saving the cluster's records on the data partition failed: {e}; a power cut before the next round would forget it"
                );
                handles.console.line(&line);
                return problem(StatusCode::INTERNAL_SERVER_ERROR, &line);
            }
        }
        None => supervisor.remove(&name),
    }
    (
        StatusCode::ACCEPTED,
        Json(Removed {
            removed: name,
            warning,
        }),
    )
        .into_response()
}

async fn logs(
    Extract(handles): Extract<Handles>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if q.cluster.unwrap_or(0) != 0 {
        if let Some(node) = handles.cluster() {
            let log = handles.supervisor().and_then(|s| s.log(&name));
            if log.is_none() && node.placement_of(&name).is_none() {
                return problem(StatusCode::NOT_FOUND, &format!("no service {name:?}"));
            }
            let node: Arc<dyn crate::cluster::peer_read::Peers> = node;
            let board = handles.bus.board().to_string();
            let (tail, follow) = (q.tail.unwrap_or(100), q.follow.unwrap_or(0) != 0);
            return super::peers::logs::answer(node, board, &name, log, tail, follow);
        }
    }
    let log = match supervisor(&handles).map(|s| s.log(&name)) {
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
        Stream::Access => "acc",
    };
    let more = if line.continued { " \\" } else { "" };
    format!("{} {} {}{more}\n", line.instance, stream, line.text)
}

/// Whether a write through the card store is kept, and so acknowledged: when both partitions
/// hold it, or when the data partition does and only the card failed (the board runs the data
/// partition's text, see `CardStore::files`); the warning then says so, and so does the console.
fn kept(
    handles: &Handles,
    written: Result<Result<(), WriteError>, tokio::task::JoinError>,
) -> Result<Option<String>, String> {
    match written {
        Ok(Ok(())) => Ok(None),
        Ok(Err(e @ WriteError::Card { .. })) if handles.card.has_data() => {
            let warning = format!("{e}; the board runs the spec from the data partition");
            handles.console.line(&warning);
            Ok(Some(warning))
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> ServiceView {
        ServiceView {
            name: "web".into(),
            state: baton_api::ServiceState::Running,
            image: "images/web.tar".into(),
            desired: 1,
            running: 1,
            publish: None,
            instances: vec![baton_api::InstanceView {
                id: "web-1".into(),
                state: InstancePhase::Running,
                address: Some("10.88.1.2".into()),
                started_at_ms: Some(5),
                start_ms: Some(7),
                restarts: 0,
                last_exit: None,
                last_error: None,
                oom_kills: 0,
                healthy: Some(true),
                ready: true,
                usage: None,
            }],
            error: None,
            dropped_log_lines: 0,
        }
    }

    fn local_json() -> serde_json::Value {
        json!({
            "id": "web-1", "state": "running", "address": "10.88.1.2", "started_at_ms": 5,
            "start_ms": 7, "restarts": 0, "last_exit": null, "last_error": null, "oom_kills": 0,
            "healthy": true, "ready": true,
        })
    }

    #[test]
    fn a_service_on_a_board_without_a_cluster_is_the_supervisor_s_view() {
        assert_eq!(
            serde_json::to_value(cluster_wide(view(), None)).unwrap(),
            json!({
                "name": "web", "state": "running", "image": "images/web.tar", "desired": 1,
                "running": 1, "publish": null, "instances": [local_json()], "error": null,
            })
        );
    }

    #[test]
    fn a_service_in_a_cluster_shows_every_board_s_instances_and_placement() {
        let remote = |id: &str, state| RemoteInstance {
            id: id.into(),
            board: "pi-b".into(),
            state,
            address: None,
            ready: false,
        };
        let cluster = InCluster {
            board: "pi-a".into(),
            remote: vec![
                remote("web-2", InstancePhase::Running),
                remote("web-3", InstancePhase::Starting),
            ],
            placement: Some((4, vec!["instance 4: no board has room".into()])),
        };
        let mut local = local_json();
        local["board"] = json!("pi-a");
        assert_eq!(
            serde_json::to_value(cluster_wide(view(), Some(cluster))).unwrap(),
            json!({
                "name": "web", "state": "running", "image": "images/web.tar", "desired": 4,
                "running": 2, "publish": null, "error": null,
                "instances": [
                    local,
                    {"id": "web-2", "board": "pi-b", "state": "running", "address": null, "ready": false},
                    {"id": "web-3", "board": "pi-b", "state": "starting", "address": null, "ready": false},
                ],
                "unplaced": ["instance 4: no board has room"],
            })
        );
        // Before placement has seen it: this board's count, and nothing unplaced.
        let before = InCluster {
            board: "pi-a".into(),
            remote: Vec::new(),
            placement: None,
        };
        let service = serde_json::to_value(cluster_wide(view(), Some(before))).unwrap();
        assert_eq!(service["desired"], 1);
        assert_eq!(service["unplaced"], json!([]));
    }
}
