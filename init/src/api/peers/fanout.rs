//! One route read from every readable peer at once (see `docs/design/observability.md`,
//! section 2, "Fan-out"), for one reader of this board: each peer has its own task and
//! connection, which comes back after a failure with a back-off of [`BACKOFF_MIN`] to
//! [`BACKOFF_MAX`], resuming after the last id it got. What the peers send reaches the reader
//! through one channel of [`QUEUE`] items; a reader that does not keep up slows the peers'
//! connections down, and a peer whose own channel overflows says how much it skipped. Peers
//! that come up later are added every [`REFRESH`]; those no longer readable are dropped. All
//! the tasks end when the reader goes (the [`Fanout`] is dropped).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::client::{self, Error};
use super::frame::Frame;
use crate::cluster::peer_read::{PeerApi, Peers};

/// The first wait before asking a failed peer again; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Items from the peers on their way to the reader.
pub const QUEUE: usize = 256;
/// How often the readable peers are looked at again.
pub const REFRESH: Duration = Duration::from_secs(10);
/// The most peers one reader follows.
pub const MAX_PEERS: usize = 64;

/// What came from a peer.
#[derive(Debug)]
pub enum Got<T> {
    /// An item, with the id to resume after.
    Item { id: Option<String>, v: T },
    /// The peer's past is over (also sent for a peer that has nothing, or failed, so the
    /// reader does not wait for it).
    PastEnd,
    /// The peer skipped this many items.
    Skipped(u64),
    /// The peer cannot be read; said once until it is read again.
    Unreachable(String),
}

/// What to ask.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The path and query of the first request (with the past).
    pub first: String,
    /// The path and query when a peer is asked again, or asked late (no past).
    pub again: String,
    /// The reader's `Last-Event-ID`, passed to every peer (each finds its own entry).
    pub last_event_id: Option<String>,
    /// Whether to follow (and come back after failures), or read the past once.
    pub follow: bool,
}

/// The peers being read for one reader.
pub struct Fanout<T> {
    rx: mpsc::Receiver<(String, Got<T>)>,
    tasks: Arc<Mutex<BTreeMap<String, AbortHandle>>>,
    refresher: Option<AbortHandle>,
    /// The peers asked at the start, whose past is waited for.
    started: Vec<String>,
}

impl<T> Drop for Fanout<T> {
    fn drop(&mut self) {
        if let Some(r) = &self.refresher {
            r.abort();
        }
        for task in lock(&self.tasks).values() {
            task.abort();
        }
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Reach {
    tls: Option<Arc<rustls::ClientConfig>>,
    key: String,
    ask: Ask,
    /// The last id got from each peer (one per peer read), kept when its task ends, so that a
    /// peer read again later resumes there rather than from the reader's first id.
    last_ids: Mutex<BTreeMap<String, String>>,
}

impl<T: DeserializeOwned + Send + 'static> Fanout<T> {
    /// Starts reading `ask` from every readable peer.
    pub fn start(node: Arc<dyn Peers>, ask: Ask) -> Fanout<T> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let reach = Arc::new(Reach {
            tls: node.tls(),
            key: node.read_key(),
            ask,
            last_ids: Mutex::new(BTreeMap::new()),
        });
        let tasks = Arc::new(Mutex::new(BTreeMap::new()));
        let peers = node.readable();
        let started = peers
            .iter()
            .take(MAX_PEERS)
            .map(|p| p.name.clone())
            .collect();
        add(&tasks, &reach, &tx, peers, true);
        let refresher = reach.ask.follow.then(|| {
            let (tasks, reach) = (Arc::clone(&tasks), Arc::clone(&reach));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(REFRESH).await;
                    let peers = node.readable();
                    lock(&tasks).retain(|name, task| {
                        let keep = peers.iter().any(|p| &p.name == name);
                        if !keep {
                            task.abort();
                        }
                        keep
                    });
                    add(&tasks, &reach, &tx, peers, false);
                }
            })
            .abort_handle()
        });
        Fanout {
            rx,
            tasks,
            refresher,
            started,
        }
    }

    /// Everything the peers send until each has ended its past (or failed), or `deadline`,
    /// and the peers whose past had not ended by then. Each peer's items beyond `per_peer` are
    /// dropped, and at most `keep` items are kept in all (the latest by `at`), so that neither
    /// one peer nor many can make it large; a peer's skips are summed and said once, and so is
    /// its failure.
    pub async fn past(
        &mut self,
        deadline: Instant,
        (per_peer, keep): (usize, usize),
        at: impl Fn(&T) -> u64,
    ) -> (Vec<(String, Got<T>)>, Vec<String>) {
        let mut got: Vec<(String, Got<T>)> = Vec::new();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut waiting: std::collections::BTreeSet<String> =
            self.started.iter().cloned().collect();
        while !waiting.is_empty() {
            let Ok(Some((peer, g))) = tokio::time::timeout_at(deadline, self.rx.recv()).await
            else {
                break;
            };
            match g {
                Got::PastEnd => {
                    waiting.remove(&peer);
                }
                Got::Skipped(n) => {
                    let sum = skipped.entry(peer).or_default();
                    *sum = sum.saturating_add(n);
                }
                Got::Unreachable(e) => {
                    failed.entry(peer).or_insert(e);
                }
                item @ Got::Item { .. } => {
                    let count = counts.entry(peer.clone()).or_default();
                    if *count < per_peer {
                        *count += 1;
                        got.push((peer, item));
                        if got.len() > keep.saturating_mul(2) {
                            trim(&mut got, keep, &at);
                        }
                    }
                }
            }
        }
        trim(&mut got, keep, &at);
        got.extend(skipped.into_iter().map(|(p, n)| (p, Got::Skipped(n))));
        got.extend(failed.into_iter().map(|(p, e)| (p, Got::Unreachable(e))));
        (got, waiting.into_iter().collect())
    }

    /// The next thing a peer sends; `None` once no peer is read any more (not following).
    pub async fn recv(&mut self) -> Option<(String, Got<T>)> {
        self.rx.recv().await
    }
}

