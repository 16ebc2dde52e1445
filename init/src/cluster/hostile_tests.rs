//! Records from a key holder or a tampered `/data` that try to leave `services/`: they are
//! refused where they enter, reported, and the card outside `services/` is never written.

use std::path::Path;

use baton_cluster::desired::{Clock, Desired, Reason, Record, Version};
use baton_cluster::sync::SyncKey;

use super::local::{self, Book, Files};
use super::{refused, NodeState};
use crate::board::card::CardStore;
use crate::board::console::Console;

const KEY: &str = "hostile-records-test-key-0123456789abcdef";

fn record(name: &str, text: Option<&str>) -> Record {
    Record {
        name: name.into(),
        text: text.map(str::to_string),
        version: Version {
            time: 1_000,
            board: "pi-evil".into(),
        },
    }
}

/// The hostile records: one that would overwrite `cluster.toml`, one that would delete it, and
/// a few more ways out of `services/`.
fn hostile() -> Vec<Record> {
    vec![
        record("../cluster", Some("[cluster]\nname = \"taken\"\n")),
        record("../cluster", None),
        record("..", Some("x")),
        record("/etc/passwd", Some("x")),
        record("a/../../cluster", None),
        record("web", Some("name = \"web\"\nimage = \"x:1\"\n")),
    ]
}

/// A card: `cluster.toml` next to `services/`.
fn card() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().expect("temp dir");
    let services = root.path().join("services");
    std::fs::create_dir(&services).expect("services");
    std::fs::write(root.path().join("cluster.toml"), "the operator's").expect("cluster.toml");
    (root, services)
}

/// What a round does with merged records: mirror every one the card does not hold yet.
fn merge_and_mirror(
    records: Vec<Record>,
    services: &Path,
    source: &str,
    console: &Console,
) -> (Desired, Vec<String>) {
    let mut inner = NodeState::default();
    let changes = inner.desired.merge(records, &mut inner.clock, 1_000_000);
    refused::report(console, &mut inner, source, &changes);
    assert_eq!(inner.records_refused, 5);
    let names: Vec<String> = inner.desired.records().map(|r| r.name.clone()).collect();
    let mut book = Book::default();
    // The data partition's copy takes no other name than the card does.
    let data = tempfile::tempdir().expect("temp dir");
    let card = CardStore::open(services.to_path_buf(), Some(data.path().to_path_buf())).0;
    let problems = local::mirror(
        &card,
        &mut book,
        &inner.desired,
        &names,
        &local::read_files(services),
    );
    let kept: Vec<String> = std::fs::read_dir(data.path().join("specs"))
        .expect("specs")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(kept, ["web.toml"]);
    (inner.desired, problems)
}

fn assert_card_untouched_but_web(root: &Path) {
    assert_eq!(
        std::fs::read_to_string(root.join("cluster.toml")).expect("cluster.toml is still there"),
        "the operator's"
    );
    let mut files: Vec<String> = std::fs::read_dir(root.join("services"))
        .expect("services")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["web.toml"]);
    let mut top: Vec<String> = std::fs::read_dir(root)
        .expect("root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["cluster.toml", "services"]);
}

fn assert_reported(console: &Console, source: &str) {
    let lines = console.recent().join("\n");
    assert!(
        lines.contains(&format!(
            "cluster: {source}: record \"../cluster\" (stamped by board \"pi-evil\") refused: its name is not a service name"
        )),
        "{lines}"
    );
    assert!(lines.contains("(5 refused so far)"), "{lines}");
}

#[test]
fn a_sync_request_naming_dot_dot_cluster_writes_nothing_outside_services() {
    let (root, services) = card();
    let key = SyncKey::derive(KEY).expect("key");
    let (_, body) = key.request("pi-evil", "d", hostile()).expect("request");
    let request = key
        .open_request(&body)
        .expect("a key holder's request opens");
    let console = Console::quiet(100);
    let (desired, problems) =
        merge_and_mirror(request.records, &services, "the sync request", &console);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(desired.records().count(), 1);
    assert_card_untouched_but_web(root.path());
    assert_reported(&console, "the sync request");
}

