//! Forgetting a board (`DELETE /v1/cluster/boards/{name}`, `baton boards forget NAME`): it leaves
//! the registry of known boards ([`super::known`]), so tombstones no longer wait for it, and its
//! name's key binding is dropped ([`baton_cluster::gossip::bindings`]), so the next key to sign in
//! that name is bound: how a board with a new card (a new key) is let back in.
//!
//! A board alive in the gossip is not forgotten (it would be registered again at the next round),
//! unless its name is in conflict: a board that came back with a new key looks alive, and
//! forgetting its old key is what it needs.
//! A forgotten board that comes back is registered again when it is seen alive; whatever it
//! holds of specs deleted meanwhile, whose tombstones were dropped, comes back with it, which is
//! what forgetting a board means: the operator says it will not return with old records.

use std::collections::BTreeMap;

use baton_api::BoardForgotten;
use baton_cluster::desired::admit::escaped;
use baton_cluster::gossip::MemberState;

use super::known::Known;
use super::tombstones::{self, Confirmations};
use super::{lock, now_ms, Node, NodeState};

/// Why a board was not forgotten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotForgotten {
    /// It is alive in the gossip.
    #[error("board {0} is alive in the cluster; it would be registered again at once (take it out of the cluster first)")]
    Alive(String),
    /// It is this board.
    #[error("board {0} is the board answering; it never waits for itself")]
    Myself(String),
}

impl Node {
    /// Forgets board `name`, saves the registry and the confirmations, and runs a round soon
    /// (which drops the tombstones released).
    pub fn forget_board(&self, name: &str) -> Result<BoardForgotten, NotForgotten> {
        let conflicted = self.gossip.conflicts().iter().any(|c| c.name == name);
        let alive = !conflicted
            && self
                .gossip
                .members()
                .iter()
                .any(|m| m.name == name && m.state == MemberState::Alive);
        let key = self
            .gossip
            .bindings()
            .get(name)
            .map(|b| baton_cluster::board_key::fingerprint(&b.key));
        let report = {
            let mut inner = lock(&self.inner);
            let report = forget(&mut inner, &self.settings.board, name, alive, now_ms())?;
            if let Some(dir) = &self.settings.state_dir {
                let saved = inner
                    .known
                    .save(&Known::file(dir))
                    .and_then(|()| inner.confirmations.save(&Confirmations::file(dir)));
                if let Err(e) = saved {
                    self.settings.console.line(format_args!(
                        "cluster: saving the known boards in {}: {e}",
                        dir.display()
                    ));
                }
            }
            report
        };
        let mut report = report;
        if key.is_some() {
            // The endpoint has stopped only if the board is shutting down; nothing to forget then.
            let _ = self.gossip.forget(name);
            report.key = key;
        }
        if report.forgotten || report.key.is_some() {
            self.settings.console.line(format_args!(
                "cluster: board {} forgotten by an operator; {} tombstones released{}",
                escaped(name),
                report.released.len(),
                report
                    .key
                    .as_ref()
                    .map(|k| format!(", its key {k} unbound"))
                    .unwrap_or_default()
            ));
        }
        self.poke();
        Ok(report)
    }
}

/// Forgets `name` in `inner` on board `me` (whose clock reads `now_ms`); `alive` says whether
/// the gossip has it alive.
pub(crate) fn forget(
    inner: &mut NodeState,
    me: &str,
    name: &str,
    alive: bool,
    now_ms: u64,
) -> Result<BoardForgotten, NotForgotten> {
    if name == me {
        return Err(NotForgotten::Myself(escaped(name)));
    }
    if alive {
        return Err(NotForgotten::Alive(escaped(name)));
    }
    let before = waiting(inner, me, now_ms);
    let forgotten = inner.known.forget(name).is_some();
    inner
        .confirmations
        .prune(&inner.desired, &inner.known, now_ms);
    let after = waiting(inner, me, now_ms);
    let released = before
        .keys()
        .filter(|t| after.get(*t).is_none_or(Vec::is_empty))
        .cloned()
        .collect();
    Ok(BoardForgotten {
        board: name.to_string(),
        forgotten,
        released,
        waiting: after.into_iter().filter(|(_, b)| !b.is_empty()).collect(),
        key: None,
    })
}

/// The tombstones past their time that wait for boards, with those boards.
fn waiting(inner: &NodeState, me: &str, now_ms: u64) -> BTreeMap<String, Vec<String>> {
    let mut probe = inner.desired.clone();
    let (_, held) = tombstones::release(&mut probe, &inner.confirmations, &inner.known, me, now_ms);
    held
}

#[cfg(test)]
mod tests {
    use baton_cluster::desired::{Record, Version, TOMBSTONE_TTL_MS};

    use super::*;

    fn state() -> NodeState {
        let mut inner = NodeState::default();
        inner.known.note("pi-b", 1);
        inner.known.note("pi-gone", 1);
        let tombstone = Record {
            name: "old".into(),
            text: None,
            version: Version {
                time: 10,
                board: "pi-a".into(),
            },
        };
        inner.desired.merge([tombstone], &mut inner.clock, 20);
        inner
            .confirmations
            .confirm("pi-b", &inner.known, &inner.desired);
        inner
    }

    #[test]
    fn forgetting_a_gone_board_releases_the_tombstones_that_waited_for_it() {
        let mut inner = state();
        let now = 10 + TOMBSTONE_TTL_MS;
        let report = forget(&mut inner, "pi-a", "pi-gone", false, now).expect("forgotten");
        assert_eq!(
            report,
            BoardForgotten {
                board: "pi-gone".into(),
                forgotten: true,
                released: vec!["old".into()],
                waiting: BTreeMap::new(),
                key: None,
            }
        );
        assert_eq!(inner.known.names().collect::<Vec<_>>(), ["pi-b"]);
        // Again: nothing to forget.
        let again = forget(&mut inner, "pi-a", "pi-gone", false, now).expect("no-op");
        assert!(!again.forgotten && again.released.is_empty());
    }

    #[test]
    fn a_board_still_waited_for_is_named_and_alive_or_own_names_are_refused() {
        let mut inner = state();
        let now = 10 + TOMBSTONE_TTL_MS;
        let report = forget(&mut inner, "pi-a", "pi-b", false, now).expect("forgotten");
        assert!(report.forgotten && report.released.is_empty());
        assert_eq!(report.waiting["old"], ["pi-gone"]);
        let alive = forget(&mut inner, "pi-a", "pi-gone", true, now).expect_err("alive");
        assert_eq!(alive, NotForgotten::Alive("\"pi-gone\"".into()));
        assert!(
            alive.to_string().contains("alive in the cluster"),
            "{alive}"
        );
        assert_eq!(inner.known.names().collect::<Vec<_>>(), ["pi-gone"]);
        assert!(matches!(
            forget(&mut inner, "pi-a", "pi-a", false, now),
            Err(NotForgotten::Myself(_))
        ));
    }
}
