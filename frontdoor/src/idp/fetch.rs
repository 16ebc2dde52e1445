//! The fetching task: the key set of `jwks_url` and (with a browser sign-in) the discovery
//! document, at start, every [`Timing::refresh`], again after a failure (from
//! [`Timing::retry`], doubling), and the key set at once when a request asks for it
//! ([`Idp::unknown_kid`]). Each document that passes its checks is put in force and sent to
//! the init (`Fetched`), which keeps it on `/data`; one that does not is refused with a log
//! line naming the URL and why, and the last good one stays.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::discovery::{self, Discovery};
use super::{Idp, Source};
use crate::control::protocol::{Fetched, ToInit};
use crate::identity::Keys;
use crate::outbound::Client;

/// Starts the task; what it fetches goes to `report` as `Fetched` messages (dropped, with a
/// log line, when the queue is full: the next fetch sends again).
pub fn spawn(idp: Arc<Idp>, report: mpsc::Sender<ToInit>) -> JoinHandle<()> {
    tokio::spawn(run(idp, report))
}

/// When each document is due, and the wait after a failure.
struct Due {
    at: Instant,
    retry: Option<Duration>,
}

impl Due {
    fn now() -> Due {
        Due {
            at: Instant::now(),
            retry: None,
        }
    }

    fn after(&mut self, ok: bool, idp: &Idp) {
        let timing = idp.timing();
        let wait = if ok {
            self.retry = None;
            timing.refresh
        } else {
            let wait = self.retry.unwrap_or(timing.retry).min(timing.refresh);
            self.retry = Some((wait * 2).min(timing.refresh));
            wait
        };
        self.at = Instant::now() + wait;
    }
}

/// The task itself, for callers that own its join (the control loop).
pub async fn run(idp: Arc<Idp>, report: mpsc::Sender<ToInit>) {
    let mut sources = idp.source.subscribe();
    loop {
        let source = sources.borrow_and_update().clone();
        let Some(source) = source else {
            // Nothing to fetch; a refetch asked for meanwhile ends at once.
            tokio::select! {
                changed = sources.changed() => if changed.is_err() { return },
                () = idp.kick.notified() => idp.refetch_done(),
            }
            continue;
        };
        let (client, notes) = Client::new(source.ca_pem.as_deref());
        let client = client.with_timeout(idp.timing().fetch_timeout);
        for note in notes {
            eprintln!("baton-front-door: {note}");
        }
        let (mut jwks, mut disc) = (Due::now(), Due::now());
        loop {
            if let Some(url) = &source.jwks_url {
                if Instant::now() >= jwks.at {
                    let ok = fetch_jwks(&idp, &client, url, &report).await;
                    jwks.after(ok, &idp);
                }
            }
            if source.discover && Instant::now() >= disc.at {
                let ok = fetch_discovery(&idp, &client, &source, &report).await;
                disc.after(ok, &idp);
            }
            let next = next_due(&source, &jwks, &disc);
            tokio::select! {
                changed = sources.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                () = idp.kick.notified() => {
                    if let Some(url) = &source.jwks_url {
                        let ok = fetch_jwks(&idp, &client, url, &report).await;
                        jwks.after(ok, &idp);
                    }
                    idp.refetch_done();
                }
                () = until(next) => {}
            }
        }
    }
}

fn next_due(source: &Source, jwks: &Due, disc: &Due) -> Option<Instant> {
    let jwks = source.jwks_url.as_ref().map(|_| jwks.at);
    let disc = source.discover.then_some(disc.at);
    match (jwks, disc) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Fetches and checks the key set; `true` when it is in force.
async fn fetch_jwks(idp: &Idp, client: &Client, url: &str, report: &mpsc::Sender<ToInit>) -> bool {
    let checked = async {
        let answer = client.get_json(url).await.map_err(|e| e.to_string())?;
        let body = String::from_utf8(answer.body.to_vec())
            .map_err(|_| format!("{url}: the key set is not UTF-8 text"))?;
        let keys = Keys::parse(&body).map_err(|e| format!("{url}: {e}"))?;
        if keys.keys.is_empty() {
            return Err(format!("{url}: the key set has no usable key"));
        }
        Ok((body, keys))
    };
    match checked.await {
        Ok((body, keys)) => {
            for skipped in &keys.skipped {
                eprintln!("baton-front-door: {url}: the key {skipped:?} is not used");
            }
            if idp.fetched_keys(url, keys) {
                send(report, Fetched::Jwks, url, body);
            }
            true
        }
        Err(why) => {
            let line = format!("the key set was not fetched: {why}; the last good set is kept");
            eprintln!("baton-front-door: {line}");
            idp.failed(Fetched::Jwks, line);
            false
        }
    }
}

/// Fetches and checks the discovery document; `true` when it is in force.
async fn fetch_discovery(
    idp: &Idp,
    client: &Client,
    source: &Source,
    report: &mpsc::Sender<ToInit>,
) -> bool {
    let url = discovery::url(&source.issuer);
    let checked = async {
        let answer = client.get_json(&url).await.map_err(|e| e.to_string())?;
        let body = String::from_utf8(answer.body.to_vec())
            .map_err(|_| format!("{url}: the document is not UTF-8 text"))?;
        let found = Discovery::parse(&body, &source.issuer).map_err(|e| format!("{url}: {e}"))?;
        Ok::<_, String>((body, found))
    };
    match checked.await {
        Ok((body, found)) => {
            if idp.fetched_discovery(&source.issuer, found) {
                send(report, Fetched::Discovery, &url, body);
            }
            true
        }
        Err(why) => {
            let line =
                format!("the discovery document was not fetched: {why}; the last good one is kept");
            eprintln!("baton-front-door: {line}");
            idp.failed(Fetched::Discovery, line);
            false
        }
    }
}

fn send(report: &mpsc::Sender<ToInit>, kind: Fetched, url: &str, body: String) {
    let message = ToInit::Fetched {
        kind,
        url: url.to_string(),
        body,
    };
    if report.try_send(message).is_err() {
        eprintln!(
            "baton-front-door: the fetched {kind:?} of {url} was not passed to the init (queue full); the next fetch passes it"
        );
    }
}
