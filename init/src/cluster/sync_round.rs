//! The part of a round that exchanges spec records with peers whose digest differs, and that
//! keeps the registry of known boards and the tombstones' confirmations
//! ([`super::tombstones`]).
//!
//! A request is stamped with this board's clock, plus what a peer's sealed refusal said of the
//! peer's clock ([`baton_cluster::sync::SyncRefusal`]): a board whose clock is off by more than
//! the freshness window has its first request to each peer refused, and the next one, stamped by
//! the peer's clock, answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_cluster::desired::admit::escaped;
use baton_cluster::desired::Record;
use baton_cluster::gossip::MemberState;
use baton_cluster::sync::{SyncError, SyncKey, SyncRefusal};
use std::collections::BTreeMap;

use super::known::{Known, Noted};
use super::tombstones::{self, Confirmations};
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
            let (records, time) = {
                let inner = lock(&self.inner);
                let records: Vec<Record> = inner.desired.records().cloned().collect();
                let offset = inner.clock_offsets.get(&peer).copied().unwrap_or(0);
                (records, now_ms().saturating_add_signed(offset))
            };
            let (challenge, body) =
                match self
                    .sync_key
                    .request_at(time, &self.settings.board, &digest, records)
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
                Ok(Ok(Answer::Records(bytes))) => bytes,
                Ok(Ok(Answer::Stale(bytes))) => {
                    self.learn_clock(&peer, &bytes, &challenge);
                    continue;
                }
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
        self.tend_tombstones();
    }

    /// Registers the boards alive in the gossip, notes which of them show this board's digest
    /// (they confirm every tombstone held), drops the tombstones past their time that every
    /// registered board confirmed, saves the registry and the confirmations when they changed,
    /// and reports the tombstones that wait for boards.
    fn tend_tombstones(&self) {
        let now = now_ms();
        let members = self.gossip.members();
        let me = self.settings.board.as_str();
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let mut known_changed = false;
        let mut full = Vec::new();
        for m in members.iter().filter(|m| m.state == MemberState::Alive) {
            if m.name == me {
                continue;
            }
            match inner.known.note(&m.name, now) {
                Noted::New => known_changed = true,
                Noted::Full => full.push(escaped(&m.name)),
                Noted::Known => {}
            }
        }
        let short = super::specs_digest(&inner.desired);
        let mut confirmed = false;
        for m in &members {
            if m.values.digest.as_deref() == Some(short.as_str()) {
                confirmed |= inner
                    .confirmations
                    .confirm(&m.name, &inner.known, &inner.desired);
            }
        }
        let (dropped, held) = tombstones::release(
            &mut inner.desired,
            &inner.confirmations,
            &inner.known,
            me,
            now,
        );
        confirmed |= inner.confirmations.prune(&inner.desired, &inner.known, now);
        if let Some(dir) = &self.settings.state_dir {
            let mut saves = Vec::new();
            if known_changed {
                let path = Known::file(dir);
                saves.push((inner.known.save(&path), path));
            }
            if confirmed || !dropped.is_empty() {
                let path = Confirmations::file(dir);
                saves.push((inner.confirmations.save(&path), path));
            }
            for (result, path) in saves {
                if let Err(e) = result {
                    self.settings
                        .console
                        .line(format_args!("cluster: saving {}: {e}", path.display()));
                }
            }
        }
        let console = &self.settings.console;
        if !full.is_empty() {
            let note = format!(
                "cluster: the registry of known boards is full ({} boards); not registered: {} (tombstones do not wait for them; `baton boards forget` boards that are gone)",
                super::known::MAX_BOARDS,
                full.join(", ")
            );
            if inner.registry_full_note.as_deref() != Some(note.as_str()) {
                console.line(format_args!("{note}"));
                inner.registry_full_note = Some(note);
            }
        }
        for name in &dropped {
            console.line(format_args!(
                "cluster: the tombstone of {} is dropped: past its time and every known board has it",
                escaped(name)
            ));
        }
        let note = held_note(&held);
        if note != inner.tombstones_note {
            if let Some(note) = &note {
                console.line(format_args!("cluster: {note}"));
            }
            inner.tombstones_note = note;
        }
    }

    /// Reads a peer's refusal of a request not fresh: notes the peer's clock for the next
    /// request, and says so on the console.
    fn learn_clock(&self, peer: &str, body: &[u8], challenge: &str) {
        let (refusal, offset) = match clock_offset(&self.sync_key, body, challenge, now_ms()) {
            Ok(learnt) => learnt,
            Err(e) => {
                self.settings.console.line(format_args!(
                    "cluster: sync with board {}: refused, and the refusal is unreadable: {e}",
                    escaped(peer)
                ));
                return;
            }
        };
        let mut inner = lock(&self.inner);
        if inner.clock_offsets.len() >= super::known::MAX_BOARDS {
            inner.clock_offsets.clear();
        }
        inner.clock_offsets.insert(peer.to_string(), offset);
        self.settings.console.line(format_args!(
            "cluster: board {} refused our sync request: {}; its clock reads {}s {} ours, the next request is stamped by it",
            escaped(peer),
            escaped(&refusal.reason),
            offset.unsigned_abs() / 1000,
            if offset < 0 { "behind" } else { "ahead of" },
        ));
    }
}

