//! The cluster's desired state: which service specs exist, merged the same way on every board.
//!
//! Each spec travels as a [`Record`]: the spec's TOML text (or a tombstone for a deleted spec)
//! with a [`Version`]. A board that takes a change (a `PUT` or `DELETE` on its API, or a file that
//! changed on its config partition) stamps it with a version from its [`Clock`]; boards exchange
//! records and keep, for every service name, the record with the highest version.
//!
//! ## Merge rules
//! 1. Higher `Version` wins. A version is `(time, board)`, compared by time first, then by board
//!    name, so two boards never disagree about which of two records is newer.
//! 2. `time` comes from a hybrid logical clock: the larger of the board's wall clock (in ms) and
//!    one more than the highest time it has seen in any record. A change made after a board has
//!    seen another change therefore always wins over it, even when the boards' clocks disagree (a
//!    Pi has no battery-backed clock and may boot without the network).
//! 3. A deletion is a record too (a tombstone), so it wins over older versions of the spec and
//!    reaches every board; a tombstone is kept for at least [`TOMBSTONE_TTL_MS`], and after that
//!    until the caller says every board it knows has it ([`Desired::expire`]): a record of the
//!    deleted spec that arrives after its tombstone is gone would bring the spec back.
//! 4. Records with the same version but different contents cannot come from one board; should it
//!    happen (two cards copied with the same stamps), the one whose text hashes higher wins and
//!    the clash is reported as a conflict.
//!
//! 5. Only records that pass [`admit::check`] enter (a service name, a time at most a day ahead
//!    of this board's clock, a bounded text, at most [`admit::MAX_RECORDS`] names); the others
//!    are refused and reported in [`Changes::refused`].
//!
//! A conflict shown to the user is a spec that a board holds on its own config partition with a
//! different text than the one in force cluster-wide: the board runs the cluster's version, and
//! [`Desired::conflicts`] says which board has which version.

pub mod admit;

use std::collections::BTreeMap;

pub use admit::{Reason, Refused};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::plausible;

/// How long a tombstone is kept (7 days), long enough for a board that was off to come back.
pub const TOMBSTONE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// When a change was made, and by which board.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Hybrid logical time in milliseconds.
    pub time: u64,
    /// The board that made the change.
    pub board: String,
}

/// One spec, or its tombstone, as the cluster holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Service name.
    pub name: String,
    /// The spec's TOML text; `None` once deleted.
    pub text: Option<String>,
    /// When and where this version was made.
    pub version: Version,
}

impl Record {
    /// SHA-256 of the text (of the empty string for a tombstone), hex.
    pub fn text_digest(&self) -> String {
        hex(&Sha256::digest(
            self.text.as_deref().unwrap_or("").as_bytes(),
        ))
    }

    /// Whether `self` wins over `other` for the same name (rules 1 and 4).
    pub fn beats(&self, other: &Record) -> bool {
        match self.version.cmp(&other.version) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                (self.text.is_some(), self.text_digest())
                    > (other.text.is_some(), other.text_digest())
            }
        }
    }
}

/// A hybrid logical clock (rule 2).
///
/// It follows the times it has seen only up to [`plausible::FOLLOW_AHEAD`] ahead of the wall
/// clock, a little less than records may be ahead ([`plausible::MAX_AHEAD`]): a key holder who
/// stamps records at the very edge of what boards accept would otherwise push every board's own
/// changes past that edge, where a board whose clock is a few milliseconds behind refuses them.
/// A change made right after such a record may lose to it, for at most the difference (a minute).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    last: u64,
    seen: u64,
}

impl Clock {
    /// A time for a new change: after the wall clock and after everything seen (up to
    /// [`plausible::FOLLOW_AHEAD`] ahead of `wall_ms`).
    pub fn tick(&mut self, wall_ms: u64) -> u64 {
        let followed = self.seen.min(plausible::followed_time(wall_ms));
        // Saturating: times are bounded where records enter, this only keeps a clock that was
        // fed a huge time from wrapping to zero.
        self.last = wall_ms
            .max(self.last.saturating_add(1))
            .max(followed.saturating_add(1));
        self.last
    }

    /// Takes note of a time seen in a record from elsewhere.
    pub fn observe(&mut self, time: u64) {
        self.seen = self.seen.max(time);
    }
}

/// A board's local spec that differs from the version in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// Service name.
    pub name: String,
    /// The board whose local copy differs.
    pub board: String,
    /// Version of the board's copy.
    pub local: Version,
    /// Version in force.
    pub winner: Version,
}

/// The merged records of the whole cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    records: BTreeMap<String, Record>,
}

