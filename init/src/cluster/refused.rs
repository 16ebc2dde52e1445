//! Reporting the records the desired state refused (see
//! [`baton_cluster::desired::admit`]): each distinct refusal once on the console, with where the
//! record came from, and a count of all of them.

use baton_cluster::desired::Changes;

use super::NodeState;
use crate::board::console::Console;

/// Distinct refusals remembered so that each is printed once; past this the memory starts over
/// (a peer sending ever new bad names is still counted, and printed again now and then).
const MAX_NOTES: usize = 256;

/// Counts and reports the refusals of one merge of records from `source` (a text safe to print).
pub(crate) fn report(console: &Console, inner: &mut NodeState, source: &str, changes: &Changes) {
    if changes.refused_count == 0 {
        return;
    }
    let count = u64::try_from(changes.refused_count).unwrap_or(u64::MAX);
    inner.records_refused = inner.records_refused.saturating_add(count);
    let total = inner.records_refused;
    for refused in &changes.refused {
        let note = format!("{source}: {refused}");
        if inner.refusal_notes.contains(&note) {
            continue;
        }
        if inner.refusal_notes.len() >= MAX_NOTES {
            inner.refusal_notes.clear();
        }
        console.line(format_args!("cluster: {note} ({total} refused so far)"));
        inner.refusal_notes.insert(note);
    }
    let unlisted = changes.refused_count - changes.refused.len();
    if unlisted > 0 {
        console.line(format_args!(
            "cluster: {source}: {unlisted} more records refused ({total} refused so far)"
        ));
    }
}

/// Counts a sync request from `board` (a text safe to print) refused as not fresh, and prints
/// the refusal the first time this kind comes from this board.
pub(crate) fn report_stale(
    console: &Console,
    inner: &mut NodeState,
    board: &str,
    stale: &baton_cluster::sync::fresh::Stale,
) {
    inner.sync_refused = inner.sync_refused.saturating_add(1);
    let note = format!("stale {board} {}", stale.kind());
    if inner.refusal_notes.contains(&note) {
        return;
    }
    if inner.refusal_notes.len() >= MAX_NOTES {
        inner.refusal_notes.clear();
    }
    inner.refusal_notes.insert(note);
    console.line(format_args!(
        "cluster: the sync request of board {board} refused: {stale} ({} sync requests refused so far)",
        inner.sync_refused
    ));
}
