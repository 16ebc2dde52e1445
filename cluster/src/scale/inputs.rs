//! The load tables received from every board, and their sums for one decision (design section 2,
//! "Lag and agreement").
//!
//! A board publishes at most one table per bucket (plus off-bucket updates of the same bucket when
//! something starts to wait), and a table stays valid until the next one. At local time T a board
//! decides on bucket `D = bucket(T) - LAG_BUCKETS` and takes from each alive board the newest
//! table with `bucket <= D`: boards whose clocks agree within a bucket use the same tables and
//! compute the same counts. [`LoadHistory`] keeps the last three tables per board, which covers
//! a lag of one bucket. The board's own table goes through the same rule.
//!
//! The wake (`held > 0`) is read from the newest table, without the lag (and from the tables since
//! the lagged one, so that a wait just served still counts): going from zero to one
//! instance early cannot make boards disagree in a harmful way.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{ServiceLoad, MAX_LOAD_ENTRIES};

/// The most boards remembered; tables of more are counted and dropped.
pub const MAX_BOARDS: usize = 1024;
/// Tables kept per board.
const KEPT: usize = 3;

/// The load of one service summed over the boards, for [`super::decide()`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Σ stable means, in eighths of the target concurrency.
    pub stable: u32,
    /// Σ panic means, in eighths.
    pub panic: u32,
    /// Σ peaks over `idle_after`, in eighths.
    pub peak: u32,
    /// Σ requests and connections waiting now (from the newest tables, without the lag).
    pub held: u32,
    /// Some alive board's table is missing or unreadable (another spec digest): step-downs wait,
    /// since a missing table must never read as zero.
    pub unknown: bool,
}

/// The demand of every service for one decision bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demands {
    by_service: BTreeMap<u16, Demand>,
    unknown: bool,
}

impl Demands {
    /// The demand of the service at `index` among the sorted spec names.
    pub fn of(&self, index: u16) -> Demand {
        let mut demand = self.by_service.get(&index).copied().unwrap_or_default();
        demand.unknown = self.unknown;
        demand
    }

    /// Whether some alive board's load is unknown.
    pub fn unknown(&self) -> bool {
        self.unknown
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    bucket: u32,
    entries: Vec<ServiceLoad>,
}

/// The last [`KEPT`] tables of each board, oldest first.
#[derive(Debug, Default)]
pub struct LoadHistory {
    boards: BTreeMap<String, VecDeque<Table>>,
    refused: u64,
}

impl LoadHistory {
    /// Nothing received yet.
    pub fn new() -> LoadHistory {
        LoadHistory::default()
    }

    /// Notes `board`'s table as its gossip values show it now (call it for every alive board's
    /// values each round, its own included; a board whose values carry no load yet shows bucket
    /// 0 and no entries, which reads as zero load). The same bucket again replaces the table (an
    /// off-bucket update); an older bucket than the newest seen (a clock stepped back) replaces
    /// every table of the board.
    pub fn observe(&mut self, board: &str, bucket: u32, entries: &[ServiceLoad]) {
        if !self.boards.contains_key(board) {
            if self.boards.len() >= MAX_BOARDS {
                self.refused = self.refused.saturating_add(1);
                return;
            }
            self.boards.insert(board.to_string(), VecDeque::new());
        }
        let Some(tables) = self.boards.get_mut(board) else {
            return;
        };
        let table = Table {
            bucket,
            entries: entries.iter().take(MAX_LOAD_ENTRIES).copied().collect(),
        };
        match tables.back_mut() {
            // An older bucket than the newest: the board's clock stepped back. Its tables from
            // the "future" would hide every new one: start again from this one.
            Some(newest) if bucket < newest.bucket => {
                tables.clear();
                tables.push_back(table);
            }
            Some(newest) if bucket == newest.bucket => *newest = table,
            _ => {
                tables.push_back(table);
                while tables.len() > KEPT {
                    tables.pop_front();
                }
            }
        }
    }

    /// Forgets the boards `keep` refuses (those no longer members).
    pub fn forget(&mut self, keep: impl Fn(&str) -> bool) {
        self.boards.retain(|name, _| keep(name));
    }

    /// Tables dropped because [`MAX_BOARDS`] boards were remembered already.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The sums for decision bucket `decide` over the `alive` boards. Boards in `unknown` (alive,
    /// with another spec digest, so their indexes may name other services) are left out and mark
    /// every demand unknown; so does an alive board with no table at or before `decide`. The
    /// order of both lists does not matter, nor do names given twice.
    pub fn demands(&self, decide: u32, alive: &[&str], unknown: &[&str]) -> Demands {
        let unreadable: BTreeSet<&str> = unknown.iter().copied().collect();
        let alive: BTreeSet<&str> = alive.iter().copied().collect();
        let mut out = Demands {
            by_service: BTreeMap::new(),
            unknown: !unreadable.is_empty(),
        };
        for board in alive.difference(&unreadable) {
            let Some(tables) = self.boards.get(*board) else {
                out.unknown = true;
                continue;
            };
            let lagged = tables.iter().rposition(|t| t.bucket <= decide);
            match lagged {
                Some(i) => {
                    for e in &tables[i].entries {
                        let d = out.by_service.entry(e.service).or_default();
                        d.stable = d.stable.saturating_add(u32::from(e.stable));
                        d.panic = d.panic.saturating_add(u32::from(e.panic));
                        d.peak = d.peak.saturating_add(u32::from(e.peak));
                    }
                }
                None => out.unknown = true,
            }
            // Waits are read from the lagged table on: the newest shows them at once, and a
            // wait served since still shows in the lagged one until the load it became shows
            // in the peak (otherwise the instance started for it would step down at once).
            let mut held: BTreeMap<u16, u16> = BTreeMap::new();
            let from = lagged.unwrap_or(tables.len().saturating_sub(1));
            for t in tables.iter().skip(from) {
                for e in t.entries.iter().filter(|e| e.held > 0) {
                    let h = held.entry(e.service).or_default();
                    *h = (*h).max(e.held);
                }
            }
            for (service, h) in held {
                let d = out.by_service.entry(service).or_default();
                d.held = d.held.saturating_add(u32::from(h));
            }
        }
        out
    }
}