/// Keeps the latest `keep` items (all of `got` is items), in the order of `at` (stable).
fn trim<T>(got: &mut Vec<(String, Got<T>)>, keep: usize, at: &impl Fn(&T) -> u64) {
    got.sort_by_key(|(_, g)| match g {
        Got::Item { v, .. } => at(v),
        _ => 0,
    });
    let drop = got.len().saturating_sub(keep);
    got.drain(..drop);
}

fn add<T: DeserializeOwned + Send + 'static>(
    tasks: &Arc<Mutex<BTreeMap<String, AbortHandle>>>,
    reach: &Arc<Reach>,
    tx: &mpsc::Sender<(String, Got<T>)>,
    peers: Vec<PeerApi>,
    first: bool,
) {
    let mut tasks = lock(tasks);
    for peer in peers {
        if tasks.len() >= MAX_PEERS || tasks.contains_key(&peer.name) {
            continue;
        }
        let name = peer.name.clone();
        let task = tokio::spawn(read_peer(peer, Arc::clone(reach), tx.clone(), first));
        tasks.insert(name, task.abort_handle());
    }
}

/// Reads one peer for as long as the reader follows.
async fn read_peer<T: DeserializeOwned>(
    peer: PeerApi,
    reach: Arc<Reach>,
    tx: mpsc::Sender<(String, Got<T>)>,
    first: bool,
) {
    let ask = &reach.ask;
    let mut path = if first { &ask.first } else { &ask.again };
    let mut last_id = lock(&reach.last_ids)
        .get(&peer.name)
        .cloned()
        .or_else(|| ask.last_event_id.clone());
    let mut past_pending = first;
    let mut down = false;
    let mut backoff = BACKOFF_MIN;
    let send = |g: Got<T>| tx.send((peer.name.clone(), g));
    loop {
        let outcome = match client::get(
            &peer,
            reach.tls.as_ref(),
            &reach.key,
            path,
            last_id.as_deref(),
        )
        .await
        {
            Ok(mut lines) => {
                down = false;
                backoff = BACKOFF_MIN;
                loop {
                    // A peer that sends many short lines at once must not keep the runtime
                    // from the board's other work.
                    tokio::task::coop::consume_budget().await;
                    match lines.next().await {
                        Ok(Some(line)) => match serde_json::from_str::<Frame<T>>(&line) {
                            Ok(Frame::Item { id, v }) => {
                                if let Some(id) = &id {
                                    last_id = Some(id.clone());
                                    lock(&reach.last_ids).insert(peer.name.clone(), id.clone());
                                }
                                if send(Got::Item { id, v }).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Frame::PastEnd) => {
                                past_pending = false;
                                if send(Got::PastEnd).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Frame::Skipped { n }) => {
                                if send(Got::Skipped(n)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Frame::Alive) => {}
                            Err(e) => break Err(format!("an unreadable line: {e}")),
                        },
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e.to_string()),
                    }
                }
            }
            Err(Error::NotFound) => Ok(()),
            Err(Error::Failed(e)) => Err(e),
        };
        // Said before the past's end, which a reader of the past waits for.
        if let Err(e) = outcome {
            if !down {
                down = true;
                if send(Got::Unreachable(e)).await.is_err() {
                    return;
                }
            }
        }
        if past_pending {
            past_pending = false;
            if send(Got::PastEnd).await.is_err() {
                return;
            }
        }
        if !ask.follow {
            return;
        }
        path = &ask.again;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
