//! The board's windows on a fake clock: exact means, the peak's expiry, drop-out and bounds.

use std::collections::BTreeMap;

use super::window::MAX_SERVICES;
use super::*;

/// The start of a bucket, far from zero.
const T0: u64 = 1_000_000 * BUCKET_MS;
const B0: u32 = 1_000_000;

fn policy(window_ms: u64, idle_after_ms: u64, target: u32) -> Policy {
    Policy {
        min: 0,
        max: 10,
        target,
        window_ms,
        panic_percent: 200,
        idle_after_ms,
        freeze: false,
        surges: Vec::new(),
    }
}

struct Board {
    windows: Windows,
    policies: BTreeMap<String, Policy>,
    names: Vec<String>,
}

impl Board {
    fn new(names: &[&str], policy: Policy) -> Board {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let policies = names.iter().map(|n| (n.clone(), policy.clone())).collect();
        let mut board = Board {
            windows: Windows::new(),
            policies,
            names,
        };
        // The first table takes the policies in.
        assert_eq!(board.table(T0 - 1).entries, Vec::new());
        board
    }

    fn table(&mut self, now_ms: u64) -> LoadTable {
        self.windows.table(now_ms, &self.policies, &self.names)
    }

    /// `concurrency` requests in flight through every second of `[from_ms, to_ms)`, reported
    /// each second as the front door does.
    fn steady(&mut self, service: &str, from_ms: u64, to_ms: u64, concurrency: u64) {
        let mut at = from_ms;
        while at < to_ms {
            self.windows
                .record(service, at + 1000, concurrency * 1000, 1000);
            at += 1000;
        }
    }
}

fn load(service: u16, stable: u16, panic: u16, peak: u16, held: u16) -> ServiceLoad {
    ServiceLoad {
        service,
        stable,
        panic,
        peak,
        held,
    }
}

#[test]
fn stable_and_panic_means_are_exact_and_leave_the_unfinished_bucket_out() {
    // A window of 10 buckets, so the panic window is one bucket; target 1, so eighths = 8c.
    let mut board = Board::new(&["a", "b"], policy(20_000, 60_000, 1));
    board.steady("b", T0, T0 + 18_000, 5);
    board.steady("b", T0 + 18_000, T0 + 20_000, 25);
    // Reports for the bucket that is still running do not count yet.
    board.steady("b", T0 + 20_000, T0 + 21_000, 1000);
    let table = board.table(T0 + 21_500);
    assert_eq!(table.bucket, B0 + 10);
    // stable: (18 * 5 + 2 * 25) / 20 = 7; panic and peak: 25.
    assert_eq!(table.entries, vec![load(1, 56, 200, 200, 0)]);
    assert_eq!(table.cut, 0);
    // Rounding to the nearest eighth of the target, at least one for any load.
    let mut board = Board::new(&["a"], policy(20_000, 60_000, 10));
    board.windows.record("a", T0 + 2000, 31 * 2000, 2000);
    // A tenth of 31 over 10 buckets: 3.1 in flight = 2.48 eighths of 10; the bucket 24.8.
    assert_eq!(board.table(T0 + 2000).entries, vec![load(0, 2, 25, 25, 0)]);
    board.windows.record("a", T0 + 4000, 1, 2000);
    assert_eq!(board.table(T0 + 4000).entries[0].panic, 1);
}

#[test]
fn a_report_spreads_over_the_buckets_of_its_period() {
    let mut board = Board::new(&["a"], policy(4000, 60_000, 1));
    // 2 in flight over [T0 + 1000, T0 + 3000): half in each of two buckets.
    board.windows.record("a", T0 + 3000, 4000, 2000);
    assert_eq!(board.table(T0 + 2000).entries, vec![load(0, 4, 8, 8, 0)]);
    assert_eq!(board.table(T0 + 4000).entries, vec![load(0, 8, 8, 8, 0)]);
    // Two sources in one bucket add up.
    board.windows.record("a", T0 + 6000, 6000, 2000);
    board.windows.record("a", T0 + 6000, 2000, 1000);
    // stable: (2000 + 8000) / 4000 = 2.5 in flight.
    assert_eq!(board.table(T0 + 6000).entries, vec![load(0, 20, 32, 32, 0)]);
}

