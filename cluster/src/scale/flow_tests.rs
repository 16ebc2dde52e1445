//! One board on a fake clock, through the whole chain: its windows, its table in the history,
//! the lagged demand and the decision, applied at once.

use std::collections::BTreeMap;

use super::*;

const T0: u64 = 1_000_000 * BUCKET_MS;

struct Flow {
    policy: Policy,
    policies: BTreeMap<String, Policy>,
    names: Vec<String>,
    windows: Windows,
    history: LoadHistory,
    count: u32,
    /// (time, count) at every change.
    changes: Vec<(u64, u32)>,
}

impl Flow {
    fn new(policy: Policy) -> Flow {
        let names = vec!["other".to_string(), "web".to_string()];
        let policies = names.iter().map(|n| (n.clone(), policy.clone())).collect();
        Flow {
            policy,
            policies,
            names,
            windows: Windows::new(),
            history: LoadHistory::new(),
            count: 0,
            changes: Vec::new(),
        }
    }

    /// What a board does each bucket (or off-bucket for a wake).
    fn round(&mut self, now: u64) {
        let table = self.windows.table(now, &self.policies, &self.names);
        self.history.observe("a", table.bucket, &table.entries);
        let demand = self
            .history
            .demands(decision_bucket(now), &["a"], &[])
            .of(1);
        let day = Date::parse("2026-06-01").unwrap();
        let limits = limits(&self.policy, day);
        let now_counts = Counts {
            current: self.count,
            ready: self.count,
            frozen: 0,
            settled: true,
        };
        let decision = decide(&self.policy, &limits, now_counts, &demand);
        if decision.count != self.count {
            self.count = decision.count;
            self.changes.push((now, decision.count));
        }
    }

    /// Runs the clock from `from` to `to`, with `concurrency` in flight on "web" meanwhile.
    fn run(&mut self, from: u64, to: u64, concurrency: u64) {
        let mut now = from;
        while now < to {
            now += 1000;
            self.windows.record("web", now, concurrency * 1000, 1000);
            if now % BUCKET_MS == 0 {
                self.round(now);
            }
        }
    }
}

#[test]
fn load_scales_up_then_idle_steps_down_one_by_one_to_zero_and_a_wait_wakes_it() {
    // Window 6 s, idle after 10 s, target 2.
    let mut flow = Flow::new(Policy {
        min: 0,
        max: 3,
        target: 2,
        window_ms: 6000,
        panic_percent: 200,
        idle_after_ms: 10_000,
        freeze: false,
        surges: Vec::new(),
    });
    flow.round(T0);
    // 5 in flight for 10 s: 2.5 instances' worth.
    flow.run(T0, T0 + 10_000, 5);
    assert_eq!(flow.count, 3);
    let ups: Vec<u32> = flow.changes.iter().map(|c| c.1).collect();
    assert!(ups.windows(2).all(|w| w[0] < w[1]), "{:?}", flow.changes);
    let up_at = flow.changes.len();
    flow.run(T0 + 10_000, T0 + 60_000, 0);
    assert_eq!(flow.count, 0);
    let downs = &flow.changes[up_at..];
    assert_eq!(
        downs.iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![2, 1, 0],
        "{:?}",
        flow.changes
    );
    // Not before idle_after without load (plus the lag).
    assert!(downs[0].0 >= T0 + 10_000 + 10_000, "{:?}", flow.changes);
    // A held request wakes it within the bucket, off-bucket, without the lag.
    flow.windows.held("web", 1);
    flow.round(T0 + 60_500);
    assert_eq!(flow.count, 1);
}
