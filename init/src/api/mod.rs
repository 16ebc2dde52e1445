//! The board's HTTP API on TCP port 7070 of every address, over TLS with a certificate from the
//! cluster CA ([`tls`]); plain HTTP there answers only `GET /v1/health` and redirects.
//!
//! Every request needs `Authorization: Bearer <token>` (`[api] token` in `cluster.toml`) except
//! `GET /v1/health` and the dashboard's pages and sign-in ([`dashboard`]). A browser signed in
//! to the dashboard sends its session cookie instead of the token; with the cookie, a request
//! that changes something also needs the session's `X-Baton-CSRF` value and the board's own
//! `Origin`. A board whose `cluster.toml` has no usable token refuses every authenticated
//! request rather than serving them openly.
//!
//! | method | path           | what                                        |
//! |--------|----------------|---------------------------------------------|
//! | GET    | `/v1/health`   | `{"ok": true}`, no token needed             |
//! | GET    | `/v1/status`   | [`StatusReport`]                            |
//! | GET    | `/v1/boards`   | every board's load and version (see [`peers::boards`]) |
//! | GET    | `/v1/events`   | the cluster's events, JSON or server-sent (see [`events`], [`peers::events`]) |
//! | GET    | `/v1/peer/…`   | for peers: this board's instance events and log lines, behind the peer read key (see [`peers`]) |
//! | GET    | `/v1/console`  | the console's recent lines (`?tail=N`)      |
//! | POST   | `/v1/reboot`   | clean reboot (202, then the board goes down) |
//! | POST   | `/v1/halt`     | clean halt                                  |
//! | POST   | `/v1/poweroff` | clean power-off                             |
//! |        | `/v1/services…` | see [`services`]                           |
//! | GET    | `/`, `/dash/…` | the dashboard's pages, no token needed (see [`dashboard`]) |
//! | GET    | `/v1/session`  | whether the browser is signed in, and its CSRF value |
//! | POST   | `/v1/session`  | `{"token": …}` for a session cookie          |
//! | POST   | `/v1/session/logout` | clears the session cookie             |
//!
//! Every body is a type of the API's contract, [`baton_api`], which the `baton` command reads
//! back.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::{Request, State as Extract};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_api::{
    ApiError, ConsoleQuery, Health, Memory, PowerAccepted, PowerAction, StatusReport,
    UserNamespaces,
};
use tokio::sync::{mpsc, watch};

use crate::board::console::Console;
use crate::board::status::BoardStatus;
use crate::board::sys::Action;
use crate::cluster::Node;
use crate::containers::supervisor::Supervisor;

pub(crate) mod cluster;
pub mod dashboard;
mod events;
mod metrics;
mod peers;
#[cfg(test)]
mod proptests;
mod routes;
mod scaling;
pub mod serve;
mod services;
mod spec_check;
pub mod tls;