#[test]
fn the_peak_expires_after_idle_after_and_the_service_drops_out() {
    // Window 2 buckets, idle_after 5 buckets.
    let mut board = Board::new(&["a"], policy(4000, 10_000, 1));
    board.steady("a", T0, T0 + 2000, 3);
    assert_eq!(board.table(T0 + 2000).entries, vec![load(0, 12, 24, 24, 0)]);
    assert_eq!(board.table(T0 + 4000).entries, vec![load(0, 12, 0, 24, 0)]);
    // Bucket B0 is the first of the idle window at B0 + 5, and out of it at B0 + 6.
    assert_eq!(board.table(T0 + 10_000).entries, vec![load(0, 0, 0, 24, 0)]);
    assert_eq!(board.table(T0 + 12_000).entries, Vec::new());
    assert_eq!(board.windows.len(), 1);
    assert_eq!(board.table(T0 + 14_000).entries, Vec::new());
    assert!(board.windows.is_empty(), "no load for a whole idle_after");
}

#[test]
fn a_wide_window_keeps_exact_means_on_both_halves_of_a_slot() {
    // 240 s: 120 buckets in 60 slots of two.
    let mut board = Board::new(&["a"], policy(240_000, 600_000, 1));
    board.steady("a", T0 - 240_000, T0 + 12_000, 5);
    for now in [T0 + 9000, T0 + 10_000, T0 + 11_000, T0 + 12_000] {
        let entry = board.table(now).entries[0];
        assert_eq!(
            (entry.stable, entry.panic, entry.peak),
            (40, 40, 40),
            "{now}"
        );
    }
}

#[test]
fn held_requests_show_at_once_and_keep_the_service() {
    let mut board = Board::new(&["a", "b", "c"], policy(4000, 10_000, 1));
    board.windows.held("c", 4);
    board.windows.held("unknown", 4);
    assert_eq!(board.table(T0 + 100_000).entries, vec![load(2, 0, 0, 0, 4)]);
    assert_eq!(board.table(T0 + 900_000).entries, vec![load(2, 0, 0, 0, 4)]);
    board.windows.held("c", 0);
    assert_eq!(board.table(T0 + 900_000).entries, Vec::new());
    assert!(board.windows.is_empty());
}

#[test]
fn services_without_a_policy_are_not_measured() {
    let mut board = Board::new(&["a"], policy(4000, 10_000, 1));
    board.windows.record("z", T0 + 1000, 5000, 1000);
    assert!(board.windows.is_empty());
    board.steady("a", T0, T0 + 2000, 1);
    assert_eq!(board.windows.len(), 1);
    board.policies.clear();
    assert_eq!(board.table(T0 + 2000).entries, Vec::new());
    assert!(board.windows.is_empty());
}

#[test]
fn a_full_table_keeps_the_largest_peaks_sorted_by_index() {
    let names: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut board = Board::new(&refs, policy(4000, 10_000, 1));
    for (i, name) in names.iter().enumerate() {
        // Peaks 1, 2, ..., 20, 20, 19, ..., 1 (in flight): ties at the top broken by index.
        let c = if i < 20 { i + 1 } else { 40 - i } as u64;
        board.windows.record(name, T0 + 2000, c * 2000, 2000);
    }
    let table = board.table(T0 + 2000);
    assert_eq!(table.cut, 8);
    let kept: Vec<u16> = table.entries.iter().map(|e| e.service).collect();
    assert_eq!(kept, (4..36).collect::<Vec<u16>>());
}

#[test]
fn the_number_of_services_measured_is_bounded() {
    let names: Vec<String> = (0..=MAX_SERVICES).map(|i| format!("s{i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut board = Board::new(&refs, policy(4000, 10_000, 1));
    for name in &names {
        board.windows.record(name, T0 + 1000, 1000, 1000);
    }
    assert_eq!(board.windows.len(), MAX_SERVICES);
    assert_eq!(board.windows.refused(), 1);
}
