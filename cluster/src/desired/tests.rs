use super::*;

const NOW: u64 = 1_700_000_000_000;

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
            d.merge(order, &mut Clock::default(), NOW);
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
    d.merge([rec("web", Some("a"), 10, "pi-a")], &mut clock, NOW);
    let changes = d.merge([rec("web", None, 11, "pi-b")], &mut clock, NOW);
    assert_eq!(changes.changed, ["web"]);
    assert_eq!(d.specs().count(), 0);
    // An old copy arriving late does not bring it back.
    let changes = d.merge([rec("web", Some("a"), 10, "pi-a")], &mut clock, NOW);
    assert!(changes.changed.is_empty());
    assert_eq!(d.specs().count(), 0);
    // A newer spec does.
    d.merge([rec("web", Some("again"), 20, "pi-c")], &mut clock, NOW);
    assert_eq!(d.specs().collect::<Vec<_>>(), [("web", "again")]);
}

#[test]
fn the_clock_orders_a_change_after_everything_seen_even_with_a_slow_wall_clock() {
    let mut clock = Clock::default();
    let mut d = Desired::default();
    // Another board with a clock far ahead.
    d.merge(
        [rec("web", Some("theirs"), 1_000_000, "pi-b")],
        &mut clock,
        NOW,
    );
    // This board's wall clock says 5; its change must still win.
    let time = clock.tick(5);
    assert!(time > 1_000_000);
    let changes = d.merge([rec("web", Some("mine"), time, "pi-a")], &mut clock, NOW);
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
    let c1 = d1.merge([a.clone(), b.clone()], &mut Clock::default(), NOW);
    let mut d2 = Desired::default();
    let c2 = d2.merge([b, a], &mut Clock::default(), NOW);
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
        NOW,
    );
    assert!(d.expire(TOMBSTONE_TTL_MS - 1, |_| true).is_empty());
    assert_eq!(d.records().count(), 2);
    // Past its time, a tombstone stays while the caller does not release it.
    assert!(d.expire(TOMBSTONE_TTL_MS, |_| false).is_empty());
    assert_eq!(d.records().count(), 2);
    assert_eq!(
        d.expired(TOMBSTONE_TTL_MS)
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["gone"]
    );
    assert_eq!(d.tombstones().count(), 1);
    assert_eq!(d.expire(TOMBSTONE_TTL_MS, |r| r.name == "gone"), ["gone"]);
    assert_eq!(
        d.records().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["live"]
    );
}

#[test]
fn digests_differ_when_anything_differs() {
    let mut a = Desired::default();
    a.merge(
        [rec("web", Some("x"), 1, "pi-a")],
        &mut Clock::default(),
        NOW,
    );
    let mut b = a.clone();
    assert_eq!(a.digest(), b.digest());
    b.merge(
        [rec("web", Some("y"), 2, "pi-a")],
        &mut Clock::default(),
        NOW,
    );
    assert_ne!(a.digest(), b.digest());
    let mut c = a.clone();
    c.merge([rec("web", None, 2, "pi-a")], &mut Clock::default(), NOW);
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
        NOW,
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
    d.merge([rec("web", Some("a"), 10, "pi-a")], &mut clock, NOW);
    let before = d.clone();
    let mut bad: Vec<Record> = ["../cluster", "services/../../cluster", "..", "Web", ""]
        .iter()
        .map(|n| rec(n, None, 50, "pi-x"))
        .collect();
    bad.extend((0..MAX_REPORTED).map(|i| rec(&format!("../{i}"), Some("x"), 60, "pi-x")));
    let changes = d.merge(bad, &mut clock, NOW);
    assert_eq!(d, before, "nothing entered");
    assert!(changes.changed.is_empty());
    assert_eq!(changes.refused_count, 5 + MAX_REPORTED);
    assert_eq!(changes.refused.len(), MAX_REPORTED);
    assert_eq!(changes.refused[0].name, "../cluster");
    assert_eq!(changes.refused[0].reason, Reason::Name);
    // The clock did not observe the refused records' times.
    assert_eq!(clock.tick(0), 11);
}

#[test]
fn a_time_far_ahead_is_refused_and_changes_keep_winning() {
    let day = crate::plausible::MAX_AHEAD.as_millis() as u64;
    let mut d = Desired::default();
    let mut clock = Clock::default();
    d.merge([rec("web", Some("a"), NOW, "pi-a")], &mut clock, NOW);
    let changes = d.merge(
        [
            rec("web", Some("frozen"), u64::MAX, "pi-x"),
            rec("web", None, NOW + day + 1, "pi-x"),
        ],
        &mut clock,
        NOW,
    );
    assert_eq!(changes.refused_count, 2);
    assert!(matches!(changes.refused[0].reason, Reason::Future { time, .. } if time == u64::MAX));
    assert_eq!(d.get("web").and_then(|r| r.text.as_deref()), Some("a"));
    // Up to a day ahead is taken; the clock follows it up to a minute short of the edge, so
    // a change made here stays within what boards a minute behind take...
    d.merge(
        [rec("web", Some("edge"), NOW + day, "pi-x")],
        &mut clock,
        NOW,
    );
    let time = clock.tick(NOW);
    assert_eq!(time, NOW + day - 60_000 + 1);
    assert!(d
        .merge([rec("web", Some("lost"), time, "pi-a")], &mut clock, NOW)
        .changed
        .is_empty());
    // ...and a minute later, a change made here wins again.
    let later = NOW + 60_000;
    let time = clock.tick(later);
    assert!(time > NOW + day);
    let behind = later - 59_000;
    d.merge([rec("web", Some("mine"), time, "pi-a")], &mut clock, behind);
    assert_eq!(d.get("web").and_then(|r| r.text.as_deref()), Some("mine"));
    // A clock that was fed the largest time does not wrap to zero.
    let mut fed = Clock::default();
    fed.observe(u64::MAX);
    assert!(fed.tick(5) >= 5);
    assert_eq!(fed.tick(u64::MAX), u64::MAX);
    assert_eq!(fed.tick(u64::MAX), u64::MAX);
}

#[test]
fn new_names_beyond_the_cap_are_refused_and_held_names_still_change() {
    let mut d = Desired::default();
    let mut clock = Clock::default();
    let many: Vec<Record> = (0..admit::MAX_RECORDS + 3)
        .map(|i| rec(&format!("s{i}"), None, 5, "pi-x"))
        .collect();
    let changes = d.merge(many, &mut clock, NOW);
    assert_eq!(d.records().count(), admit::MAX_RECORDS);
    assert_eq!(changes.refused_count, 3);
    assert_eq!(changes.refused[0].reason, Reason::Full);
    assert_eq!(
        changes.refused[0].to_string(),
        format!(
            "record \"s{}\" (stamped by board \"pi-x\") refused: the cluster already holds {} services and tombstones, the most allowed",
            admit::MAX_RECORDS,
            admit::MAX_RECORDS
        )
    );
    let changes = d.merge([rec("s0", Some("back"), 6, "pi-a")], &mut clock, NOW);
    assert_eq!(changes.changed, ["s0"]);
    assert_eq!(changes.refused_count, 0);
}