#[test]
fn a_sync_answer_naming_dot_dot_cluster_writes_nothing_outside_services() {
    let (root, services) = card();
    let key = SyncKey::derive(KEY).expect("key");
    let (challenge, body) = key.request("pi-a", "d", Vec::new()).expect("request");
    let request = key.open_request(&body).expect("opens");
    let answer = key.respond(&request, "pi-evil", hostile()).expect("answer");
    let response = key
        .open_response(&answer, &challenge)
        .expect("answer opens");
    let console = Console::quiet(100);
    let (_, problems) = merge_and_mirror(response.records, &services, "the answer", &console);
    assert!(problems.is_empty(), "{problems:?}");
    assert_card_untouched_but_web(root.path());
    assert_reported(&console, "the answer");
}

#[test]
fn a_saved_state_naming_dot_dot_cluster_writes_nothing_outside_services() {
    let (root, services) = card();
    let data = tempfile::tempdir().expect("data");
    let files = Files::under(data.path());
    std::fs::write(
        &files.desired,
        serde_json::to_vec(&hostile()).expect("json"),
    )
    .expect("write desired.json");
    let records = files.load_records();
    assert_eq!(records.len(), 6, "the file is read whole");
    let console = Console::quiet(100);
    let (_, problems) = merge_and_mirror(records, &services, "the saved state", &console);
    assert!(problems.is_empty(), "{problems:?}");
    assert_card_untouched_but_web(root.path());
    assert_reported(&console, "the saved state");
}

#[test]
fn the_mirror_itself_refuses_a_name_that_is_not_a_plain_file_name() {
    let (root, services) = card();
    let mut desired = Desired::default();
    desired.merge([record("web", Some("w"))], &mut Clock::default(), 1_000_000);
    let mut book = Book::default();
    let names: Vec<String> = ["../cluster", "..", ".", "", "a/b", "web"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data = tempfile::tempdir().expect("temp dir");
    let card = CardStore::open(services.clone(), Some(data.path().to_path_buf())).0;
    let problems = local::mirror(
        &card,
        &mut book,
        &desired,
        &names,
        &local::read_files(&services),
    );
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(
        problems[0]
            .ends_with("the service name \"../cluster\" is not a plain file name; nothing written"),
        "{problems:?}"
    );
    assert_card_untouched_but_web(root.path());
    assert_eq!(book.entries.keys().collect::<Vec<_>>(), ["web"]);
    for good in ["web", "db-2", "x.y"] {
        assert!(local::plain_file_name(good));
    }
}

#[test]
fn a_refusal_is_printed_once_and_counted_each_time() {
    let console = Console::quiet(100);
    let mut inner = NodeState::default();
    for _ in 0..3 {
        let changes =
            inner
                .desired
                .merge([record("../cluster", None)], &mut inner.clock, 1_000_000);
        assert_eq!(changes.refused[0].reason, Reason::Name);
        refused::report(
            &console,
            &mut inner,
            "the sync answer of board \"pi-evil\"",
            &changes,
        );
    }
    assert_eq!(inner.records_refused, 3);
    let lines = console.recent();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("(1 refused so far)"), "{lines:?}");
}

