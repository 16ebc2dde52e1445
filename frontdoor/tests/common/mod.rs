//! A front door on loopback with real hyper upstreams, and a plain HTTP/1.1 client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use baton_frontdoor::config::{Auth, Hold, Route, Service, Settings, Snapshot};
use baton_frontdoor::control::protocol::Instance;
use baton_frontdoor::http::{serve, BoxError, Scheme};
use baton_frontdoor::state::State;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A body upstreams answer with.
pub type UpBody = UnsyncBoxBody<Bytes, BoxError>;

/// Text as a body.
pub fn text(s: impl Into<Bytes>) -> UpBody {
    Full::new(s.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A route to `service` for any host under `path`.
pub fn route(service: &str, host: Option<&str>, path: &str) -> Route {
    Route {
        service: service.into(),
        host: host.map(str::to_string),
        path: path.into(),
        auth: Auth::None,
        timeout_ms: 5_000,
        require: Default::default(),
    }
}

/// A snapshot of `routes`, every service they name listed with `hold`.
pub fn snapshot(routes: Vec<Route>, hold: Option<Hold>) -> Snapshot {
    let services: BTreeMap<String, Service> = routes
        .iter()
        .map(|r| (r.service.clone(), Service { hold }))
        .collect();
    Snapshot {
        settings: Settings::default(),
        routes,
        services,
        certs: Vec::new(),
        oidc: None,
        instances: Default::default(),
        login: None,
    }
}

/// A front door on 127.0.0.1.
pub struct Door {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    pub wakes: mpsc::Receiver<String>,
    task: JoinHandle<()>,
}

impl Drop for Door {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Door {
    pub async fn start(snapshot: Snapshot) -> Door {
        let (wake, wakes) = mpsc::channel(16);
        let state = Arc::new(State::new(wake));
        state.apply(1, snapshot).expect("snapshot");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(serve::listen(
            listener,
            Scheme::Http,
            Arc::clone(&state),
            Arc::default(),
            baton_listen::stderr_log(),
        ));
        Door {
            addr,
            state,
            wakes,
            task,
        }
    }

    /// Sets the instances of `service`.
    pub fn instances(&self, service: &str, list: &[(&str, SocketAddr, bool)]) {
        let list = list
            .iter()
            .map(|(id, addr, ready)| instance(id, *addr, *ready))
            .collect();
        assert!(self.state.set_instances(service, list));
    }
}

pub fn instance(id: &str, addr: SocketAddr, ready: bool) -> Instance {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    Instance {
        id: id.into(),
        addr: *v4.ip(),
        port: v4.port(),
        board: "b1".into(),
        ready,
    }
}

/// An upstream HTTP/1.1 server on 127.0.0.1 answering with `handler`; abort the handle to kill
/// it (its listener closes; open connections end with the task's).
pub async fn upstream<F, Fut>(handler: F) -> (SocketAddr, JoinHandle<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<UpBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            conns.spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, task)
}

/// An upstream that answers its name and what it was asked.
pub async fn echo(name: &'static str) -> (SocketAddr, JoinHandle<()>) {
    upstream(move |req: Request<Incoming>| async move {
        let mut seen = format!("{name} {} {}\n", req.method(), req.uri());
        for (k, v) in req.headers() {
            seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        Response::new(text(seen))
    })
    .await
}

/// A response read whole.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// One HTTP/1.1 request on a new connection.
pub async fn send(addr: SocketAddr, req: Request<UpBody>) -> Got {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let response = sender.send_request(req).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET path` with `Host: host`.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Got {
    let req = Request::get(path)
        .header("host", host)
        .body(text(""))
        .expect("request");
    send(addr, req).await
}

/// Waits for `cond` with a deadline.
pub async fn until<F: FnMut() -> bool>(what: &str, mut cond: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A client holding one keep-alive connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<UpBody>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Client { sender }
    }

    pub async fn send(&mut self, req: Request<UpBody>) -> Got {
        self.sender.ready().await.expect("ready");
        let response = self.sender.send_request(req).await.expect("response");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        Got {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Got {
        let req = Request::get(path)
            .header("host", host)
            .body(text(""))
            .expect("request");
        self.send(req).await
    }
}
