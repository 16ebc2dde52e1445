//! Freshness of sync requests: a request is answered once, and only while it is recent.
//!
//! A recorded sync request, replayed later, would merge its (by then old) records again: after a
//! tombstone has been dropped, the deleted service would come back. So every request carries its
//! time and a random nonce, and the answering board refuses one that is not fresh.
//!
//! # Where they travel
//! Inside the existing `challenge` string, as `<unix ms>-<32 hex digits>`: the previous release
//! only echoes the challenge (and refuses any new field of a request, which
//! `deny_unknown_fields` would turn away), so a new board's request still reads and converges
//! there. A request of the previous release, whose challenge is 32 hex digits alone, is refused
//! here with [`Stale::NoFreshness`].
//!
//! # What is refused ([`Freshness::admit`])
//! - a time more than [`WINDOW_MS`] behind or ahead of this board's clock (boards without a
//!   battery-backed clock may run minutes off, hence minutes, not seconds; the asker learns this
//!   board's clock from the sealed refusal and stamps its next request by it, see
//!   [`crate::sync::SyncRefusal`]);
//! - a nonce seen within the window (a replay);
//! - a time more than [`WINDOW_MS`] older than the newest request accepted from the same board;
//! - a board name longer than a host name (the newest request of each board is remembered);
//! - once [`MAX_NONCES`] nonces are held within the window, the oldest is forgotten and every
//!   request not newer than it is refused from then on ([`Stale::BelowFloor`]): the window
//!   shrinks, no replay gets through.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;

use crate::desired::admit::MAX_BOARD_NAME;

/// How far a request's time may be from the answering board's clock, either way (10 minutes).
pub const WINDOW_MS: u64 = 10 * 60 * 1000;

/// Most nonces remembered (requests accepted within the window). A board is asked at most every
/// few seconds by each peer whose digest differs: 8192 requests in 20 minutes is several per
/// second, far above what a cluster of honest boards sends.
pub const MAX_NONCES: usize = 8192;

/// Most boards whose newest request is remembered; beyond it the board heard from longest ago
/// is forgotten (the window and the nonces still hold).
pub const MAX_BOARDS: usize = 1024;

/// Hex digits of the nonce.
const NONCE_HEX: usize = 32;

/// Why a request is not fresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// The challenge is not `<unix ms>-<32 hex>`.
    #[error("its challenge carries no time and nonce (no freshness: from an older build?)")]
    NoFreshness,
    /// Its time is behind this board's clock by more than the window.
    #[error("its time is {}s behind this board's clock, more than the {}s allowed (a replay, or a clock that is off)", .0 / 1000, WINDOW_MS / 1000)]
    Behind(u64),
    /// Its time is ahead of this board's clock by more than the window.
    #[error("its time is {}s ahead of this board's clock, more than the {}s allowed (a clock that is off)", .0 / 1000, WINDOW_MS / 1000)]
    Ahead(u64),
    /// The nonce was seen within the window.
    #[error("it was answered before (a replay)")]
    Replayed,
    /// Older than the newest request accepted from the same board by more than the window.
    #[error("it is {}s older than the newest request accepted from the same board (a replay)", .0 / 1000)]
    OlderThanNewest(u64),
    /// The asking board's name is not 1 to [`MAX_BOARD_NAME`] bytes.
    #[error("its board name is not 1-{MAX_BOARD_NAME} bytes")]
    BoardName,
    /// Not newer than the oldest nonce forgotten at the cap.
    #[error("it is older than the requests this board can still tell apart ({MAX_NONCES} within the window)")]
    BelowFloor,
}

impl Stale {
    /// A short name of the kind of refusal (one per variant), to report each kind once.
    pub fn kind(&self) -> &'static str {
        match self {
            Stale::NoFreshness => "no-freshness",
            Stale::Behind(_) => "behind",
            Stale::Ahead(_) => "ahead",
            Stale::Replayed => "replayed",
            Stale::OlderThanNewest(_) => "older-than-newest",
            Stale::BoardName => "board-name",
            Stale::BelowFloor => "below-floor",
        }
    }
}

/// A new challenge for a request made at `time_ms`: `<time_ms>-<32 random hex digits>`.
pub fn challenge(time_ms: u64) -> String {
    let mut nonce = [0u8; NONCE_HEX / 2];
    OsRng.fill_bytes(&mut nonce);
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    format!("{time_ms}-{hex}")
}

