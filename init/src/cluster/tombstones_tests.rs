use baton_cluster::desired::Clock;

use super::*;

const TTL: u64 = TOMBSTONE_TTL_MS;

fn record(name: &str, text: Option<&str>, time: u64) -> Record {
    Record {
        name: name.into(),
        text: text.map(str::to_string),
        version: Version {
            time,
            board: "pi-a".into(),
        },
    }
}

/// A desired state with `gone` deleted at time 10 and `web` live.
fn desired() -> Desired {
    let mut d = Desired::default();
    d.merge(
        [record("gone", None, 10), record("web", Some("w"), 10)],
        &mut Clock::default(),
        20,
    );
    d
}

fn known(names: &[&str]) -> Known {
    let mut k = Known::default();
    for n in names {
        k.note(n, 1);
    }
    k
}

fn names(d: &Desired) -> Vec<&str> {
    d.records().map(|r| r.name.as_str()).collect()
}

#[test]
fn a_tombstone_waits_for_every_known_board_then_goes_after_its_ttl() {
    let mut d = desired();
    let known = known(&["pi-a", "pi-b", "pi-c"]);
    let mut c = Confirmations::default();
    // Before its TTL, confirmed or not, it stays.
    assert!(c.confirm("pi-b", &known, &d));
    assert!(!c.confirm("pi-b", &known, &d), "noted once");
    let (dropped, held) = release(&mut d, &c, &known, "pi-a", 10 + TTL - 1);
    assert!(dropped.is_empty() && held.is_empty());
    // Past its TTL, pi-c has not confirmed: held, and the report names pi-c.
    let (dropped, held) = release(&mut d, &c, &known, "pi-a", 10 + TTL);
    assert!(dropped.is_empty());
    assert_eq!(held["gone"], ["pi-c"]);
    assert_eq!(names(&d), ["gone", "web"]);
    // A board not registered confirms nothing.
    assert!(!c.confirm("pi-x", &known, &d));
    // pi-c confirms: it goes (the board itself, pi-a, needs no confirmation).
    assert!(c.confirm("pi-c", &known, &d));
    let (dropped, held) = release(&mut d, &c, &known, "pi-a", 10 + TTL);
    assert_eq!(dropped, ["gone"]);
    assert!(held.is_empty());
    assert_eq!(names(&d), ["web"]);
}

#[test]
fn forgetting_a_board_releases_what_waits_for_it() {
    let mut d = desired();
    let mut known = known(&["pi-b", "pi-dead"]);
    let mut c = Confirmations::default();
    c.confirm("pi-b", &known, &d);
    let (dropped, held) = release(&mut d, &c, &known, "pi-a", 10 + TTL);
    assert!(dropped.is_empty());
    assert_eq!(held["gone"], ["pi-dead"]);
    assert!(known.forget("pi-dead").is_some());
    c.prune(&d, &known, 10 + TTL);
    let (dropped, _) = release(&mut d, &c, &known, "pi-a", 10 + TTL);
    assert_eq!(dropped, ["gone"]);
}

#[test]
fn a_newer_version_starts_over_and_a_late_copy_of_a_dropped_one_goes_at_once() {
    let mut d = desired();
    let known = known(&["pi-b"]);
    let mut c = Confirmations::default();
    c.confirm("pi-b", &known, &d);
    // Deleted again later (a newer tombstone): pi-b's confirmation was for the old one.
    d.merge([record("gone", None, 50)], &mut Clock::default(), 60);
    assert_eq!(
        c.waiting_for(d.get("gone").expect("held"), &known, "pi-a"),
        ["pi-b"]
    );
    assert!(c.prune(&d, &known, 60), "the old version's entry goes");
    assert!(c.tombstones.is_empty());
    c.confirm("pi-b", &known, &d);
    let (dropped, _) = release(&mut d, &c, &known, "pi-a", 50 + TTL);
    assert_eq!(dropped, ["gone"]);
    // Its confirmations stay for another TTL: a board that has not dropped it yet sends it back,
    // and it goes again at once.
    assert!(!c.prune(&d, &known, 50 + TTL));
    d.merge([record("gone", None, 50)], &mut Clock::default(), 50 + TTL);
    let (dropped, _) = release(&mut d, &c, &known, "pi-a", 50 + TTL);
    assert_eq!(dropped, ["gone"]);
    assert!(c.prune(&d, &known, 50 + 2 * TTL));
    assert!(c.tombstones.is_empty());
}

#[test]
fn confirmations_survive_a_save_and_load_and_a_broken_file_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = Confirmations::file(dir.path());
    assert_eq!(Confirmations::load(&path), (Confirmations::default(), None));
    let d = desired();
    let mut c = Confirmations::default();
    c.confirm("pi-b", &known(&["pi-b"]), &d);
    c.save(&path).expect("save");
    assert_eq!(Confirmations::load(&path), (c, None));
    std::fs::write(&path, "[").expect("write");
    let (c, problem) = Confirmations::load(&path);
    assert!(c.tombstones.is_empty());
    assert!(problem.expect("reported").contains("confirmed.json"));
}

#[test]
fn the_entries_of_dropped_tombstones_are_bounded_oldest_first() {
    let d = Desired::default();
    let known = known(&["pi-b"]);
    let mut c = Confirmations::default();
    for i in 0..(MAX_ENTRIES as u64 + 5) {
        c.tombstones.insert(
            format!("s{i}"),
            Confirmed {
                version: Version {
                    time: 100 + i,
                    board: "pi-a".into(),
                },
                boards: BTreeSet::from(["pi-b".to_string()]),
            },
        );
    }
    assert!(c.prune(&d, &known, 200));
    assert_eq!(c.tombstones.len(), MAX_ENTRIES);
    assert!(!c.tombstones.contains_key("s4") && c.tombstones.contains_key("s5"));
    assert!(!c.prune(&d, &known, 200), "nothing more to do");
}
