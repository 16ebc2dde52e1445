//! The plan for one service, from the wanted and observed instances alone.

use std::collections::BTreeSet;

use super::super::instance::Phase;
use super::super::reconcile::{plan, wanted, Plan};

fn set(slots: &[u32]) -> BTreeSet<u32> {
    slots.iter().copied().collect()
}

#[test]
fn the_wanted_instances_come_from_placement_or_scale_min_and_none_while_removing() {
    assert_eq!(wanted(None, false, 2), set(&[1, 2]));
    assert_eq!(wanted(Some(&set(&[3, 5])), false, 2), set(&[3, 5]));
    assert_eq!(wanted(Some(&set(&[3])), true, 2), set(&[]));
    assert_eq!(wanted(None, true, 2), set(&[]));
}

#[test]
fn missing_instances_start_and_surplus_ones_stop() {
    let observed = [(2, 1, Phase::Running), (4, 1, Phase::Backoff)];
    assert_eq!(
        plan(&set(&[1, 2, 3]), 1, observed.into_iter()),
        Plan {
            start: vec![1, 3],
            stop: vec![4],
            replace: None,
        }
    );
}

#[test]
fn a_rollout_replaces_one_outdated_instance_at_a_time_once_none_is_busy() {
    let wanted = set(&[1, 2]);
    // Both outdated and running: the first goes.
    let both_old = [(1, 1, Phase::Running), (2, 1, Phase::Running)];
    assert_eq!(plan(&wanted, 2, both_old.into_iter()).replace, Some(1));
    // The first is being replaced (its successor starts): the second waits.
    let starting = [(1, 2, Phase::Starting), (2, 1, Phase::Running)];
    assert_eq!(plan(&wanted, 2, starting.into_iter()).replace, None);
    // The first runs the new generation: now the second.
    let first_done = [(1, 2, Phase::Running), (2, 1, Phase::Running)];
    assert_eq!(plan(&wanted, 2, first_done.into_iter()).replace, Some(2));
    // An outdated instance that stopped for good is not replaced.
    let stopped = [(1, 2, Phase::Running), (2, 1, Phase::Stopped)];
    assert_eq!(plan(&wanted, 2, stopped.into_iter()), Plan::default());
}