/// Opens a peer's refusal of the request with `challenge` and returns it with the peer's clock
/// minus this board's (`now_ms`), in ms.
pub(super) fn clock_offset(
    key: &SyncKey,
    body: &[u8],
    challenge: &str,
    now_ms: u64,
) -> Result<(SyncRefusal, i64), SyncError> {
    let refusal = key.open_refusal(body, challenge)?;
    let offset = i64::try_from(i128::from(refusal.time_ms) - i128::from(now_ms)).unwrap_or(0);
    Ok((refusal, offset))
}

/// The tombstones past their time still held, with the boards they wait for, as one line (the
/// first few of each); `None` when none is held.
fn held_note(held: &BTreeMap<String, Vec<String>>) -> Option<String> {
    const SHOWN: usize = 8;
    if held.is_empty() {
        return None;
    }
    let mut boards: Vec<&String> = held.values().flatten().collect();
    boards.sort();
    boards.dedup();
    let list = |names: &mut dyn Iterator<Item = String>, count: usize| {
        let mut text: Vec<String> = names.take(SHOWN).collect();
        if count > SHOWN {
            text.push(format!("and {} more", count - SHOWN));
        }
        text.join(", ")
    };
    Some(format!(
        "{} tombstones past their time ({}) are kept until these boards have them: {}; `baton boards forget NAME` for a board that is gone for good",
        held.len(),
        list(&mut held.keys().map(|n| escaped(n)), held.len()),
        list(&mut boards.iter().map(|b| escaped(b)), boards.len()),
    ))
}

/// What a peer answered to a sync request.
#[derive(Debug)]
pub(super) enum Answer {
    /// The sealed answer (HTTP 200).
    Records(Vec<u8>),
    /// The sealed refusal of a request not fresh (HTTP 409).
    Stale(Vec<u8>),
}

/// POSTs `body` (over TLS that trusts the cluster CA, with `tls`) and returns the answer's
/// bytes (at most the sync exchange's largest body): an answer or a refusal.
pub(super) fn post(
    url: &str,
    body: &[u8],
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Answer, ureq::Error> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build();
    let agent = match tls {
        Some(tls) => baton_cluster::tls::connector::agent(config, tls),
        None => config.into(),
    };
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/octet-stream")
        .send(body)?;
    let status = response.status().as_u16();
    if status != 200 && status != 409 {
        return Err(ureq::Error::StatusCode(status));
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(baton_cluster::sync::MAX_BODY as u64)
        .read_to_vec()?;
    Ok(if status == 200 {
        Answer::Records(bytes)
    } else {
        Answer::Stale(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_tombstones_are_named_with_the_boards_they_wait_for() {
        assert_eq!(held_note(&BTreeMap::new()), None);
        let held = BTreeMap::from([
            ("old".to_string(), vec!["pi-gone".to_string()]),
            (
                "older".to_string(),
                vec!["pi-gone".to_string(), "pi-c".to_string()],
            ),
        ]);
        assert_eq!(
            held_note(&held).expect("a note"),
            "2 tombstones past their time (\"old\", \"older\") are kept until these boards have them: \"pi-c\", \"pi-gone\"; `baton boards forget NAME` for a board that is gone for good"
        );
        let many: BTreeMap<String, Vec<String>> = (0..20)
            .map(|i| (format!("s{i:02}"), vec![format!("pi-{i:02}")]))
            .collect();
        let note = held_note(&many).expect("a note");
        assert!(note.contains("\"s07\", and 12 more)"), "{note}");
        assert!(note.contains("\"pi-07\", and 12 more;"), "{note}");
    }
}
