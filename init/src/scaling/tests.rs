//! The scaler: the plan every board computes from the gossiped tables, wakes, held requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_api::InstancePhase;
use baton_cluster::gossip::values::ServiceLoad;
use baton_cluster::gossip::{BoardValues, RunningInstance};
use baton_cluster::scale::{decision_bucket, BUCKET_MS};
use baton_spec::ServiceSpec;

use super::plan::Board;
use super::{Scaler, Source};
use crate::board::console::Console;

const NOW: u64 = 1_780_000_000_000;

fn specs(texts: &[(&str, &str)]) -> Vec<ServiceSpec> {
    let files: Vec<(String, String)> = texts
        .iter()
        .map(|(name, scale)| {
            (
                format!("{name}.toml"),
                format!("name = \"{name}\"\nimage = \"oci-archive:x.tar\"\nport = 8080\nscale = {{ {scale} }}\n"),
            )
        })
        .collect();
    let loaded = baton_spec::service::load_services(&files);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.specs
}

fn scaler(specs: &[ServiceSpec]) -> Arc<Scaler> {
    let s = Scaler::new(
        Default::default(),
        Arc::new(Console::quiet(16)),
        Arc::default(),
    );
    s.set_specs(NOW - BUCKET_MS, specs);
    s
}

/// A board's values: its load table at a bucket the decision reads, and `running` ready
/// instances of `service`.
fn values(load: &[ServiceLoad], service: &str, running: u32) -> BoardValues {
    let mut instances = BTreeMap::new();
    if running > 0 {
        instances.insert(
            service.to_string(),
            (1..=running)
                .map(|slot| RunningInstance {
                    slot,
                    phase: InstancePhase::Running,
                    address: None,
                    ready: true,
                })
                .collect(),
        );
    }
    BoardValues {
        load_bucket: decision_bucket(NOW) - 1,
        load: load.to_vec(),
        instances,
        ..BoardValues::default()
    }
}

fn load(stable: u16, held: u16) -> ServiceLoad {
    ServiceLoad {
        service: 0,
        stable,
        panic: stable,
        peak: stable,
        held,
    }
}

fn board<'a>(name: &'a str, same_specs: bool, values: &'a BoardValues) -> Board<'a> {
    Board {
        name,
        alive: true,
        same_specs,
        values,
    }
}

#[test]
fn every_board_adds_the_same_tables_whatever_their_order() {
    let specs = specs(&[("web", "min = 1, max = 5, target_concurrency = 10")]);
    // pi-a reports 3 instances' worth (24 eighths), pi-c one; pi-b (this board) none.
    let (a, b, c) = (
        values(&[load(24, 0)], "web", 1),
        values(&[], "web", 0),
        values(&[load(8, 0)], "web", 0),
    );
    let forward = [
        board("pi-a", true, &a),
        board("pi-b", true, &b),
        board("pi-c", true, &c),
    ];
    let backward = [
        board("pi-c", true, &c),
        board("pi-b", true, &b),
        board("pi-a", true, &a),
    ];
    let one = scaler(&specs).plan(NOW, "pi-b", &forward);
    let other = scaler(&specs).plan(NOW, "pi-b", &backward);
    assert_eq!(one, other);
    assert_eq!(one.counts["web"], 4, "ceil(32 / 8)");
    let s = scaler(&specs);
    s.plan(NOW, "pi-b", &forward);
    let reason = &s.decisions("web")[0].reason;
    assert_eq!(reason, "1 -> 4: 40 in flight, target 10");
    // The decision is an event on the board's bus too, once: the same plan again is no change.
    s.plan(NOW, "pi-b", &forward);
    let events = s.bus.recent(None, usize::MAX);
    let decided: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.what {
            baton_api::events::What::ScaleDecided {
                service,
                count,
                reason,
                ..
            } => Some((service.as_str(), *count, reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(decided, [("web", 4, "1 -> 4: 40 in flight, target 10")]);
}

#[test]
fn a_board_with_other_specs_holds_every_count() {
    let specs = specs(&[("web", "min = 1, max = 5")]);
    let (a, b) = (values(&[], "web", 3), values(&[], "web", 0));
    let s = scaler(&specs);
    let plan = s.plan(
        NOW,
        "pi-a",
        &[board("pi-a", true, &a), board("pi-b", false, &b)],
    );
    assert_eq!(
        plan.counts["web"], 3,
        "no step down while pi-b's load is unknown"
    );
    let plan = s.plan(
        NOW,
        "pi-a",
        &[board("pi-a", true, &a), board("pi-b", true, &b)],
    );
    assert_eq!(plan.counts["web"], 2, "one step down once it is known");
}

#[test]
fn a_wake_asks_for_one_instance_on_the_first_board_holding_requests() {
    let specs = specs(&[("sleepy", "min = 0, max = 3")]);
    let me = values(&[], "sleepy", 0);
    let s = scaler(&specs);
    let plan = s.plan(NOW, "pi-b", &[board("pi-b", true, &me)]);
    assert_eq!(plan.counts["sleepy"], 0);
    s.wake(Source::FrontDoor, "sleepy");
    let (_, table) = s.table();
    assert_eq!(table.iter().map(|e| e.held).collect::<Vec<_>>(), [1]);
    let c = values(&[load(0, 2)], "sleepy", 0);
    let boards = [board("pi-b", true, &me), board("pi-c", true, &c)];
    let plan = s.plan(NOW + BUCKET_MS, "pi-b", &boards);
    assert_eq!(
        plan.counts["sleepy"], 1,
        "many held requests start one instance"
    );
    assert_eq!(plan.prefer["sleepy"], "pi-b");
    let shown = s.shown("sleepy").expect("shown");
    assert_eq!(
        shown
            .held
            .iter()
            .map(|h| (h.board.clone(), h.count))
            .collect::<Vec<_>>(),
        [("pi-b".to_string(), 1), ("pi-c".to_string(), 2)]
    );
}

#[test]
fn held_counts_of_each_source_add_up_and_go_with_their_source() {
    let specs = specs(&[("web", "min = 0")]);
    let s = scaler(&specs);
    s.held(Source::FrontDoor, [("web".to_string(), 3)].into());
    s.held(
        Source::Activator,
        [("web".to_string(), 2), ("gone".to_string(), 9)].into(),
    );
    assert_eq!(s.table().1.iter().map(|e| e.held).collect::<Vec<_>>(), [5]);
    s.held(Source::FrontDoor, BTreeMap::new());
    // The most held within a bucket and the one before stays in the table: a wait served at
    // once is not read as no load at all.
    let now = super::now_ms();
    s.tick(now + BUCKET_MS);
    assert_eq!(s.table().1.iter().map(|e| e.held).collect::<Vec<_>>(), [5]);
    s.tick(now + 2 * BUCKET_MS);
    assert_eq!(s.table().1.iter().map(|e| e.held).collect::<Vec<_>>(), [2]);
}

#[test]
fn surge_dates_raise_the_bounds_of_their_day() {
    // NOW is 2026-05-28 in UTC.
    let specs = specs(&[(
        "web",
        "min = 1, max = 2 }\nsurge = [{ dates = [\"2026-05-28\"], max = 4, min = 3 }]\n#",
    )]);
    let me = values(&[], "web", 1);
    let s = scaler(&specs);
    let plan = s.plan(NOW, "pi-a", &[board("pi-a", true, &me)]);
    assert_eq!(plan.counts["web"], 3);
    let shown = s.shown("web").expect("shown");
    assert_eq!((shown.max, shown.max_why.as_str()), (4, "surge 2026-05-28"));
    assert_eq!(shown.today, "2026-05-28");
}
