use super::*;

fn v(time: u64, board: &str) -> Version {
    Version {
        time,
        board: board.into(),
    }
}

fn rec(name: &str, text: Option<&str>, time: u64, board: &str) -> Record {
    Record {
        name: name.into(),
        text: text.map(str::to_string),
        version: v(time, board),
    }
}

#[test]
fn the_newer_version_wins_in_any_order_of_arrival() {
    let records = [
        rec("web", Some("a"), 10, "pi-a"),
        rec("web", Some("b"), 12, "pi-b"),
        rec("web", Some("c"), 12, "pi-a"),
        rec("db", Some("d"), 5, "pi-c"),
    ];
    let mut expected = None;
    // Every rotation and the reverse order give the same state.
    for start in 0..records.len() {
        for reverse in [false, true] {
            let mut order: Vec<Record> = records[start..]
                .iter()
                .chain(&records[..start])
                .cloned()
                .collect();
            if reverse {
                order.reverse();
            }
            let mut d = Desired::default();
            d.merge(order, &mut Clock::default());
            let specs: Vec<(String, String)> = d
                .specs()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            assert_eq!(
                specs,
                [("db".into(), "d".into()), ("web".into(), "b".into())]
            );
            match &expected {
                None => expected = Some(d.digest()),
                Some(e) => assert_eq!(&d.digest(), e),
            }
        }
    }
}

#[test]
fn a_tombstone_deletes_older_versions_and_loses_to_newer_ones() {
    let mut d = Desired::default();
    let mut clock = Clock::default();
    d.merge([rec("web", Some("a"), 10, "pi-a")], &mut clock);
    let changes = d.merge([rec("web", None, 11, "pi-b")], &mut clock);
    assert_eq!(changes.changed, ["web"]);
    assert_eq!(d.specs().count(), 0);
    // An old copy arriving late does not bring it back.
    let changes = d.merge([rec("web", Some("a"), 10, "pi-a")], &mut clock);
    assert!(changes.changed.is_empty());
    assert_eq!(d.specs().count(), 0);
    // A newer spec does.
    d.merge([rec("web", Some("again"), 20, "pi-c")], &mut clock);
    assert_eq!(d.specs().collect::<Vec<_>>(), [("web", "again")]);
}

#[test]
fn the_clock_orders_a_change_after_everything_seen_even_with_a_slow_wall_clock() {
    let mut clock = Clock::default();
    let mut d = Desired::default();
    // Another board with a clock far ahead.
    d.merge([rec("web", Some("theirs"), 1_000_000, "pi-b")], &mut clock);
    // This board's wall clock says 5; its change must still win.
    let time = clock.tick(5);
    assert!(time > 1_000_000);
    let changes = d.merge([rec("web", Some("mine"), time, "pi-a")], &mut clock);
    assert_eq!(changes.changed, ["web"]);
    assert_eq!(d.get("web").and_then(|r| r.text.as_deref()), Some("mine"));
    // Ticks never repeat.
    assert!(clock.tick(0) > time);
}

#[test]
fn same_version_different_text_is_decided_by_hash_and_reported() {
    let a = rec("web", Some("one"), 7, "pi-a");
    let b = rec("web", Some("two"), 7, "pi-a");
    let mut d1 = Desired::default();
    let c1 = d1.merge([a.clone(), b.clone()], &mut Clock::default());
    let mut d2 = Desired::default();
    let c2 = d2.merge([b, a], &mut Clock::default());
    assert_eq!(d1, d2);
    assert_eq!(c1.clashes.len() + c2.clashes.len(), 1);
}

#[test]
fn old_tombstones_expire_but_live_specs_stay() {
    let mut d = Desired::default();
    d.merge(
        [
            rec("gone", None, 0, "pi-a"),
            rec("live", Some("x"), 0, "pi-a"),
        ],
        &mut Clock::default(),
    );
    d.expire(TOMBSTONE_TTL_MS - 1);
    assert_eq!(d.records().count(), 2);
    d.expire(TOMBSTONE_TTL_MS);
    assert_eq!(
        d.records().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["live"]
    );
}

#[test]
fn digests_differ_when_anything_differs() {
    let mut a = Desired::default();
    a.merge([rec("web", Some("x"), 1, "pi-a")], &mut Clock::default());
    let mut b = a.clone();
    assert_eq!(a.digest(), b.digest());
    b.merge([rec("web", Some("y"), 2, "pi-a")], &mut Clock::default());
    assert_ne!(a.digest(), b.digest());
    let mut c = a.clone();
    c.merge([rec("web", None, 2, "pi-a")], &mut Clock::default());
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn a_local_copy_that_lost_is_a_conflict() {
    let mut d = Desired::default();
    d.merge(
        [
            rec("web", Some("cluster"), 9, "pi-b"),
            rec("db", None, 9, "pi-b"),
        ],
        &mut Clock::default(),
    );
    let local: BTreeMap<String, (String, Version)> = [
        ("web".to_string(), ("mine".to_string(), v(3, "pi-a"))),
        ("db".to_string(), ("kept".to_string(), v(2, "pi-a"))),
        ("new".to_string(), ("only here".to_string(), v(2, "pi-a"))),
    ]
    .into_iter()
    .collect();
    let conflicts = d.conflicts("pi-a", &local);
    let names: Vec<&str> = conflicts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(conflicts[1].winner, v(9, "pi-b"));
    assert_eq!(conflicts[1].local, v(3, "pi-a"));
}

#[test]
fn records_with_bad_names_are_refused_counted_and_change_nothing() {
    let mut d = Desired::default();
    let mut clock = Clock::default();
    d.merge([rec("web", Some("a"), 10, "pi-a")], &mut clock);
    let before = d.clone();
    let mut bad: Vec<Record> = ["../cluster", "services/../../cluster", "..", "Web", ""]
        .iter()
        .map(|n| rec(n, None, 50, "pi-x"))
        .collect();
    bad.extend((0..MAX_REPORTED).map(|i| rec(&format!("../{i}"), Some("x"), 60, "pi-x")));
    let changes = d.merge(bad, &mut clock);
    assert_eq!(d, before, "nothing entered");
    assert!(changes.changed.is_empty());
    assert_eq!(changes.refused_count, 5 + MAX_REPORTED);
    assert_eq!(changes.refused.len(), MAX_REPORTED);
    assert_eq!(changes.refused[0].name, "../cluster");
    assert_eq!(changes.refused[0].reason, Reason::Name);
    // The clock did not observe the refused records' times.
    assert_eq!(clock.tick(0), 11);
}
