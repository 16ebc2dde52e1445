//! Properties of [`Freshness`]: whatever a key holder puts in a challenge, a request is answered
//! at most once, only within the window, and what is remembered stays bounded.

use proptest::prelude::*;

use super::*;

/// A clock reading well inside the range of real ones.
const NOW: u64 = 1_800_000_000_000;

/// A challenge in the form this release sends, for `time` and a nonce made of `seed`.
fn well_formed(time: u64, seed: u128) -> String {
    format!("{time}-{seed:032x}")
}

/// Text that looks like a challenge often enough to reach the checks past the parser.
fn challenge_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,22}-[0-9a-fA-F]{0,34}",
        "[0-9]{1,20}-[0-9a-f]{32}",
        (any::<u64>(), any::<u128>()).prop_map(|(t, n)| well_formed(t, n)),
    ]
}

fn board_like() -> impl Strategy<Value = String> {
    prop_oneof![Just("pi-a".to_string()), any::<String>(), "[a-z]{0,70}"]
}

/// The remembered state is within its caps (checked after every call).
fn bounded(fresh: &Freshness) -> Result<(), TestCaseError> {
    prop_assert!(fresh.nonces() <= MAX_NONCES, "{} nonces", fresh.nonces());
    prop_assert_eq!(fresh.nonces.len(), fresh.by_time.len());
    prop_assert!(
        fresh.newest.len() <= MAX_BOARDS,
        "{} boards",
        fresh.newest.len()
    );
    Ok(())
}

/// A burst of requests, each with its own nonce, from one of `boards` boards.
#[derive(Debug, Clone)]
struct Burst {
    /// Where the board's clock is, ms after [`NOW`].
    clock: u64,
    /// How far before (or, if negative, after) the clock the requests are stamped.
    behind: i64,
    /// How many requests.
    count: usize,
    /// How many distinct boards they come from.
    boards: usize,
    /// Where the nonces start.
    seed: u128,
}

fn burst() -> impl Strategy<Value = Burst> {
    (
        0..3 * WINDOW_MS,
        -(WINDOW_MS as i64) - 10..WINDOW_MS as i64 + 10,
        1..2500usize,
        1..1200usize,
        any::<u128>(),
    )
        .prop_map(|(clock, behind, count, boards, seed)| Burst {
            clock,
            behind,
            count,
            boards,
            seed,
        })
}

/// A 32nd of the cases of the others (`PROPTEST_CASES`, 256 by default), at least 8: each of
/// these cases makes thousands of requests.
fn heavy() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / 32).max(8),
        ..base
    }
}

proptest! {
    /// Any text: no panic, and a challenge that does not parse is refused for that reason.
    #[test]
    fn arbitrary_challenges_never_panic_and_unparsed_ones_are_refused(
        calls in proptest::collection::vec((board_like(), challenge_like(), 0..2 * WINDOW_MS), 1..40),
    ) {
        let mut fresh = Freshness::default();
        for (board, challenge, offset) in calls {
            let result = fresh.admit(&board, &challenge, NOW + offset);
            if parse(&challenge).is_none() {
                prop_assert_eq!(result, Err(Stale::NoFreshness));
            }
            bounded(&fresh)?;
        }
    }

    /// A request taken once is refused when it comes again, from any board, at any later time.
    #[test]
    fn a_request_taken_once_is_refused_the_second_time(
        calls in proptest::collection::vec((board_like(), challenge_like()), 1..40),
        stamps in proptest::collection::vec(
            (0..WINDOW_MS, -(WINDOW_MS as i64)..WINDOW_MS as i64, any::<u128>()), 1..40),
        replayer in board_like(),
        later in 0..3 * WINDOW_MS,
    ) {
        let mut fresh = Freshness::default();
        let mut taken = Vec::new();
        let mut now = NOW;
        // Arbitrary challenges mixed with well-formed fresh ones (most arbitrary ones fail).
        let fresh_ones = stamps.into_iter().map(|(step, skew, seed)| {
            now += step;
            let time = now.saturating_add_signed(skew);
            ("pi-a".to_string(), well_formed(time, seed), now)
        }).collect::<Vec<_>>();
        let odd_ones = calls.into_iter().map(|(board, challenge)| (board, challenge, NOW));
        for (board, challenge, at) in fresh_ones.into_iter().chain(odd_ones) {
            if fresh.admit(&board, &challenge, at).is_ok() {
                taken.push(challenge);
            }
            bounded(&fresh)?;
        }
        for challenge in &taken {
            prop_assert!(
                fresh.admit(&replayer, challenge, now + later).is_err(),
                "{challenge} was taken twice"
            );
        }
    }

    /// A time further than the window from the clock, either way, is refused whatever else holds.
    #[test]
    fn a_time_outside_the_window_is_refused(
        beyond in 1..u64::MAX / 4,
        ahead in any::<bool>(),
        seed in any::<u128>(),
        board in "[a-z]{1,20}",
        now in WINDOW_MS..u64::MAX / 2,
    ) {
        let time = if ahead {
            now + WINDOW_MS + beyond
        } else {
            match (now - WINDOW_MS).checked_sub(beyond) {
                Some(time) => time,
                None => return Ok(()),
            }
        };
        let mut fresh = Freshness::default();
        let result = fresh.admit(&board, &well_formed(time, seed), now);
        if ahead {
            prop_assert_eq!(result, Err(Stale::Ahead(time - now)));
        } else {
            prop_assert_eq!(result, Err(Stale::Behind(now - time)));
        }
        prop_assert_eq!(fresh.nonces(), 0);
    }
}

proptest! {
    #![proptest_config(heavy())]

    /// Bursts beyond the caps from many boards: the nonces and boards remembered stay within
    /// their caps, and no request taken is ever taken again.
    #[test]
    fn what_is_remembered_stays_bounded_and_replays_stay_refused(
        bursts in proptest::collection::vec(burst(), 1..10),
    ) {
        let mut fresh = Freshness::default();
        let mut taken = Vec::new();
        let mut clock = NOW;
        for b in bursts {
            clock = clock.max(NOW + b.clock);
            for i in 0..b.count {
                let time = clock.saturating_add_signed(-b.behind) + i as u64;
                let challenge = well_formed(time, b.seed.wrapping_add(i as u128));
                let board = format!("b{}", i % b.boards);
                if fresh.admit(&board, &challenge, clock).is_ok() {
                    taken.push(challenge);
                }
                bounded(&fresh)?;
            }
        }
        for challenge in &taken {
            prop_assert!(fresh.admit("pi-z", challenge, clock).is_err(), "{challenge} taken twice");
        }
    }
}