/// TCP port of the API on every board.
pub const PORT: u16 = baton_spec::service::defaults::API_PORT;

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("API: cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// The subsystems the API reaches once they run. The supervisor and the cluster member start
/// after the API (so a board whose containers cannot start stays manageable); each appears on
/// its channel when it is up.
#[derive(Debug, Clone)]
pub struct Running {
    /// The supervisor, once started.
    pub supervisor: watch::Receiver<Option<Supervisor>>,
    /// The cluster member, once it has joined.
    pub cluster: watch::Receiver<Option<Arc<Node>>>,
    /// The front door's manager, once it runs.
    pub front_door: watch::Receiver<Option<crate::frontdoor::Handle>>,
    /// The board's side of scaling, once the supervisor runs.
    pub scaler: watch::Receiver<Option<Arc<crate::scaling::Scaler>>>,
}

/// Everything a request handler reaches, handed down by the wiring: the board state, the
/// console, where power requests go, and the subsystems once they run.
#[derive(Clone)]
pub struct Handles {
    /// The board state the API reports.
    pub state: Arc<BoardStatus>,
    /// The console, whose recent lines `GET /v1/console` serves.
    pub console: Arc<Console>,
    /// Where reboot, halt and power-off requests go.
    pub power: mpsc::Sender<Action>,
    /// The config partition's `services/` directory, where applied specs are written.
    pub services_dir: PathBuf,
    /// Where applied specs are kept: the data partition first, then the card.
    pub card: Arc<crate::board::card::CardStore>,
    /// The supervisor and the cluster member, once they run.
    pub running: Running,
    /// TLS for the API ([`tls::setup`]); `None` serves plain HTTP (a card without a CA).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `[front_door]` of this board: applied specs are checked against it too.
    pub front_door: Arc<baton_spec::FrontDoor>,
    /// The board's events.
    pub bus: Arc<crate::events::Bus>,
    /// The key the `/v1/peer/` routes take (see [`crate::cluster::peer_read`]); `None` on a
    /// board in no cluster.
    pub peer_key: Option<Arc<str>>,
    /// The dashboard's sessions of this boot.
    pub dashboard: Arc<dashboard::Dashboard>,
}

impl Handles {
    /// Handles for a test of the API alone: nothing running behind it (no supervisor, cluster,
    /// front door or scaler), specs kept in `services` without a data partition.
    #[cfg(test)]
    pub(crate) fn alone(
        state: Arc<BoardStatus>,
        console: Arc<Console>,
        power: mpsc::Sender<Action>,
        services: PathBuf,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Handles {
        Handles {
            state,
            console,
            power,
            card: Arc::new(crate::board::card::CardStore::open(services.clone(), None).0),
            services_dir: services,
            running: Running {
                supervisor: watch::channel(None).1,
                cluster: watch::channel(None).1,
                front_door: watch::channel(None).1,
                scaler: watch::channel(None).1,
            },
            tls,
            front_door: Default::default(),
            bus: Default::default(),
            peer_key: None,
            dashboard: Default::default(),
        }
    }

    /// The supervisor, if it has started.
    fn supervisor(&self) -> Option<Supervisor> {
        self.running.supervisor.borrow().clone()
    }

    /// The cluster member, if it has joined.
    fn cluster(&self) -> Option<Arc<Node>> {
        self.running.cluster.borrow().clone()
    }

    /// The front door's manager, if it runs.
    fn front_door(&self) -> Option<crate::frontdoor::Handle> {
        self.running.front_door.borrow().clone()
    }

    /// The board's side of scaling, if the supervisor runs.
    fn scaler(&self) -> Option<Arc<crate::scaling::Scaler>> {
        self.running.scaler.borrow().clone()
    }
}

/// Starts serving the API on `0.0.0.0:7070` in the background (on the current tokio runtime).
pub fn spawn(handles: Handles) -> Result<(), Error> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT));
    let listener = bind(addr)?;
    tokio::spawn(serve(listener, handles));
    Ok(())
}

fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| Error::Listen { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|source| Error::Listen { addr, source })?;
    tokio::net::TcpListener::from_std(std_listener).map_err(|source| Error::Listen { addr, source })
}

/// Serves the API on `listener` until the process ends, with the default [`serve::Settings`]:
/// over TLS when the board has a certificate ([`tls::setup`]), else plain HTTP.
pub async fn serve(listener: tokio::net::TcpListener, handles: Handles) {
    serve_with(listener, handles, serve::Settings::default()).await;
}

/// [`serve`] with explicit limits and timeouts.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    handles: Handles,
    settings: serve::Settings,
) {
    let console = Arc::clone(&handles.console);
    let stats = handles.state.api_listener();
    let tls = handles.tls.clone();
    serve::run(listener, router(handles), tls, settings, stats, console).await;
}

fn router(handles: Handles) -> Router {
    let authenticated = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/console", get(console))
        .route("/v1/reboot", post(|s| power(s, Action::Reboot)))
        .route("/v1/halt", post(|s| power(s, Action::Halt)))
        .route("/v1/poweroff", post(|s| power(s, Action::Poweroff)))
        .merge(services::routes())
        .merge(cluster::routes())
        .merge(metrics::routes())
        .merge(events::routes())
        .route("/v1/boards", get(peers::boards::list))
        .merge(routes::routes())
        .route_layer(middleware::from_fn_with_state(
            handles.clone(),
            require_token,
        ));
    Router::new()
        .route("/v1/health", get(|| async { Json(Health { ok: true }) }))
        .merge(cluster::sync_routes())
        .merge(peers::routes(handles.clone()))
        .merge(dashboard::routes())
        .merge(authenticated)
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(handles)
}

