//! When a tombstone may go: once it is older than
//! [`TOMBSTONE_TTL_MS`](baton_cluster::desired::TOMBSTONE_TTL_MS) *and* every board in the
//! registry ([`super::known`]) has confirmed it.
//!
//! A board confirms a tombstone when the spec digest it gossips equals this board's digest while
//! this board holds the tombstone: equal digests mean equal records, so that board held the
//! tombstone too. Confirmations are kept per tombstone (name and version) on the data partition,
//! beside `desired.json` (`/data/cluster/confirmed.json`); the records on the wire and in
//! `desired.json` stay as the previous release reads them.
//!
//! A dropped tombstone's confirmations are kept for another TTL ([`Confirmations::prune`]): a
//! board whose clock is a little behind drops it a little later, and the copy it sends meanwhile
//! is then dropped again at once instead of waiting for every board's confirmation anew.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use baton_cluster::desired::{Desired, Record, Version, TOMBSTONE_TTL_MS};
use serde::{Deserialize, Serialize};

use super::known::Known;

/// Most entries kept: one per name the desired state can hold, and as many dropped ones.
const MAX_ENTRIES: usize = 2 * baton_cluster::desired::admit::MAX_RECORDS;

/// Largest file read: every entry confirmed by every registered board, with room to spare.
const MAX_FILE: u64 = 64 << 20;

/// The boards that confirmed one tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    /// The tombstone's version: a newer record of the name starts over.
    pub version: Version,
    /// Boards that showed this board's digest while it held the tombstone.
    pub boards: BTreeSet<String>,
}

/// Confirmations by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Confirmations {
    /// By service name.
    pub tombstones: BTreeMap<String, Confirmed>,
}

impl Confirmations {
    /// The file under `dir` (normally `/data/cluster`).
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("confirmed.json")
    }

    /// Reads the confirmations; a missing file gives none, a broken one none with the problem to
    /// report (tombstones then wait for confirmations anew, which only keeps them longer).
    pub fn load(path: &Path) -> (Confirmations, Option<String>) {
        let problem = match crate::board::persist::read_bounded(path, MAX_FILE) {
            Ok(None) => return Default::default(),
            Err(e) => e,
            Ok(Some(text)) => match serde_json::from_slice::<Confirmations>(&text) {
                Ok(mut c) => {
                    while c.tombstones.len() > MAX_ENTRIES {
                        c.tombstones.pop_last();
                    }
                    return (c, None);
                }
                Err(e) => e.to_string(),
            },
        };
        (
            Confirmations::default(),
            Some(format!("{}: {problem}", path.display())),
        )
    }

    /// Writes the confirmations atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::board::persist::write_atomic(path, &serde_json::to_vec(self)?)
    }

    /// Notes that `board` (registered in `known`) showed the digest of `desired`: it confirms
    /// every tombstone held. Returns whether anything new was noted.
    pub fn confirm(&mut self, board: &str, known: &Known, desired: &Desired) -> bool {
        if !known.boards.contains_key(board) {
            return false;
        }
        let mut noted = false;
        for tombstone in desired.tombstones() {
            let entry = self
                .tombstones
                .entry(tombstone.name.clone())
                .or_insert_with(|| Confirmed {
                    version: tombstone.version.clone(),
                    boards: BTreeSet::new(),
                });
            if entry.version != tombstone.version {
                entry.version = tombstone.version.clone();
                entry.boards.clear();
            }
            noted |= entry.boards.insert(board.to_string());
        }
        noted
    }

    /// The registered boards other than `me` that have not confirmed `tombstone`.
    pub fn waiting_for<'k>(&self, tombstone: &Record, known: &'k Known, me: &str) -> Vec<&'k str> {
        let confirmed = self
            .tombstones
            .get(&tombstone.name)
            .filter(|c| c.version == tombstone.version);
        known
            .names()
            .filter(|b| *b != me && !confirmed.is_some_and(|c| c.boards.contains(*b)))
            .collect()
    }

    /// Keeps the entries of tombstones held, and of tombstones dropped until another TTL has
    /// passed (at most [`MAX_ENTRIES`], the oldest go first); forgets the boards no longer
    /// registered. Returns whether anything changed.
    pub fn prune(&mut self, desired: &Desired, known: &Known, now_ms: u64) -> bool {
        let before = self.tombstones.len();
        self.tombstones.retain(|name, c| match desired.get(name) {
            Some(record) => record.text.is_none() && record.version == c.version,
            None => now_ms.saturating_sub(c.version.time) < 2 * TOMBSTONE_TTL_MS,
        });
        let mut changed = self.tombstones.len() != before;
        for c in self.tombstones.values_mut() {
            let boards = c.boards.len();
            c.boards.retain(|b| known.boards.contains_key(b));
            changed |= c.boards.len() != boards;
        }
        while self.tombstones.len() > MAX_ENTRIES {
            let oldest = self
                .tombstones
                .iter()
                .filter(|(name, _)| desired.get(name).is_none())
                .min_by_key(|(_, c)| c.version.time)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => self.tombstones.remove(&name),
                None => break,
            };
            changed = true;
        }
        changed
    }
}

/// Drops the tombstones of `desired` that are past their TTL and confirmed by every board of
/// `known` but `me`; returns the names dropped, and the expired ones still held with the boards
/// they wait for.
pub fn release(
    desired: &mut Desired,
    confirmations: &Confirmations,
    known: &Known,
    me: &str,
    now_ms: u64,
) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let dropped = desired.expire(now_ms, |r| {
        confirmations.waiting_for(r, known, me).is_empty()
    });
    let held = desired
        .expired(now_ms)
        .map(|r| {
            let waiting = confirmations.waiting_for(r, known, me);
            (
                r.name.clone(),
                waiting.iter().map(|b| b.to_string()).collect(),
            )
        })
        .collect();
    (dropped, held)
}

#[cfg(test)]
#[path = "tombstones_tests.rs"]
mod tests;
