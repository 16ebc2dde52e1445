//! Property tests: the order in which boards' tables arrive and boards are listed does not
//! change a decision, and the quantisation error stays within its bound.

use proptest::prelude::*;

use super::*;

const BOARDS: [&str; 5] = ["b0", "b1", "b2", "b3", "b4"];
const SERVICES: u16 = 6;

fn arb_entries() -> impl Strategy<Value = Vec<ServiceLoad>> {
    let values = (
        0u16..40,
        0u16..80,
        0u16..40,
        prop_oneof![3 => Just(0u16), 1 => 1u16..5],
    );
    prop::collection::btree_map(0..SERVICES, values, 0..5).prop_map(|map| {
        map.into_iter()
            .map(|(service, (stable, panic, peak, held))| ServiceLoad {
                service,
                stable,
                panic,
                peak: peak.max(stable),
                held,
            })
            .collect()
    })
}

/// One board's tables in the order it publishes them: buckets never go back; a gap of 0 is an
/// off-bucket update that replaces the bucket's table.
fn arb_tables() -> impl Strategy<Value = Vec<(u32, Vec<ServiceLoad>)>> {
    prop::collection::vec((0u32..3, arb_entries()), 1..6).prop_map(|steps| {
        let mut bucket = 100;
        steps
            .into_iter()
            .map(|(gap, entries)| {
                bucket += gap;
                (bucket, entries)
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Case {
    tables: Vec<Vec<(u32, Vec<ServiceLoad>)>>,
    alive: Vec<bool>,
    unknown: Vec<bool>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (1..=BOARDS.len()).prop_flat_map(|n| {
        (
            prop::collection::vec(arb_tables(), n),
            prop::collection::vec(prop::bool::weighted(0.8), n),
            prop::collection::vec(prop::bool::weighted(0.1), n),
        )
            .prop_map(|(tables, alive, unknown)| Case {
                tables,
                alive,
                unknown,
            })
    })
}

/// The order in which a board sees the others' tables: board indexes, each as often as that
/// board published, shuffled (each board's own tables stay in their order).
fn arrival(case: &Case) -> Vec<usize> {
    case.tables
        .iter()
        .enumerate()
        .flat_map(|(i, t)| std::iter::repeat_n(i, t.len()))
        .collect()
}

fn history(case: &Case, order: &[usize]) -> LoadHistory {
    let mut next = vec![0; case.tables.len()];
    let mut history = LoadHistory::new();
    for &board in order {
        let (bucket, entries) = &case.tables[board][next[board]];
        next[board] += 1;
        history.observe(BOARDS[board], *bucket, entries);
    }
    history
}

fn lists(case: &Case) -> (Vec<&'static str>, Vec<&'static str>) {
    let pick = |flags: &[bool]| -> Vec<&'static str> {
        (0..case.tables.len())
            .filter(|&i| flags[i] && case.alive[i])
            .map(|i| BOARDS[i])
            .collect()
    };
    (pick(&case.alive), pick(&case.unknown))
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (0u32..3, 1u32..8, 1u32..20, prop::bool::ANY).prop_map(|(min, extra, target, freeze)| Policy {
        min,
        max: min + extra,
        target,
        window_ms: 60_000,
        panic_percent: 200,
        idle_after_ms: 300_000,
        freeze,
        surges: Vec::new(),
    })
}

fn arb_counts() -> impl Strategy<Value = Counts> {
    (0u32..9, 0u32..9, 0u32..2, prop::bool::ANY).prop_map(|(current, ready, frozen, settled)| {
        Counts {
            current,
            ready: ready.min(current),
            frozen,
            settled,
        }
    })
}

proptest! {
    #[test]
    fn the_order_of_arrival_and_of_the_board_lists_changes_no_decision(
        (case, order) in arb_case().prop_flat_map(|case| {
            let order = Just(arrival(&case)).prop_shuffle();
            (Just(case), order)
        }),
        decide_at in 99u32..112,
        policy in arb_policy(),
        now in arb_counts(),
        rotate in 0usize..5,
    ) {
        let sorted: Vec<usize> = {
            let mut o = order.clone();
            o.sort();
            o
        };
        let (alive, unknown) = lists(&case);
        let reference = history(&case, &sorted).demands(decide_at, &alive, &unknown);
        let mut alive_other: Vec<&str> = alive.iter().rev().copied().collect();
        let len = alive_other.len().max(1);
        alive_other.rotate_left(rotate % len);
        let unknown_other: Vec<&str> = unknown.iter().rev().copied().collect();
        let other = history(&case, &order).demands(decide_at, &alive_other, &unknown_other);
        prop_assert_eq!(&reference, &other);
        let limits = limits(&policy, Date::parse("2026-06-01").unwrap());
        for service in 0..SERVICES {
            prop_assert_eq!(
                decide(&policy, &limits, now, &reference.of(service)),
                decide(&policy, &limits, now, &other.of(service))
            );
        }
    }

    #[test]
    fn the_quantisation_error_stays_within_a_sixteenth_of_an_instance_per_board(
        target in 1u32..200,
        loads in prop::collection::vec(
            (prop_oneof![1 => Just(0u64), 4 => 0u64..2_000_000], 1u64..=60),
            1..8,
        ),
    ) {
        let mut sent = 0.0f64;
        let mut exact = 0.0f64;
        let mut bound = 0.0f64;
        let mut all_above_a_sixteenth = true;
        for &(request_ms, buckets) in &loads {
            let duration = buckets * BUCKET_MS;
            let q = quantise(request_ms, duration, target);
            let instances = request_ms as f64 / duration as f64 / f64::from(target);
            prop_assert_eq!(q == 0, request_ms == 0, "zero stays exact");
            sent += f64::from(q) / 8.0;
            exact += instances;
            // Rounding costs at most half an eighth; a load under half an eighth that is sent
            // as one eighth costs up to one eighth.
            if request_ms == 0 || instances >= 1.0 / 16.0 {
                bound += 1.0 / 16.0;
            } else {
                bound += 1.0 / 8.0;
                all_above_a_sixteenth = false;
            }
        }
        let error = (sent - exact).abs();
        prop_assert!(error <= bound + 1e-9, "error {} over bound {}", error, bound);
        if all_above_a_sixteenth {
            let n = loads.len() as f64;
            prop_assert!(error <= n / 16.0 + 1e-9, "error {} over {}/16", error, n);
        }
    }
}
