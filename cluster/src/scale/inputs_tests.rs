//! The tables of the boards, the lag and the sums.

use super::*;

fn at(service: u16, stable: u16, peak: u16, held: u16) -> ServiceLoad {
    ServiceLoad {
        service,
        stable,
        panic: stable,
        peak,
        held,
    }
}

fn sums(d: Demand) -> (u32, u32, u32, u32, bool) {
    (d.stable, d.panic, d.peak, d.held, d.unknown)
}

#[test]
fn each_board_counts_with_its_newest_table_at_or_before_the_decided_bucket() {
    let mut history = LoadHistory::new();
    history.observe("a", 10, &[at(0, 8, 8, 0)]);
    history.observe("a", 11, &[at(0, 16, 16, 0)]);
    history.observe("a", 12, &[at(0, 24, 24, 0), at(3, 1, 1, 0)]);
    history.observe("b", 4, &[at(0, 1, 2, 0)]);
    let alive = ["a", "b"];
    assert_eq!(
        sums(history.demands(11, &alive, &[]).of(0)),
        (17, 17, 18, 0, false)
    );
    assert_eq!(
        sums(history.demands(12, &alive, &[]).of(0)),
        (25, 25, 26, 0, false)
    );
    assert_eq!(
        sums(history.demands(12, &alive, &[]).of(3)),
        (1, 1, 1, 0, false)
    );
    // Before a's oldest table: a's load is unknown, never zero.
    assert!(history.demands(9, &alive, &[]).of(0).unknown);
    // A dead board counts for nothing.
    assert_eq!(
        sums(history.demands(12, &["a"], &[]).of(0)),
        (24, 24, 24, 0, false)
    );
}

#[test]
fn a_wait_is_read_from_the_newest_table_without_the_lag() {
    let mut history = LoadHistory::new();
    history.observe("a", 10, &[]);
    history.observe("b", 10, &[]);
    history.observe("b", 11, &[at(2, 0, 0, 3)]);
    history.observe("a", 11, &[at(2, 0, 0, 2)]);
    assert_eq!(
        sums(history.demands(10, &["a", "b"], &[]).of(2)),
        (0, 0, 0, 5, false)
    );
}

#[test]
fn a_wait_served_since_the_lagged_table_still_counts_until_its_load_shows() {
    let mut history = LoadHistory::new();
    // At 10 a request waits (the wake, mid-bucket); at 11 it was served: no wait, and the load
    // of bucket 10 in the peak.
    history.observe("a", 10, &[at(0, 0, 0, 1)]);
    history.observe("a", 11, &[at(0, 1, 1, 0)]);
    assert_eq!(
        sums(history.demands(10, &["a"], &[]).of(0)),
        (0, 0, 0, 1, false)
    );
    assert_eq!(
        sums(history.demands(11, &["a"], &[]).of(0)),
        (1, 1, 1, 0, false)
    );
}

#[test]
fn three_tables_are_kept_the_same_bucket_replaces_and_an_older_one_starts_again() {
    let mut history = LoadHistory::new();
    for bucket in 10..=13 {
        history.observe("a", bucket, &[at(0, bucket as u16, 0, 0)]);
    }
    assert!(history.demands(10, &["a"], &[]).unknown());
    assert_eq!(history.demands(11, &["a"], &[]).of(0).stable, 11);
    history.observe("a", 13, &[at(0, 99, 0, 0)]);
    assert_eq!(history.demands(13, &["a"], &[]).of(0).stable, 99);
    assert_eq!(history.demands(12, &["a"], &[]).of(0).stable, 12);
    // The board's clock stepped back: its "future" tables go, the new one counts.
    history.observe("a", 9, &[at(0, 1, 0, 0)]);
    assert_eq!(history.demands(9, &["a"], &[]).of(0).stable, 1);
    assert_eq!(history.demands(13, &["a"], &[]).of(0).stable, 1);
}

#[test]
fn boards_with_another_spec_or_without_a_table_make_the_demand_unknown() {
    let mut history = LoadHistory::new();
    history.observe("a", 10, &[at(0, 8, 8, 0)]);
    history.observe("b", 10, &[at(0, 8, 8, 4)]);
    let d = history.demands(10, &["a", "b"], &["b"]);
    // b's indexes may name other services: its entries are left out.
    assert_eq!(sums(d.of(0)), (8, 8, 8, 0, true));
    assert!(d.of(7).unknown);
    // An alive board never observed.
    assert!(history.demands(10, &["a", "c"], &[]).unknown());
    assert!(!history.demands(10, &["a"], &[]).unknown());
}

#[test]
fn names_given_twice_count_once_and_forgotten_boards_go() {
    let mut history = LoadHistory::new();
    history.observe("a", 10, &[at(1, 8, 8, 1)]);
    assert_eq!(
        sums(history.demands(10, &["a", "a"], &[]).of(1)),
        (8, 8, 8, 1, false)
    );
    history.forget(|name| name != "a");
    assert!(history.demands(10, &["a"], &[]).unknown());
}

#[test]
fn the_number_of_boards_is_bounded() {
    let mut history = LoadHistory::new();
    for i in 0..=inputs::MAX_BOARDS {
        history.observe(&format!("b{i}"), 1, &[]);
    }
    assert_eq!(history.refused(), 1);
}
