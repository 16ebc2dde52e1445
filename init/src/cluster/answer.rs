//! Answering a peer's sync request: it must open with the cluster key and be fresh
//! ([`baton_cluster::sync::fresh`]); then its records are merged and ours sealed in the answer.
//! A request that opens but is not fresh changes nothing: it is counted, reported on the console
//! (each kind of refusal once per board) and answered with a sealed refusal that names this
//! board's clock, from which an honest asker whose clock is off learns to stamp its next request.

use baton_cluster::desired::admit::escaped;
use baton_cluster::sync::SyncKey;

use super::{lock, now_ms, refused, Node, NodeState, SyncAnswer};
use crate::board::console::Console;

impl Node {
    /// Answers a sealed sync request from a peer: merges its records, returns ours, sealed.
    pub fn answer_sync(&self, body: &[u8]) -> SyncAnswer {
        let (answer, changed) = {
            let mut inner = lock(&self.inner);
            answer(
                &self.sync_key,
                &self.settings.board,
                &self.settings.console,
                &mut inner,
                body,
                now_ms(),
            )
        };
        if changed {
            self.poke.notify_one();
        }
        answer
    }
}

/// Answers `body` as board `me` whose clock reads `now_ms`; also says whether the desired state
/// changed.
pub(crate) fn answer(
    key: &SyncKey,
    me: &str,
    console: &Console,
    inner: &mut NodeState,
    body: &[u8],
    now_ms: u64,
) -> (SyncAnswer, bool) {
    let Ok(request) = key.open_request(body) else {
        return (SyncAnswer::Refused, false);
    };
    let board = escaped(&request.board);
    if let Err(stale) = inner
        .freshness
        .admit(&request.board, &request.challenge, now_ms)
    {
        refused::report_stale(console, inner, &board, &stale);
        let sealed = key.refuse(&request, me, now_ms, &stale.to_string());
        return (SyncAnswer::Stale(sealed), false);
    }
    let changes = inner
        .desired
        .merge(request.records.clone(), &mut inner.clock, now_ms);
    let source = format!("the sync request of board {board}");
    refused::report(console, inner, &source, &changes);
    let records = inner.desired.records().cloned().collect();
    let changed = !changes.changed.is_empty();
    match key.respond(&request, me, records) {
        Ok(sealed) => (SyncAnswer::Sealed(sealed), changed),
        Err(e) => {
            let message = format!("answering the sync request of board {board}: {e}");
            console.line(format_args!("cluster: {message}"));
            (SyncAnswer::Failed(message), changed)
        }
    }
}