/// What a merge changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Names whose spec in force is new or different (including new tombstones).
    pub changed: Vec<String>,
    /// Same version, different text (rule 4).
    pub clashes: Vec<String>,
    /// Records not let in (rule 5), the first [`MAX_REPORTED`] of them.
    pub refused: Vec<Refused>,
    /// How many records were not let in, all of them.
    pub refused_count: usize,
}

/// Refused records a merge lists in [`Changes::refused`]; the others are only counted.
pub const MAX_REPORTED: usize = 16;

impl Changes {
    fn refuse(&mut self, record: Record, reason: Reason) {
        self.refused_count += 1;
        if self.refused.len() < MAX_REPORTED {
            self.refused.push(Refused {
                name: record.name,
                board: record.version.board,
                reason,
            });
        }
    }
}

impl Desired {
    /// Every record, tombstones included, by name.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// The record in force for `name`.
    pub fn get(&self, name: &str) -> Option<&Record> {
        self.records.get(name)
    }

    /// The live specs (no tombstones) as (name, text).
    pub fn specs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.records
            .values()
            .filter_map(|r| r.text.as_deref().map(|t| (r.name.as_str(), t)))
    }

    /// Merges `incoming` records on a board whose wall clock reads `now_ms`; the clock observes
    /// the times of those let in. Records that fail [`admit::check`], and records of new names
    /// once [`admit::MAX_RECORDS`] are held, change nothing and are reported in
    /// [`Changes::refused`].
    pub fn merge(
        &mut self,
        incoming: impl IntoIterator<Item = Record>,
        clock: &mut Clock,
        now_ms: u64,
    ) -> Changes {
        let mut changes = Changes::default();
        for record in incoming {
            if let Err(reason) = admit::check(&record, now_ms) {
                changes.refuse(record, reason);
                continue;
            }
            if self.records.len() >= admit::MAX_RECORDS && !self.records.contains_key(&record.name)
            {
                changes.refuse(record, Reason::Full);
                continue;
            }
            clock.observe(record.version.time);
            match self.records.get(&record.name) {
                Some(current) if !record.beats(current) => {}
                current => {
                    if current.is_some_and(|c| c.version == record.version && c.text != record.text)
                    {
                        changes.clashes.push(record.name.clone());
                    }
                    changes.changed.push(record.name.clone());
                    self.records.insert(record.name.clone(), record);
                }
            }
        }
        changes.changed.sort();
        changes.changed.dedup();
        changes
    }

    /// Tombstones older than [`TOMBSTONE_TTL_MS`] before `now_ms`: those [`Desired::expire`]
    /// may drop.
    pub fn expired(&self, now_ms: u64) -> impl Iterator<Item = &Record> {
        self.records.values().filter(move |r| {
            r.text.is_none() && now_ms.saturating_sub(r.version.time) >= TOMBSTONE_TTL_MS
        })
    }

    /// Drops the tombstones older than [`TOMBSTONE_TTL_MS`] before `now_ms` that `released`
    /// lets go (every board known has seen them); returns the names dropped.
    pub fn expire(&mut self, now_ms: u64, released: impl Fn(&Record) -> bool) -> Vec<String> {
        let gone: Vec<String> = self
            .expired(now_ms)
            .filter(|r| released(r))
            .map(|r| r.name.clone())
            .collect();
        for name in &gone {
            self.records.remove(name);
        }
        gone
    }

    /// The tombstones held.
    pub fn tombstones(&self) -> impl Iterator<Item = &Record> {
        self.records.values().filter(|r| r.text.is_none())
    }

    /// A digest of everything held: equal digests mean equal state, so boards compare digests
    /// and exchange records only when they differ.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for r in self.records.values() {
            h.update(r.name.as_bytes());
            h.update([0]);
            h.update(r.version.time.to_be_bytes());
            h.update(r.version.board.as_bytes());
            h.update([0, u8::from(r.text.is_some())]);
            h.update(r.text_digest().as_bytes());
        }
        hex(&h.finalize())
    }

    /// Specs that `board` holds locally (`local`: name → text) with another text than the one in
    /// force; a local spec the cluster has deleted counts too.
    pub fn conflicts(
        &self,
        board: &str,
        local: &BTreeMap<String, (String, Version)>,
    ) -> Vec<Conflict> {
        local
            .iter()
            .filter_map(|(name, (text, version))| {
                let winner = self.records.get(name)?;
                (winner.text.as_deref() != Some(text.as_str())).then(|| Conflict {
                    name: name.clone(),
                    board: board.to_string(),
                    local: version.clone(),
                    winner: winner.version.clone(),
                })
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
