//! What a key holder can claim about time: how far ahead of the receiving board's clock a record
//! time ([`crate::desired::Version::time`]) or a board's generation may be.
//!
//! # Why one day ahead of the receiver's wall clock
//! Honest values never run ahead of the sender's clock: a record time is the larger of the
//! stamping board's clock and one more than the newest time it has seen (a hybrid logical clock),
//! and a generation is a boot counter or, without a data partition, the board's clock in seconds
//! (plus one for each time the membership renews a board's identity). So a value ahead of the
//! receiver's clock means that one of the two clocks is wrong, or that a key holder made it up:
//! a time of `u64::MAX` that no later change can beat (the clock would wrap), or a generation of
//! `u64::MAX` that the real board can never overtake.
//!
//! The bound is measured against the receiver's wall clock alone, never against times it has
//! accepted, so a key holder cannot ratchet it forward exchange after exchange. Its width is a
//! trade: a board's clock is never earlier than the time it saved every 15 minutes and its
//! image's build time, and SNTP sets it when a server answers, but a board booted without network
//! time after a while switched off lags by that while, and refuses its peers' newer records
//! (reported, and taken once its clock catches up). A day covers that for boards off up to a day;
//! what a key holder gains within it is small: the cluster's clock pushed up to a day ahead (later
//! changes still win, by the hybrid clock), tombstones kept up to a day longer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far ahead of the receiver's clock a record time or a generation may be.
pub const MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// How far ahead of its wall clock a board's hybrid clock follows the times it has seen
/// ([`crate::desired::Clock`]): a minute less than [`MAX_AHEAD`], so that the board's own changes
/// stay taken by boards whose clocks are up to a minute behind, even when a key holder stamps
/// records at the very edge.
pub const FOLLOW_AHEAD: Duration = Duration::from_secs(24 * 3600 - 60);

/// The wall clock in milliseconds since the Unix epoch (0 if it reads earlier).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The latest record time (ms) a board whose clock reads `now_ms` accepts.
pub fn latest_time(now_ms: u64) -> u64 {
    now_ms.saturating_add(MAX_AHEAD.as_millis() as u64)
}

/// The latest time (ms) a board whose clock reads `now_ms` lets its own clock follow.
pub fn followed_time(now_ms: u64) -> u64 {
    now_ms.saturating_add(FOLLOW_AHEAD.as_millis() as u64)
}

/// The highest generation a board whose clock reads `now_ms` accepts.
pub fn highest_generation(now_ms: u64) -> u64 {
    (now_ms / 1000).saturating_add(MAX_AHEAD.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_clock_and_never_overflow() {
        let now = 1_700_000_000_000;
        assert_eq!(latest_time(now), now + 86_400_000);
        assert_eq!(highest_generation(now), 1_700_000_000 + 86_400);
        assert_eq!(latest_time(u64::MAX), u64::MAX);
        assert_eq!(latest_time(now) - followed_time(now), 60_000);
        assert!(highest_generation(u64::MAX) < u64::MAX);
        assert!(wall_ms() > now);
    }
}