async fn require_token(
    Extract(handles): Extract<Handles>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // A browser's session cookie (the dashboard), when there is no bearer token.
    if presented.is_none() && request.headers().get(header::AUTHORIZATION).is_none() {
        if let Some(outcome) = dashboard::auth::by_cookie(&handles, &request) {
            return match outcome {
                Ok(()) => next.run(request).await,
                Err(refused) => *refused,
            };
        }
    }
    // `[api] metrics_token` opens the metrics and nothing else.
    let scrape = request.uri().path() == metrics::PATH
        && handles.state.metrics_token().is_some_and(|t| {
            presented.is_some_and(|given| constant_time_eq(t.as_bytes(), given.trim().as_bytes()))
        });
    match (handles.state.token(), presented) {
        _ if scrape => next.run(request).await,
        (Some(expected), Some(given)) if constant_time_eq(expected.as_bytes(), given.trim().as_bytes()) => {
            next.run(request).await
        }
        (None, _) => problem(
            StatusCode::UNAUTHORIZED,
            "this board has no valid [api] token in cluster.toml; fix the file on the BATON-CFG partition",
        ),
        (Some(_), None) => problem(StatusCode::UNAUTHORIZED, "missing 'Authorization: Bearer <token>' header"),
        (Some(_), Some(_)) => problem(StatusCode::UNAUTHORIZED, "wrong API token"),
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn problem(status: StatusCode, message: &str) -> Response {
    let mut response = (status, Json(ApiError::new(message))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

async fn status(Extract(handles): Extract<Handles>) -> Json<StatusReport> {
    let user_namespaces = handles.supervisor().and_then(|s| s.user_namespaces());
    let mut report = report(&handles.state, user_namespaces);
    report.front_door = handles.front_door().map(|f| f.shared.status());
    report.load = crate::metrics::now::board_load(crate::metrics::collect::Paths::default()).await;
    Json(report)
}

/// `GET /v1/console?tail=N`: the console's most recent lines, oldest first.
async fn console(
    Extract(handles): Extract<Handles>,
    query: Result<Query<ConsoleQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(StatusCode::BAD_REQUEST, "tail must be a number of lines");
    };
    let recent = handles.console.recent();
    let tail = q.tail.unwrap_or(baton_api::console::DEFAULT_TAIL);
    let skip = recent.len().saturating_sub(tail);
    let text: String = recent[skip..].iter().map(|l| format!("{l}\n")).collect();
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Builds the status report from the shared state, `/proc` and whether the supervisor found
/// that services can run in user namespaces (`None` before it knows).
pub fn report(state: &BoardStatus, user_namespaces: Option<Result<(), String>>) -> StatusReport {
    let info = state.info();
    StatusReport {
        hostname: info.hostname,
        board: info.board,
        kernel: info.kernel,
        uptime_ms: proc_files::uptime_ms().unwrap_or(0),
        boot: state.boot_steps(),
        addresses: state.addresses(),
        memory: Memory {
            init_rss_bytes: proc_files::self_rss_bytes().unwrap_or(0),
            system_used_bytes: proc_files::system_used_bytes().unwrap_or(0),
        },
        config_files: info.config_files,
        card_repairs: info.card_repairs,
        front_door: None,
        version: env!("CARGO_PKG_VERSION").to_string(),
        load: None,
        data: info.data,
        errors: state.errors(),
        config_errors: state.config_errors(),
        clock: state.clock(),
        api_tls: state.api_tls(),
        user_namespaces: match user_namespaces {
            Some(Ok(())) => UserNamespaces {
                supported: true,
                reason: None,
            },
            Some(Err(why)) => UserNamespaces {
                supported: false,
                reason: Some(why),
            },
            None => UserNamespaces {
                supported: false,
                reason: Some("not probed yet (the supervisor has not started)".into()),
            },
        },
    }
}

async fn power(Extract(handles): Extract<Handles>, action: Action) -> Response {
    match handles.power.try_send(action) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(PowerAccepted {
                accepted: match action {
                    Action::Reboot => PowerAction::Reboot,
                    Action::Halt => PowerAction::Halt,
                    Action::Poweroff => PowerAction::Poweroff,
                },
            }),
        )
            .into_response(),
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "a shutdown is already under way",
        ),
    }
}

/// Reading figures from `/proc`.
mod proc_files {
    use crate::board::procfs::kib_field;

    /// Milliseconds since boot, from `/proc/uptime`.
    pub fn uptime_ms() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/uptime").ok()?;
        parse_uptime_ms(&text)
    }

    pub fn parse_uptime_ms(text: &str) -> Option<u64> {
        let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
        Some((secs * 1000.0) as u64)
    }

    /// `VmRSS` of this process.
    pub fn self_rss_bytes() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        kib_field(&text, "VmRSS:")
    }

    /// `MemTotal - MemAvailable`.
    pub fn system_used_bytes() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        parse_used(&text)
    }

    pub fn parse_used(meminfo: &str) -> Option<u64> {
        let total = kib_field(meminfo, "MemTotal:")?;
        let available = kib_field(meminfo, "MemAvailable:")?;
        Some(total.saturating_sub(available))
    }
}

#[cfg(test)]
mod tests;