/// A recorded sync request replayed after a deleted spec's tombstone is gone would bring the
/// spec back: it is refused as not fresh, and changes nothing.
#[test]
fn a_replayed_sync_request_after_the_tombstone_is_gone_changes_nothing() {
    use super::answer::answer;
    use super::tombstones::release;
    use super::SyncAnswer;
    use baton_cluster::desired::TOMBSTONE_TTL_MS;

    const T0: u64 = 1_800_000_000_000;
    let key = SyncKey::derive(KEY).expect("key");
    let console = Console::quiet(100);
    let mut inner = NodeState::default();
    inner.known.note("pi-a", T0);
    let web = Record {
        name: "web".into(),
        text: Some("name = \"web\"\nimage = \"x:1\"\n".into()),
        version: Version {
            time: T0 - 1_000,
            board: "pi-a".into(),
        },
    };
    let (challenge, recorded) = key
        .request_at(T0, "pi-a", "d", vec![web.clone()])
        .expect("request");
    let (first, changed) = answer(&key, "pi-b", &console, &mut inner, &recorded, T0);
    assert!(matches!(first, SyncAnswer::Sealed(_)) && changed);
    assert!(inner.desired.get("web").is_some_and(|r| r.text.is_some()));
    // web is deleted; the same request, replayed at once, is refused.
    let tombstone = Record {
        text: None,
        version: Version {
            time: T0 + 1_000,
            board: "pi-b".into(),
        },
        ..web
    };
    inner
        .desired
        .merge([tombstone], &mut inner.clock, T0 + 1_000);
    let (again, _) = answer(&key, "pi-b", &console, &mut inner, &recorded, T0 + 5_000);
    assert!(matches!(again, SyncAnswer::Stale(_)), "{again:?}");
    // The tombstone outlives its TTL until pi-a confirms it, then goes.
    let later = T0 + 1_000 + TOMBSTONE_TTL_MS;
    let (dropped, held) = release(
        &mut inner.desired,
        &inner.confirmations,
        &inner.known,
        "pi-b",
        later,
    );
    assert!(dropped.is_empty());
    assert_eq!(held["web"], ["pi-a"]);
    inner
        .confirmations
        .confirm("pi-a", &inner.known, &inner.desired);
    let (dropped, _) = release(
        &mut inner.desired,
        &inner.confirmations,
        &inner.known,
        "pi-b",
        later,
    );
    assert_eq!(dropped, ["web"]);
    // Replayed now, the request would bring web back: it is refused and changes nothing.
    let digest = inner.desired.digest();
    let (replayed, changed) = answer(&key, "pi-b", &console, &mut inner, &recorded, later);
    let SyncAnswer::Stale(sealed) = replayed else {
        panic!("{replayed:?}")
    };
    assert!(!changed);
    assert!(inner.desired.get("web").is_none());
    assert_eq!(inner.desired.digest(), digest);
    // The refusal is sealed, answers that request only, and names the refusing clock.
    let refusal = key.open_refusal(&sealed, &challenge).expect("opens");
    assert_eq!(refusal.time_ms, later);
    assert!(
        refusal.reason.contains("behind this board's clock"),
        "{}",
        refusal.reason
    );
    assert_eq!(inner.sync_refused, 2);
    let lines = console.recent().join("\n");
    assert!(
        lines.contains(
            "the sync request of board \"pi-a\" refused: it was answered before (a replay)"
        ),
        "{lines}"
    );
    assert!(
        lines.contains("(2 sync requests refused so far)"),
        "{lines}"
    );
    // A stranger's bytes are refused without a word.
    let (stranger, _) = answer(&key, "pi-b", &console, &mut inner, &[1u8; 64], later);
    assert!(matches!(stranger, SyncAnswer::Refused));
}

/// A board whose clock is far off: its request is refused with the skew named; the asker, told
/// the refusing board's clock, stamps its next request by it and is answered.
#[test]
fn a_board_whose_clock_is_far_off_is_refused_once_then_answered() {
    use super::answer::answer;
    use super::SyncAnswer;

    const NOW: u64 = 1_800_000_000_000;
    const SKEW: u64 = 3 * 3600 * 1000;
    let key = SyncKey::derive(KEY).expect("key");
    let console = Console::quiet(100);
    let mut inner = NodeState::default();
    let (challenge, body) = key
        .request_at(NOW - SKEW, "pi-slow", "d", Vec::new())
        .expect("request");
    let (refused, _) = answer(&key, "pi-b", &console, &mut inner, &body, NOW);
    let SyncAnswer::Stale(sealed) = refused else {
        panic!("{refused:?}")
    };
    let refusal = key.open_refusal(&sealed, &challenge).expect("opens");
    assert!(
        refusal.reason.contains("10800s behind"),
        "{}",
        refusal.reason
    );
    // The asker's offset: the refusing clock minus its own.
    let offset = refusal.time_ms as i64 - (NOW - SKEW) as i64;
    let stamped = (NOW - SKEW).saturating_add_signed(offset);
    let (_, body) = key
        .request_at(stamped, "pi-slow", "d", Vec::new())
        .expect("request");
    let (answered, _) = answer(&key, "pi-b", &console, &mut inner, &body, NOW + 50);
    assert!(matches!(answered, SyncAnswer::Sealed(_)), "{answered:?}");
}
