//! Which board keeps a container subnet that two boards claim, and how often this board moves.
//!
//! Two boards meeting while the cluster forms can hash to one subnet; one must move (and restart)
//! so that every subnet routes to one board. The rule used to be "the smaller name keeps it",
//! which let a holder of the cluster key claim any board's subnet under a name that sorts first,
//! again after every move, and so keep the board restarting. Now tenure decides:
//! - a claimant counts from when this board has known it: the time it bound the claimant's name
//!   to its key (kept on the data partition, see `identity`), or, for a board that signs nothing
//!   (the previous release), when this run first saw it; this board's own claim counts from when
//!   it took its subnet (the subnet file's time);
//! - the claimant known longest keeps the subnet; claimants known within [`GRACE_MS`] of it met
//!   while the cluster formed, and the smallest name among them keeps it, as before;
//! - this board moves at most [`MOVES_PER_DAY`] times in a day (the times are kept on the data
//!   partition), and then keeps its subnet and says why.
//!
//! A board that claims a subnet long after its holder took it (a key holder, or two halves of a
//! partition that each gave one subnet away) never makes the holder move: both are reported, and
//! the other boards route the subnet to the one they have known longer.

use std::collections::BTreeMap;
use std::path::Path;

/// Claims known within this long of each other count as made together.
pub const GRACE_MS: u64 = 60_000;
/// Moves allowed in [`DAY_MS`].
pub const MOVES_PER_DAY: usize = 3;
const DAY_MS: u64 = 24 * 3600 * 1000;
/// The file under the cluster state directory listing the times of this board's moves.
pub const MOVES_FILE: &str = "subnet-moves";
/// Boards whose first sighting is remembered in a run.
const MAX_SEEN: usize = 1024;

/// A board claiming a subnet, and since when this board has known it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// Board name.
    pub name: &'a str,
    /// Unix ms.
    pub known_since_ms: u64,
}

/// The claimant that keeps the subnet (see the module's rule); `None` for no claimants.
pub fn keeper<'a>(claimants: &[Claimant<'a>]) -> Option<&'a str> {
    let earliest = claimants.iter().map(|c| c.known_since_ms).min()?;
    claimants
        .iter()
        .filter(|c| c.known_since_ms <= earliest.saturating_add(GRACE_MS))
        .map(|c| c.name)
        .min()
}

/// When this run first saw each board (for boards without a key binding).
#[derive(Debug, Default)]
pub struct FirstSeen(BTreeMap<String, u64>);

impl FirstSeen {
    /// When `name` was first seen, recording `now_ms` if it is new (and there is room; past the
    /// cap an unknown board counts as seen now).
    pub fn at(&mut self, name: &str, now_ms: u64) -> u64 {
        if let Some(&at) = self.0.get(name) {
            return at;
        }
        if self.0.len() < MAX_SEEN {
            self.0.insert(name.to_owned(), now_ms);
        }
        now_ms
    }
}

/// Whether this board may move again: fewer than [`MOVES_PER_DAY`] moves in the day before
/// `now_ms`, by the times saved in `dir` (an unreadable file counts as no moves).
pub fn may_move(dir: &Path, now_ms: u64) -> bool {
    recent_moves(dir, now_ms).len() < MOVES_PER_DAY
}

/// Records a move at `now_ms` in `dir`.
pub fn record_move(dir: &Path, now_ms: u64) -> std::io::Result<()> {
    let mut times = recent_moves(dir, now_ms);
    times.push(now_ms);
    let text: String = times.iter().map(|t| format!("{t}\n")).collect();
    crate::board::persist::write_atomic(&dir.join(MOVES_FILE), text.as_bytes())
}

/// Move times within the day before `now_ms` (at most a few dozen lines are read).
fn recent_moves(dir: &Path, now_ms: u64) -> Vec<u64> {
    let text = std::fs::read(dir.join(MOVES_FILE)).unwrap_or_default();
    String::from_utf8_lossy(&text[..text.len().min(4096)])
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .filter(|t| now_ms.saturating_sub(*t) < DAY_MS && *t <= now_ms.saturating_add(GRACE_MS))
        .collect()
}

/// When this board took its subnet: the time of the file that holds it under `dir`.
pub fn held_since_ms(dir: &Path) -> Option<u64> {
    let modified = std::fs::metadata(dir.join(crate::svcnet::subnet::FILE))
        .and_then(|m| m.modified())
        .ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, known_since_ms: u64) -> Claimant<'_> {
        Claimant {
            name,
            known_since_ms,
        }
    }

    #[test]
    fn the_board_known_longest_keeps_it_and_a_meeting_goes_by_name() {
        assert_eq!(keeper(&[]), None);
        // Met while forming: by name.
        assert_eq!(
            keeper(&[c("b", 1_000), c("a", 1_000 + GRACE_MS)]),
            Some("a")
        );
        // A newcomer with a name that sorts first does not take it.
        assert_eq!(
            keeper(&[c("b", 1_000), c("0000", 1_000 + GRACE_MS + 1)]),
            Some("b")
        );
        assert_eq!(
            keeper(&[c("z", 5), c("y", 6), c("a", GRACE_MS + 100)]),
            Some("y")
        );
    }

    #[test]
    fn moves_are_limited_per_day_and_old_ones_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 10 * DAY_MS;
        for i in 0..MOVES_PER_DAY as u64 {
            assert!(may_move(dir.path(), now + i));
            record_move(dir.path(), now + i).expect("record");
        }
        assert!(!may_move(dir.path(), now + 10));
        assert!(may_move(dir.path(), now + DAY_MS + 10), "a day later");
        std::fs::write(dir.path().join(MOVES_FILE), b"\xff junk\n").expect("write");
        assert!(may_move(dir.path(), now), "junk counts as no moves");
    }

    #[test]
    fn first_sightings_are_kept_and_capped() {
        let mut seen = FirstSeen::default();
        assert_eq!(seen.at("a", 5), 5);
        assert_eq!(seen.at("a", 9), 5);
        for i in 0..MAX_SEEN {
            seen.at(&format!("n{i}"), 1);
        }
        assert_eq!(seen.at("late", 7), 7);
        assert_eq!(seen.at("late", 8), 8, "past the cap, seen now");
    }
}
