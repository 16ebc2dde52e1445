//! The front door on a host, outside a board: for benchmarks and tests on loopback. It reads a
//! configuration file (a snapshot and the instances of its services, JSON) and serves plain
//! HTTP, HTTPS (with the snapshot's `certs`), or both, on the addresses given. On a board the
//! init runs the front door instead, feeding it over the control channel.
//!
//! `baton-front-door --config FILE [--http ADDR] [--https ADDR] [--no-tls-resumption] [--workers N]`
//!
//! `--no-tls-resumption` turns TLS session tickets and the session cache off, so every
//! handshake is a full one (the handshake benchmark compares proxies that way).
//!
//! Each listener's bound address is printed on stderr (`serving http on ADDR`), so a caller
//! may pass port 0 and read the port chosen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use baton_frontdoor::config::Snapshot;
use baton_frontdoor::control::protocol::Instance;
use baton_frontdoor::http::{serve, Scheme};
use baton_frontdoor::state::State;
use baton_frontdoor::tls;
use serde::Deserialize;

/// Largest configuration file read.
const MAX_CONFIG: u64 = 8 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostConfig {
    snapshot: Snapshot,
    #[serde(default)]
    instances: BTreeMap<String, Vec<Instance>>,
}

struct Args {
    config: String,
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    resumption: bool,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut config = None;
    let mut http = None;
    let mut https = None;
    let mut resumption = true;
    let mut workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value("--config")?),
            "--http" => {
                let text = value("--http")?;
                http = Some(text.parse().map_err(|e| format!("--http {text}: {e}"))?);
            }
            "--https" => {
                let text = value("--https")?;
                https = Some(text.parse().map_err(|e| format!("--https {text}: {e}"))?);
            }
            "--no-tls-resumption" => resumption = false,
            "--workers" => {
                let text = value("--workers")?;
                workers = text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--workers {text}: not a positive number"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if http.is_none() && https.is_none() {
        return Err("--http ADDR, --https ADDR or both are required".into());
    }
    Ok(Args {
        config: config.ok_or("--config FILE is required")?,
        http,
        https,
        resumption,
        workers,
    })
}

fn read_config(path: &str) -> Result<HostConfig, String> {
    use std::io::Read as _;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG + 1).read_to_end(&mut text))
        .map_err(|e| format!("{path}: {e}"))?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(format!("{path}: larger than {MAX_CONFIG} bytes"));
    }
    serde_json::from_slice(&text).map_err(|e| format!("{path}: {e}"))
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| {
        let config = read_config(&args.config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        runtime.block_on(run(args, config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-front-door: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, config: HostConfig) -> Result<(), String> {
    let (wake, mut wakes) = tokio::sync::mpsc::channel(64);
    let state = Arc::new(State::new(wake));
    let notes = state
        .apply(1, config.snapshot)
        .map_err(|e| format!("{}: {e}", args.config))?;
    // A certificate the snapshot lists but that cannot be used is an error in the file.
    if let Some(note) = notes.first() {
        return Err(format!("{}: {note}", args.config));
    }
    for (service, list) in config.instances {
        if !state.set_instances(&service, list) {
            return Err(format!(
                "{}: instances of unknown service {service}",
                args.config
            ));
        }
    }
    // Both listeners are bound before either serves, so a bad address fails the start.
    let http = match args.http {
        Some(addr) => Some(bind("http", addr).await?),
        None => None,
    };
    let https = match args.https {
        Some(addr) => Some(bind("https", addr).await?),
        None => None,
    };
    // Refused at once rather than on the first handshake: no certificate, nothing to serve.
    if https.is_some() && state.certs().is_empty() {
        return Err(format!(
            "{}: --https needs at least one certificate in the snapshot's certs",
            args.config
        ));
    }
    let sweeper = Arc::clone(&state);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            sweeper.pool.sweep();
        }
    });
    tokio::spawn(async move {
        while let Some(service) = wakes.recv().await {
            eprintln!("baton-front-door: {service} has requests waiting and no instance");
        }
    });
    // The identity provider's key set of `jwks_url`, fetched as on a board; with no init to
    // keep it, what it fetched is only said.
    let (fetched, mut reports) = tokio::sync::mpsc::channel(4);
    baton_frontdoor::idp::fetch::spawn(Arc::clone(&state.idp), fetched);
    tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            if let baton_frontdoor::control::protocol::ToInit::Fetched { kind, url, body } = report
            {
                eprintln!(
                    "baton-front-door: fetched {kind:?} from {url} ({} bytes)",
                    body.len()
                );
            }
        }
    });
    let plain = async {
        if let Some(listener) = http {
            let state = Arc::clone(&state);
            serve::listen(
                listener,
                Scheme::Http,
                state,
                Arc::default(),
                baton_listen::stderr_log(),
            )
            .await;
        }
        Ok::<(), String>(())
    };
    let tls = async {
        if let Some(listener) = https {
            let state = Arc::clone(&state);
            let config = if args.resumption {
                tls::accept::server_config(&state)
            } else {
                tls::accept::server_config_without_resumption(&state)
            }
            .map_err(|e| format!("https: {e}"))?;
            tls::accept::listen_with(
                listener,
                config,
                state,
                Arc::default(),
                baton_listen::stderr_log(),
            )
            .await;
        }
        Ok(())
    };
    tokio::try_join!(plain, tls)?;
    Ok(())
}

/// A listener on `addr`, its bound address printed for callers that asked for port 0.
async fn bind(scheme: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--{scheme} {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--{scheme} {addr}: {e}"))?;
    eprintln!("baton-front-door: serving {scheme} on {bound}");
    Ok(listener)
}