/// The time and nonce of a challenge, if it is `<decimal ms>-<32 lowercase hex>`.
pub fn parse(challenge: &str) -> Option<(u64, &str)> {
    let (time, nonce) = challenge.split_once('-')?;
    if time.is_empty() || time.len() > 20 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if nonce.len() != NONCE_HEX || !nonce.bytes().all(lower_hex) {
        return None;
    }
    Some((time.parse().ok()?, nonce))
}

/// What an answering board remembers of the requests it accepted.
#[derive(Debug, Default)]
pub struct Freshness {
    /// Nonce → the request's time.
    nonces: HashMap<String, u64>,
    /// (time, nonce), to drop the expired and the oldest.
    by_time: BTreeSet<(u64, String)>,
    /// Requests at or before this time are refused (raised when the cap drops a nonce).
    floor: u64,
    /// Board → the time of its newest accepted request.
    newest: BTreeMap<String, u64>,
}

impl Freshness {
    /// Nonces held now.
    pub fn nonces(&self) -> usize {
        self.nonces.len()
    }

    /// Accepts the request with `challenge` from `board` on a board whose clock reads `now_ms`,
    /// or says why it is not fresh. An accepted request's nonce is remembered.
    pub fn admit(&mut self, board: &str, challenge: &str, now_ms: u64) -> Result<(), Stale> {
        self.forget_before(now_ms.saturating_sub(WINDOW_MS));
        let (time, nonce) = parse(challenge).ok_or(Stale::NoFreshness)?;
        if board.is_empty() || board.len() > MAX_BOARD_NAME {
            return Err(Stale::BoardName);
        }
        if time.saturating_add(WINDOW_MS) < now_ms {
            return Err(Stale::Behind(now_ms - time));
        }
        if time > now_ms.saturating_add(WINDOW_MS) {
            return Err(Stale::Ahead(time - now_ms));
        }
        if time <= self.floor {
            return Err(Stale::BelowFloor);
        }
        if self.nonces.contains_key(nonce) {
            return Err(Stale::Replayed);
        }
        if let Some(&newest) = self.newest.get(board) {
            if time.saturating_add(WINDOW_MS) < newest {
                return Err(Stale::OlderThanNewest(newest - time));
            }
        }
        self.nonces.insert(nonce.to_string(), time);
        self.by_time.insert((time, nonce.to_string()));
        if self.nonces.len() > MAX_NONCES {
            if let Some((oldest, gone)) = self.by_time.pop_first() {
                self.nonces.remove(&gone);
                self.floor = self.floor.max(oldest);
            }
        }
        let newest = self.newest.entry(board.to_string()).or_insert(time);
        *newest = (*newest).max(time);
        if self.newest.len() > MAX_BOARDS {
            let longest_ago = self
                .newest
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(b, _)| b.clone());
            if let Some(b) = longest_ago {
                self.newest.remove(&b);
            }
        }
        Ok(())
    }

    /// Drops the nonces of requests before `limit`: their time alone refuses them now.
    fn forget_before(&mut self, limit: u64) {
        while let Some((time, _)) = self.by_time.first() {
            if *time >= limit {
                break;
            }
            if let Some((_, nonce)) = self.by_time.pop_first() {
                self.nonces.remove(&nonce);
            }
        }
    }
}

