//! The part of a round that exchanges spec records with peers whose digest differs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_cluster::desired::admit::escaped;
use baton_cluster::desired::Record;
use baton_cluster::gossip::MemberState;

use super::{lock, now_ms, Node};

/// A peer is asked for its records at most this often.
const SYNC_EVERY: Duration = Duration::from_secs(3);

impl Node {
    /// Asks every alive peer whose digest differs (at most every few seconds each) for its
    /// records, sending ours, and merges the answers.
    pub(super) async fn sync_with_peers(self: &Arc<Self>) {
        let (digest, due) = {
            let mut inner = lock(&self.inner);
            let digest = inner.desired.digest();
            let short = super::specs_digest(&inner.desired);
            let now = Instant::now();
            let mut due = Vec::new();
            for peer in self.gossip.members() {
                let differs = peer.values.digest.as_ref().is_some_and(|d| *d != short);
                let recent = inner
                    .synced
                    .get(&peer.name)
                    .is_some_and(|at| now.duration_since(*at) < SYNC_EVERY);
                if peer.state == MemberState::Alive && differs && !recent {
                    if let Some(api) = peer.values.api {
                        inner.synced.insert(peer.name.clone(), now);
                        due.push((peer.name.clone(), api));
                    }
                }
            }
            (digest, due)
        };
        for (peer, api) in due {
            let records: Vec<Record> = lock(&self.inner).desired.records().cloned().collect();
            let (challenge, body) =
                match self
                    .sync_key
                    .request(&self.settings.board, &digest, records)
                {
                    Ok(sealed) => sealed,
                    Err(e) => {
                        self.settings.console.line(format_args!(
                            "cluster: sync with board {}: {e}",
                            escaped(&peer)
                        ));
                        continue;
                    }
                };
            let scheme = if self.settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let url = format!("{scheme}://{api}/v1/cluster/sync");
            let tls = self.settings.tls.clone();
            let answer = tokio::task::spawn_blocking(move || post(&url, &body, tls)).await;
            let answer = match answer {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => {
                    self.settings.console.line(format_args!(
                        "cluster: sync with board {}: {e}",
                        escaped(&peer)
                    ));
                    continue;
                }
                Err(_) => continue,
            };
            match self.sync_key.open_response(&answer, &challenge) {
                Ok(response) => {
                    let mut inner = lock(&self.inner);
                    let inner = &mut *inner;
                    let changes = inner
                        .desired
                        .merge(response.records, &mut inner.clock, now_ms());
                    let source = format!("the sync answer of board {}", escaped(&peer));
                    super::refused::report(&self.settings.console, inner, &source, &changes);
                }
                Err(e) => self.settings.console.line(format_args!(
                    "cluster: sync with board {}: {e}",
                    escaped(&peer)
                )),
            }
        }
        // Whatever arrived reaches the card and the disk in the next scan.
        let mut inner = lock(&self.inner);
        inner.desired.expire(now_ms());
    }
}

/// POSTs `body` (over TLS that trusts the cluster CA, with `tls`) and returns the answer's
/// bytes (at most the sync exchange's largest body).
fn post(
    url: &str,
    body: &[u8],
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Vec<u8>, ureq::Error> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(true)
        .build();
    let agent = match tls {
        Some(tls) => baton_cluster::tls::connector::agent(config, tls),
        None => config.into(),
    };
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/octet-stream")
        .send(body)?;
    response
        .body_mut()
        .with_config()
        .limit(baton_cluster::sync::MAX_BODY as u64)
        .read_to_vec()
}