#[cfg(test)]
#[path = "fresh_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn challenges_parse_and_old_or_broken_ones_do_not() {
        let c = challenge(NOW);
        let (time, nonce) = parse(&c).expect("parses");
        assert_eq!(time, NOW);
        assert_eq!(nonce.len(), 32);
        assert_ne!(parse(&challenge(NOW)).map(|p| p.1), Some(nonce));
        let old = "0123456789abcdef0123456789abcdef";
        for bad in [
            old,
            "",
            "-",
            "12-",
            &format!("-{old}"),
            &format!("12-{}", &old[1..]),
            &format!("12-{old}0"),
            &format!("12-{}", old.to_uppercase()),
            &format!("+12-{old}"),
            &format!("1 2-{old}"),
            &format!("99999999999999999999-{old}"),
            &format!("{}-{old}", "9".repeat(21)),
            &format!("12-{old}-x"),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_fresh_request_passes_once_and_its_replay_is_refused() {
        let mut f = Freshness::default();
        let c = challenge(NOW);
        assert_eq!(f.admit("pi-a", &c, NOW + 1_000), Ok(()));
        assert_eq!(f.admit("pi-a", &c, NOW + 2_000), Err(Stale::Replayed));
        // From another board name too: the nonce is what counts.
        assert_eq!(f.admit("pi-b", &c, NOW + 2_000), Err(Stale::Replayed));
        // After the window, its time alone refuses it (and the nonce is forgotten).
        let later = NOW + WINDOW_MS + 1;
        assert_eq!(
            f.admit("pi-a", &c, later),
            Err(Stale::Behind(WINDOW_MS + 1))
        );
        assert_eq!(f.nonces(), 0);
    }

    #[test]
    fn old_and_future_times_and_the_previous_release_are_refused() {
        let mut f = Freshness::default();
        let old = challenge(NOW - WINDOW_MS - 5_000);
        let err = f.admit("pi-a", &old, NOW).expect_err("old");
        assert_eq!(err, Stale::Behind(WINDOW_MS + 5_000));
        assert_eq!(
            err.to_string(),
            "its time is 605s behind this board's clock, more than the 600s allowed (a replay, or a clock that is off)"
        );
        let ahead = challenge(NOW + WINDOW_MS + 1);
        assert_eq!(
            f.admit("pi-a", &ahead, NOW),
            Err(Stale::Ahead(WINDOW_MS + 1))
        );
        // A clock a few minutes off either way is within the window.
        assert_eq!(f.admit("pi-a", &challenge(NOW - 300_000), NOW), Ok(()));
        assert_eq!(f.admit("pi-b", &challenge(NOW + 300_000), NOW), Ok(()));
        let previous = "0123456789abcdef0123456789abcdef";
        let err = f.admit("pi-c", previous, NOW).expect_err("no freshness");
        assert_eq!(err, Stale::NoFreshness);
        assert!(err.to_string().contains("from an older build?"), "{err}");
        // A board's clock reading zero (no RTC, no SNTP) does not underflow anything.
        assert_eq!(f.admit("pi-d", &challenge(NOW), 0), Err(Stale::Ahead(NOW)));
    }

    #[test]
    fn a_request_far_older_than_the_newest_from_its_board_is_refused() {
        let mut f = Freshness::default();
        // The newest from pi-a is at the window's far edge ahead...
        assert_eq!(f.admit("pi-a", &challenge(NOW + WINDOW_MS), NOW), Ok(()));
        // ... so one at the window's far edge behind is more than a window older.
        let err = f.admit("pi-a", &challenge(NOW - WINDOW_MS), NOW);
        assert_eq!(err, Err(Stale::OlderThanNewest(2 * WINDOW_MS)));
        // Another board is not held to pi-a's newest.
        assert_eq!(f.admit("pi-b", &challenge(NOW - WINDOW_MS), NOW), Ok(()));
    }

    #[test]
    fn the_nonce_cache_is_bounded_and_the_cap_refuses_what_it_forgot() {
        let mut f = Freshness::default();
        let first = challenge(NOW);
        assert_eq!(f.admit("pi-a", &first, NOW), Ok(()));
        for i in 0..MAX_NONCES as u64 {
            assert_eq!(f.admit("pi-a", &challenge(NOW + 1 + i / 8), NOW), Ok(()));
        }
        assert_eq!(f.nonces(), MAX_NONCES);
        // The first nonce is forgotten, but its replay is still refused (by the floor).
        assert_eq!(f.admit("pi-a", &first, NOW), Err(Stale::BelowFloor));
        assert_eq!(
            f.admit("pi-b", &challenge(NOW), NOW),
            Err(Stale::BelowFloor)
        );
        assert_eq!(f.admit("pi-b", &challenge(NOW + WINDOW_MS), NOW), Ok(()));
        assert_eq!(f.nonces(), MAX_NONCES);
    }

    #[test]
    fn the_boards_remembered_are_bounded() {
        let mut f = Freshness::default();
        for bad in [String::new(), "b".repeat(MAX_BOARD_NAME + 1)] {
            assert_eq!(f.admit(&bad, &challenge(NOW), NOW), Err(Stale::BoardName));
        }
        for i in 0..(MAX_BOARDS + 10) as u64 {
            assert_eq!(
                f.admit(&format!("pi-{i}"), &challenge(NOW + i), NOW),
                Ok(())
            );
        }
        assert_eq!(f.newest.len(), MAX_BOARDS);
        assert!(!f.newest.contains_key("pi-0"));
    }
}
